package harness

// make run, as the README's Set-up describes it: stdout holds the server's
// `listening on` lines and nothing else, make's own command lines go to
// stderr, a kill of make is passed on to the server, and Ctrl-C, which a
// terminal sends to every process of the foreground group, ends the server
// (exit 0) and then make, by the same signal (130 in a shell).

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMakeRun(t *testing.T) {
	t.Parallel()
	gnuMake := findGNUMake(t)
	root := mustRoot(t)
	if m, _ := filepath.Glob(filepath.Join(root, "02-*")); len(m) == 0 {
		t.Skip("needs stage 02")
	}
	// Both cases build bin/02-kqueue-basic, as make run does for a learner:
	// one after the other, not at once.
	for _, tc := range []struct {
		name   string
		signal func(make *os.Process) error
		sig    syscall.Signal
		log    string
	}{
		// Ctrl-C: the terminal signals the whole foreground process group,
		// make and the server alike. make does not pass SIGINT on, so the
		// server gets it once.
		{"ctrl-c", func(p *os.Process) error { return syscall.Kill(-p.Pid, syscall.SIGINT) }, syscall.SIGINT, "shutting down on interrupt"},
		// kill: make alone gets SIGTERM, and passes it on to the server.
		{"kill", func(p *os.Process) error { return p.Signal(syscall.SIGTERM) }, syscall.SIGTERM, "shutting down on terminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := startMakeRun(t, gnuMake, root)
			if err := tc.signal(run.cmd.Process); err != nil {
				t.Fatal(err)
			}
			st := run.wait(t)

			// make waits for the server, then ends itself by the signal it
			// got: a shell reports 128 + the signal's number.
			if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != tc.sig {
				t.Errorf("make ended with %v; want it ended by %v (status %d in a shell), as the README says", st, tc.sig, 128+int(tc.sig))
			}
			stderr := run.stderr.String()
			// The server got the signal once, and exited 0: make says
			// nothing of a recipe that succeeded, and "*** [...] Error N"
			// or "Interrupt" of one that failed or died of a signal.
			if n := strings.Count(stderr, tc.log); n != 1 {
				t.Errorf("the server logged %q %d times; want once. stderr:\n%s", tc.log, n, stderr)
			}
			if strings.Contains(stderr, "***") {
				t.Errorf("make says the server failed; stderr:\n%s", stderr)
			}
			// make's command lines are on stderr, as one can type them.
			for _, want := range []string{"cd 02-kqueue-basic && go build -o ", "exec bin/02-kqueue-basic -addr 127.0.0.1:0"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not show make's command %q:\n%s", want, stderr)
				}
			}
			// stdout: the one listening line, nothing before or after.
			if len(run.stdout) != 1 {
				t.Errorf("stdout held %d lines, want only the listening line: %q", len(run.stdout), run.stdout)
			}
		})
	}
}

// findGNUMake returns the GNU make on PATH (gmake on the BSDs, where make is
// another program), or skips the test.
func findGNUMake(t *testing.T) string {
	for _, name := range []string{"gmake", "make"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if out, err := exec.Command(path, "--version").Output(); err == nil && bytes.HasPrefix(out, []byte("GNU Make")) {
			return path
		}
	}
	t.Skip("no GNU make on PATH")
	return ""
}

// A makeRun is `make run STAGE=02` in a process group of its own, as a
// terminal's shell starts a foreground job.
type makeRun struct {
	cmd    *exec.Cmd
	stderr syncBuffer
	pipe   *io.PipeWriter // make's stdout, read line by line:
	first  chan string    // its first line, or "" at its end
	read   chan []string  // every line, at its end
	stdout []string       // every line, once wait has returned
}

// listening is the line the stage prints once it is ready.
var listening = regexp.MustCompile(`^listening on tcp (127\.0\.0\.1:\d+)$`)

// startMakeRun starts make run, waits for the first line on stdout, which
// must be the listening line, and checks that the server echoes there.
func startMakeRun(t *testing.T, gnuMake, root string) *makeRun {
	r := &makeRun{first: make(chan string, 1), read: make(chan []string, 1)}
	r.cmd = exec.Command(gnuMake, "run", "STAGE=02", "ARGS=-addr 127.0.0.1:0")
	r.cmd.Dir = root
	// As typed in a shell: not a sub-make of a make that runs go test (it
	// would print "Entering directory" on stdout), and no trace.
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "KQUEUE_TRACE":
			continue
		}
		r.cmd.Env = append(r.cmd.Env, kv)
	}
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.cmd.Stderr = &r.stderr
	pr, pw := io.Pipe()
	r.cmd.Stdout, r.pipe = pw, pw
	go func() {
		var lines []string
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if lines = append(lines, sc.Text()); len(lines) == 1 {
				r.first <- lines[0]
			}
		}
		if len(lines) == 0 {
			r.first <- ""
		}
		r.read <- lines
	}()

	// A program started with SIGINT ignored (a script's background job)
	// hands that on to its children, and make would then ignore Ctrl-C.
	// While SIGINT is caught here, a child starts with the default, as a
	// terminal's shell gives its foreground jobs.
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, os.Interrupt)
	err := r.cmd.Start()
	signal.Stop(caught)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			r.cmd.Wait()
		}
	})

	// The first run builds the stage, hence a generous bound.
	select {
	case line := <-r.first:
		m := listening.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("make run's first line on stdout is %q, not the listening line; stderr:\n%s", line, r.stderr.String())
		}
		echoes(t, m[1])
	case <-time.After(2 * time.Minute):
		t.Fatalf("make run printed no listening line within 2 minutes; stderr:\n%s", r.stderr.String())
	}
	return r
}

// echoes checks that the server at addr sends a line back.
func echoes(t *testing.T, addr string) {
	c, err := net.DialTimeout("tcp", addr, deadline)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(deadline))
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := bufio.NewReader(c).ReadString('\n'); got != "hello\n" {
		t.Fatalf("the server at %s echoed %q (%v), want \"hello\\n\"", addr, got, err)
	}
}

// wait waits for make to end, with the server, and returns how it ended.
func (r *makeRun) wait(t *testing.T) *os.ProcessState {
	done := make(chan struct{})
	go func() {
		r.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(deadline):
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("make run was still running %v after the signal; stderr:\n%s", deadline, r.stderr.String())
	}
	r.pipe.Close()
	r.stdout = <-r.read
	return r.cmd.ProcessState
}

// syncBuffer is a bytes.Buffer that exec's copying goroutine may write
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
