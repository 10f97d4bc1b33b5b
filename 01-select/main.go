// Stage 01: an echo server on select(2).
//
// This is the baseline the rest of the workbook improves on. It follows the
// select article: one listening socket, one fd_set holding every descriptor
// the server wants to hear from, and a loop that hands select(2) a copy of
// that set, then walks every descriptor number up to the highest one to find
// the few that are ready. Whatever a client sends is written straight back.
//
//	go run ./01-select            # in one terminal
//	nc localhost 8080             # in another; type a line, get it back
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fdSetSize is FD_SETSIZE, how many descriptors an fd_set has room for: 1024
// on Linux, macOS and the BSDs. A descriptor numbered fdSetSize or above
// cannot be watched by select at all (x/sys's FdSet.Set would index past the
// end of its array and panic), so a client that gets one is refused.
const fdSetSize = int(8 * unsafe.Sizeof(unix.FdSet{}))

func main() {
	addr := flag.String("addr", "localhost:8080", "TCP `host:port` to listen on; port 0 picks a free port")
	parseFlags()
	log.SetFlags(log.Ltime)

	// Catch SIGINT and SIGTERM before announcing anything: a signal sent the
	// moment the "listening on" line appears must find the handler in place.
	stop := notifyOnSignal()
	listener, err := listenTCP(*addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on tcp %s\n", localAddr(listener))
	spare := openSpare()

	var watched unix.FdSet // every descriptor the loop wants to hear from
	watched.Set(listener)
	watched.Set(stop)
	maxfd := max(listener, stop)
	clients := make(map[int]string) // client descriptor -> its address, for the logs
	buf := make([]byte, 64<<10)

	for {
		// select(2) overwrites the set it is given with the ready subset, so
		// it gets a fresh copy on every call. The copy into the kernel, the
		// kernel's scan of every bit up to maxfd, and the copy back out are
		// paid on every call, however few descriptors are busy.
		readable := watched
		if _, err := unix.Select(maxfd+1, &readable, nil, nil, nil); err != nil {
			if err == unix.EINTR {
				continue // interrupted by a signal; nothing is lost, ask again
			}
			log.Fatalf("select: %v", err)
		}

		// And then our own scan of every number up to maxfd: select says how
		// many descriptors are ready, not which ones.
		for fd := 0; fd <= maxfd; fd++ {
			if !readable.IsSet(fd) {
				continue
			}
			switch fd {
			case stop:
				shutdown(stop, listener, clients)
				return
			case listener:
				client, ok := acceptClient(listener, &spare, clients)
				if !ok {
					continue
				}
				watched.Set(client)
				maxfd = max(maxfd, client)
			default:
				if !echo(fd, buf, clients) {
					watched.Clear(fd)
				}
			}
		}
	}
}

// parseFlags parses the command line. A mistyped flag gets one line on
// stderr and exit status 2, not the usage text; -h still prints the usage.
func parseFlags() {
	flag.CommandLine.Init(os.Args[0], flag.ContinueOnError)
	flag.CommandLine.SetOutput(new(discard))
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

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

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
// SIGINT or SIGTERM arrives. The loop spends its time parked in the kernel,
// not in Go code, so the news has to reach it as a descriptor it already
// watches: the self-pipe trick. The byte written is the signal's number.
func notifyOnSignal() int {
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		log.Fatalf("pipe: %v", err)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		for sig := range signals {
			unix.Write(p[1], []byte{byte(sig.(syscall.Signal))})
		}
	}()
	return p[0]
}

// openSpare holds one descriptor in reserve; acceptClient spends it when the
// process runs out of descriptors (see there).
func openSpare() int {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
	if err != nil {
		log.Fatalf("open /dev/null: %v", err)
	}
	return fd
}

// acceptClient takes one connection off the listener's queue and returns its
// descriptor, or false when there was none to take.
func acceptClient(listener int, spare *int, clients map[int]string) (int, bool) {
	fd, sa, err := unix.Accept(listener)
	switch err {
	case nil:
	case unix.EAGAIN, unix.ECONNABORTED, unix.EINTR:
		return -1, false // the client gave up before we got to it
	case unix.EMFILE, unix.ENFILE:
		// Out of descriptors. The connection stays queued, so the listener
		// stays readable and a naive loop would spin here for ever. Free the
		// spare descriptor, accept the client with it, close it at once, and
		// take the spare back: the client is told no, and the loop moves on.
		unix.Close(*spare)
		if fd, _, err := unix.Accept(listener); err == nil {
			unix.Close(fd)
		}
		*spare, _ = unix.Open("/dev/null", unix.O_RDONLY, 0)
		log.Printf("refused a client: out of file descriptors")
		return -1, false
	default:
		log.Printf("accept: %v", err)
		return -1, false
	}
	if fd >= fdSetSize {
		log.Printf("refused client fd=%d from %s: beyond FD_SETSIZE (%d)", fd, addrString(sa), fdSetSize)
		unix.Close(fd)
		return -1, false
	}
	// On macOS and the BSDs an accepted socket inherits O_NONBLOCK from the
	// listener; on Linux it does not. This stage's writes are meant to block
	// (see writeAll), so make that true everywhere.
	if err := unix.SetNonblock(fd, false); err != nil {
		log.Printf("accept: client fd=%d: %v", fd, err)
		unix.Close(fd)
		return -1, false
	}
	clients[fd] = addrString(sa)
	log.Printf("accepted client fd=%d from %s", fd, clients[fd])
	return fd, true
}

// echo reads what one ready client sent and writes it back. It reports
// whether the client is still connected.
func echo(fd int, buf []byte, clients map[int]string) bool {
	n, err := unix.Read(fd, buf)
	switch {
	case err == unix.EINTR || err == unix.EAGAIN:
		return true // nothing lost; select will report the client again
	case err != nil:
		closeClient(fd, clients, err.Error())
		return false
	case n == 0:
		closeClient(fd, clients, "end of file")
		return false
	}
	if err := writeAll(fd, buf[:n]); err != nil {
		closeClient(fd, clients, err.Error())
		return false
	}
	return true
}

// writeAll writes every byte of p. write(2) may take fewer bytes than it is
// given; the articles ignore the count it returns and lose the rest.
//
// The socket is blocking, so a client that sends but never reads will
// eventually fill its buffers and stop the whole server here. That is this
// stage's known limit; stage 07 removes it with a send queue.
func writeAll(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

func closeClient(fd int, clients map[int]string, reason string) {
	log.Printf("client fd=%d from %s closed: %s", fd, clients[fd], reason)
	unix.Close(fd)
	delete(clients, fd)
}

// shutdown runs when the self-pipe says a signal came: it reads which one,
// then closes the listener and every client so each sees an orderly close.
func shutdown(stop, listener int, clients map[int]string) {
	var b [1]byte
	unix.Read(stop, b[:])
	log.Printf("shutting down on %v", syscall.Signal(b[0]))
	unix.Close(listener)
	for fd := range clients {
		closeClient(fd, clients, "server shutting down")
	}
}
