package kqueue_test

// Behaviours only Linux can show (F_SETPIPE_SZ), or that need a call x/sys
// offers only there (eventfd; FreeBSD has eventfd too, since 13). The
// rules are FreeBSD's all the same.

import (
	"encoding/binary"
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// A pipe resized after EV_ADD: the write filter's data follows the new
// capacity (filt_pipewrite() in sys_pipe.c reports the room left in the
// buffer as it is now).
func TestWritePipeResized(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	_, w := pipe(t)
	change(t, kq, w, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 0)
	before := waitOne(t, kq).Data
	size, err := unix.FcntlInt(uintptr(w), unix.F_SETPIPE_SZ, 2*int(before))
	if err != nil {
		t.Fatal(err)
	}
	if ev := waitOne(t, kq); ev.Data != int64(size) {
		t.Fatalf("after F_SETPIPE_SZ to %d: data = %d (was %d)", size, ev.Data, before)
	}
}

func eventfd(t *testing.T) int {
	t.Helper()
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, fd)
	return fd
}

func addToEventfd(t *testing.T, fd int, n uint64) {
	t.Helper()
	var buf [8]byte
	binary.NativeEndian.PutUint64(buf[:], n)
	if _, err := unix.Write(fd, buf[:]); err != nil {
		t.Fatal(err)
	}
}

// eventfd: the read filter's data is the counter, the write filter's the
// room left before it reaches its maximum (filt_eventfdread() and
// filt_eventfdwrite() in FreeBSD's sys_eventfd.c).
func TestEventfdData(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	fd := eventfd(t)
	change(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, kq, fd, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 2)
	addToEventfd(t, fd, 5)
	evs := waitAll(t, kq, 4)
	data := map[uint64]int64{}
	for _, ev := range evs {
		data[ev.Udata] = ev.Data
	}
	// "kn->kn_data = (int64_t)(UINT64_MAX - 1 - efd->efd_count)".
	room := uint64(1<<64 - 2 - 5)
	if len(evs) != 2 || data[1] != 5 || data[2] != int64(room) {
		t.Fatalf("got %s, want read data 5 and write data int64(2^64-2-5)", describeAll(evs))
	}
}

// Same inode, new file: every eventfd shares one anonymous inode, so an
// eventfd that takes a closed one's number looks like the same file to
// fstat. Its knotes went with the close (knote_fdclose()): a new EV_ADD
// works, and an event left waiting from the closed one is not delivered.
func TestEventfdReplacedIsNewFile(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	old := eventfd(t)
	addToEventfd(t, old, 1)
	change(t, kq, old, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, kq, old, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 2)
	waitAll(t, kq, 1) // the other event waits for the next call
	if err := unix.Dup2(eventfd(t), old); err != nil {
		t.Fatal(err)
	}
	noEvent(t, kq)
	change(t, kq, old, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 3)
	noEvent(t, kq) // the new counter is 0
	addToEventfd(t, old, 2)
	ev := waitOne(t, kq)
	expect(t, ev, old, kqueue.EVFILT_READ, 0, 3)
	if ev.Data != 2 {
		t.Fatalf("data = %d, want 2", ev.Data)
	}
}

// The same number reused again and again while the old files stay open
// elsewhere: every new eventfd under the number is a new file whose filter
// is the only one there (knote_fdclose() dropped the old file's at each
// close), and later changes to it find it. On Linux each old file keeps a
// registration under the number in the epoll instance (see
// rebuild_linux.go), so the package has to tell the current file from a
// pile of old ones, which epoll orders by their addresses in the kernel;
// their counters stay 0, so none of them fires.
func TestEventfdReplacedManyTimes(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	// Each eventfd stays open under its own descriptor (closed when the
	// test ends) once its copy under fd is replaced.
	fd, err := unix.Dup(eventfd(t))
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, fd)
	change(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0)
	const files = 32
	for i := 1; i < files; i++ {
		if err := unix.Dup2(eventfd(t), fd); err != nil {
			t.Fatal(err)
		}
		change(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, uint64(i))
		// These fail (ENOENT) if the filter just added is taken for
		// one of an old file's.
		change(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_DISABLE, 0, uint64(i))
		change(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_DELETE, 0, 0)
		change(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, uint64(i))
	}
	addToEventfd(t, fd, 3)
	ev := waitOne(t, kq)
	expect(t, ev, fd, kqueue.EVFILT_READ, 0, files-1)
	if ev.Data != 3 {
		t.Fatalf("data = %d, want 3", ev.Data)
	}
}

// A regular file: FreeBSD's filt_vfsread() reports it readable while the
// offset is short of its end, but epoll refuses regular files, so on Linux
// EV_ADD fails with EPERM (kqueue/README.md's table says so). The failed add
// leaves nothing behind: the descriptor has no filter to delete, and a pipe
// put under the same number afterwards is watched as any new descriptor is.
func TestRegularFileRefused(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	fd, err := unix.Open(t.TempDir()+"/file", unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, fd)
	changeFails(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, unix.EPERM)
	changeFails(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_DELETE, unix.ENOENT)
	changeFails(t, kq, fd, kqueue.EVFILT_WRITE, kqueue.EV_ADD, unix.EPERM)
	noEvent(t, kq)
	r, w := pipe(t)
	if err := unix.Dup2(r, fd); err != nil { // the file is closed; fd is the pipe now
		t.Fatal(err)
	}
	send(t, w, "x")
	change(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	expect(t, waitOne(t, kq), fd, kqueue.EVFILT_READ, 0, 1)
}
