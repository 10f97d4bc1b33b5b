// Stage 05: the server of stage 04, listening on every address its host name
// resolves to.
//
// "localhost" is often both 127.0.0.1 and ::1, and an empty host means every
// address of both families. The server resolves the host (the getaddrinfo
// loop the article mentions but leaves out), opens one listener per address
// on one port, registers them all with the same kqueue, and knows a listener
// when an event's ident is one of the listening descriptors. The UNIX socket
// of stage 04 stays.
//
//	go run ./05-multi-family      # in one terminal
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
		if err := change(kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0); err != nil {
			log.Fatalf("kevent: listener: %v", err)
		}
	}
	if err := change(kq, stop, kqueue.EVFILT_READ, kqueue.EV_ADD, 0); err != nil {
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
			switch {
			case fd == stop:
				shutdown(kq, stop, listeners, socket, clients, refused)
				return
			case slices.Contains(listeners, fd):
				// An event is a listener's if its ident is one of the
				// listening descriptors.
				client, ok := acceptClient(kq, fd, &spare, clients, refused)
				if !ok {
					// Out of descriptors with no spare to refuse the next
					// client with (see refuseOutOfFiles): stop listening.
					// A disabled registration stays in the kernel but is
					// not reported; newcomers wait in the listener's queue.
					if spare < 0 && change(kq, fd, kqueue.EVFILT_READ, kqueue.EV_DISABLE, 0) == nil {
						off = append(off, fd)
					}
					continue
				}
				if err := change(kq, client, kqueue.EVFILT_READ, kqueue.EV_ADD, 0); err != nil {
					closeClient(client, clients, err.Error())
				}
			default:
				if _, ok := refused[fd]; ok {
					refused.drain(fd, buf)
					continue
				}
				echo(fd, ev, buf, clients)
			}
		}
		refused.expire()
		// Once the spare is back, the loop listens again.
		if len(off) > 0 && takeSpare(&spare) {
			off = slices.DeleteFunc(off, func(fd int) bool {
				return change(kq, fd, kqueue.EVFILT_READ, kqueue.EV_ENABLE, 0) == nil
			})
		}
	}
}

// change applies one change to fd's registration for filter: EV_SET, then
// kevent with a changelist of one and no event list. A registration stays
// in the kernel until it is deleted or fd is closed, so unlike select's set
// it is made once, not once per call. (Frevib's listener has EV_ADD |
// EV_ENABLE; EV_ADD enables a new registration by itself.) The kernel keeps
// udata with the registration and hands it back with its events; this
// stage leaves it 0.
func change(kq, fd int, filter int16, flags uint16, udata uint64) error {
	var change kqueue.Kevent_t
	kqueue.EV_SET(&change, fd, filter, flags, 0, 0, udata)
	_, err := kqueue.Kevent(kq, []kqueue.Kevent_t{change}, nil, nil)
	return err
}

// client is one slot of the connection table.
type client struct {
	fd   int    // the client's descriptor, or free
	addr string // where it connected from, for the logs
}

// free marks an unused slot. The article marks one with descriptor 0 and
// finds a free slot by searching for 0 (conn_index(0)); that works only as
// long as no client is ever accepted as descriptor 0, which is a real
// descriptor. -1 never is.
const free = -1

// slotOf walks the table for fd's slot, like the article's conn_index, and
// with free as fd it finds an unused slot. The walk costs one comparison per
// slot each time a client arrives or leaves: nothing for ten clients, more
// for ten thousand, and the reason stage 06 puts the slot number in the
// event itself.
func slotOf(clients []client, fd int) int {
	for i := range clients {
		if clients[i].fd == fd {
			return i
		}
	}
	return -1
}

// acceptClient takes one connection off the listener's queue, gives it a slot
// and greets it. It returns the descriptor, or false when there was none to
// take or no slot to give.
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
	clients[slot] = client{fd: fd, addr: addrString(sa)}
	log.Printf("accepted client fd=%d from %s", fd, clients[slot].addr)
	if err := writeAll(fd, []byte("welcome!\n")); err != nil {
		closeClient(fd, clients, err.Error())
		return -1, false
	}
	return fd, true
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
		err = change(kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0)
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

// echo reads what one ready client sent and writes it back.
func echo(fd int, ev kqueue.Kevent_t, buf []byte, clients []client) {
	// EV_EOF means the client will send nothing more, not that nothing is
	// left: ev.Data still counts the bytes waiting to be read. Close only
	// when they are all read and echoed (the article closes at once and
	// loses them). Fflags holds the socket's error, if it has one.
	if ev.Flags&kqueue.EV_EOF != 0 && ev.Data == 0 {
		reason := "end of file"
		if ev.Fflags != 0 {
			reason = unix.Errno(ev.Fflags).Error()
		}
		closeClient(fd, clients, reason)
		return
	}
	n, err := unix.Read(fd, buf)
	switch {
	case err == unix.EINTR || err == unix.EAGAIN:
		return // nothing lost; kevent will report the client again
	case err != nil:
		closeClient(fd, clients, err.Error())
		return
	case n == 0:
		closeClient(fd, clients, "end of file")
		return
	}
	if err := writeAll(fd, buf[:n]); err != nil {
		closeClient(fd, clients, err.Error())
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
func closeClient(fd int, clients []client, reason string) {
	slot := slotOf(clients, fd)
	log.Printf("client fd=%d from %s closed: %s", fd, clients[slot].addr, reason)
	unix.Close(fd)
	clients[slot] = client{fd: free}
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
	for _, c := range clients {
		if c.fd != free {
			closeClient(c.fd, clients, "server shutting down")
		}
	}
	for fd := range refused {
		unix.Close(fd)
	}
	kqueue.Close(kq)
}
