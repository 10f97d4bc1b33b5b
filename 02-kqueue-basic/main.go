// Stage 02: the same echo server on the smallest correct kqueue loop.
//
// Stage 01 told the kernel everything it watches on every call and then
// searched the answer. Here the kernel keeps the list: each descriptor is
// registered once with kevent(2) (EVFILT_READ), and each call hands back
// only the events that happened, each naming its descriptor in Ident. The
// echo itself is unchanged.
//
//	go run ./02-kqueue-basic      # in one terminal
//	nc localhost 8080             # in another; type a line, get it back
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

	kq, err := kqueue.Kqueue()
	if err != nil {
		log.Fatalf("kqueue: %v", err)
	}
	if err := change(kq, listener, kqueue.EVFILT_READ, kqueue.EV_ADD, 0); err != nil {
		log.Fatalf("kevent: listener: %v", err)
	}
	if err := change(kq, stop, kqueue.EVFILT_READ, kqueue.EV_ADD, 0); err != nil {
		log.Fatalf("kevent: signal pipe: %v", err)
	}
	serve(kq, stop, listener)
}

// serve is the event loop: it waits for whatever the kernel reports and
// handles each event, until a signal says stop.
func serve(kq, stop, listener int) {
	spare := openSpare()
	off := []int{}                  // listeners disabled for want of a spare (see refuseOutOfFiles)
	clients := make(map[int]string) // client descriptor -> its address, for the logs
	buf := make([]byte, 64<<10)
	events := make([]kqueue.Kevent_t, 64)

	for {
		// Nothing is copied in and nothing is scanned: the kernel already
		// holds the registrations, and it fills events with only those that
		// fired, at most len(events) of them per call.
		n, err := kqueue.Kevent(kq, nil, events, listenTimeout(len(off) == 0))
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
			switch fd {
			case stop:
				shutdown(kq, stop, listener, clients)
				return
			case listener:
				client, ok := acceptClient(fd, &spare, clients)
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
				echo(fd, ev, buf, clients)
			}
		}
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

// acceptClient takes one connection off the listener's queue and returns its
// descriptor, or false when there was none to take.
func acceptClient(listener int, spare *int, clients map[int]string) (int, bool) {
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
	clients[fd] = addrString(sa)
	log.Printf("accepted client fd=%d from %s", fd, clients[fd])
	return fd, true
}

// echo reads what one ready client sent and writes it back.
func echo(fd int, ev kqueue.Kevent_t, buf []byte, clients map[int]string) {
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
func closeClient(fd int, clients map[int]string, reason string) {
	log.Printf("client fd=%d from %s closed: %s", fd, clients[fd], reason)
	unix.Close(fd)
	delete(clients, fd)
}

// shutdown runs when the self-pipe says a signal came: it reads which one,
// then closes the listener and every client so each sees an orderly close.
func shutdown(kq, stop, listener int, clients map[int]string) {
	var b [1]byte
	unix.Read(stop, b[:])
	log.Printf("shutting down on %v", syscall.Signal(b[0]))
	unix.Close(listener)
	for fd := range clients {
		closeClient(fd, clients, "server shutting down")
	}
	kqueue.Close(kq)
}
