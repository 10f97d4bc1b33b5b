package main

// The plumbing: what the server needs but the lesson does not. Flag parsing,
// opening the listening socket, formatting addresses for the logs, the
// signal self-pipe and the spare descriptor are the same from one stage to
// the next; a stage changes this file only where its idea needs it.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// parseFlags parses the command line. A mistyped flag gets one line on
// stderr and exit status 2, not the usage text; -h still prints the usage.
func parseFlags() {
	flag.CommandLine.Init(os.Args[0], flag.ContinueOnError)
	flag.CommandLine.SetOutput(io.Discard)
	err := flag.CommandLine.Parse(os.Args[1:])
	if err == flag.ErrHelp {
		flag.CommandLine.SetOutput(os.Stderr)
		flag.PrintDefaults()
		os.Exit(0)
	}
	if err == nil && flag.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", flag.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v (try -h)\n", os.Args[0], err)
		os.Exit(2)
	}
}

// listenTCP opens a listening TCP socket the way the articles do, one system
// call at a time: socket, setsockopt, bind, listen.
func listenTCP(addr string) (int, error) {
	tcpAddr, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, fmt.Errorf("listen tcp %q: %v", addr, err)
	}
	family, sa := sockaddr(tcpAddr)
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, fmt.Errorf("listen tcp %s: socket: %w", tcpAddr, err)
	}
	// Without SO_REUSEADDR a restarted server cannot bind its port while
	// connections from its previous run linger in TIME_WAIT.
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err == nil {
		err = unix.Bind(fd, sa)
	}
	if err == nil {
		err = unix.Listen(fd, unix.SOMAXCONN)
	}
	// Non-blocking, because a client can give up between the moment the
	// listener is reported readable and our accept(2): a blocking accept
	// would then stall the whole server until somebody else connects.
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen tcp %s: %w", tcpAddr, err)
	}
	return fd, nil
}

// sockaddr converts a resolved address to the form bind(2) takes. A missing
// host (":8080") means every IPv4 address.
func sockaddr(a *net.TCPAddr) (family int, sa unix.Sockaddr) {
	if ip4 := a.IP.To4(); ip4 != nil || a.IP == nil {
		sa4 := &unix.SockaddrInet4{Port: a.Port}
		copy(sa4.Addr[:], ip4)
		return unix.AF_INET, sa4
	}
	sa6 := &unix.SockaddrInet6{Port: a.Port}
	copy(sa6.Addr[:], a.IP)
	return unix.AF_INET6, sa6
}

// localAddr is the address a socket is bound to; with port 0 in -addr it is
// the only way to learn which port the kernel picked.
func localAddr(fd int) string {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "?"
	}
	return addrString(sa)
}

// addrString formats a socket address for the logs and the "listening on"
// line.
func addrString(sa unix.Sockaddr) string {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)).String()
	}
	return fmt.Sprint(sa)
}

// notifyOnSignal returns the read end of a pipe that becomes readable when
// SIGINT or SIGTERM first arrives. The loop spends its time parked in the
// kernel, not in Go code, so the news has to reach it as a descriptor it
// already watches: the self-pipe trick. The byte written is the signal's
// number.
func notifyOnSignal() int {
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		log.Fatalf("pipe: %v", err)
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := (<-signals).(syscall.Signal)
		signalled.Store(true)
		// A pipe with room takes the byte; a write interrupted before it
		// began (EINTR) took nothing, and must be made again, or the loop
		// never hears of the signal.
		for {
			if _, err := unix.Write(p[1], []byte{byte(sig)}); err != unix.EINTR {
				break
			}
		}
		// A second signal while the first is being handled ends the process
		// at once: whoever presses Ctrl-C again will not wait for a shutdown
		// that is taking too long, or is stuck (say, writing its log to a
		// terminal whose output is paused). With the handler gone the
		// signal kills the process, so a shell shows 130 for SIGINT and 143
		// for SIGTERM, as for any program that does not catch them. One that
		// comes within doubleSignal of the first is that one again: a signal
		// sent to a process group reaches the server from the sender, and
		// once more from a parent that forwards it (make forwards SIGTERM).
		first := time.Now()
		for sig = (<-signals).(syscall.Signal); time.Since(first) < doubleSignal; {
			sig = (<-signals).(syscall.Signal)
		}
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		unix.Kill(os.Getpid(), sig)
	}()
	return p[0]
}

// signalled is set, with the pipe's byte, when a signal arrives: the same
// news for code that is not waiting on the loop's queue but inside one
// client's write (see writeAll).
var signalled atomic.Bool

// errStopping is what writeAll returns instead of waiting longer once a
// signal has come.
var errStopping = errors.New("server shutting down")

// doubleSignal is how far apart two signals must be to count as two: a
// person pressing Ctrl-C twice takes longer.
const doubleSignal = 200 * time.Millisecond

// openSpare holds one descriptor in reserve, for refuseOutOfFiles.
func openSpare() int {
	spare := -1
	if !takeSpare(&spare) {
		log.Fatalf("open /dev/null: %v", spareErr)
	}
	return spare
}

// refuseOutOfFiles is acceptClient's answer to EMFILE or ENFILE: the process
// is out of descriptors. The connection stays queued, so the listener stays
// readable and a naive loop would spin on it for ever. Free the spare
// descriptor, accept the client with it, close it at once, and take the
// spare back: the client is told no, and the loop moves on.
//
// The spare may not come back: the number freed can be taken by another
// thread meanwhile, or the whole system be out of files. Then *spare is -1,
// the next client could not be refused and would keep the listener
// readable; so the caller stops watching the listener until takeSpare,
// tried after every batch of events and at least every spareRetry, has the
// spare again.
func refuseOutOfFiles(listener int, spare *int) {
	if *spare < 0 {
		return
	}
	unix.Close(*spare)
	*spare = -1
	if fd, _, err := unix.Accept(listener); err == nil {
		unix.Close(fd)
	}
	log.Printf("refused a client: out of file descriptors")
	if !takeSpare(spare) {
		log.Printf("no spare descriptor (open /dev/null: %v): not accepting until there is one", spareErr)
	}
}

// takeSpare opens the spare descriptor unless it is held already, and
// reports whether it is held. Once it is back after a failure, it says so in
// the log.
func takeSpare(spare *int) bool {
	if *spare >= 0 {
		return true
	}
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		spareErr = err
		return false
	}
	if spareErr != nil {
		log.Printf("spare descriptor back: accepting again")
	}
	*spare, spareErr = fd, nil
	return true
}

// spareErr is why the spare descriptor could not be opened, while it cannot.
var spareErr error

// spareRetry is how long a loop without its spare waits at most before it
// tries to take it again.
const spareRetry = 100 * time.Millisecond

// listenTimeout is how long the loop may wait for events as far as the
// spare is concerned: for ever (nil) while it is listening, but spareRetry
// while it is not, so that it tries again to take the spare even if nothing
// else happens.
func listenTimeout(listening bool) *unix.Timespec {
	if listening {
		return nil
	}
	ts := unix.NsecToTimespec(spareRetry.Nanoseconds())
	return &ts
}
