// Stage 12: the server of stage 11, answering from any goroutine.
//
// A handler that must wait for something (a database, another server) does
// the waiting on a goroutine of its own, off the loop. That goroutine cannot
// call Send: a client's queue and registrations are its loop's alone. So a
// Client also has AsyncSend and AsyncDisconnect, which post the call to the
// client's loop, as the first loop posts a new client (stage 11). A handler
// that answers late also hears of a half-close (EndOfInputHandler), and ends
// the connection itself once its last answer is sent.
//
//	go run ./12-any-goroutine -handler later # in one terminal
//	nc localhost 8080                        # in another: echo, answered by a worker
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
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
	queueLimit := flag.Int("queue", 1<<20, "`bytes` queued for a client before the server stops reading from it")
	idle := flag.Duration("idle", 5*time.Minute, "drop a client after this long with nothing sent or received; 0 never drops one")
	handlerName := flag.String("handler", "echo", "the protocol `name`: echo (send back what arrives), goodbye (the article's demo) or later (echo, answered from a worker goroutine)")
	loopCount := flag.Int("loops", runtime.GOMAXPROCS(0), "run `N` event loops, each on a thread of its own; the default is the number of CPUs this process may use")
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
		log.Fatalf("bad -handler %q: want echo, goodbye or later", *handlerName)
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

	// A loop per -loops, each with its own kqueue, wake-up and idle timer,
	// registered in one call now, not with the first wait: a loop may be
	// woken before it starts, and may start after descriptors have run out.
	g := &group{max: *maxClients}
	for i := range *loopCount {
		kq, err := kqueue.Kqueue()
		if err != nil {
			log.Fatalf("kqueue: %v", err)
		}
		l := &loop{newHandler: newHandler, kq: kq, id: i, group: g}
		l.change(wakeIdent, kqueue.EVFILT_USER, kqueue.EV_ADD|kqueue.EV_CLEAR, wakeToken)
		if *idle > 0 {
			l.startSweep(*idle)
		}
		if _, err := kqueue.Kevent(kq, l.pending, nil, nil); err != nil {
			log.Fatalf("kevent: wake-up, idle timer: %v", err)
		}
		l.pending = l.pending[:0]
		g.loops = append(g.loops, l)
	}
	l := g.loops[0] // the first loop is also the one that accepts
	l.stop, l.listeners, l.socket = stop, listeners, socket
	for _, fd := range listeners { // these ride with the first wait
		l.change(fd, kqueue.EVFILT_READ, kqueue.EV_ADD, listenerToken)
	}
	l.change(stop, kqueue.EVFILT_READ, kqueue.EV_ADD, stopToken)
	for _, other := range g.loops[1:] {
		go other.serve(*maxClients, *queueLimit, *idle)
	}
	l.serve(*maxClients, *queueLimit, *idle)
}

// loop is the article's ServerSocket: it owns the kqueue, the listening
// sockets, the table of clients and the event loop, and it calls a Handler
// for everything that happens to a client. Its machinery (send, flush,
// closeClient, ...) is stage 09's; what changed is who decides what to send.
// Only its own thread touches it, but for post; only the first has listeners.
type loop struct {
	newHandler func(Client) Handler // the article's createClient
	kq, stop   int                  // the queue, and the signal pipe
	listeners  []int
	socket     *socketFile
	pending    []kqueue.Kevent_t // see change
	clients    []client          // the connection table: one slot per client
	refused    refusals          // clients turned away for want of a slot, until closed

	id    int    // which loop this is, for the logs and its thread's name
	group *group // the loops it serves with

	mu     sync.Mutex // guards what other threads post (see post), and:
	posted []func()
	waking bool // a wake-up is on its way
	closed bool
}

// A group is the loops of one server and what they share: the count of their
// clients, held against -max (only the first loop adds), and its round robin.
type group struct {
	loops []*loop
	max   int
	held  atomic.Int32
	next  int // the loop the next client goes to
}

// serve is the event loop: it waits for whatever the kernel reports and
// handles each event, until a signal says stop.
func (l *loop) serve(maxClients, queueLimit int, idle time.Duration) {
	if len(l.group.loops) > 1 {
		// Each of several loops keeps a thread, named for ps -L and top -H.
		// One stays a goroutine, as in 10: the lock costs system calls.
		runtime.LockOSThread()
		kqueue.NameThread(fmt.Sprintf("loop-%d", l.id))
	}
	// Only the first loop accepts, so only it keeps a spare (a late one in
	// another loop could take the number refuseOutOfFiles just freed).
	spare := -1
	if l.listeners != nil {
		spare = openSpare()
	}
	off := []int{}                        // listeners disabled for want of a spare (see refuseOutOfFiles)
	clients := make([]client, maxClients) // the connection table: one slot per client
	for i := range clients {
		clients[i].fd = free
	}
	l.clients = clients
	l.refused = refusals{}
	buf := make([]byte, 64<<10) // what each read fills; lent to OnReceive
	events := make([]kqueue.Kevent_t, 64)

	for {
		// The last turn's changes ride with the wait: the kernel applies
		// them in order, then fills events with what fired, at most
		// len(events) of it. A change it refuses is written to events as an
		// EV_ERROR entry, but only while there is room; with none left
		// kevent returns -1 there, and the changes after it are never
		// applied (kevent(2)). So events is at least as long as the list.
		// The wait ends early only when a refused client's time is up.
		if len(l.pending) > len(events) {
			events = make([]kqueue.Kevent_t, len(l.pending))
		}
		n, err := kqueue.Kevent(l.kq, l.pending, events, earlier(l.refused.timeout(), listenTimeout(len(off) == 0)))
		l.pending = l.pending[:0] // applied, even by a call a signal interrupts
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
			if ev.Flags&kqueue.EV_ERROR != 0 {
				l.changeFailed(ev)
				continue
			}
			switch ev.Udata {
			case stopToken:
				l.shutdown()
				return
			case listenerToken:
				cfd, addr, ok := l.acceptClient(fd, &spare)
				if !ok {
					// Out of descriptors with no spare to refuse the next
					// client with (see refuseOutOfFiles): stop listening.
					// A disabled registration stays in the kernel but is
					// not reported; newcomers wait in the listener's queue.
					if spare < 0 {
						l.change(fd, kqueue.EVFILT_READ, kqueue.EV_DISABLE, listenerToken)
						off = append(off, fd)
					}
					continue
				}
				l.handOff(cfd, addr)
			case wakeToken: // what was posted runs at the end of the turn
			case refusedToken:
				l.refused.drain(fd, buf)
			case sweepToken:
				l.sweep(idle)
			default:
				slot, gen := tokenSlot(ev.Udata)
				if uint16(clients[slot].gen) != gen {
					// The client this event was queued for has gone since,
					// and its slot may already hold somebody else. (A read
					// event that ends a client may precede its write event.)
					continue
				}
				switch ev.Filter {
				case kqueue.EVFILT_READ:
					l.receive(slot, ev, buf, queueLimit)
				case kqueue.EVFILT_WRITE:
					l.flush(slot, queueLimit)
				}
			}
		}
		l.refused.expire()
		if l.runPosted(); l.closed { // closed by a posted close, on this thread
			return
		}
		// Once the spare is back, the loop listens again.
		if len(off) > 0 && takeSpare(&spare) {
			for _, fd := range off {
				l.change(fd, kqueue.EVFILT_READ, kqueue.EV_ENABLE, listenerToken)
			}
			off = off[:0]
		}
	}
}

// handOff gives a client the first loop has accepted to the next loop in
// turn, this one included: round robin, which looks at no other loop's
// state (a count of clients says little about how busy a loop is).
func (l *loop) handOff(fd int, addr string) {
	g := l.group
	owner := g.loops[g.next%len(g.loops)]
	g.next++
	if owner == l {
		l.adopt(fd, addr)
		return
	}
	owner.post(func() { owner.adopt(fd, addr) })
}

// adopt gives a client handed to this loop a slot (a table has -max, so one
// is free), registers it and makes its handler (the article's createClient).
func (l *loop) adopt(fd int, addr string) {
	clients := l.clients
	slot := slotOf(clients, free)
	clients[slot] = client{fd: fd, addr: addr, gen: clients[slot].gen, last: time.Now()}
	log.Printf("loop %d: accepted client fd=%d from %s", l.id, fd, addr)
	l.change(fd, kqueue.EVFILT_READ, kqueue.EV_ADD, clientToken(slot, clients[slot].gen))
	clients[slot].handler = l.newHandler(Client{loop: l, slot: slot, gen: clients[slot].gen})
	clients[slot].handler.OnConnect()
}

// Handler is what a protocol implements: the article's SocketClient
// callbacks. The loop calls them one at a time, so a handler needs no
// locks, and must not block: while it runs, no other client of its loop is
// served. (Other loops' handlers run meanwhile: what they share needs a
// lock.) Send and Disconnect do not call back into a handler; what they
// lead to is reported by the loop later.
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

// A handler whose answers are made off the loop also implements
// EndOfInputHandler. When a client shuts down its sending side (a
// half-close) the loop sends what is queued and closes, which is right for
// a handler that answers inside OnReceive: by then every answer is queued.
// An answer still being made elsewhere would be lost. So the loop asks a
// handler with OnEndOfInput instead: nothing more is read, and the
// connection stays open until the handler calls Disconnect (or -idle ends
// it).
type EndOfInputHandler interface {
	OnEndOfInput()
}

// Client is a handler's way to act on its client. It names a slot and its
// generation (see clientToken), not the slot's contents: once the client is
// gone, its Client does nothing, even after the slot has been given to
// someone else.
type Client struct {
	loop *loop
	slot int
	gen  uint32
}

// Send sends p to the client, the article's sendData. It never blocks and
// never drops a byte (see send), and it returns nothing: a send that fails
// is found by the loop, which tells the handler through OnSendError. Once
// the client is gone it does nothing. Like Disconnect, it is for callbacks,
// on the client's own loop; other goroutines use AsyncSend.
func (c Client) Send(p []byte) {
	if c.loop.lookup(c) != nil {
		c.loop.send(c.slot, p)
	}
}

// Disconnect closes the connection once everything sent to the client has
// been written, the article's disconnectClient. Nothing more is received
// from it. Closing at once would call OnDisconnect from inside the callback
// that called Disconnect; instead the read filter goes, and flush closes
// the client when its queue is empty, called through EVFILT_WRITE, which
// reports a socket with room straight away.
func (c Client) Disconnect() {
	cl := c.loop.lookup(c)
	if cl == nil || cl.closing != "" {
		return
	}
	token := clientToken(c.slot, cl.gen)
	c.loop.change(cl.fd, kqueue.EVFILT_READ, kqueue.EV_DELETE, token)
	if cl.queue.Len() == 0 {
		c.loop.change(cl.fd, kqueue.EVFILT_WRITE, kqueue.EV_ADD, token)
	}
	cl.closing, cl.paused = "disconnected by the server", false
}

// AsyncSend is Send for any goroutine: it hands a copy of p to the client's
// loop (see post), which sends what it is handed in order. Go has no way for
// Send to ask which goroutine calls it (the kernel's thread id costs a
// system call a question), so the caller says so by the method it picks.
func (c Client) AsyncSend(p []byte) {
	p = bytes.Clone(p) // the caller may reuse p as soon as it returns
	c.loop.post(func() { c.Send(p) })
}

// AsyncDisconnect is Disconnect for any goroutine, handed to the client's
// loop after whatever was handed to it before.
func (c Client) AsyncDisconnect() { c.loop.post(c.Disconnect) }

// RemoteAddr is where the client connected from, "unix socket" for a client
// of the UNIX listener, or "" once it is gone (after OnDisconnect).
func (c Client) RemoteAddr() string {
	if cl := &c.loop.clients[c.slot]; cl.gen == c.gen {
		return cl.addr
	}
	return ""
}

// lookup returns the client c names, or nil if it is gone.
func (l *loop) lookup(c Client) *client {
	if cl := &l.clients[c.slot]; cl.fd != free && cl.gen == c.gen {
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

// later is echo answered elsewhere, as by a handler that asks a database:
// each client's bytes go to a worker goroutine of its own, which sends each
// reply from there with AsyncSend. The greeting and OnSendError are echo's.
type later struct {
	echo
	work    chan []byte
	stopped bool // work is closed; touched by the loop's callbacks only
}

func newLater(c Client) Handler {
	h := &later{echo: echo{c}, work: make(chan []byte, 16)}
	go h.answer()
	return h
}

// OnReceive hands the worker a copy (data is lent); it waits only while the
// worker, which never waits for the loop, is 16 pieces behind.
func (h *later) OnReceive(data []byte) { h.work <- bytes.Clone(data) }
func (h *later) OnEndOfInput()         { h.stop() }
func (h *later) OnDisconnect()         { h.stop() }

func (h *later) stop() {
	if !h.stopped {
		h.stopped = true
		close(h.work)
	}
}

// answer is the worker. When the client has sent its last byte (a
// half-close) and every reply is sent, it ends the connection. A reply sent
// after the client has gone is dropped, by the loop, and so is Disconnect.
func (h *later) answer() {
	for data := range h.work {
		h.AsyncSend(data)
	}
	h.AsyncDisconnect()
}

// host is the client's address without the port, as the article prints it.
func (h goodbye) host() string {
	host, _, err := net.SplitHostPort(h.RemoteAddr())
	if err != nil {
		return h.RemoteAddr() // "unix socket"
	}
	return host
}

// change records one change to fd's registration for filter, with token as
// its udata, for the loop's next kevent call. A registration stays in the
// kernel until it is deleted or fd is closed, so unlike select's set it is
// made once, not once per call. (Frevib's listener has EV_ADD | EV_ENABLE;
// EV_ADD enables a new registration by itself.)
func (l *loop) change(fd int, filter int16, flags uint16, token uint64) {
	var change kqueue.Kevent_t
	kqueue.EV_SET(&change, fd, filter, flags, 0, 0, token)
	l.pending = append(l.pending, change)
}

// forget drops the changes pending for fd, about to be closed: a client
// accepted later in the turn may get the same number, and the old client's
// changes would be applied to it.
func (l *loop) forget(fd int) {
	l.pending = slices.DeleteFunc(l.pending, func(c kqueue.Kevent_t) bool {
		return c.Ident == uint64(fd) && (c.Filter == kqueue.EVFILT_READ || c.Filter == kqueue.EVFILT_WRITE)
	})
}

// changeFailed handles an EV_ERROR entry, a change the kernel refused with
// the errno in Data. A client's ends that client, unless it is gone already
// (its slot's generation has moved on); a refused client's ends it too. The
// rest were the first turn's: the server cannot work without its signal
// pipe, timer and listeners. (Enabling or disabling a listener later needs
// no memory, and does not fail.)
func (l *loop) changeFailed(ev kqueue.Kevent_t) {
	switch slot, gen := tokenSlot(ev.Udata); ev.Udata {
	case refusedToken:
		unix.Close(int(ev.Ident))
		delete(l.refused, int(ev.Ident))
	case stopToken, listenerToken, sweepToken:
		log.Fatalf("kevent: change refused for ident %d: %v", ev.Ident, unix.Errno(ev.Data))
	default:
		if uint16(l.clients[slot].gen) == gen {
			l.broken(slot, unix.Errno(ev.Data))
		}
	}
}

// The wake-up. Like a timer's, a user event's ident is a number of the
// program's choosing; each loop has one, in its own kqueue.
const wakeIdent = 1

// trigger fires the loop's EVFILT_USER event (NOTE_TRIGGER), from any
// thread, in a kevent call of its own: the changelist is the loop's thread's
// alone. The event is registered with EV_CLEAR (see main), so that reporting
// it resets it; without, once triggered, it would be reported on every call.
// A trigger carries the token too: every change but a delete sets udata.
func (l *loop) trigger() error {
	var change kqueue.Kevent_t
	kqueue.EV_SET(&change, wakeIdent, kqueue.EVFILT_USER, 0, kqueue.NOTE_TRIGGER, 0, wakeToken)
	_, err := kqueue.Kevent(l.kq, []kqueue.Kevent_t{change}, nil, nil)
	return err
}

// post queues f to run on this loop, from any goroutine, and wakes it: once
// for any number of posts while a wake-up is on its way. A failed trigger is
// made again; if it keeps failing, the next post tries anew, and f runs at
// the loop's next turn all the same (see runPosted). The lock is held over
// the trigger, so that the kqueue is not closed and its number reused.
func (l *loop) post(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.posted = append(l.posted, f)
	if l.waking {
		return
	}
	var err error
	for range 3 {
		if err = l.trigger(); err == nil {
			l.waking = true
			return
		}
	}
	log.Printf("loop %d: kevent: wake-up: %v", l.id, err)
}

// runPosted runs what was posted, in order, at the end of every turn, woken
// or not. It lets go of the lock first: a posted function may post again.
func (l *loop) runPosted() {
	l.mu.Lock()
	posted := l.posted
	l.posted, l.waking = nil, false // a post from now on wakes the loop again
	l.mu.Unlock()
	for _, f := range posted {
		f()
	}
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
func (l *loop) startSweep(idle time.Duration) {
	every := max(idle/10, time.Millisecond)
	var change kqueue.Kevent_t
	// Data is the period in milliseconds (kevent(2)); without EV_ONESHOT the
	// timer repeats, and each event's data says how often it expired since
	// the last one was reported.
	kqueue.EV_SET(&change, sweepTimer, kqueue.EVFILT_TIMER, kqueue.EV_ADD, 0, every.Milliseconds(), sweepToken)
	l.pending = append(l.pending, change)
}

// client is one slot of the connection table.
type client struct {
	fd   int    // the client's descriptor, or free
	addr string // where it connected from, for the logs
	gen  uint32 // how many times the slot has changed hands; see clientToken

	handler Handler // made for this client by the factory

	queue   sendQueue // sent, not yet taken by the socket: EVFILT_WRITE is on while it holds bytes
	paused  bool      // EVFILT_READ is disabled: the queue is full (see receive)
	closing string    // EVFILT_READ is deleted; close, for this reason, once the queue is empty

	last time.Time // when a byte last went in or out, for the idle sweep
}

// A token has to fit in udata, which is as wide as a pointer (it is a void *
// in C): 64 bits on amd64 and arm64, but 32 on a 32-bit system such as
// freebsd/386, which would hand a wider token back cut short. So a client's
// token is 32 bits: the slot number in the low 16, the slot's generation in
// the high 16. That makes room for maxSlots clients.
const (
	slotBits = 16
	maxSlots = 1<<slotBits - 5
)

// The tokens of what is not a client. No client token can
// be equal to them: it would need slot number maxSlots or above.
const (
	stopToken     = 1<<32 - 1 // the signal pipe
	listenerToken = 1<<32 - 2 // every listening socket
	refusedToken  = 1<<32 - 3 // every refused client (see refusals)
	sweepToken    = 1<<32 - 4 // the idle timer
	wakeToken     = 1<<32 - 5 // the loop's wake-up (see post)
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
// network poller guards its descriptors the same way.) The token carries
// the low sixteen bits of the slot's count, and they are plenty: closing a
// descriptor removes its pending events (kevent(2)), so an event can only be
// stale within the batch it came in, and in a batch of at most len(events)
// events a slot cannot change hands 65,536 times. (A Client, which a handler
// keeps as long as it likes, holds all 32; see lookup.)
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
// place among the -max clients of all loops. It returns the client's
// descriptor and address, or false when there was none to take or no place
// to give.
func (l *loop) acceptClient(listener int, spare *int) (int, string, bool) {
	fd, sa, err := unix.Accept(listener)
	switch err {
	case nil:
	case unix.EAGAIN, unix.ECONNABORTED, unix.EINTR:
		return -1, "", false // the client gave up before we got to it
	case unix.EMFILE, unix.ENFILE:
		refuseOutOfFiles(listener, spare) // out of descriptors: see there
		return -1, "", false
	default:
		log.Printf("accept: %v", err)
		return -1, "", false
	}
	// On macOS and the BSDs an accepted socket inherits O_NONBLOCK from the
	// listener; on Linux it does not. From this stage on the loop never
	// waits for a client (see send), so make that true everywhere.
	if err := unix.SetNonblock(fd, true); err != nil {
		log.Printf("accept: client fd=%d: %v", fd, err)
		unix.Close(fd)
		return -1, "", false
	}
	// Only the first loop adds to held: exact, with no compare-and-swap.
	if g := l.group; int(g.held.Load()) >= g.max {
		// The article prints "connection refused" on the server's terminal
		// and shows nothing more, so as shown the client is never told and
		// its descriptor is never closed. This one is told why, and closed.
		log.Printf("refused client fd=%d from %s: server full (%d clients)", fd, addrString(sa), g.max)
		l.refused.add(l, fd)
		return -1, "", false
	}
	l.group.held.Add(1)
	return fd, addrString(sa), true
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
func (r refusals) add(l *loop, fd int) {
	unix.Write(fd, []byte("server full\n")) // a new socket: the few bytes fit
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		unix.Close(fd)
		return
	}
	l.change(fd, kqueue.EVFILT_READ, kqueue.EV_ADD, refusedToken)
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

// earlier is the shorter of two timeouts, nil being for ever.
func earlier(a, b *unix.Timespec) *unix.Timespec {
	if a == nil || b != nil && b.Nano() < a.Nano() {
		return b
	}
	return a
}

// receive reads what the client in slot sent and hands it to the handler.
func (l *loop) receive(slot int, ev kqueue.Kevent_t, buf []byte, limit int) {
	c := &l.clients[slot]
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
			l.broken(slot, unix.Errno(ev.Fflags))
			return
		}
		l.endOfInput(slot)
		return
	}
	n, err := unix.Read(c.fd, buf)
	switch {
	case err == unix.EINTR || err == unix.EAGAIN:
		return // nothing lost; kevent will report the client again
	case err != nil:
		l.broken(slot, err)
		return
	case n == 0:
		l.endOfInput(slot)
		return
	}
	c.last = time.Now()
	c.handler.OnReceive(buf[:n])
	// Backpressure: EV_DISABLE keeps the registration, with its token, but
	// reports nothing. The client's bytes fill the kernel's buffers, and
	// then TCP's flow control stops the client itself.
	if !c.paused && c.closing == "" && c.queue.Len() >= limit {
		l.change(c.fd, kqueue.EVFILT_READ, kqueue.EV_DISABLE, clientToken(slot, c.gen))
		c.paused = true
		log.Printf("client fd=%d from %s: %d bytes queued; reading paused", c.fd, c.addr, c.queue.Len())
	}
}

// endOfInput handles a client that has shut down its sending side: it may
// still read (a half-close), so what is queued goes first (see flush). Its
// read filter goes, or the end of file would be reported on every call.
func (l *loop) endOfInput(slot int) {
	c := &l.clients[slot]
	if h, ok := c.handler.(EndOfInputHandler); ok {
		// The handler closes (see EndOfInputHandler). The read filter is
		// disabled, not deleted, so that Disconnect finds it to delete.
		l.change(c.fd, kqueue.EVFILT_READ, kqueue.EV_DISABLE, clientToken(slot, c.gen))
		log.Printf("client fd=%d from %s: end of file; the handler ends the connection", c.fd, c.addr)
		h.OnEndOfInput()
		return
	}
	if c.queue.Len() == 0 {
		l.closeClient(slot, "end of file")
		return
	}
	log.Printf("client fd=%d from %s: end of file; sending the %d bytes still queued", c.fd, c.addr, c.queue.Len())
	l.change(c.fd, kqueue.EVFILT_READ, kqueue.EV_DELETE, clientToken(slot, c.gen))
	c.closing = "end of file"
}

// send sends p to the client in slot, never blocking and never dropping a
// byte: what the socket does not take is queued, and EVFILT_WRITE registered
// to say when there is room. A failed write is treated the same way: the
// write filter reports the broken socket at once, and flush closes it.
func (l *loop) send(slot int, p []byte) {
	c := &l.clients[slot]
	if c.queue.Len() > 0 {
		c.queue.write(p) // behind what waits; flush sends it
		return
	}
	// Nothing waits, so the bytes go straight to the socket, uncopied.
	// write(2) may take fewer than it is given (the articles ignore its
	// count and lose the rest), and a full socket takes none: EAGAIN.
	n, _ := unix.Write(c.fd, p)
	if n > 0 {
		c.last = time.Now()
	}
	c.queue.write(p[max(n, 0):])
	if c.queue.Len() > 0 {
		l.change(c.fd, kqueue.EVFILT_WRITE, kqueue.EV_ADD, clientToken(slot, c.gen))
	}
}

// flush writes as much of the client's queue as its socket takes. It runs
// when EVFILT_WRITE reports room in the socket's send buffer (kevent(2):
// data is how much).
func (l *loop) flush(slot, limit int) {
	c := &l.clients[slot]
	for c.queue.Len() > 0 {
		front := c.queue.front()
		n, err := unix.Write(c.fd, front)
		if err == unix.EINTR || err == unix.EAGAIN {
			break
		}
		if err != nil {
			l.broken(slot, err)
			return
		}
		c.queue.consume(n)
		c.last = time.Now()
		if n < len(front) {
			break // the socket's buffer is full
		}
	}
	token := clientToken(slot, c.gen)
	if c.paused && c.queue.Len() <= limit/2 { // half: not a flip at every read
		l.change(c.fd, kqueue.EVFILT_READ, kqueue.EV_ENABLE, token)
		c.paused = false
		log.Printf("client fd=%d from %s: %d bytes queued; reading resumed", c.fd, c.addr, c.queue.Len())
	}
	switch {
	case c.queue.Len() > 0: // EVFILT_WRITE will say when there is room again
	case c.closing != "":
		l.closeClient(slot, c.closing)
	default:
		// A socket has room nearly all the time: a write filter left with
		// nothing to send would report it on every call, a busy loop.
		l.change(c.fd, kqueue.EVFILT_WRITE, kqueue.EV_DELETE, token)
	}
}

// A sendQueue holds what was sent to a client and not yet taken by its
// socket, oldest first: copies, since the caller's buffer is reused. Pieces
// sent are kept to copy the next ones into, so that a queue that fills and
// drains all day allocates nothing (the README has the measurement); the
// price is that a client keeps as much memory as its queue ever held.
type sendQueue struct {
	pieces [][]byte
	off    int      // how much of the first piece has been sent
	n      int      // bytes queued
	spent  [][]byte // emptied pieces, to copy the next ones into
}

func (q *sendQueue) Len() int { return q.n }

// write appends a copy of p to the queue.
func (q *sendQueue) write(p []byte) {
	if len(p) == 0 {
		return
	}
	var piece []byte
	if last := len(q.spent) - 1; last >= 0 {
		piece, q.spent = q.spent[last], q.spent[:last]
	}
	q.pieces, q.n = append(q.pieces, append(piece[:0], p...)), q.n+len(p)
}

// front is the queue's oldest bytes, one piece of them.
func (q *sendQueue) front() []byte { return q.pieces[0][q.off:] }

// consume drops the n oldest bytes, which the socket has taken.
func (q *sendQueue) consume(n int) {
	if q.off, q.n = q.off+n, q.n-n; q.off == len(q.pieces[0]) {
		q.spent = append(q.spent, q.pieces[0])
		q.pieces, q.off = slices.Delete(q.pieces, 0, 1), 0
	}
}

// sweep drops the clients that have been silent for the idle time or longer.
func (l *loop) sweep(idle time.Duration) {
	now, clients := time.Now(), l.clients
	for slot := range clients {
		if c := &clients[slot]; c.fd != free && now.Sub(c.last) >= idle {
			l.closeClient(slot, fmt.Sprintf("idle for %v", idle))
		}
	}
}

// broken closes a client whose connection failed with err. If bytes were
// still queued for it, a send has failed: the handler hears of it through
// OnSendError, and logs it if it cares to (echo does), before OnDisconnect.
// closeClient's line says how much is lost.
func (l *loop) broken(slot int, err error) {
	if l.clients[slot].queue.Len() > 0 {
		l.clients[slot].handler.OnSendError(err)
	}
	l.closeClient(slot, err.Error())
}

// closeClient closes a client's descriptor, which also removes its kevent:
// no EV_DELETE is needed (kevent(2): closing a descriptor removes every
// kevent that refers to it). Its changes not yet applied go first. Then
// the handler hears of it.
func (l *loop) closeClient(slot int, reason string) {
	clients := l.clients
	fd := clients[slot].fd
	if n := clients[slot].queue.Len(); n > 0 {
		reason += fmt.Sprintf(" (%d bytes not sent)", n)
	}
	l.forget(fd)
	unix.Close(fd)
	l.group.held.Add(-1) // before the log line, after which a client finds it free
	log.Printf("client fd=%d from %s closed: %s", fd, clients[slot].addr, reason)
	// The handler is told last, with the slot marked free, so that Send and
	// Disconnect do nothing, while the Client still knows its address.
	clients[slot].fd = free
	clients[slot].handler.OnDisconnect()
	clients[slot] = client{fd: free, gen: clients[slot].gen + 1}
}

// shutdown runs on the first loop when the self-pipe says a signal came: it
// reads which one, closes the listeners and removes the socket file; then
// every loop closes its own clients. It waits for the others, but not more
// than a second: a loop stuck in a handler must not keep the server alive.
func (l *loop) shutdown() {
	var b [1]byte
	unix.Read(l.stop, b[:])
	log.Printf("shutting down on %v", syscall.Signal(b[0]))
	for _, fd := range l.listeners {
		unix.Close(fd)
	}
	if l.socket != nil {
		l.socket.remove()
	}
	others := l.group.loops[1:]
	stopped := make(chan struct{}, len(others))
	for _, o := range others {
		o.post(func() { o.close(); stopped <- struct{}{} })
	}
	l.close()
	timeout := time.After(time.Second)
	for left := len(others); left > 0; left-- {
		select {
		case <-stopped:
		case <-timeout:
			log.Printf("%d of %d loops did not stop within a second; exiting without them", left, len(l.group.loops))
			return
		}
	}
}

// close closes the loop's clients, those it refused and its kqueue; the
// loop stops after it, and takes no more posted work.
func (l *loop) close() {
	for slot, c := range l.clients {
		if c.fd != free {
			l.closeClient(slot, "server shutting down")
		}
	}
	for fd := range l.refused {
		unix.Close(fd)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	kqueue.Close(l.kq)
}
