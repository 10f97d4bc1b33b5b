package harness

// Commands that make the server's world fail the way a kernel or a terminal
// may, to show that a failure path works (registered in commands.go):
//
//	strace [-thread NAME] ARGS...
//	                       attach strace(1) to the running server, to all of its
//	                       threads (or, with -thread, only to the one whose name
//	                       is NAME, as ps -L shows it), with ARGS: say
//	                       -e inject=openat:error=ENFILE -P /dev/null, which
//	                       makes every open of /dev/null fail from now on. It
//	                       returns once strace has attached, and strace stays
//	                       until `strace detach`, the server's exit or the end of
//	                       the script. What strace traces goes nowhere; the
//	                       injection is the point. Needs [strace].
//	strace detach          detach it: the server's system calls work again
//	logjam on|off          stop reading the server's stderr and fill the pipe it
//	                       writes to, so that its next log line blocks, as when
//	                       the terminal it logs to has its output paused
//	                       (Ctrl-S); `logjam off` reads again. Linux only (it
//	                       asks the pipe's size with F_GETPIPE_SZ).
//
// The condition [strace] holds where strace is installed and may attach to
// a process this test started (ptrace(2) allowed).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// A tracer is a running strace attached to the server.
type tracer struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when strace has exited
	mu   sync.Mutex
	said []string // strace's own messages (its stderr)
}

// tracers holds each session's tracer.
var tracers sync.Map // *session -> *tracer

func cmdStrace(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "strace", "")
	s := sessionOf(ts)
	if len(args) == 1 && args[0] == "detach" {
		t, ok := tracers.LoadAndDelete(s)
		if !ok {
			ts.Fatalf("strace detach: no strace attached")
		}
		t.(*tracer).stop()
		return
	}
	if len(args) == 0 {
		ts.Fatalf("usage: strace [-thread NAME] ARGS..., or strace detach")
	}
	srv := runningServer(ts, "strace")
	pid := srv.cmd.Process.Pid
	target := []string{"-f", "-p", strconv.Itoa(pid)}
	if args[0] == "-thread" {
		if len(args) < 3 {
			ts.Fatalf("usage: strace -thread NAME ARGS...")
		}
		tid, err := threadNamed(pid, args[1])
		if err != nil {
			ts.Fatalf("strace: %v", err)
		}
		target, args = []string{"-p", strconv.Itoa(tid)}, args[2:]
	}
	if _, ok := tracers.Load(s); ok {
		ts.Fatalf("strace: one is attached already; strace detach first")
	}
	t := &tracer{done: make(chan struct{})}
	t.cmd = exec.Command("strace", append(append([]string{"-o", "/dev/null"}, target...), args...)...)
	stderr, err := t.cmd.StderrPipe()
	ts.Check(err)
	ts.Check(t.cmd.Start())
	attached := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.mu.Lock()
			t.said = append(t.said, sc.Text())
			t.mu.Unlock()
			if strings.Contains(sc.Text(), " attached") {
				select {
				case <-attached:
				default:
					close(attached)
				}
			}
		}
		t.cmd.Wait()
		close(t.done)
	}()
	tracers.Store(s, t)
	ts.Defer(func() {
		if t, ok := tracers.LoadAndDelete(s); ok {
			t.(*tracer).stop()
		}
	})
	select {
	case <-attached:
		ts.Logf("strace %s", strings.Join(t.cmd.Args[1:], " "))
	case <-t.done:
		ts.Fatalf("strace exited before it attached: %s", t.messages())
	case <-time.After(deadline):
		ts.Fatalf("strace had not attached within %v: %s", deadline, t.messages())
	}
}

// stop detaches strace (SIGTERM makes it detach and exit) and waits for it.
func (t *tracer) stop() {
	t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(deadline):
		t.cmd.Process.Kill()
		<-t.done
	}
}

func (t *tracer) messages() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.said, "; ")
}

// threadNamed finds the thread of process pid whose name (comm) is name.
func threadNamed(pid int, name string) (int, error) {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	var names []string
	for _, task := range tasks {
		comm, err := os.ReadFile(filepath.Join(task, "comm"))
		if err != nil {
			continue
		}
		if strings.TrimSpace(string(comm)) == name {
			return strconv.Atoi(filepath.Base(task))
		}
		names = append(names, strings.TrimSpace(string(comm)))
	}
	return 0, fmt.Errorf("the server has no thread named %q; its threads are named %q", name, names)
}

// straceWorks tells whether strace can attach to a child of this process:
// it is installed, and ptrace(2) is allowed here.
var straceWorks = sync.OnceValue(func() bool {
	if _, err := exec.LookPath("strace"); err != nil {
		return false
	}
	child := exec.Command("sleep", "10")
	if child.Start() != nil {
		return false
	}
	defer func() {
		child.Process.Kill()
		child.Wait()
	}()
	probe := exec.Command("strace", "-o", "/dev/null", "-e", "trace=none", "-p", strconv.Itoa(child.Process.Pid))
	stderr, err := probe.StderrPipe()
	if err != nil || probe.Start() != nil {
		return false
	}
	defer func() {
		probe.Process.Signal(syscall.SIGTERM)
		probe.Wait()
	}()
	line, _ := bufio.NewReader(stderr).ReadString('\n')
	return strings.Contains(line, " attached")
})

func cmdLogjam(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "logjam", "")
	if len(args) != 1 || args[0] != "on" && args[0] != "off" {
		ts.Fatalf("usage: logjam on|off")
	}
	srv := runningServer(ts, "logjam")
	if args[0] == "off" {
		srv.unjam()
		return
	}
	if err := srv.jam(); err != nil {
		ts.Fatalf("logjam: %v", err)
	}
	ts.Defer(srv.unjam)
}

// jam stops the stderr reader and fills the pipe with empty lines (which
// the reader drops when it reads again). It returns once the pipe is full,
// so that the server's next write to stderr blocks. The filler goes in
// through a descriptor of its own (Linux lets a pipe be opened again by its
// /proc name), non-blocking, so that the server's end stays as it was and
// the harness knows when no byte more fits.
func (srv *server) jam() error {
	srv.mu.Lock()
	if srv.jammed {
		srv.mu.Unlock()
		return errors.New("already on")
	}
	srv.jammed = true
	r := srv.stderrR
	srv.mu.Unlock()
	// Raw system calls: an *os.File would wait for room in the pipe
	// instead of saying EAGAIN.
	w, err := syscall.Open(fmt.Sprintf("/proc/self/fd/%d", r.Fd()), syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(w)
	// A reader asleep in read(2) wakes for this line and takes what is
	// there; then it stops before its next read.
	if _, err := syscall.Write(w, []byte("\n")); err != nil {
		return err
	}
	if !srv.waitUntil(func() bool { return srv.parked || srv.stderrEOF }) {
		return fmt.Errorf("the reader of the server's stderr did not stop within %v", deadline)
	}
	block := []byte(strings.Repeat("\n", 4096))
	for _, p := range [][]byte{block, block[:1]} {
		for {
			if _, err := syscall.Write(w, p); err == syscall.EAGAIN {
				break
			} else if err != nil {
				return err
			}
		}
	}
	return nil
}

// unjam lets the stderr reader go on.
func (srv *server) unjam() {
	srv.update(func() { srv.jammed = false })
}

// jamReader is the server's stderr as the reader sees it: while the log is
// jammed, a read waits.
type jamReader struct {
	srv *server
	r   io.Reader
}

func (j jamReader) Read(p []byte) (int, error) {
	srv := j.srv
	srv.mu.Lock()
	for srv.jammed {
		if !srv.parked {
			srv.parked = true
			srv.wake()
		}
		changed := srv.changed
		srv.mu.Unlock()
		<-changed
		srv.mu.Lock()
	}
	srv.parked = false
	srv.mu.Unlock()
	return j.r.Read(p)
}
