// Stage 10: the callback server of stage 09, run as one loop per core.
//
// -loops N starts N event loops, each a goroutine locked to an OS thread of
// its own, with its own kqueue, client table, idle timer and send queues:
// each is a Server of stage 09. Nothing of a client is ever touched by two
// loops. The first loop also watches the listeners; it accepts every client
// and hands it to the loops in turn (round robin). A hand-off is a function
// put on the owner's queue of posted work, and an EVFILT_USER event
// triggered with NOTE_TRIGGER wakes the owner from kevent to run it. A
// handler's worker goroutine reaches its client the same way: Client.Post.
//
//	go run ./10-multi-loop                   # in one terminal
//	nc localhost 8080                        # in others; each log line names the loop
//	go run ./10-multi-loop -handler later    # replies made on a worker goroutine
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kqueue-workbook/workbook/kqueue"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "TCP `host:port` to listen on, every address host resolves to (none: all); port 0 picks a free port")
	maxClients := flag.Int("max", 10, "how many clients the server holds at once")
	unixPath := flag.String("unix", "workbook.sock", "UNIX-domain socket `path` to listen on as well; empty for none")
	handlerName := flag.String("handler", "echo", "the protocol `name`: echo (send back what arrives), goodbye (the article's demo) or later (echo, answered from a worker goroutine)")
	idle := flag.Duration("idle", 5*time.Minute, "drop a client after this long with nothing sent or received; 0 never drops one")
	queueLimit := flag.Int("queue", 1<<20, "`bytes` queued for a client before the server stops reading from it")
	loopCount := flag.Int("loops", runtime.NumCPU(), "how many event loops to run, each on a thread of its own (default: the CPUs this process may use)")
	parseFlags()
	log.SetFlags(log.Ltime)
	if *maxClients < 1 {
		log.Fatalf("bad -max %d: the pool needs at least one slot", *maxClients)
	}
	if *maxClients > maxSlots {
		log.Fatalf("bad -max %d: a udata token has room for %d slots", *maxClients, maxSlots)
	}
	newHandler, ok := handlers[*handlerName]
	if !ok {
		log.Fatalf("bad -handler %q: want echo or goodbye, or later", *handlerName)
	}
	if *idle < 0 {
		log.Fatalf("bad -idle %v: want a duration such as 5m, or 0 for never", *idle)
	}
	if *queueLimit < 1 {
		log.Fatalf("bad -queue %d: a client's queue must hold at least one byte", *queueLimit)
	}
	if *loopCount < 1 {
		log.Fatalf("bad -loops %d: want at least one loop", *loopCount)
	}

	// Catch SIGINT and SIGTERM before announcing anything: a signal sent the
	// moment the "listening on" line appears must find the handler in place.
	stop := notifyOnSignal()
	listeners, err := listenTCP(*addr)
	if err != nil {
		log.Fatal(err)
	}
	unixListener, socket := -1, (*socketFile)(nil)
	if *unixPath != "" {
		if unixListener, socket, err = listenUnix(*unixPath); err != nil {
			log.Fatal(err)
		}
	}
	// Announce the listeners only once all are open: a server that says
	// "listening on tcp" and then fails on the socket file would mislead.
	for _, fd := range listeners {
		fmt.Printf("listening on tcp %s\n", localAddr(fd))
	}
	if socket != nil {
		fmt.Printf("listening on unix %s\n", socket.path)
		listeners = append(listeners, unixListener)
	}

	// One Server per loop, each with a kqueue, a table and a timer of its
	// own; they share the pool's limit. The first is the one that accepts.
	loops := make([]*Server, *loopCount)
	pool := &pool{max: *maxClients}
	for i := range loops {
		loops[i] = &Server{
			id:         i,
			newHandler: newHandler,
			queueLimit: *queueLimit,
			idle:       *idle,
			loops:      loops,
			pool:       pool,
			buf:        make([]byte, 64<<10),
		}
		if err := loops[i].open(); err != nil {
			log.Fatal(err)
		}
	}
	srv := loops[0]
	srv.listeners, srv.socket, srv.stop, srv.spare = listeners, socket, stop, openSpare()
	for _, fd := range listeners {
		if err := watch(srv.kq, fd, listenerToken); err != nil {
			log.Fatalf("kevent: listener: %v", err)
		}
	}
	if err := watch(srv.kq, srv.stop, stopToken); err != nil {
		log.Fatalf("kevent: signal pipe: %v", err)
	}
	for _, l := range loops[1:] {
		go l.run()
	}
	srv.run()
}

// open gives the loop its kqueue, and registers its wake-up (see post) and
// its idle timer there.
func (s *Server) open() error {
	var err error
	if s.kq, err = kqueue.Kqueue(); err != nil {
		return fmt.Errorf("kqueue: %v", err)
	}
	if err := userEvent(s.kq, kqueue.EV_ADD|kqueue.EV_CLEAR, 0); err != nil {
		return fmt.Errorf("kevent: wake-up: %v", err)
	}
	if s.idle > 0 {
		if err := startSweep(s.kq, s.idle); err != nil {
			return fmt.Errorf("kevent: idle timer: %v", err)
		}
	}
	return nil
}

// Server is the article's ServerSocket: it owns the kqueue, the listening
// sockets, the table of clients and the event loop, and it calls a Handler
// for everything that happens to a client.
//
// From this stage on there is one Server per loop, and only its own loop
// touches it, with two exceptions: the shared pool, and the queue of posted
// work, which any goroutine may add to (see post). The listeners, the signal
// pipe and the spare descriptor are the first loop's alone.
type Server struct {
	newHandler func(Client) Handler // the article's createClient
	queueLimit int                  // bytes a client may have queued before reading from it pauses
	idle       time.Duration        // how long a client may stay silent; 0 for ever

	id        int       // which loop this is, for the logs
	loops     []*Server // every loop, this one included
	next      int       // the first loop's round robin: where the next client goes
	pool      *pool
	kq        int
	listeners []int
	socket    *socketFile
	stop      int // the signal pipe
	spare     int // see acceptClient
	clients   []client
	buf       []byte // what each read fills; lent to OnReceive
	chunks    chunkPool

	// changes are the registrations the loop has decided on since the last
	// kevent call. They are handed to the next call as its changelist, so
	// that any number of them costs no extra system call.
	changes []kqueue.Kevent_t
	// touched are the clients a handler sent to or disconnected during a
	// callback, as tokens. Their queues and registrations are looked at
	// after the callback returns (see settle).
	touched []uint64

	// mu guards what other goroutines hand this loop: the posted work, and
	// whether the loop has stopped taking any.
	mu     sync.Mutex
	posted []func()
	closed bool
}

// pool is the limit the loops share: -max clients in all, however they are
// spread. Only the first loop admits a client (see acceptClient), so the
// limit is exact; the loop that closes one gives its place back.
type pool struct {
	max  int
	held atomic.Int32
}

// run is the event loop. It returns when a signal has stopped the server.
//
// It keeps its goroutine on one OS thread, as a C server runs a loop per
// thread: Go would otherwise let any of its threads carry the goroutine
// after each kevent, and the loop would not be a thread the kernel (or top
// -H, or a CPU affinity) can see. A locked thread runs nothing else.
func (s *Server) run() {
	runtime.LockOSThread()
	events := make([]kqueue.Kevent_t, 64)
	for {
		// A change that fails comes back as an EV_ERROR event, but only if
		// the list has room for it; without room, kevent(2) fails the whole
		// call and leaves the changes after the failed one unapplied. So the
		// list always has room for one failure per change.
		if len(events) < len(s.changes) {
			events = make([]kqueue.Kevent_t, len(s.changes))
		}
		// The changes decided while handling the previous batch go in, the
		// next batch comes out: one system call.
		n, err := kqueue.Kevent(s.kq, s.changes, events, nil)
		// The changes are applied even when the wait is interrupted: kevent
		// applies the changelist before it waits.
		s.changes = s.changes[:0]
		if err != nil {
			if err == unix.EINTR {
				continue // interrupted by a signal; nothing is lost, ask again
			}
			log.Fatalf("kevent: %v", err)
		}

		// Every event the call returned is handled, not just the first one
		// (the article's loop takes one event per call and leaves the rest
		// waiting for the next).
		for _, ev := range events[:n] {
			fd := int(ev.Ident)
			switch ev.Udata {
			case stopToken:
				s.shutdown()
				return
			case listenerToken:
				if ev.Flags&kqueue.EV_ERROR != 0 {
					log.Fatalf("kevent: listener: %v", unix.Errno(ev.Data))
				}
				s.accept(fd)
			case sweepToken:
				s.sweep()
			case wakeToken:
				s.runPosted()
				if s.closed {
					return
				}
			default:
				slot, ok := s.current(ev.Udata)
				if !ok {
					// The client this event was queued for has gone since,
					// and its slot may already hold somebody else. With a
					// read and a write filter per client this is common: a
					// read event that ends a client can be followed, in the
					// same batch, by the write event of the same client.
					continue
				}
				switch {
				case ev.Flags&kqueue.EV_ERROR != 0:
					// One of this client's changes failed (kevent(2) puts
					// the errno in data). Its registrations are no longer
					// what the server thinks they are; let it go.
					s.closeClient(slot, "kevent: "+unix.Errno(ev.Data).Error())
				case ev.Filter == kqueue.EVFILT_READ:
					s.receive(slot, ev)
				case ev.Filter == kqueue.EVFILT_WRITE:
					s.flush(slot)
				}
				s.touched = append(s.touched, ev.Udata)
			}
			s.settle()
		}
	}
}

// Handler is what a protocol implements: the article's SocketClient
// callbacks. The Server calls them one at a time from its loop, so a
// handler needs no locks, and must not block: while it runs, no other
// client of its loop is served. (The handlers of other loops' clients run
// at the same time, on their threads: what handlers share needs a lock.)
// Send and Disconnect never call back into a handler;
// what they lead to (a failed send, the close) is reported after the
// callback that called them has returned.
type Handler interface {
	// OnConnect is called once, when the client has been accepted.
	OnConnect()
	// OnReceive is called with the bytes that one read returned. data is
	// only valid during the call: the next read reuses it.
	OnReceive(data []byte)
	// OnSendError is called at most once, when bytes sent to the client
	// can no longer be delivered (the connection broke); OnDisconnect
	// follows at once.
	OnSendError(err error)
	// OnDisconnect is called once, when the client is gone, whoever ended
	// the connection. During the call the Client still knows RemoteAddr;
	// Send and Disconnect already do nothing, and so they stay.
	OnDisconnect()
}

// Client is a handler's way to act on its client. It names a slot and its
// generation (see clientToken), not the slot's contents: once the client is
// gone, its Client does nothing, even after the slot has been given to
// someone else.
type Client struct {
	srv  *Server
	slot int
	gen  uint32
}

// errGone is what Send returns once the client is gone or going.
var errGone = errors.New("client disconnected")

// Send, Disconnect and RemoteAddr act on the client's state, which only its
// own loop may touch. Call them on that loop: in a callback of the client's
// handler, or in a function given to Post. (Go gives a goroutine no
// identity that Send could check, so they cannot tell a call from elsewhere
// and hand it over by themselves; go test -race catches one.)

// Post runs f on the client's loop, soon, and may be called from any
// goroutine: a worker that has an answer for the client posts a function
// that sends it. The functions posted to a loop run one at a time, in the
// order they were posted. Once the loop has stopped, f is dropped.
func (c Client) Post(f func()) { c.srv.post(f) }

// Send sends p to the client, the article's sendData. It never blocks and
// never drops a byte: what the socket does not take now is copied to the
// client's queue and written as the socket drains (see flush). It fails
// only when the client is gone, disconnecting, or its connection broke.
func (c Client) Send(p []byte) error {
	cl := c.srv.lookup(c)
	if cl == nil || cl.closing != "" {
		return errGone
	}
	if cl.err != nil {
		return cl.err
	}
	c.srv.touched = append(c.srv.touched, clientToken(c.slot, c.gen))
	if cl.queue.Len() == 0 {
		// Nothing is waiting, so the bytes may go straight to the socket,
		// without a copy; usually all of them fit.
		n, err := unix.Write(cl.fd, p)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			n = 0
		case err != nil:
			cl.err = err
			return err
		case n > 0:
			cl.last = time.Now()
		}
		p = p[n:]
	}
	cl.queue.write(p, &c.srv.chunks)
	return nil
}

// Disconnect closes the connection once everything sent so far has been
// written, the article's disconnectClient. Nothing more is received from
// the client, and Send fails from now on.
func (c Client) Disconnect() {
	if cl := c.srv.lookup(c); cl != nil && cl.closing == "" {
		cl.closing = "disconnected by the server"
		c.srv.touched = append(c.srv.touched, clientToken(c.slot, c.gen))
	}
}

// RemoteAddr is where the client connected from, "unix socket" for a client
// of the UNIX listener, or "" once it is gone (after OnDisconnect).
func (c Client) RemoteAddr() string {
	if cl := c.srv.lookup(c); cl != nil {
		return cl.addr
	}
	return ""
}

// lookup returns the client c names, or nil if it is gone.
func (s *Server) lookup(c Client) *client {
	if cl := &s.clients[c.slot]; cl.fd != free && cl.gen == c.gen {
		return cl
	}
	return nil
}

// handlers are the protocols -handler chooses from, each by its factory.
var handlers = map[string]func(Client) Handler{
	"echo":    func(c Client) Handler { return echo{c} },
	"goodbye": func(c Client) Handler { return goodbye{c} },
	"later":   newLater,
}

// echo is the protocol of every earlier stage: greet, then send back
// whatever arrives.
type echo struct{ Client }

func (h echo) OnConnect()            { h.Send([]byte("welcome!\n")) }
func (h echo) OnReceive(data []byte) { h.Send(data) }
func (h echo) OnSendError(error)     {} // the server logs it
func (h echo) OnDisconnect()         {}

// goodbye is the article's demo: it reports each client, logs what arrives,
// answers "Good bye!" and hangs up. (The article's reply is 10 bytes, the
// 9 of the text and the C string's terminating NUL; a NUL is not part of a
// line of text, so here the reply ends in a newline instead.)
type goodbye struct{ Client }

func (h goodbye) OnConnect() { log.Printf("Client %s connected.", h.host()) }
func (h goodbye) OnReceive(data []byte) {
	log.Printf("Received data, length: %d: %q", len(data), data)
	h.Send([]byte("Good bye!\n"))
	h.Disconnect()
}
func (h goodbye) OnSendError(err error) { log.Printf("Client %s: send failed: %v", h.host(), err) }
func (h goodbye) OnDisconnect()         { log.Printf("Client %s disconnected.", h.host()) }

// later is echo with the answer made elsewhere, as a handler that asks a
// database or another server would: each client's bytes go to a worker
// goroutine of its own, which posts every reply back to the client's loop
// to be sent. One worker per client, and Post keeps order, so the replies
// come back in the order the bytes came in.
type later struct {
	Client
	work chan []byte
}

func newLater(c Client) Handler {
	h := later{c, make(chan []byte, 16)}
	go h.answer()
	return h
}

func (h later) OnConnect() { h.Send([]byte("welcome!\n")) }

// OnReceive gives the worker a copy: data is only lent for the call. The
// send to the channel waits only while the worker is 16 pieces behind, and
// the worker never waits for the loop: Post returns at once.
func (h later) OnReceive(data []byte) { h.work <- bytes.Clone(data) }
func (h later) OnSendError(error)     {} // the server logs it
func (h later) OnDisconnect()         { close(h.work) }

// answer is the worker. What it posts after the client has gone finds it
// gone: Send returns an error, and nothing else happens.
func (h later) answer() {
	for data := range h.work {
		h.Post(func() { h.Send(data) })
	}
}

// host is the client's address without the port, as the article prints it.
func (h goodbye) host() string {
	host, _, err := net.SplitHostPort(h.RemoteAddr())
	if err != nil {
		return h.RemoteAddr() // "unix socket"
	}
	return host
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

// listenTCP opens one listening socket for every address the host in addr
// resolves to, all on the same port.
func listenTCP(addr string) ([]int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %q: %v", addr, err)
	}
	portNum, err := net.LookupPort("tcp", port)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %q: %v", addr, err)
	}
	ips, err := resolve(host)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %q: %v", addr, err)
	}
	// With port 0 the kernel picks the first listener's port from those free
	// in its family, and the others ask for the same number. In the other
	// family it can be taken (even by a connection lingering in TIME_WAIT);
	// then all are closed and opened again on a fresh pick.
	for try := 1; ; try++ {
		listeners, err := listenAll(ips, portNum)
		if portNum == 0 && errors.Is(err, unix.EADDRINUSE) && try < 10 {
			continue
		}
		return listeners, err
	}
}

// listenAll opens a listener on each address, all on port (with port 0, on
// the port the kernel picks for the first). An address this machine cannot
// bind (no IPv6, say) is skipped, with a line in the log if any other worked;
// any other failure, such as a port in use, stops the server, which should
// not quietly serve half of what it was asked to.
func listenAll(ips []net.IP, port int) ([]int, error) {
	var listeners []int
	var skipped []error
	for _, ip := range ips {
		fd, err := listenOn(&net.TCPAddr{IP: ip, Port: port})
		switch {
		case errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.EAFNOSUPPORT):
			skipped = append(skipped, err)
			continue
		case err != nil:
			for _, fd := range listeners {
				unix.Close(fd)
			}
			return nil, err
		}
		listeners = append(listeners, fd)
		if port == 0 {
			sa, _ := unix.Getsockname(fd)
			port = portOf(sa)
		}
	}
	if len(listeners) == 0 {
		return nil, skipped[0] // a failed start says one thing: the first
	}
	for _, err := range skipped {
		log.Printf("skipping %v", err)
	}
	return listeners, nil
}

// resolve returns the addresses to listen on for host, without duplicates
// (a hosts file can list one twice, and a second bind would fail). An empty
// host means the wildcard address of each family.
func resolve(host string) ([]net.IP, error) {
	if host == "" {
		return []net.IP{net.IPv4zero, net.IPv6unspecified}, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return nil, err
	}
	var unique []net.IP
	for _, ip := range ips {
		if !slices.ContainsFunc(unique, ip.Equal) {
			unique = append(unique, ip)
		}
	}
	return unique, nil
}

// listenOn opens a listening TCP socket on one address the way the articles
// do, one system call at a time: socket, setsockopt, bind, listen.
func listenOn(tcpAddr *net.TCPAddr) (int, error) {
	family, sa := sockaddr(tcpAddr)
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, fmt.Errorf("listen tcp %s: socket: %w", tcpAddr, err)
	}
	// Without SO_REUSEADDR a restarted server cannot bind its port while
	// connections from its previous run linger in TIME_WAIT.
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	// An IPv6 socket on Linux and macOS also accepts IPv4 connections by
	// default (as ::ffff:127.0.0.1), so a wildcard one would claim the IPv4
	// port too and the IPv4 listener's bind would fail; FreeBSD, NetBSD and
	// OpenBSD default to IPv6 only (ip6(4)). Saying IPV6_V6ONLY makes every
	// system behave the same: one socket per family.
	if err == nil && family == unix.AF_INET6 {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
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

// sockaddr converts a resolved address to the form bind(2) takes.
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

// socketFile is the UNIX socket file this server created: its path, and the
// device and inode it was created with, so that shutdown can tell whether
// the file at that path is still this server's own before removing it.
type socketFile struct {
	path     string
	dev, ino uint64
}

// listenUnix opens a listening UNIX-domain socket at path.
func listenUnix(path string) (int, *socketFile, error) {
	// sun_path holds 104 bytes on macOS and the BSDs, 108 on Linux, and the
	// name needs a terminating NUL. The usual C recipe copies the path in
	// with strncpy or strlcpy, which cut a longer one short without a word,
	// so the server listens somewhere else than asked; here it is an error.
	if limit := len(unix.RawSockaddrUnix{}.Path) - 1; len(path) > limit {
		return -1, nil, fmt.Errorf("listen unix %s: path is %d bytes; this system allows at most %d", path, len(path), limit)
	}
	if err := clearStaleSocket(path); err != nil {
		return -1, nil, fmt.Errorf("listen unix %s: %v", path, err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("listen unix %s: socket: %v", path, err)
	}
	// bind(2) creates the socket file, and connecting to it needs write
	// permission on it. A umask of 0177 makes it 0600 from the first
	// instant, so no other user can connect, not even during a chmod's delay.
	old := unix.Umask(0o177)
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: path})
	unix.Umask(old)
	if err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("listen unix %s: %v", path, err)
	}
	var st unix.Stat_t
	err = unix.Lstat(path, &st)
	if err == nil {
		err = unix.Listen(fd, unix.SOMAXCONN)
	}
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		unix.Unlink(path) // bind made the file: do not leave it behind
		return -1, nil, fmt.Errorf("listen unix %s: %v", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return fd, &socketFile{path: abs, dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}

// clearStaleSocket makes room at path for a new socket. A server that died
// without cleaning up leaves its socket file behind, and bind(2) fails while
// it exists. Such a file is removed, but only if it is a socket and nobody
// answers on it; a live server's socket and anything that is not a socket
// (a file, a directory, a link) are left exactly as they are.
func clearStaleSocket(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err == unix.ENOENT {
		return nil
	} else if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s exists and is not a socket; not touching it", path)
	}
	probe, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	// Non-blocking, so that a live server too busy to accept cannot hold
	// the probe: Linux answers EAGAIN when its queue is full.
	unix.SetNonblock(probe, true)
	err = unix.Connect(probe, &unix.SockaddrUnix{Name: path})
	unix.Close(probe)
	switch err {
	case nil, unix.EAGAIN:
		return fmt.Errorf("another server is listening on %s", path)
	case unix.ECONNREFUSED:
		log.Printf("removing stale socket file %s", path)
		return unix.Unlink(path)
	default:
		return fmt.Errorf("cannot tell whether %s is in use: %v", path, err)
	}
}

// remove removes the socket file if the file at its path is still the one
// this server created; if somebody replaced it meanwhile, it is theirs.
func (s *socketFile) remove() {
	var st unix.Stat_t
	if err := unix.Lstat(s.path, &st); err != nil || uint64(st.Dev) != s.dev || uint64(st.Ino) != s.ino {
		log.Printf("leaving %s alone: it is no longer this server's socket", s.path)
		return
	}
	if err := unix.Unlink(s.path); err != nil {
		log.Printf("removing socket file: %v", err)
	}
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

// portOf is the port of a TCP socket address.
func portOf(sa unix.Sockaddr) int {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port
	case *unix.SockaddrInet6:
		return sa.Port
	}
	return 0
}

func addrString(sa unix.Sockaddr) string {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrUnix:
		return "unix socket" // a connecting client's end has no name
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

// watch registers fd for EVFILT_READ, with token as its udata. The
// registration stays in the kernel until it is deleted or fd is closed, so
// unlike select's set it is made once, not once per call. (The articles
// write EV_ADD | EV_ENABLE; EV_ADD enables a new registration by itself.)
func watch(kq, fd int, token uint64) error {
	var change kqueue.Kevent_t
	kqueue.EV_SET(&change, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0, token)
	_, err := kqueue.Kevent(kq, []kqueue.Kevent_t{change}, nil, nil)
	return err
}

// The wake-up. Like a timer's, a user event's ident is a number of the
// program's choosing; each loop has one, in its own kqueue.
const wakeIdent = 1

// userEvent makes one change to the loop's EVFILT_USER event: EV_ADD with
// EV_CLEAR registers it (without EV_CLEAR it would stay triggered, and
// report on every call, once triggered), and NOTE_TRIGGER in fflags, from
// any thread, makes it fire (kevent(2)). The trigger repeats the token,
// because FreeBSD stores the udata of every change that is not a delete
// (kqueue_register in kern_event.c): a trigger with none would clear it.
func userEvent(kq int, flags uint16, fflags uint32) error {
	var change kqueue.Kevent_t
	kqueue.EV_SET(&change, wakeIdent, kqueue.EVFILT_USER, flags, fflags, 0, wakeToken)
	_, err := kqueue.Kevent(kq, []kqueue.Kevent_t{change}, nil, nil)
	return err
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

// The idle timer. A timer's ident is a number of the program's choosing, in
// a namespace of its own (it is no descriptor), so any number will do.
const sweepTimer = 1

// startSweep starts one periodic EVFILT_TIMER that fires ten times per idle
// period; each time, sweep drops the clients that have been silent for idle
// or longer. So a silent client goes after idle and at most a tenth more.
//
// The other way is a timer per client, re-armed on each read and write: to
// the millisecond, but a change per event, and on Linux, where the
// emulation makes each timer a timerfd, a descriptor per client. One sweep
// over the table a few times per idle period costs next to nothing.
func startSweep(kq int, idle time.Duration) error {
	every := max(idle/10, time.Millisecond)
	var change kqueue.Kevent_t
	// Data is the period in milliseconds (kevent(2)); without EV_ONESHOT the
	// timer repeats, and each event's data says how often it expired since
	// the last one was reported.
	kqueue.EV_SET(&change, sweepTimer, kqueue.EVFILT_TIMER, kqueue.EV_ADD, 0, every.Milliseconds(), sweepToken)
	_, err := kqueue.Kevent(kq, []kqueue.Kevent_t{change}, nil, nil)
	return err
}

// client is one slot of the connection table.
type client struct {
	fd   int    // the client's descriptor, or free
	addr string // where it connected from, for the logs
	gen  uint32 // how many times the slot has changed hands; see clientToken

	handler Handler   // made for this client by the factory
	queue   sendQueue // sent, but not yet taken by the socket
	err     error     // a write that failed, to be reported (see settle)
	closing string    // why the client is to be closed once its queue is empty
	last    time.Time // when a byte last went in or out, for the idle sweep

	// What the kernel has been told: whether EVFILT_WRITE is registered,
	// whether EVFILT_READ is disabled because the queue is full, and
	// whether it has been deleted because nothing more will be read.
	writing, paused, readDone bool
}

// A token has to fit in udata, which is as wide as a pointer (it is a void *
// in C): 64 bits on amd64 and arm64, but 32 on a 32-bit system such as
// freebsd/386, which would hand a wider token back cut short. So a client's
// token is 32 bits: the slot number in the low 16, the slot's generation in
// the high 16. That makes room for maxSlots clients.
const (
	slotBits = 16
	maxSlots = 1<<slotBits - 4
)

// The tokens of what is not a client. No client token can be equal to them:
// it would need slot number maxSlots or above.
const (
	stopToken     = 1<<32 - 1 // the signal pipe
	listenerToken = 1<<32 - 2 // every listening socket
	sweepToken    = 1<<32 - 3 // the idle timer
	wakeToken     = 1<<32 - 4 // the loop's wake-up
)

// clientToken is the udata of the client in slot. Both of a client's
// filters carry it.
//
// A C program usually puts a pointer to the client's record in udata (the
// manual page's "opaque user-defined value"). A Go program must not hand the
// kernel a Go pointer: the garbage collector cannot see the kernel's copy,
// so it may free or reuse what it points to. An index into a table the
// program keeps is just as direct. But a slot is reused, so an
// event queued for its old client could be taken for the new one; the
// generation, bumped every time a client leaves, tells them apart. (Go's own
// network poller guards its descriptors the same way.) Sixteen bits are
// plenty: closing a descriptor removes its pending events (kevent(2)), so an
// event can only be stale within the batch it came in, and in a batch of at
// most len(events) events a slot cannot change hands 65,536 times.
//
// The same goes for the loop's own lists of tokens (changes, touched): they
// live for one batch. A Client, though, is the handler's to keep, for as
// long as it likes, so it holds the whole 32-bit generation.
func clientToken(slot int, gen uint32) uint64 {
	return uint64(uint16(gen))<<slotBits | uint64(slot)
}

// tokenSlot reads the slot and generation back out of a client's token.
func tokenSlot(token uint64) (slot int, gen uint16) {
	return int(token & (1<<slotBits - 1)), uint16(token >> slotBits)
}

// current returns the slot a client's token names, and whether that slot
// still holds the client the token was made for.
func (s *Server) current(token uint64) (slot int, ok bool) {
	slot, gen := tokenSlot(token)
	c := &s.clients[slot]
	return slot, c.fd != free && uint16(c.gen) == gen
}

// free marks an unused slot. The article marks one with descriptor 0 and
// finds a free slot by searching for 0 (conn_index(0)); that works only as
// long as no client is ever accepted as descriptor 0, which is a real
// descriptor. -1 never is.
const free = -1

// slotOf walks the table for fd's slot, like the article's conn_index, and
// with free as fd it finds an unused slot. Events no longer need it: their
// token names the slot. Only a new client still walks, to find a free one.
func slotOf(clients []client, fd int) int {
	for i := range clients {
		if clients[i].fd == fd {
			return i
		}
	}
	return -1
}

// acceptClient takes one connection off the listener's queue and gives it a
// place in the pool. It returns the client's descriptor and address, or false
// when there was none to take or no place to give.
func acceptClient(listener int, spare *int, pool *pool) (int, string, bool) {
	fd, sa, err := unix.Accept(listener)
	switch err {
	case nil:
	case unix.EAGAIN, unix.ECONNABORTED, unix.EINTR:
		return -1, "", false // the client gave up before we got to it
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
		return -1, "", false
	default:
		log.Printf("accept: %v", err)
		return -1, "", false
	}
	// On macOS and the BSDs an accepted socket inherits O_NONBLOCK from the
	// listener; on Linux it does not. From this stage on the loop never
	// waits for a client (see Send), so make that true everywhere.
	if err := unix.SetNonblock(fd, true); err != nil {
		log.Printf("accept: client fd=%d: %v", fd, err)
		unix.Close(fd)
		return -1, "", false
	}
	// The first loop is the only one that admits, so the count cannot change
	// between this test and the Add but to go down: the limit is exact.
	if int(pool.held.Load()) >= pool.max {
		// The article prints "connection refused" on the server's terminal
		// and closes the descriptor, so the client sees its connection open
		// and then end, with no reason given. This one is told why. The
		// socket is new and its send buffer empty, so the few bytes fit.
		unix.Write(fd, []byte("server full\n"))
		log.Printf("refused client fd=%d from %s: server full (%d clients)", fd, addrString(sa), pool.max)
		unix.Close(fd)
		return -1, "", false
	}
	pool.held.Add(1)
	return fd, addrString(sa), true
}

// accept takes a new client and hands it to the next loop in turn, this one
// included. Round robin, not the loop with the fewest clients: a count of
// clients says little about how busy a loop is, and round robin needs no
// look at another loop's state. Handing over is posting: the client's
// descriptor and address go to the owner, and it does the rest (adopt).
func (s *Server) accept(listener int) {
	fd, addr, ok := acceptClient(listener, &s.spare, s.pool)
	if !ok {
		return
	}
	owner := s.loops[s.next%len(s.loops)]
	s.next++
	if owner == s {
		s.adopt(fd, addr)
		return
	}
	// The owner cannot have stopped: only this loop stops them, after it
	// has stopped accepting (see shutdown).
	owner.post(func() { owner.adopt(fd, addr) })
}

// adopt gives a client handed to this loop a slot of its table, registers
// its socket for EVFILT_READ, makes its handler (the article's createClient)
// and tells the handler. A table grows when all its slots are taken, never
// past -max, as the pool holds no more.
func (s *Server) adopt(fd int, addr string) {
	slot := slotOf(s.clients, free)
	if slot < 0 {
		slot = len(s.clients)
		s.clients = append(s.clients, client{fd: free})
	}
	s.clients[slot] = client{fd: fd, addr: addr, gen: s.clients[slot].gen, last: time.Now()}
	log.Printf("loop %d: accepted client fd=%d from %s", s.id, fd, addr)
	c := &s.clients[slot]
	token := clientToken(slot, c.gen)
	s.change(c.fd, kqueue.EVFILT_READ, kqueue.EV_ADD, token)
	cl := Client{srv: s, slot: slot, gen: c.gen}
	c.handler = s.newHandler(cl)
	c.handler.OnConnect()
	s.touched = append(s.touched, token)
}

// change adds a registration to the changelist of the next kevent call.
func (s *Server) change(fd int, filter int16, flags uint16, token uint64) {
	var change kqueue.Kevent_t
	kqueue.EV_SET(&change, fd, filter, flags, 0, 0, token)
	s.changes = append(s.changes, change)
}

// receive reads what the client in slot sent and hands it to the handler.
func (s *Server) receive(slot int, ev kqueue.Kevent_t) {
	c := &s.clients[slot]
	if c.paused || c.closing != "" {
		// Reported before the change that stopped reading was applied: the
		// bytes wait in the socket until reading resumes, or for ever.
		return
	}
	// EV_EOF means the client will send nothing more, not that nothing is
	// left: ev.Data still counts the bytes waiting to be read. Close only
	// when they are all read and answered (the article closes at once and
	// loses them). Fflags holds the socket's error, if it has one.
	if ev.Flags&kqueue.EV_EOF != 0 && ev.Data == 0 {
		if ev.Fflags != 0 {
			s.broken(slot, unix.Errno(ev.Fflags))
			return
		}
		s.endOfInput(slot)
		return
	}
	n, err := unix.Read(c.fd, s.buf)
	switch {
	case err == unix.EINTR || err == unix.EAGAIN:
		return // nothing lost; kevent will report the client again
	case err != nil:
		s.broken(slot, err)
		return
	case n == 0:
		s.endOfInput(slot)
		return
	}
	c.last = time.Now()
	c.handler.OnReceive(s.buf[:n])
}

// endOfInput handles a client that has shut down its sending side. It may
// still be reading (a half-close, shutdown(2)), so what is queued for it is
// sent before the connection is closed.
func (s *Server) endOfInput(slot int) {
	c := &s.clients[slot]
	if c.queue.Len() > 0 && c.err == nil {
		log.Printf("client fd=%d from %s: end of file; sending the %d bytes still queued", c.fd, c.addr, c.queue.Len())
	}
	if c.closing == "" {
		c.closing = "end of file"
	}
}

// flush writes as much of the client's queue as its socket takes. It runs
// when EVFILT_WRITE reports room in the socket's send buffer.
func (s *Server) flush(slot int) {
	c := &s.clients[slot]
	for c.queue.Len() > 0 {
		front := c.queue.front()
		n, err := unix.Write(c.fd, front)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return
		case err != nil:
			c.err = err
			return
		}
		c.queue.consume(n, &s.chunks)
		c.last = time.Now()
		if n < len(front) {
			return // the socket's buffer is full; EVFILT_WRITE will say when
		}
	}
}

// chunkSize is the unit send queues are made of.
const chunkSize = 64 << 10

// A sendQueue holds what was sent to a client and not yet taken by its
// socket, in chunks of chunkSize. Spent chunks go back to a pool the server
// keeps, and new ones come from it, so a queue that fills and drains all day
// allocates nothing, and the memory it holds follows the bytes it holds.
// (A single growing slice would leave a trail of discarded copies for the
// garbage collector: megabytes of memory for a queue of one.)
type sendQueue struct {
	chunks [][]byte // each filled from the start; the last may be part full
	off    int      // how much of the first chunk has been sent
	n      int      // bytes queued
}

func (q *sendQueue) Len() int { return q.n }

// write appends p to the queue.
func (q *sendQueue) write(p []byte, pool *chunkPool) {
	for len(p) > 0 {
		last := len(q.chunks) - 1
		if last < 0 || len(q.chunks[last]) == chunkSize {
			q.chunks = append(q.chunks, pool.get())
			last++
		}
		chunk := q.chunks[last]
		n := copy(chunk[len(chunk):chunkSize], p)
		q.chunks[last] = chunk[:len(chunk)+n]
		p = p[n:]
		q.n += n
	}
}

// front is the queue's oldest bytes, up to a chunk of them.
func (q *sendQueue) front() []byte { return q.chunks[0][q.off:] }

// consume drops the n oldest bytes, which the socket has taken.
func (q *sendQueue) consume(n int, pool *chunkPool) {
	q.off += n
	q.n -= n
	for len(q.chunks) > 0 && q.off == len(q.chunks[0]) {
		pool.put(q.chunks[0])
		q.chunks = slices.Delete(q.chunks, 0, 1)
		q.off = 0
	}
}

// release gives back the chunks of a client that is gone.
func (q *sendQueue) release(pool *chunkPool) {
	for _, chunk := range q.chunks {
		pool.put(chunk)
	}
	*q = sendQueue{}
}

// A chunkPool keeps spent chunks for the next queue that needs one, up to
// maxSpare of them (two full queues at the default -queue); beyond that
// they are left to the garbage collector.
type chunkPool struct{ spare [][]byte }

const maxSpare = 32

func (p *chunkPool) get() []byte {
	if n := len(p.spare); n > 0 {
		chunk := p.spare[n-1]
		p.spare = p.spare[:n-1]
		return chunk
	}
	return make([]byte, 0, chunkSize)
}

func (p *chunkPool) put(chunk []byte) {
	if len(p.spare) < maxSpare {
		p.spare = append(p.spare, chunk[:0])
	}
}

// settle looks at every client an event or a handler touched, now that no
// callback is running: it closes those that are done or broken, and brings
// the registrations of the others in line with their queues (see arm).
// Closing calls handlers, which may touch more clients; they are settled in
// the same pass.
func (s *Server) settle() {
	for len(s.touched) > 0 {
		token := s.touched[len(s.touched)-1]
		s.touched = s.touched[:len(s.touched)-1]
		slot, ok := s.current(token)
		c := &s.clients[slot]
		switch {
		case !ok:
			// Closed already.
		case c.err != nil:
			s.broken(slot, c.err)
		case c.closing != "" && c.queue.Len() == 0:
			s.closeClient(slot, c.closing)
		default:
			s.arm(slot)
		}
	}
}

// arm tells the kernel what the loop now wants to hear about the client:
//
//   - EVFILT_WRITE while something is queued. Its event says there is room
//     in the socket's send buffer, which is true nearly all the time, so
//     left registered with an empty queue it would report the client on
//     every call: a busy loop. It is added (EV_ADD) when the queue stops
//     being empty and deleted (EV_DELETE) when it is empty again. EV_DISABLE
//     would keep the kernel's record for next time, but most clients never
//     need it, and a delete keeps the kernel's list to exactly what the loop
//     waits for.
//   - EVFILT_READ disabled (EV_DISABLE) while the queue is over the limit,
//     and enabled (EV_ENABLE) again once it has drained to half the limit.
//     This is backpressure: a client that sends faster than it reads is
//     read only as fast as it reads, so its queue, and the server's memory,
//     stay bounded, while every other client is served as usual. Disabled,
//     not deleted: the registration, with its token, stays in place.
//   - EVFILT_READ deleted for good once the client is closing: nothing more
//     will be read, and an end of file would otherwise be reported for ever.
//
// Each change only goes into the changelist of the next kevent call.
func (s *Server) arm(slot int) {
	c := &s.clients[slot]
	token := clientToken(slot, c.gen)
	if want := c.queue.Len() > 0; want != c.writing {
		if want {
			s.change(c.fd, kqueue.EVFILT_WRITE, kqueue.EV_ADD, token)
		} else {
			s.change(c.fd, kqueue.EVFILT_WRITE, kqueue.EV_DELETE, token)
		}
		c.writing = want
	}
	switch {
	case c.readDone:
	case c.closing != "":
		s.change(c.fd, kqueue.EVFILT_READ, kqueue.EV_DELETE, token)
		c.readDone = true
	case !c.paused && c.queue.Len() >= s.queueLimit:
		s.change(c.fd, kqueue.EVFILT_READ, kqueue.EV_DISABLE, token)
		c.paused = true
		log.Printf("client fd=%d from %s: %d bytes queued; reading paused", c.fd, c.addr, c.queue.Len())
	case c.paused && c.queue.Len() <= s.queueLimit/2:
		s.change(c.fd, kqueue.EVFILT_READ, kqueue.EV_ENABLE, token)
		c.paused = false
		log.Printf("client fd=%d from %s: %d bytes queued; reading resumed", c.fd, c.addr, c.queue.Len())
	}
}

// broken closes a client whose connection failed with err. If a write is
// what failed, or bytes were still queued, a send has failed: the handler
// hears of it through OnSendError, once, before OnDisconnect.
func (s *Server) broken(slot int, err error) {
	c := &s.clients[slot]
	if c.err != nil || c.queue.Len() > 0 {
		c.err = err
		log.Printf("client fd=%d from %s: send failed: %v (%d bytes not sent)", c.fd, c.addr, err, c.queue.Len())
		c.handler.OnSendError(err)
	}
	s.closeClient(slot, err.Error())
}

// sweep drops the clients that have been silent for the idle time or longer.
func (s *Server) sweep() {
	now := time.Now()
	for slot := range s.clients {
		if c := &s.clients[slot]; c.fd != free && now.Sub(c.last) >= s.idle {
			s.closeClient(slot, fmt.Sprintf("idle for %v", s.idle))
		}
	}
}

// closeClient closes a client's descriptor, which also removes its kevents:
// no EV_DELETE is needed (kevent(2): closing a descriptor removes every
// kevent that refers to it). Then the handler hears of it.
func (s *Server) closeClient(slot int, reason string) {
	c := &s.clients[slot]
	if c.queue.Len() > 0 {
		reason += fmt.Sprintf(" (%d bytes not sent)", c.queue.Len())
	}
	// A change still waiting for the next kevent call names the descriptor
	// by its number, and once it is closed the number can be given to the
	// next client accepted in this same batch: drop them.
	token := clientToken(slot, c.gen)
	s.changes = slices.DeleteFunc(s.changes, func(ch kqueue.Kevent_t) bool { return ch.Udata == token })
	if c.closing != "" && c.err == nil {
		// Input the client sent that nobody read makes close(2) reset the
		// connection instead of ending it, and a reset can destroy the
		// replies still on their way; read it and drop it first.
		discardInput(c.fd, s.buf)
	}
	unix.Close(c.fd)
	// The place goes back to the pool before the log says so: a client that
	// connects once it has read this line finds it free, as in stage 09.
	s.pool.held.Add(-1)
	log.Printf("client fd=%d from %s closed: %s", c.fd, c.addr, reason)
	c.queue.release(&s.chunks)
	// The handler is told last, while the Client still knows its address;
	// Send and Disconnect already do nothing.
	c.closing = reason
	if c.handler != nil {
		c.handler.OnDisconnect()
	}
	s.clients[slot] = client{fd: free, gen: c.gen + 1}
}

// discardInput reads and drops what is waiting on a non-blocking socket, a
// bounded number of times: a client that sends without end is not waited for.
func discardInput(fd int, buf []byte) {
	for range 16 {
		if n, err := unix.Read(fd, buf); n <= 0 || err != nil {
			return
		}
	}
}

// shutdown runs when the self-pipe says a signal came: it reads which one,
// then closes the listeners and every client so each sees an orderly close,
// and removes the socket file. Each loop closes its own clients, on its own
// thread, and this one waits until all have.
func (s *Server) shutdown() {
	var b [1]byte
	unix.Read(s.stop, b[:])
	log.Printf("shutting down on %v", syscall.Signal(b[0]))
	for _, fd := range s.listeners {
		unix.Close(fd)
	}
	if s.socket != nil {
		s.socket.remove()
	}
	var stopped sync.WaitGroup
	for _, l := range s.loops[1:] {
		stopped.Add(1)
		l.post(func() {
			l.closeAll()
			stopped.Done()
		})
	}
	s.closeAll()
	stopped.Wait()
}

// closeAll closes the loop's clients and its kqueue; the loop stops after
// it. What is queued for a client gets one last chance to go out, as far as
// its socket takes it without waiting.
func (s *Server) closeAll() {
	for slot := range s.clients {
		if s.clients[slot].fd != free {
			if s.clients[slot].queue.Len() > 0 {
				s.flush(slot)
			}
			s.closeClient(slot, "server shutting down")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	kqueue.Close(s.kq)
}

// post queues f to run on this loop, from any goroutine, and wakes the loop
// if it may be asleep in kevent: that is when the queue was empty. A loop
// that finds work queued runs all of it (runPosted), so one wake-up covers
// whatever was posted before it got there. The trigger is sent with the lock
// held, so that the kqueue cannot be closed (and its number reused) between
// the test of closed and the kevent call.
func (s *Server) post(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.posted = append(s.posted, f)
	if len(s.posted) == 1 {
		if err := userEvent(s.kq, 0, kqueue.NOTE_TRIGGER); err != nil {
			log.Printf("loop %d: kevent: wake-up: %v", s.id, err)
		}
	}
}

// runPosted runs what other goroutines posted, in order, when the loop's
// EVFILT_USER event says there is some. The queue is taken whole and the
// lock let go first: a posted function may post again, to this loop too.
func (s *Server) runPosted() {
	s.mu.Lock()
	posted := s.posted
	s.posted = nil
	s.mu.Unlock()
	for _, f := range posted {
		f()
		s.settle()
	}
}
