package kqueue

// White-box tests of the Linux emulation's own bookkeeping.

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Close frees everything the queue held: the epoll instance, the timerfds,
// the EV_CLEAR instances and the sock_diag socket. Each is identified by
// its inode, since a parallel test may take a freed descriptor number at
// once.
func TestCloseFreesEverything(t *testing.T) {
	t.Parallel()
	kq, err := Kqueue()
	if err != nil {
		t.Fatal(err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	var changes [3]Kevent_t
	EV_SET(&changes[0], 1, EVFILT_TIMER, EV_ADD, 0, 1000, 0)
	EV_SET(&changes[1], fds[0], EVFILT_READ, EV_ADD|EV_CLEAR, 0, 0, 0)
	EV_SET(&changes[2], fds[0], EVFILT_WRITE, EV_ADD|EV_CLEAR, 0, 0, 0)
	if _, err := Kevent(kq, changes[:], nil, nil); err != nil {
		t.Fatal(err)
	}
	q := lookup(kq)
	q.mu.Lock()
	owned := []int{kq, q.idents[identKey{EVFILT_TIMER, 1}].dfd, q.clear[0], q.clear[1]}
	q.mu.Unlock()
	inodes := make([]uint64, len(owned))
	for i, fd := range owned {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatalf("descriptor %d: %v", fd, err)
		}
		inodes[i] = st.Ino
	}

	if err := Close(kq); err != nil {
		t.Fatal(err)
	}
	for i, fd := range owned {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err == nil && st.Ino == inodes[i] {
			t.Errorf("descriptor %d still open after Close", fd)
		}
	}
	if lookup(kq) == q {
		t.Error("the queue's bookkeeping is still registered")
	}
	if q.files != nil || q.idents != nil || q.pending != nil {
		t.Error("the queue's bookkeeping was not freed")
	}
}

// A steady event loop allocates nothing per Kevent call. Not parallel:
// testing.AllocsPerRun counts the whole process's allocations.
func TestKeventDoesNotAllocate(t *testing.T) {
	kq, err := Kqueue()
	if err != nil {
		t.Fatal(err)
	}
	defer Close(kq)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	var changes [2]Kevent_t
	EV_SET(&changes[0], fds[1], EVFILT_READ, EV_ADD, 0, 0, 0)
	EV_SET(&changes[1], fds[1], EVFILT_WRITE, EV_ADD, 0, 0, 0)
	if _, err := Kevent(kq, changes[:], nil, nil); err != nil {
		t.Fatal(err)
	}
	unix.Write(fds[0], []byte("x"))
	events := make([]Kevent_t, 1) // short, so that the pending list is used too
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := Kevent(kq, nil, events, nil); n != 1 || err != nil {
			t.Fatalf("Kevent = %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per call, want 0", allocs)
	}
}
