package harness

// What checking a learner's directory adds (`go test` there, or make check;
// see harness.go): which scripts run, a summary at the end that a learner can
// act on, and the `quiet` command of the exercises' own checks.
//
// In a learner's directory, the scripts are those of the stage and every
// stage before it, plus the learner's own scripts in its testdata/*.txt.
// With WORKBOOK_EXERCISE=NAME, only the smaller exercise's check runs:
// testdata/exercises/NN-*/NAME.txt in the workbook, NN being the stage.
//
//	quiet NAME             nothing has arrived for client NAME so far: no byte,
//	                       and no end of file. It does not wait; use it after an
//	                       exchange with another client has shown that the server
//	                       has moved on since NAME connected.

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// withSummary runs the tests, then prints the summary of a check.
//
// In a learner's directory it also runs more scripts at once than go test's
// default (one per CPU): there most of them wait, for a deadline, on a
// greeting or an echo that is not coming. A -parallel flag still decides.
type withSummary struct{ m *testing.M }

func (w withSummary) Run() int {
	if wd, err := os.Getwd(); err == nil {
		if root, err := workbookRoot(); err == nil && isLearnerDir(wd, root) {
			flag.Set("test.parallel", strconv.Itoa(max(8, runtime.GOMAXPROCS(0))))
		}
	}
	code := w.m.Run()
	checked.print()
	return code
}

// scriptsFor returns the scripts the stage runs: see the top of this file.
func scriptsFor(t *testing.T, st stage) []string {
	if !st.own {
		return scriptsUpTo(t, st)
	}
	checked.start(st)
	if name := os.Getenv("WORKBOOK_EXERCISE"); name != "" {
		return exerciseScripts(t, st, name)
	}
	own, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(own) > 0 {
		t.Logf("with your own scripts: %s", strings.Join(own, " "))
	}
	return append(scriptsUpTo(t, st), own...)
}

// exerciseScripts returns the check of stage st's exercise called name.
func exerciseScripts(t *testing.T, st stage, name string) []string {
	num := st.num
	pattern := filepath.Join(st.root, "testdata", "exercises", fmt.Sprintf("%02d-*", num), "*.txt")
	all, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range all {
		base := strings.TrimSuffix(filepath.Base(f), ".txt")
		if base == name {
			f = fromHere(f)
			t.Logf("only the check of the exercise %s: %s", name, f)
			return []string{f}
		}
		names = append(names, base)
	}
	if len(names) == 0 {
		t.Fatalf("WORKBOOK_EXERCISE=%s: stage %02d's exercises have no checks of their own; its README says how to check them", name, num)
	}
	t.Fatalf("WORKBOOK_EXERCISE=%s: stage %02d has no such exercise check; it has: %s", name, num, strings.Join(names, ", "))
	return nil
}

// runScripts runs the scripts as testscript.Run does, and for a learner's
// directory also notes each script's outcome for the summary.
func runScripts(t *testing.T, st stage, p testscript.Params) {
	if !st.own {
		testscript.Run(t, p)
		return
	}
	if deadline, ok := t.Deadline(); ok && p.Deadline.IsZero() {
		p.Deadline = deadline
	}
	testscript.RunT(checkT{T: t}, p)
}

// checked is the summary of a check of a learner's directory.
var checked checkReport

type checkReport struct {
	mu      sync.Mutex
	stage   stage
	started bool
	results []*scriptResult
}

// A scriptResult is how one script ended.
type scriptResult struct {
	name    string // the subtest's name: the script's file name
	skipped bool
	failed  bool
	where   string // file:line of the failing command, when testscript says
	why     string // the first line of the failure
}

func (r *checkReport) start(st stage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stage, r.started = st, true
}

func (r *checkReport) add(res *scriptResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, res)
}

// print writes the summary after every test has run, so that it is the last
// thing a learner sees: how many scripts failed, where, and the first line
// of why, then how to run one alone.
func (r *checkReport) print() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return
	}
	var failed []*scriptResult
	ran := 0
	for _, res := range r.results {
		if res.failed {
			failed = append(failed, res)
		}
		if !res.skipped {
			ran++
		}
	}
	st := r.stage
	fmt.Printf("\n%s, checked as stage %02d: ", st.dir, st.num)
	if len(r.results) == 0 {
		fmt.Printf("no script ran; the message above says why.\n")
		return
	}
	if len(failed) == 0 {
		fmt.Printf("all %d scripts passed.\n", ran)
		return
	}
	fmt.Printf("%d of %d scripts failed (each one's session is above):\n", len(failed), ran)
	slices.SortFunc(failed, func(a, b *scriptResult) int { return strings.Compare(a.where, b.where) })
	for _, res := range failed {
		where := res.where
		if where == "" {
			where = res.name
		}
		fmt.Printf("  %s\n      %s\n", where, res.why)
	}
	exercise := ""
	if name := os.Getenv("WORKBOOK_EXERCISE"); name != "" {
		exercise = " EXERCISE=" + name
	}
	fmt.Printf("One script alone, with its whole session: make check STAGE=%02d DIR=%s%s RUN=%s V=1\n",
		st.num, st.dir, exercise, failed[0].name)
	env := ""
	for _, key := range []string{"WORKBOOK_STAGE", "WORKBOOK_EXERCISE"} {
		if v := os.Getenv(key); v != "" {
			env += key + "=" + v + " "
		}
	}
	fmt.Printf("  (or, in %s: %sgo test -v -run TestScripts/%s)\n", st.dir, env, failed[0].name)
	fmt.Printf("Every wait gave up after %v; on a slow machine, WORKBOOK_DEADLINE=30s waits longer.\n", deadline)
}

// checkT is the testscript.T of a check: testscript's own adapter for
// *testing.T, plus a note of how each script ended.
type checkT struct {
	*testing.T
	res *scriptResult // nil for the stage, which holds the scripts
}

func (c checkT) Run(name string, f func(testscript.T)) {
	c.T.Run(name, func(t *testing.T) {
		res := &scriptResult{name: name}
		t.Cleanup(func() {
			res.failed, res.skipped = t.Failed(), t.Skipped()
			checked.add(res)
		})
		f(checkT{T: t, res: res})
	})
}

func (c checkT) Verbose() bool { return testing.Verbose() }

// failure is testscript's message for the command that failed a script: a
// FAIL line, and the lines indented below it.
var failure = regexp.MustCompile(`(?m)^FAIL: (\S+:\d+): (.*(?:\n\t.*)*)`)

// Log is called with the script's whole session when it ends.
func (c checkT) Log(args ...any) {
	if c.res != nil && c.res.where == "" {
		if m := failure.FindStringSubmatch(fmt.Sprint(args...)); m != nil {
			c.res.where, c.res.why = shortScriptName(m[1]), oneLine(m[2])
		}
	}
	c.T.Log(args...)
}

// shortScriptName names a script of the workbook's testdata/ from there, as
// in 01-select/echo-one-line.txt:12, and a learner's own as it is.
func shortScriptName(path string) string {
	checked.mu.Lock()
	root := checked.stage.root
	checked.mu.Unlock()
	prefix := fromHere(filepath.Join(root, "testdata")) + string(filepath.Separator)
	return strings.TrimPrefix(path, prefix)
}

// alignment is the run of spaces that lines up "expected:" and "got:".
var alignment = regexp.MustCompile(`^([a-z ]+:)  +`)

// oneLine joins the lines of a failure message into one line of at most
// about two hundred characters, for the summary.
func oneLine(msg string) string {
	var b strings.Builder
	for i, line := range strings.Split(msg, "\n") {
		line = alignment.ReplaceAllString(strings.TrimSpace(line), "$1 ")
		switch {
		case line == "":
			continue
		case i > 0 && strings.HasSuffix(b.String(), ":"):
			b.WriteString(" ")
		case i > 0:
			b.WriteString("; ")
		}
		b.WriteString(line)
	}
	if s := b.String(); len(s) > 200 {
		return s[:200] + "..."
	}
	return b.String()
}

// Fatal is how the harness itself fails a script outside any command: a
// server that panicked or raced (see session.end).
func (c checkT) Fatal(args ...any) {
	if c.res != nil && c.res.why == "" {
		c.res.why = oneLine(fmt.Sprint(args...))
	}
	c.T.Fatal(args...)
}

func cmdQuiet(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "quiet", "")
	c := clientOf(ts, "quiet", args, 1, "NAME")
	raw, err := c.conn.(syscall.Conn).SyscallConn()
	ts.Check(err)
	// Peek without waiting and without taking anything, so that a later
	// expect still sees every byte.
	var buf [64]byte
	var n int
	var rerr error
	ts.Check(raw.Control(func(fd uintptr) {
		n, _, rerr = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	}))
	switch {
	case errors.Is(rerr, unix.EAGAIN):
		return // nothing there: quiet
	case rerr != nil:
		ts.Fatalf("quiet: expected nothing for client %s yet, but its connection %s", c.name, readFailure(rerr))
	case n == 0:
		ts.Fatalf("quiet: expected nothing for client %s yet, but the server has closed its connection", c.name)
	default:
		ts.Fatalf("quiet: expected nothing for client %s yet, but the server has sent it %s", c.name, quote(buf[:n]))
	}
}
