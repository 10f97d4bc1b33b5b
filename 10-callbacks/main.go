// Stage 10: the server of stage 09, turned into a small callback library.
//
// The loop no longer knows what the protocol is. A Server owns the kqueue,
// the listeners, the table of clients and the loop; a Handler, made by a
// factory for each client that connects, is told what happens to its client
// (OnConnect, OnReceive, OnSendError, OnDisconnect) and answers through a
// Client (Send, Disconnect, RemoteAddr). This is the shape of the C++
// article's ServerSocket and SocketClient classes.
//
//	go run ./09-callbacks                    # in one terminal
//	nc localhost 8080                        # in another; type a line, get it back
//	go run ./09-callbacks -handler goodbye   # or the article's demo protocol
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kqueue-workbook/workbook/kqueue"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "TCP `host:port` to listen on, every address host resolves to (none: all); port 0 picks a free port")
	maxClients := flag.Int("max", 10, "how many clients the server holds at once")
	unixPath := flag.String("unix", "workbook.sock", "UNIX-domain socket `path` to listen on as well; empty for none")
	queueLimit := flag.Int("queue", 1<<20, "`bytes` queued for a client before the server stops reading from it")
	idle := flag.Duration("idle", 5*time.Minute, "drop a client after this long with nothing sent or received; 0 never drops one")
	handlerName := flag.String("handler", "echo", "the protocol `name`: echo (send back what arrives) or goodbye (the article's demo)")
	parseFlags()
	log.SetFlags(log.Ltime)
	if *maxClients < 1 {
		log.Fatalf("bad -max %d: the pool needs at least one slot", *maxClients)
	}
	if *maxClients > maxSlots {
		log.Fatalf("bad -max %d: a udata token has room for %d slots", *maxClients, maxSlots)
	}
	if *queueLimit < 1 {
		log.Fatalf("bad -queue %d: a client's queue must hold at least one byte", *queueLimit)
	}
	if *idle < 0 {
		log.Fatalf("bad -idle %v: want a duration such as 5m, or 0 for never", *idle)
	}
	newHandler, ok := handlers[*handlerName]
	if !ok {
		log.Fatalf("bad -handler %q: want echo or goodbye", *handlerName)
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

	kq, err := kqueue.Kqueue()
	if err != nil {
		log.Fatalf("kqueue: %v", err)
	}
	for _, fd := range listeners {
		if err := change(kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, listenerToken); err != nil {
			log.Fatalf("kevent: listener: %v", err)
		}
	}
	if err := change(kq, stop, kqueue.EVFILT_READ, kqueue.EV_ADD, stopToken); err != nil {
		log.Fatalf("kevent: signal pipe: %v", err)
	}
	if *idle > 0 {
		if err := startSweep(kq, *idle); err != nil {
			log.Fatalf("kevent: idle timer: %v", err)
		}
	}
	srv := &Server{newHandler: newHandler, queueLimit: *queueLimit, idle: *idle, kq: kq, stop: stop, listeners: listeners, socket: socket}
	srv.serve(*maxClients)
}

// Server is the article's ServerSocket: it owns the kqueue, the listening
// sockets, the table of clients and the event loop, and it calls a Handler
// for everything that happens to a client. The loop's machinery (send,
// flush, closeClient, ...) is stage 08's; what changed is who decides what
// to send.
type Server struct {
	newHandler func(Client) Handler // the article's createClient
	queueLimit int                  // bytes queued for a client before reading from it pauses
	idle       time.Duration        // how long a client may stay silent; 0 for ever

	kq, stop  int // the queue, and the signal pipe
	listeners []int
	socket    *socketFile
	spare     int      // see refuseOutOfFiles
	clients   []client // the connection table: one slot per client
	refused   refusals // clients turned away for want of a slot, until closed
	buf       []byte   // what each read fills; lent to OnReceive
}

// serve is the event loop: it waits for whatever the kernel reports and
// handles each event, until a signal says stop.
func (s *Server) serve(maxClients int) {
	s.spare = openSpare()
	s.clients = make([]client, maxClients)
	for i := range s.clients {
		s.clients[i].fd = free
	}
	s.refused = refusals{}
	s.buf = make([]byte, 64<<10)
	events := make([]kqueue.Kevent_t, 64)

	for {
		// Nothing is copied in and nothing is scanned: the kernel already
		// holds the registrations, and it fills events with only those that
		// fired, at most len(events) of them per call. The wait ends early
		// only when a refused client's time is up (see refusals).
		n, err := kqueue.Kevent(s.kq, nil, events, s.refused.timeout())
		if err != nil {
			if err == unix.EINTR {
				continue // interrupted by a signal; nothing is lost, ask again
			}
			log.Fatalf("kevent: %v", err)
		}

		// Every event the call returned is handled, not just the first one
		// (Frevib's loop asks for one event per call and leaves the rest
		// waiting for the next).
		for _, ev := range events[:n] {
			fd := int(ev.Ident)
			switch ev.Udata {
			case stopToken:
				shutdown(s.kq, s.stop, s.listeners, s.socket, s.clients, s.refused)
				return
			case listenerToken:
				slot, ok := acceptClient(s.kq, fd, &s.spare, s.clients, s.refused)
				if !ok {
					continue
				}
				c := &s.clients[slot]
				if err := change(s.kq, c.fd, kqueue.EVFILT_READ, kqueue.EV_ADD, clientToken(slot, c.gen)); err != nil {
					closeClient(slot, s.clients, err.Error())
					continue
				}
				// The article's createClient, then the new client's first
				// callback.
				c.handler = s.newHandler(Client{srv: s, slot: slot, gen: c.gen})
				c.handler.OnConnect()
			case refusedToken:
				s.refused.drain(fd, s.buf)
			case sweepToken:
				sweep(s.clients, s.idle)
			default:
				slot, gen := tokenSlot(ev.Udata)
				if uint16(s.clients[slot].gen) != gen {
					// The client this event was queued for has gone since,
					// and its slot may already hold somebody else. With a
					// read and a write filter per client this happens: the
					// read event that ends a client can be followed, in the
					// same batch, by the write event of the same client.
					continue
				}
				switch ev.Filter {
				case kqueue.EVFILT_READ:
					receive(s.kq, slot, ev, s.buf, s.clients, s.queueLimit)
				case kqueue.EVFILT_WRITE:
					flush(s.kq, slot, s.clients, s.queueLimit)
				}
			}
		}
		s.refused.expire()
	}
}

// Handler is what a protocol implements: the article's SocketClient
// callbacks. The Server calls them one at a time from its loop, so a
// handler needs no locks, and must not block: while it runs, no other
// client is served. Send and Disconnect do not call back into a handler;
// what they lead to is reported by the loop later. (One exception: if the
// kernel refuses a registration, out of memory, the client is closed at
// once, and its OnDisconnect runs inside the call.)
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
	// Send and Disconnect already do nothing.
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

// Send sends p to the client, the article's sendData. It never blocks and
// never drops a byte (see send), and it returns nothing: a send that fails
// is found by the loop, which tells the handler through OnSendError. Once
// the client is gone it does nothing.
func (c Client) Send(p []byte) {
	if c.srv.lookup(c) != nil {
		send(c.srv.kq, c.slot, c.srv.clients, p)
	}
}

// Disconnect closes the connection once everything sent to the client has
// been written, the article's disconnectClient. Nothing more is received
// from it. Closing at once would call OnDisconnect from inside the callback
// that called Disconnect; instead the read filter goes, and flush closes
// the client when its queue is empty, called through EVFILT_WRITE, which
// reports a socket with room straight away.
func (c Client) Disconnect() {
	cl := c.srv.lookup(c)
	if cl == nil || cl.closing != "" {
		return
	}
	token := clientToken(c.slot, cl.gen)
	err := change(c.srv.kq, cl.fd, kqueue.EVFILT_READ, kqueue.EV_DELETE, token)
	if err == nil && cl.queue.Len() == 0 {
		err = change(c.srv.kq, cl.fd, kqueue.EVFILT_WRITE, kqueue.EV_ADD, token)
	}
	if err != nil {
		closeClient(c.slot, c.srv.clients, err.Error())
		return
	}
	cl.closing, cl.paused = "disconnected by the server", false
}

// RemoteAddr is where the client connected from, "unix socket" for a client
// of the UNIX listener, or "" once it is gone (after OnDisconnect).
func (c Client) RemoteAddr() string {
	if cl := &c.srv.clients[c.slot]; cl.gen == c.gen {
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
}

// echo is the protocol of every earlier stage: greet, then send back
// whatever arrives.
type echo struct{ Client }

func (h echo) OnConnect()            { h.Send([]byte("welcome!\n")) }
func (h echo) OnReceive(data []byte) { h.Send(data) }
func (h echo) OnSendError(err error) { log.Printf("client %s: send failed: %v", h.RemoteAddr(), err) }
func (h echo) OnDisconnect()         {}

// goodbye is the article's demo: it reports each client, logs what arrives,
// answers "Good bye!" and hangs up. It has no greeting.
type goodbye struct{ Client }

func (h goodbye) OnConnect() { log.Printf("Client %s connected.", h.host()) }
func (h goodbye) OnReceive(data []byte) {
	log.Printf("Received data, length: %d: %q", len(data), data)
	// The article sends its "Good bye!\n" with strlen+1 bytes: the text,
	// the newline and the C string's terminating NUL, which is no part of
	// a line of text. This sends the text and the newline.
	h.Send([]byte("Good bye!\n"))
	h.Disconnect()
}
func (h goodbye) OnSendError(err error) { log.Printf("Client %s: send failed: %v", h.host(), err) }
func (h goodbye) OnDisconnect()         { log.Printf("Client %s disconnected.", h.host()) }

// host is the client's address without the port, as the article prints it.
func (h goodbye) host() string {
	host, _, err := net.SplitHostPort(h.RemoteAddr())
	if err != nil {
		return h.RemoteAddr() // "unix socket"
	}
	return host
}

// change applies one change to fd's registration for filter, with token as
// its udata. A registration stays in the kernel until it is deleted or fd is
// closed, so unlike select's set it is made once, not once per call. (Frevib's
// listener has EV_ADD | EV_ENABLE; EV_ADD enables a new registration by
// itself.)
func change(kq, fd int, filter int16, flags uint16, token uint64) error {
	var change kqueue.Kevent_t
	kqueue.EV_SET(&change, fd, filter, flags, 0, 0, token)
	_, err := kqueue.Kevent(kq, []kqueue.Kevent_t{change}, nil, nil)
	return err
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

	handler Handler // made for this client by the factory

	// What was sent to the client and not yet taken by its socket. While
	// it holds bytes, and only then, EVFILT_WRITE is registered.
	queue   sendQueue
	paused  bool   // EVFILT_READ is disabled: the queue is full (see echo)
	closing string // EVFILT_READ is deleted; close, for this reason, once the queue is empty

	last time.Time // when a byte last went in or out, for the idle sweep
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

// The tokens of what is not a client. No client token can
// be equal to them: it would need slot number maxSlots or above.
const (
	stopToken     = 1<<32 - 1 // the signal pipe
	listenerToken = 1<<32 - 2 // every listening socket
	refusedToken  = 1<<32 - 3 // every refused client (see refusals)
	sweepToken    = 1<<32 - 4 // the idle timer
)

// clientToken is the udata of the client in slot.
//
// A C program usually puts a pointer to the client's record in udata (the
// manual page's "opaque user-defined value"). A Go program must not hand the
// kernel a Go pointer: the garbage collector cannot see the kernel's copy,
// so it may free or reuse what it points to. An index into
// a table the program keeps is just as direct. But a slot is reused, so an
// event queued for its old client could be taken for the new one; the
// generation, bumped every time a client leaves, tells them apart. (Go's own
// network poller guards its descriptors the same way.) Sixteen bits are
// plenty: closing a descriptor removes its pending events (kevent(2)), so an
// event can only be stale within the batch it came in, and in a batch of at
// most len(events) events a slot cannot change hands 65,536 times. A
// Client, though, is the handler's to keep for as long as it likes, so it
// and the slot hold the whole 32-bit generation.
func clientToken(slot int, gen uint32) uint64 {
	return uint64(uint16(gen))<<slotBits | uint64(slot)
}

// tokenSlot reads the slot and generation back out of a client's token.
func tokenSlot(token uint64) (slot int, gen uint16) {
	return int(token & (1<<slotBits - 1)), uint16(token >> slotBits)
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
// slot. It returns the slot, or false when there was none to take or no slot
// to give.
func acceptClient(kq, listener int, spare *int, clients []client, refused refusals) (int, bool) {
	fd, sa, err := unix.Accept(listener)
	switch err {
	case nil:
	case unix.EAGAIN, unix.ECONNABORTED, unix.EINTR:
		return -1, false // the client gave up before we got to it
	case unix.EMFILE, unix.ENFILE:
		refuseOutOfFiles(listener, spare) // out of descriptors: see there
		return -1, false
	default:
		log.Printf("accept: %v", err)
		return -1, false
	}
	// On macOS and the BSDs an accepted socket inherits O_NONBLOCK from the
	// listener; on Linux it does not. From this stage on the loop never
	// waits for a client (see send), so make that true everywhere.
	if err := unix.SetNonblock(fd, true); err != nil {
		log.Printf("accept: client fd=%d: %v", fd, err)
		unix.Close(fd)
		return -1, false
	}
	slot := slotOf(clients, free)
	if slot < 0 {
		// The article prints "connection refused" on the server's terminal
		// and shows nothing more, so as shown the client is never told and
		// its descriptor is never closed. This one is told why, and closed.
		log.Printf("refused client fd=%d from %s: server full (%d clients)", fd, addrString(sa), len(clients))
		refused.add(kq, fd)
		return -1, false
	}
	clients[slot] = client{fd: fd, addr: addrString(sa), gen: clients[slot].gen, last: time.Now()}
	log.Printf("accepted client fd=%d from %s", fd, clients[slot].addr)
	return slot, true
}

// refusals are the clients turned away because every slot was taken: from
// the "server full" message until their descriptor is closed, at most
// refusalGrace later. They hold no slot.
type refusals map[int]time.Time // descriptor -> when to close it regardless

// refusalGrace is how long a refused client has to close its end.
const refusalGrace = 2 * time.Second

// add tells a client there is no room, and half-closes its socket. Closing
// it at once would be wrong if the client has already sent something: a
// close(2) with unread input makes the kernel answer with a reset, not an
// orderly end (RFC 1122, 4.2.2.13), and a reset can destroy "server full"
// before the client reads it. So the server sends its end of file after
// the message (shutdown(2), SHUT_WR), then reads and discards whatever the
// client sends (drain) until it closes its end too, or refusalGrace is up.
func (r refusals) add(kq, fd int) {
	unix.Write(fd, []byte("server full\n")) // a new socket: the few bytes fit
	err := unix.Shutdown(fd, unix.SHUT_WR)
	if err == nil {
		err = change(kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, refusedToken)
	}
	if err != nil {
		unix.Close(fd)
		return
	}
	r[fd] = time.Now().Add(refusalGrace)
}

// drain reads and discards what a refused client sent, and closes it once
// it has closed its end (read returns 0), reset, or run out of time.
func (r refusals) drain(fd int, buf []byte) {
	n, err := unix.Read(fd, buf)
	if err == unix.EAGAIN || err == unix.EINTR || n > 0 && time.Now().Before(r[fd]) {
		return
	}
	unix.Close(fd)
	delete(r, fd)
}

// expire closes the refused clients whose time is up.
func (r refusals) expire() {
	now := time.Now()
	for fd, until := range r {
		if !now.Before(until) {
			unix.Close(fd)
			delete(r, fd)
		}
	}
}

// timeout is how long the loop may wait for events: until the first refused
// client's time is up, or for ever (nil) when there is none.
func (r refusals) timeout() *unix.Timespec {
	if len(r) == 0 {
		return nil
	}
	first := time.Time{}
	for _, until := range r {
		if first.IsZero() || until.Before(first) {
			first = until
		}
	}
	ts := unix.NsecToTimespec(max(time.Until(first), 0).Nanoseconds())
	return &ts
}

// receive reads what the client in slot sent and hands it to the handler. A
// client whose queue has reached limit is not read from until it drains (see
// flush).
func receive(kq, slot int, ev kqueue.Kevent_t, buf []byte, clients []client, limit int) {
	c := &clients[slot]
	if c.closing != "" {
		// A handler disconnected this client after the kernel had
		// reported it in this batch: nothing more is read.
		return
	}
	// EV_EOF means the client will send nothing more, not that nothing is
	// left: ev.Data still counts the bytes waiting to be read. Close only
	// when they are all read and answered (the article closes at once and
	// loses them). Fflags holds the socket's error, if it has one.
	if ev.Flags&kqueue.EV_EOF != 0 && ev.Data == 0 {
		if ev.Fflags != 0 {
			broken(slot, clients, unix.Errno(ev.Fflags))
			return
		}
		endOfInput(kq, slot, clients)
		return
	}
	n, err := unix.Read(c.fd, buf)
	switch {
	case err == unix.EINTR || err == unix.EAGAIN:
		return // nothing lost; kevent will report the client again
	case err != nil:
		broken(slot, clients, err)
		return
	case n == 0:
		endOfInput(kq, slot, clients)
		return
	}
	c.last = time.Now()
	c.handler.OnReceive(buf[:n])
	// Backpressure. A client that sends faster than it reads grows its own
	// queue; so at the bound the server stops reading from it: EV_DISABLE
	// keeps the registration, with its token, but reports nothing. What the
	// client goes on sending fills the kernel's buffers, and then TCP's flow
	// control stops the client itself, while every other client is served.
	if !c.paused && c.closing == "" && c.queue.Len() >= limit {
		if err := change(kq, c.fd, kqueue.EVFILT_READ, kqueue.EV_DISABLE, clientToken(slot, c.gen)); err != nil {
			closeClient(slot, clients, err.Error())
			return
		}
		c.paused = true
		log.Printf("client fd=%d from %s: %d bytes queued; reading paused", c.fd, c.addr, c.queue.Len())
	}
}

// endOfInput handles a client that has shut down its sending side. It may
// still be reading (a half-close, shutdown(2)), so what is queued for it is
// sent before the connection is closed (see flush). Its read filter goes:
// an end of file would otherwise be reported on every call.
func endOfInput(kq, slot int, clients []client) {
	c := &clients[slot]
	if c.queue.Len() == 0 {
		closeClient(slot, clients, "end of file")
		return
	}
	log.Printf("client fd=%d from %s: end of file; sending the %d bytes still queued", c.fd, c.addr, c.queue.Len())
	if err := change(kq, c.fd, kqueue.EVFILT_READ, kqueue.EV_DELETE, clientToken(slot, c.gen)); err != nil {
		closeClient(slot, clients, err.Error())
		return
	}
	c.closing = "end of file"
}

// send sends p to the client in slot. It never blocks and never drops a
// byte: what the socket does not take now is copied to the client's queue,
// and EVFILT_WRITE is registered to say when there is room for more. A
// write that fails is treated the same way: the write filter reports a
// broken socket at once, and flush, whose write then fails too, closes the
// client. So a failed send has one way out, through the loop.
func send(kq, slot int, clients []client, p []byte) {
	c := &clients[slot]
	if c.queue.Len() > 0 {
		c.queue.write(p) // behind what waits; flush sends it
		return
	}
	// Nothing is waiting, so the bytes may go straight to the socket,
	// without a copy; usually all of them fit. write(2) may take fewer
	// bytes than it is given (the articles ignore its count and lose the
	// rest), and on a full non-blocking socket it takes none: EAGAIN.
	n, _ := unix.Write(c.fd, p)
	if n > 0 {
		c.last = time.Now()
	}
	c.queue.write(p[max(n, 0):])
	if c.queue.Len() == 0 {
		return
	}
	if err := change(kq, c.fd, kqueue.EVFILT_WRITE, kqueue.EV_ADD, clientToken(slot, c.gen)); err != nil {
		broken(slot, clients, err)
	}
}

// flush writes as much of the client's queue as its socket takes. It runs
// when EVFILT_WRITE reports room in the socket's send buffer (kevent(2):
// data is how much).
func flush(kq, slot int, clients []client, limit int) {
	c := &clients[slot]
	for c.queue.Len() > 0 {
		front := c.queue.front()
		n, err := unix.Write(c.fd, front)
		if err == unix.EINTR || err == unix.EAGAIN {
			break
		}
		if err != nil {
			broken(slot, clients, err)
			return
		}
		c.queue.consume(n)
		c.last = time.Now()
		if n < len(front) {
			break // the socket's buffer is full
		}
	}
	token := clientToken(slot, c.gen)
	if c.paused && c.queue.Len() <= limit/2 {
		// Resume at half the bound, not just below it, so that the filter
		// does not flip at every read.
		if err := change(kq, c.fd, kqueue.EVFILT_READ, kqueue.EV_ENABLE, token); err != nil {
			closeClient(slot, clients, err.Error())
			return
		}
		c.paused = false
		log.Printf("client fd=%d from %s: %d bytes queued; reading resumed", c.fd, c.addr, c.queue.Len())
	}
	if c.queue.Len() > 0 {
		return // EVFILT_WRITE will say when there is room again
	}
	if c.closing != "" {
		closeClient(slot, clients, c.closing)
		return
	}
	// A socket has room in its send buffer nearly all the time, so a write
	// filter left registered with nothing to send would report the client
	// on every call: a busy loop. It goes as soon as the queue is empty.
	if err := change(kq, c.fd, kqueue.EVFILT_WRITE, kqueue.EV_DELETE, token); err != nil {
		closeClient(slot, clients, err.Error())
	}
}

// chunkSize is the unit send queues are made of.
const chunkSize = 64 << 10

// A sendQueue holds what was sent to a client and not yet taken by its
// socket, in chunks of chunkSize. Spent chunks go back to a pool, and new
// ones come from it, so a queue that fills and drains all day allocates
// nothing, and the memory it holds follows the bytes it holds. (A single
// growing slice is simpler, but every time it grows or empties it leaves a
// copy behind for the garbage collector; the README has the measurement.)
type sendQueue struct {
	chunks [][]byte // each filled from the start; the last may be part full
	off    int      // how much of the first chunk has been sent
	n      int      // bytes queued
}

func (q *sendQueue) Len() int { return q.n }

// write appends p to the queue.
func (q *sendQueue) write(p []byte) {
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
func (q *sendQueue) consume(n int) {
	q.off += n
	q.n -= n
	for len(q.chunks) > 0 && q.off == len(q.chunks[0]) {
		pool.put(q.chunks[0])
		q.chunks = slices.Delete(q.chunks, 0, 1)
		q.off = 0
	}
}

// release gives back the chunks of a client that is gone.
func (q *sendQueue) release() {
	for _, chunk := range q.chunks {
		pool.put(chunk)
	}
	*q = sendQueue{}
}

// pool keeps spent chunks for the next queue that needs one, up to maxSpare
// of them (two full queues at the default -queue); beyond that they are left
// to the garbage collector. Only the loop touches it, so it needs no lock.
var pool chunkPool

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

// sweep drops the clients that have been silent for the idle time or longer.
func sweep(clients []client, idle time.Duration) {
	now := time.Now()
	for slot := range clients {
		if c := &clients[slot]; c.fd != free && now.Sub(c.last) >= idle {
			closeClient(slot, clients, fmt.Sprintf("idle for %v", idle))
		}
	}
}

// broken closes a client whose connection failed with err. If bytes were
// still queued for it, a send has failed: the handler hears of it through
// OnSendError, and logs it if it cares to (echo does), before OnDisconnect.
// closeClient's line says how much is lost.
func broken(slot int, clients []client, err error) {
	c := &clients[slot]
	if c.queue.Len() > 0 {
		c.handler.OnSendError(err)
	}
	closeClient(slot, clients, err.Error())
}

// closeClient closes a client's descriptor, which also removes its kevent:
// no EV_DELETE is needed (kevent(2): closing a descriptor removes every
// kevent that refers to it). Then the handler hears of it.
func closeClient(slot int, clients []client, reason string) {
	fd := clients[slot].fd
	if n := clients[slot].queue.Len(); n > 0 {
		reason += fmt.Sprintf(" (%d bytes not sent)", n)
	}
	log.Printf("client fd=%d from %s closed: %s", fd, clients[slot].addr, reason)
	unix.Close(fd)
	clients[slot].queue.release()
	// The handler is told last, with the slot marked free, so that Send and
	// Disconnect do nothing, while the Client still knows its address. It
	// has none if the client went before it was made (see serve).
	clients[slot].fd = free
	if h := clients[slot].handler; h != nil {
		h.OnDisconnect()
	}
	clients[slot] = client{fd: free, gen: clients[slot].gen + 1}
}

// shutdown runs when the self-pipe says a signal came: it reads which one,
// then closes the listeners and every client so each sees an orderly close,
// and removes the socket file.
func shutdown(kq, stop int, listeners []int, socket *socketFile, clients []client, refused refusals) {
	var b [1]byte
	unix.Read(stop, b[:])
	log.Printf("shutting down on %v", syscall.Signal(b[0]))
	for _, fd := range listeners {
		unix.Close(fd)
	}
	if socket != nil {
		socket.remove()
	}
	for slot, c := range clients {
		if c.fd != free {
			closeClient(slot, clients, "server shutting down")
		}
	}
	for fd := range refused {
		unix.Close(fd)
	}
	kqueue.Close(kq)
}
