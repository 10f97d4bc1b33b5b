package harness

// make watch and make check (internal/cmd/check), driven as a learner
// drives them: TestWatch builds stage 03 from a copy of 02 one step at a
// time, the steps of 03's order file, and watches the count of passing
// behaviours rise after each save; TestExerciseLoop (exercise_loop_test.go)
// reads make check's summary of a failing and of a passing exercise.

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A step is one save of a learner building a stage from the one before:
// a few edits, after which more of the stage's scripts pass than before.
type step struct {
	name  string
	edits []edit
}

// steps holds, by stage, a way from the stage before to that stage, in the
// order of its scripts' path (testdata/NN-name/order). Each step's edits
// add to the last step's code; the last step passes every script. They are
// a learner's answer, not the reference's: 03's pool is the map of 02 with
// a size, not a table of slots.
var steps = map[string][]step{
	"03-connpool": {
		{"greet", []edit{{
			fn: "acceptClient", at: `log.Printf("accepted client fd=%d from %s", fd, clients[fd])`,
			code: `if err := writeAll(fd, []byte("welcome!\n")); err != nil {
				closeClient(fd, clients, err.Error())
				return -1, false
			}`,
		}}},
		{"-max", []edit{
			{code: `// poolSize is how many clients the server holds at once (-max).
				var poolSize = 10`},
			{
				fn: "main", at: "addr := flag.String(\"addr\", \"localhost:8080\", \"TCP `host:port` to listen on; port 0 picks a free port\")",
				code: `maxClients := flag.Int("max", 10, "how many clients the server holds at once")`,
			},
			{
				fn: "main", at: "log.SetFlags(log.Ltime)",
				code: `if *maxClients < 1 {
					log.Fatalf("bad -max %d: the pool needs at least one slot", *maxClients)
				}
				poolSize = *maxClients`,
			},
		}},
		{"refuse when full", []edit{
			{code: `// refuse tells a client that finds every slot taken why, and closes it.
				func refuse(fd int, sa unix.Sockaddr) {
					log.Printf("refused client fd=%d from %s: server full (%d clients)", fd, addrString(sa), poolSize)
					writeAll(fd, []byte("server full\n"))
					unix.Close(fd)
				}`},
			{
				fn: "acceptClient", at: "if err != nil",
				code: `if len(clients) >= poolSize {
					refuse(fd, sa)
					return -1, false
				}`,
			},
		}},
		{"the lingering close", []edit{
			{code: `// lingering holds the refused clients: told why and half-closed, each
				// is read from until it closes its end or its time is up.
				var lingering = struct {
					kq    int
					until map[int]time.Time
				}{until: map[int]time.Time{}}

				// lingerTimeout is how long the loop may wait: until the first
				// refused client's time is up, or for ever.
				func lingerTimeout() *unix.Timespec {
					if len(lingering.until) == 0 {
						return nil
					}
					var first time.Time
					for _, t := range lingering.until {
						if first.IsZero() || t.Before(first) {
							first = t
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

				// expireLingering closes the refused clients whose time is up.
				func expireLingering() {
					for fd, t := range lingering.until {
						if !time.Now().Before(t) {
							unix.Close(fd)
							delete(lingering.until, fd)
						}
					}
				}`},
			{fn: "serve", at: "spare := openSpare()", code: `lingering.kq = kq`},
			{
				fn: "serve", at: "n, err := kqueue.Kevent(kq, nil, events, listenTimeout(len(off) == 0))", replace: true,
				code: `n, err := kqueue.Kevent(kq, nil, events, earlier(lingerTimeout(), listenTimeout(len(off) == 0)))`,
			},
			{
				fn: "serve", at: "default:", into: true,
				code: `if until, ok := lingering.until[fd]; ok {
					n, err := unix.Read(fd, buf)
					if err == unix.EAGAIN || err == unix.EINTR || n > 0 && time.Now().Before(until) {
						continue
					}
					unix.Close(fd)
					delete(lingering.until, fd)
					continue
				}`,
			},
			{fn: "serve", at: "for _, ev := range events[:n]", code: `expireLingering()`},
			{
				fn: "refuse", at: "unix.Close(fd)", replace: true,
				code: `err := unix.Shutdown(fd, unix.SHUT_WR)
				if err == nil {
					err = unix.SetNonblock(fd, true)
				}
				if err == nil {
					err = change(lingering.kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0)
				}
				if err != nil {
					unix.Close(fd)
					return
				}
				lingering.until[fd] = time.Now().Add(2 * time.Second)`,
			},
			{
				fn: "shutdown", at: "unix.Close(listener)",
				code: `for fd := range lingering.until {
					unix.Close(fd)
				}`,
			},
		}},
	},
}

// TestWatch is 03's exercise under make watch: a copy of 02, then the steps
// above saved one at a time, the first once with a slip that does not
// compile. After each
// save watch must show a new view with more behaviours done than the one
// before, in the end all of them; the compile error must show as the
// compiler printed it; and Ctrl-C (SIGINT, here) must end watch with status 0.
//
// watch writes to a pipe, not a file: the test reads each view as watch
// writes it, and so waits for nothing but the view itself. (The whole
// output is kept in a file for the failure message.)
func TestWatch(t *testing.T) {
	if raceDetector {
		// What this test checks runs in other processes, watch and the go
		// test it starts, which -race does not build for the detector: under
		// it the test would take its half minute again to check nothing more.
		t.Skip("watch and the checks it runs are other processes, not built with -race")
	}
	t.Parallel()
	root, _, to, dir := start03(t)
	main := filepath.Join(dir, "main.go")

	cmd := exec.Command(buildCheck(t, root), "-watch", "03", dir)
	// Twice a learner's deadline: the steps must pass what they should on a
	// busy machine too, while a script not yet passing still fails soon.
	cmd.Env = append(withoutWorkbookVars(), "WORKBOOK_DEADLINE=6s")
	output := filepath.Join(t.TempDir(), "watch.out")
	out, err := os.Create(output)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	views := make(chan []string)
	go readViews(io.TeeReader(pipe, out), views)
	next := func(after string) []string {
		select {
		case v, ok := <-views:
			if !ok {
				t.Fatalf("watch ended after %s; its output:\n%s", after, readFile(t, output))
			}
			return v
		case <-time.After(2 * time.Minute):
			t.Fatalf("no view for two minutes after %s; watch's output:\n%s", after, readFile(t, output))
		}
		return nil
	}

	view := next("it started")
	t.Logf("%s", view[0])
	done, total := behaviours(t, view)
	if done >= total || !hasLine(view, `^first to fix: \S+ \(\d\d-`) || !hasLine(view, `^  line \d+: `) {
		t.Errorf("a copy of 02 as stage 03: the view does not show a first failure, with its line:\n%s", strings.Join(view, "\n"))
	}

	src := []byte(readFile(t, main))
	for i, s := range steps[to.Name] {
		if src, err = patchAll(src, s.edits); err != nil {
			t.Fatalf("step %q: %v", s.name, err)
		}
		if i == 0 {
			// The first step saved with a slip: the compiler's errors, and
			// nothing else but the first line, which says whose they are.
			save(t, main, string(src)+"\nfunc broken() { undefinedName() }\n")
			view = next("a save that does not compile")
			t.Logf("%s", view[0])
			if !strings.Contains(view[0], "does not compile") || len(view) < 2 {
				t.Errorf("after a save that does not compile, the view is not the compiler's errors:\n%s", strings.Join(view, "\n"))
			}
			for _, line := range view[1:] {
				if !regexp.MustCompile(`^\./main\.go:\d+:\d+: `).MatchString(line) {
					t.Errorf("after a save that does not compile, the view has a line that is not the compiler's: %q", line)
				}
			}
		}
		save(t, main, string(src))
		view = next("step " + s.name)
		d, n := behaviours(t, view)
		t.Logf("%s\n\tafter step %q: %d of %d behaviours done", view[0], s.name, d, n)
		if d <= done {
			t.Errorf("after step %q, %d behaviours done, no more than the %d before it:\n%s", s.name, d, done, strings.Join(view, "\n"))
		}
		done, total = d, n
	}
	if done != total || hasLine(view, `^first to fix`) {
		t.Errorf("after every step, %d of %d behaviours done:\n%s", done, total, strings.Join(view, "\n"))
	}

	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("watch after SIGINT: %v, expected exit status 0", err)
	}
}

// readViews sends each view that watch writes, when its output is not a
// terminal: its lines, up to a form feed.
func readViews(r io.Reader, views chan<- []string) {
	defer close(views)
	sc := bufio.NewScanner(r)
	var view []string
	for sc.Scan() {
		if sc.Text() == "\f" {
			views <- view
			view = nil
			continue
		}
		if len(view) > 0 || sc.Text() != "" {
			view = append(view, sc.Text())
		}
	}
}

// behaviours returns the count of a view's progress bar.
func behaviours(t *testing.T, view []string) (done, total int) {
	t.Helper()
	re := regexp.MustCompile(`(\d+) of (\d+) behaviours done$`)
	for _, line := range view {
		if m := re.FindStringSubmatch(line); m != nil {
			done, _ = strconv.Atoi(m[1])
			total, _ = strconv.Atoi(m[2])
			return done, total
		}
	}
	t.Fatalf("the view has no count of behaviours:\n%s", strings.Join(view, "\n"))
	return 0, 0
}

func hasLine(lines []string, pattern string) bool {
	re := regexp.MustCompile(pattern)
	for _, line := range lines {
		if re.MatchString(line) {
			return true
		}
	}
	return false
}

// save writes a file as an editor that saves atomically does: a new file,
// renamed over the old one, so that watch never sees it half written.
func save(t *testing.T, file, content string) {
	t.Helper()
	tmp := file + ".saving"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// buildCheck builds the command behind make check and make watch, and
// returns its path.
func buildCheck(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "check")
	cmd := exec.Command("go", "build", "-o", bin, "./internal/cmd/check")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./internal/cmd/check: %v\n%s", err, out)
	}
	return bin
}

// withoutWorkbookVars returns the environment without the WORKBOOK_
// variables of the test's own run.
func withoutWorkbookVars() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WORKBOOK_") {
			env = append(env, kv)
		}
	}
	return env
}
