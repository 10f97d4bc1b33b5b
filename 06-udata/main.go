// Stage 06: the server of stage 05, dispatching on the udata token.
//
// Every registration carries a token in udata, and the kernel hands it back
// with each event. The loop reads the token instead of comparing the
// descriptor with the listeners, and a client's token holds its slot in the
// table, so its state is found without a search. C programs usually store a
// pointer there; a Go program must not (see clientToken), so the token is a
// slot number with a generation count that tells a stale event from a fresh
// one.
//
//	go run ./06-udata             # in one terminal
//	nc -4 localhost 8080          # in another, over IPv4
//	nc -6 localhost 8080          # or over IPv6
//	nc -U workbook.sock           # or over the UNIX socket
package main

import (
	"flag"
	"fmt"
	"log"
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
	parseFlags()
	log.SetFlags(log.Ltime)
	if *maxClients < 1 {
		log.Fatalf("bad -max %d: the pool needs at least one slot", *maxClients)
	}
	if *maxClients > maxSlots {
		log.Fatalf("bad -max %d: a udata token has room for %d slots", *maxClients, maxSlots)
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
	serve(kq, stop, listeners, socket, *maxClients)
}

// serve is the event loop: it waits for whatever the kernel reports and
// handles each event, until a signal says stop.
func serve(kq, stop int, listeners []int, socket *socketFile, maxClients int) {
	spare := openSpare()
	off := []int{}                        // listeners disabled for want of a spare (see refuseOutOfFiles)
	clients := make([]client, maxClients) // the connection table: one slot per client
	for i := range clients {
		clients[i].fd = free
	}
	refused := refusals{} // clients turned away for want of a slot, until closed
	buf := make([]byte, 64<<10)
	events := make([]kqueue.Kevent_t, 64)

	for {
		// Nothing is copied in and nothing is scanned: the kernel already
		// holds the registrations, and it fills events with only those that
		// fired, at most len(events) of them per call. The wait ends early
		// only when a refused client's time is up (see refusals).
		n, err := kqueue.Kevent(kq, nil, events, earlier(refused.timeout(), listenTimeout(len(off) == 0)))
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
				shutdown(kq, stop, listeners, socket, clients, refused)
				return
			case listenerToken:
				slot, ok := acceptClient(kq, fd, &spare, clients, refused)
				if !ok {
					// Out of descriptors with no spare to refuse the next
					// client with (see refuseOutOfFiles): stop listening.
					// A disabled registration stays in the kernel but is
					// not reported; newcomers wait in the listener's queue.
					if spare < 0 && change(kq, fd, kqueue.EVFILT_READ, kqueue.EV_DISABLE, listenerToken) == nil {
						off = append(off, fd)
					}
					continue
				}
				token := clientToken(slot, clients[slot].gen)
				if err := change(kq, clients[slot].fd, kqueue.EVFILT_READ, kqueue.EV_ADD, token); err != nil {
					closeClient(slot, clients, err.Error())
				}
			case refusedToken:
				refused.drain(fd, buf)
			default:
				slot, gen := tokenSlot(ev.Udata)
				if uint16(clients[slot].gen) != gen {
					// The client this event was queued for has gone since,
					// and its slot may already hold somebody else.
					continue
				}
				echo(slot, ev, buf, clients)
			}
		}
		refused.expire()
		// Once the spare is back, the loop listens again.
		if len(off) > 0 && takeSpare(&spare) {
			off = slices.DeleteFunc(off, func(fd int) bool {
				return change(kq, fd, kqueue.EVFILT_READ, kqueue.EV_ENABLE, listenerToken) == nil
			})
		}
	}
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

// client is one slot of the connection table.
type client struct {
	fd   int    // the client's descriptor, or free
	addr string // where it connected from, for the logs
	gen  uint32 // how many times the slot has changed hands; see clientToken
}

// A token has to fit in udata, which is as wide as a pointer (it is a void *
// in C): 64 bits on amd64 and arm64, but 32 on a 32-bit system such as
// freebsd/386, which would hand a wider token back cut short. So a client's
// token is 32 bits: the slot number in the low 16, the slot's generation in
// the high 16. That makes room for maxSlots clients.
const (
	slotBits = 16
	maxSlots = 1<<slotBits - 3
)

// The tokens of the descriptors that are not clients. No client token can
// be equal to them: it would need slot number maxSlots or above.
const (
	stopToken     = 1<<32 - 1 // the signal pipe
	listenerToken = 1<<32 - 2 // every listening socket
	refusedToken  = 1<<32 - 3 // every refused client (see refusals)
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
// events a slot cannot change hands 65,536 times.
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

// acceptClient takes one connection off the listener's queue, gives it a slot
// and greets it. It returns the slot, or false when there was none to take or
// no slot to give.
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
	// listener; on Linux it does not. This stage's writes are meant to block
	// (see writeAll), so make that true everywhere, but for at most
	// sendTimeout at a time.
	err = unix.SetNonblock(fd, false)
	if err == nil {
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &sendTimeout)
	}
	if err != nil {
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
	clients[slot] = client{fd: fd, addr: addrString(sa), gen: clients[slot].gen}
	log.Printf("accepted client fd=%d from %s", fd, clients[slot].addr)
	if err := writeAll(fd, []byte("welcome!\n")); err != nil {
		closeClient(slot, clients, err.Error())
		return -1, false
	}
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
	writeAll(fd, []byte("server full\n"))
	err := unix.Shutdown(fd, unix.SHUT_WR)
	if err == nil {
		err = unix.SetNonblock(fd, true) // drain must never wait
	}
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

// earlier is the shorter of two timeouts, nil being for ever.
func earlier(a, b *unix.Timespec) *unix.Timespec {
	if a == nil || b != nil && b.Nano() < a.Nano() {
		return b
	}
	return a
}

// echo reads what the client in slot sent and sends it back.
func echo(slot int, ev kqueue.Kevent_t, buf []byte, clients []client) {
	c := &clients[slot]
	// EV_EOF means the client will send nothing more, not that nothing is
	// left: ev.Data still counts the bytes waiting to be read. Close only
	// when they are all read and echoed (the article closes at once and
	// loses them). Fflags holds the socket's error, if it has one.
	if ev.Flags&kqueue.EV_EOF != 0 && ev.Data == 0 {
		reason := "end of file"
		if ev.Fflags != 0 {
			reason = unix.Errno(ev.Fflags).Error()
		}
		closeClient(slot, clients, reason)
		return
	}
	n, err := unix.Read(c.fd, buf)
	switch {
	case err == unix.EINTR || err == unix.EAGAIN:
		return // nothing lost; kevent will report the client again
	case err != nil:
		closeClient(slot, clients, err.Error())
		return
	case n == 0:
		closeClient(slot, clients, "end of file")
		return
	}
	if err := writeAll(c.fd, buf[:n]); err != nil {
		closeClient(slot, clients, err.Error())
	}
}

// writeAll writes every byte of p. write(2) may take fewer bytes than it is
// given; Radman's send_msg ignores the count it returns and lose the rest.
//
// The socket is blocking, so a client that sends but never reads will
// eventually fill its buffers and stop the whole server here. That is this
// stage's known limit; stage 07 removes it with a send queue. Meanwhile
// SIGINT must still work, and its news waits on the self-pipe, which the
// loop reads only once this write is done. So a write waits at most
// sendTimeout (SO_SNDTIMEO, setsockopt(2)) and then fails with EAGAIN, or
// returns the part it did write; writeAll checks for a signal and, if none
// came, carries on where the write stopped. No byte is lost and no client
// is dropped for being slow.
func writeAll(fd int, p []byte) error {
	for len(p) > 0 {
		if signalled.Load() {
			return errStopping
		}
		n, err := unix.Write(fd, p)
		if n > 0 {
			p = p[n:]
		}
		if err != nil && err != unix.EINTR && err != unix.EAGAIN {
			return err
		}
	}
	return nil
}

// sendTimeout bounds each wait in writeAll: short enough for a signal to be
// acted on promptly, long enough not to wake a busy server needlessly.
var sendTimeout = unix.NsecToTimeval((250 * time.Millisecond).Nanoseconds())

// closeClient closes a client's descriptor, which also removes its kevent:
// no EV_DELETE is needed (kevent(2): closing a descriptor removes every
// kevent that refers to it).
func closeClient(slot int, clients []client, reason string) {
	fd := clients[slot].fd
	log.Printf("client fd=%d from %s closed: %s", fd, clients[slot].addr, reason)
	unix.Close(fd)
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
