// Package peer holds the echo servers that the workbook's stages are
// measured against: the goroutine-per-connection server a Go programmer
// would write with the standard net package, a gnet server (an event-loop
// library), and the same echo loop written directly on Linux epoll.
//
// Every peer keeps the part of the stage contract the load generator relies
// on: a -addr flag, one "listening on tcp HOST:PORT" line on stdout when
// ready, bytes echoed back unchanged, and a clean exit on SIGINT or SIGTERM.
// Peers send no welcome line and have no pool limit.
package peer

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// A Server is an echo server that is already listening.
type Server interface {
	// Addr is the address the listener is bound to, with the real port.
	Addr() string
	// Done delivers the reason the server stopped on its own; nil is
	// never sent there by a healthy server.
	Done() <-chan error
	// Close stops accepting, closes every client and returns when the
	// server has let go of all its descriptors.
	Close() error
}

// Start starts a server listening on addr (host:port, port 0 for any).
type Start func(addr string) (Server, error)

// Main is the whole main function of a peer command: parse -addr, start,
// announce the address, serve until a signal arrives.
func Main(name string, start Start) {
	flag.CommandLine.Init(name, flag.ContinueOnError)
	addr := flag.String("addr", "127.0.0.1:0", "TCP `address` to listen on; port 0 picks a free port")
	if err := flag.CommandLine.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: unexpected argument %q\n", name, flag.Arg(0))
		os.Exit(2)
	}
	// Subscribe before announcing, so a signal sent right after the
	// "listening on" line is never lost.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)

	srv, err := start(*addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("listening on tcp %s\n", srv.Addr())

	select {
	case s := <-sig:
		fmt.Fprintf(os.Stderr, "%s: %v, shutting down\n", name, s)
		if err := srv.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: close: %v\n", name, err)
			os.Exit(1)
		}
	case err := <-srv.Done():
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
