package kqueue_test

// The rebuild of the emulation's epoll instance (rebuild_linux.go) as the
// goroutines asleep in Kevent see it.

import (
	"testing"
	"time"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// Two goroutines asleep in kevent, and a descriptor closed while a dup
// keeps its socket open: the knote went with the close (knote_fdclose() in
// kern_event.c), and whatever the socket does later concerns nobody. The
// emulation's registration outlives the close; for a socket that was not
// connected when it was added it is edge-triggered, so each edge wakes one
// sleeper, which finds nothing for the caller and sleeps again. The second
// edge seen in a row makes the sleeper that sees it replace the epoll
// instance; the other sleeper is still asleep in the old one, where nothing
// becomes ready any more, and must be woken to wait in the new one: there,
// each is then woken by a user event of its own. Not parallel: the closed
// number must stay free until the change that finds it closed.
func TestRebuildWakesSleeperOfOldInstance(t *testing.T) {
	kq := newQueue(t)
	l, path := unixListener(t)
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	change(t, kq, s, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1) // not connected: edge-triggered
	dup, err := unix.Dup(s)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, dup)
	closeNow(t, s)
	changeFails(t, kq, s, kqueue.EVFILT_READ, kqueue.EV_DELETE, unix.EBADF) // forgotten
	if err := unix.Connect(dup, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	peer, _, err := unix.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, peer)
	// The hang-up the socket showed when it was added is an edge too:
	// let a poll take it in, and the next one see nothing.
	noEvent(t, kq)
	noEvent(t, kq)
	if kqueue.StaleSeen(kq) != 0 {
		t.Fatal("a leftover is still being reported")
	}
	got := make(chan uint64, 2)
	for range 2 {
		go func() {
			evs := make([]kqueue.Kevent_t, 1)
			if n, _ := kevent(kq, evs, &mustCome); n != 1 {
				got <- 0
				return
			}
			got <- evs[0].Udata
		}()
	}
	asleep(t, kq, 2)
	send(t, peer, "x") // the first edge: a sleeper sees the leftover
	staleSeen(t, kq, true)
	asleep(t, kq, 2)
	send(t, peer, "y") // the second: a sleeper sees it again and rebuilds
	staleSeen(t, kq, false)
	// Added only now, the user events are in the new instance alone.
	for ident := 10; ident < 12; ident++ {
		change(t, kq, ident, kqueue.EVFILT_USER, kqueue.EV_ADD|kqueue.EV_CLEAR|kqueue.EV_ONESHOT, 0, uint64(ident))
		trigger(t, kq, ident, kqueue.NOTE_TRIGGER, 0, uint64(ident))
	}
	seen := map[uint64]bool{}
	for range 2 {
		seen[<-got] = true
	}
	if !seen[10] || !seen[11] {
		t.Fatalf("the sleepers got %v, want one user event each", seen)
	}
}

// staleSeen waits until the queue's last wait has (or, once it has rebuilt,
// has no longer) seen a leftover.
func staleSeen(t *testing.T, kq int, want bool) {
	t.Helper()
	for deadline := time.Now().Add(mustComeWithin()); (kqueue.StaleSeen(kq) != 0) != want; time.Sleep(50 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no leftover seen = %v within %v", want, mustComeWithin())
		}
	}
}
