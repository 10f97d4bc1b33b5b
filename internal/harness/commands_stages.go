package harness

// Commands for the scripts of stages 01-06 that look at the server from the
// outside: where it is blocked, how it copes with interrupted writes, and
// what it does when it runs out of descriptors. Registered in commands.go;
// they read like the others:
//
//	stuck [DURATION]       wait until the server is stuck in a write to a
//	                       client that does not read: one of its threads is
//	                       asleep inside write(2), and has been for DURATION
//	                       (default stuckFor) with no write of the server's
//	                       returning and no byte reaching the script's
//	                       clients meanwhile; `stuck 0s`: asleep in write now.
//	                       Read from /proc; on systems without it the
//	                       command says so in the log and waits for nothing.
//	interrupt on|off       from now on, keep sending SIGURG to every thread of
//	                       the server, a few thousand times a second, until
//	                       `interrupt off` or the end of the script. The Go
//	                       runtime takes SIGURG for its own use and otherwise
//	                       ignores it, so the server carries on; but a blocking
//	                       write(2) that has already moved some bytes when the
//	                       signal lands returns early, with a short count.
//	                       (Without /proc, the signals go to the process and the
//	                       kernel picks the thread.)
//	gone NAME              wait until the server has closed NAME's connection
//	                       completely, not just its sending side: send a byte
//	                       every few milliseconds until the kernel answers with
//	                       a reset, which only a closed socket sends
//	nofile N               lower the running server's limit on open files,
//	                       soft and hard, to N (prlimit(2)); the descriptors it
//	                       already has stay open. Linux only: a script that
//	                       uses it begins with [!linux] skip.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

func cmdStuck(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "stuck", "")
	wait := stuckFor
	switch len(args) {
	case 0:
	case 1:
		d, err := time.ParseDuration(args[0])
		ts.Check(err)
		wait = d
	default:
		ts.Fatalf("usage: stuck [DURATION]")
	}
	srv := runningServer(ts, "stuck")
	pid := srv.cmd.Process.Pid
	if !isDir(fmt.Sprintf("/proc/%d/task", pid)) {
		ts.Logf("stuck: this system has no /proc to look at the server's threads; not waiting")
		return
	}
	end := time.Now().Add(deadline)
	var since time.Time // when the present stretch in write began
	var then moved      // what had moved by then
	for {
		tid, ok := threadInWrite(pid)
		now := moved{writeCount(pid), unreadBytes(sessionOf(ts))}
		switch {
		case !ok || now != then:
			since, then = time.Now(), now
		case time.Since(since) >= wait:
			ts.Logf("thread %d of the server is asleep in write(2), and has been for %v", tid, wait)
			return
		}
		if srv.hasExited() {
			ts.Fatalf("stuck: the server exited; its stderr:\n%s", srv.logTailLocked())
		}
		if time.Now().After(end) {
			ts.Fatalf("stuck: no thread of the server was asleep in write(2) within %v", deadline)
		}
		time.Sleep(time.Millisecond) // polling /proc: there is no event to wait for
	}
}

// stuckFor is how long a server must sit in write(2), with nothing moving,
// before stuck calls it stuck. A thread found asleep in write may only be
// waiting for the client's kernel to make room, which it goes on doing for
// a while even when the client reads nothing (its receive buffer grows, and
// TCP's window probes find the room), in steps a few hundred milliseconds
// apart: 300 ms of quiet was once taken for stuck, and the write went on,
// returned, and the server noticed a signal by itself, without its send
// timeout. A write that is stuck for good moves nothing, for as long as one
// cares to look; a second has been enough in every run here.
const stuckFor = time.Second

// moved is how far a write of the server's has got: what its write(2)
// calls have returned, and what waits unread at the script's clients.
type moved struct {
	written string // writeCount
	unread  int    // unreadBytes
}

// writeCount is the server's count of bytes written so far (wchar in
// /proc/PID/io, proc(5)), which grows only as a write(2) returns; "" when it
// cannot be read.
func writeCount(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			return v
		}
	}
	return ""
}

// threadInWrite finds a thread of process pid that is inside write(2)
// (/proc/PID/task/TID/syscall starts with the call's number) and asleep there
// (its wchan names the kernel function it waits in; "0" means running).
func threadInWrite(pid int) (tid int, ok bool) {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, task := range tasks {
		call, err := os.ReadFile(filepath.Join(task, "syscall"))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(call))
		if len(fields) == 0 || fields[0] != strconv.Itoa(unix.SYS_WRITE) {
			continue
		}
		wchan, err := os.ReadFile(filepath.Join(task, "wchan"))
		if err != nil || strings.TrimSpace(string(wchan)) == "0" {
			continue
		}
		tid, _ := strconv.Atoi(filepath.Base(task))
		return tid, true
	}
	return 0, false
}

// threadNotInWrite finds a thread of process pid that is asleep in a system
// call other than write(2), or 0 when there is none (or no /proc). A thread
// that is running just then is passed over: it may be the writer, woken for
// a moment to find the socket still full.
func threadNotInWrite(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, task := range tasks {
		call, err := os.ReadFile(filepath.Join(task, "syscall"))
		fields := strings.Fields(string(call))
		if err != nil || len(fields) == 0 || fields[0] == "running" || fields[0] == strconv.Itoa(unix.SYS_WRITE) {
			continue
		}
		if tid, err := strconv.Atoi(filepath.Base(task)); err == nil {
			return tid
		}
	}
	return 0
}

// logTailLocked is logTail for a caller that does not hold the lock.
func (srv *server) logTailLocked() string {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.logTail()
}

// interrupter is the background sender of `interrupt on`.
type interrupter struct {
	stop chan struct{}
	done chan struct{}
	sent int // signals sent, read after done is closed
}

// interrupters holds the interrupters that are on, by session.
var interrupters sync.Map // *session -> *interrupter

func cmdInterrupt(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "interrupt", "")
	if len(args) != 1 || args[0] != "on" && args[0] != "off" {
		ts.Fatalf("usage: interrupt on|off")
	}
	s := sessionOf(ts)
	if args[0] == "off" {
		running, ok := interrupters.LoadAndDelete(s)
		if !ok {
			ts.Fatalf("interrupt off: not on")
		}
		in := running.(*interrupter)
		close(in.stop)
		<-in.done
		ts.Logf("sent %d signals to the server's threads", in.sent)
		return
	}
	srv := runningServer(ts, "interrupt")
	in := &interrupter{stop: make(chan struct{}), done: make(chan struct{})}
	if _, on := interrupters.LoadOrStore(s, in); on {
		ts.Fatalf("interrupt on: already on")
	}
	go in.run(srv.cmd.Process.Pid)
	ts.Defer(func() {
		if _, ok := interrupters.LoadAndDelete(s); ok {
			close(in.stop)
			<-in.done
		}
	})
}

// run signals every thread of pid until told to stop or the process is gone.
func (in *interrupter) run(pid int) {
	defer close(in.done)
	tasks := fmt.Sprintf("/proc/%d/task", pid)
	for {
		select {
		case <-in.stop:
			return
		default:
		}
		entries, err := os.ReadDir(tasks)
		switch {
		case err == nil:
			for _, e := range entries {
				if tid, err := strconv.Atoi(e.Name()); err == nil && tgkill(pid, tid, syscall.SIGURG) == nil {
					in.sent++
				}
			}
		case !isDir("/proc/self"):
			if syscall.Kill(pid, syscall.SIGURG) == nil {
				in.sent++
			}
		default:
			return // the server has exited
		}
		time.Sleep(200 * time.Microsecond) // the pace of the interruptions
	}
}

func cmdNofile(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "nofile", "")
	if len(args) != 1 {
		ts.Fatalf("usage: nofile N")
	}
	n, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil || n < 1 {
		ts.Fatalf("nofile: %s: want a number of files", args[0])
	}
	srv := runningServer(ts, "nofile")
	switch err := prlimitNofile(srv.cmd.Process.Pid, n); {
	case err == errNoPrlimit:
		ts.Fatalf("nofile: this system has no prlimit(2) to lower a running server's limit; begin the script with [!linux] skip")
	case err != nil:
		ts.Fatalf("nofile: %v", err)
	}
}

// errNoPrlimit says that this system cannot change another process's limits.
var errNoPrlimit = errors.New("no prlimit(2)")

func cmdGone(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "gone", "")
	c := clientOf(ts, "gone", args, 1, "NAME")
	end := time.Now().Add(deadline)
	for sent := 0; ; sent++ {
		c.conn.SetWriteDeadline(time.Now().Add(deadline))
		_, err := c.conn.Write([]byte{'.'})
		switch {
		case errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET):
			ts.Logf("%s: the server's socket is closed (%d probe bytes were taken before the reset)", c.name, sent)
			return
		case err != nil:
			ts.Fatalf("gone: client %s: %v", c.name, err)
		case time.Now().After(end):
			ts.Fatalf("gone: the server still held client %s's connection open after %v", c.name, deadline)
		}
		time.Sleep(5 * time.Millisecond) // probing: a closed socket sends no event to wait for
	}
}
