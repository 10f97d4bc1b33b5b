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
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fdSetSize is FD_SETSIZE, how many descriptors an fd_set has room for: 1024
// on Linux, macOS, FreeBSD, OpenBSD and DragonFly, 256 on NetBSD. A descriptor numbered fdSetSize or above
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
	serve(stop, listener)
}

// serve is the event loop: it waits for whatever the kernel reports and
// handles each event, until a signal says stop.
func serve(stop, listener int) {
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
		var timeout *unix.Timeval // for ever, but see listenTimeout
		if ts := listenTimeout(watched.IsSet(listener)); ts != nil {
			tv := unix.NsecToTimeval(ts.Nano())
			timeout = &tv
		}
		if _, err := unix.Select(maxfd+1, &readable, nil, nil, timeout); err != nil {
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
					if spare < 0 {
						watched.Clear(listener) // see refuseOutOfFiles
					}
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
		// Without its spare descriptor the loop left the listener out of the
		// set (see acceptClient); once the spare is back, it is watched again.
		if !watched.IsSet(listener) && takeSpare(&spare) {
			watched.Set(listener)
		}
	}
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
	if fd >= fdSetSize {
		log.Printf("refused client fd=%d from %s: beyond FD_SETSIZE (%d)", fd, addrString(sa), fdSetSize)
		unix.Close(fd)
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
