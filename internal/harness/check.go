package harness

// What checking a learner's directory adds (`go test` there, or make check;
// see harness.go): which scripts run, a summary at the end that a learner can
// act on (the view of internal/progress, also written as JSON to the file
// WORKBOOK_RESULTS names, for make check and make watch), and the `quiet`
// command of the exercises' own checks.
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
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
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

	"github.com/kqueue-workbook/workbook/internal/progress"
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
		return checked.note(exerciseScripts(t, st, name))
	}
	own, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(own) > 0 {
		t.Logf("with your own scripts: %s", strings.Join(own, " "))
	}
	return checked.note(append(scriptsUpTo(t, st), own...))
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
	files   map[string]string // each script's file, by its subtest's name
	results []*scriptResult
}

// A scriptResult is how one script ended.
type scriptResult struct {
	name    string // the subtest's name: the script's file name
	skipped bool
	failed  bool
	where   string // file:line of the failing command, when testscript says
	why     string // the failure's message, all its lines
}

func (r *checkReport) start(st stage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stage, r.started = st, true
}

// note notes the files of the scripts a check runs, and returns them.
func (r *checkReport) note(scripts []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files = map[string]string{}
	for _, f := range scripts {
		r.files[strings.TrimSuffix(filepath.Base(f), ".txt")] = f
	}
	return scripts
}

func (r *checkReport) add(res *scriptResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, res)
}

// print writes the summary after every test has run, so that it is the last
// thing a learner sees: the view of internal/progress (which behaviours pass,
// and what the first one that fails expected), then how to run that script
// alone. With WORKBOOK_RESULTS set it also writes the report there, as JSON.
func (r *checkReport) print() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return
	}
	rep := r.report()
	if file := os.Getenv("WORKBOOK_RESULTS"); file != "" {
		data, err := json.MarshalIndent(rep, "", "\t")
		if err == nil {
			err = os.WriteFile(file, data, 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "WORKBOOK_RESULTS: %v\n", err)
		}
	}
	fmt.Println()
	for _, line := range progress.View(rep, progress.Size{Width: 80}, "") {
		fmt.Println(line)
	}
	first, ok := rep.FirstFailure()
	if !ok {
		return
	}
	st := r.stage
	exercise := ""
	if name := os.Getenv("WORKBOOK_EXERCISE"); name != "" {
		exercise = " EXERCISE=" + name
	}
	fmt.Printf("\nThat script alone, with its whole session: make check STAGE=%02d DIR=%s%s RUN=%s V=1\n",
		st.num, st.dir, exercise, first.Name)
	env := ""
	for _, key := range []string{"WORKBOOK_STAGE", "WORKBOOK_EXERCISE"} {
		if v := os.Getenv(key); v != "" {
			env += key + "=" + v + " "
		}
	}
	fmt.Printf("  (or, in %s: %sgo test -v -run TestScripts/%s)\n", st.dir, env, first.Name)
	fmt.Printf("Every wait gave up after %v; on a slow machine, WORKBOOK_DEADLINE=30s waits longer.\n", deadline)
}

// report returns the outcome of every script that ran, in the order of the
// path: the earlier stages' scripts, this stage's, an exercise's check, the
// learner's own; each stage's in the order of its order file.
func (r *checkReport) report() progress.Report {
	st := r.stage
	rep := progress.Report{Dir: st.dir, Stage: st.num}
	if f := flag.Lookup("test.run"); f != nil {
		_, rep.Only, _ = strings.Cut(f.Value.String(), "/") // -run TestScripts/NAME
	}
	byGroup := map[string][]progress.Script{}
	for _, res := range r.results {
		s := r.script(res)
		byGroup[s.Group] = append(byGroup[s.Group], s)
	}
	keys := slices.Collect(maps.Keys(byGroup))
	slices.SortFunc(keys, func(a, b string) int { return strings.Compare(groupKey(a), groupKey(b)) })
	for _, g := range keys {
		scripts := byGroup[g]
		names := make([]string, len(scripts))
		for i, s := range scripts {
			names[i] = s.Name
		}
		// A stage's order file is checked by TestOrderFiles; here a bad one
		// only leaves the scripts in name order.
		order, _ := progress.ReadOrder(filepath.Join(st.root, "testdata", g))
		arranged, _, _ := progress.Arrange(names, order)
		for _, name := range arranged {
			i := slices.IndexFunc(scripts, func(s progress.Script) bool { return s.Name == name })
			rep.Scripts = append(rep.Scripts, scripts[i])
		}
	}
	return rep
}

// groupKey sorts the groups of a report: the stages in order, then an
// exercise's check, then the learner's own scripts.
func groupKey(group string) string {
	switch {
	case stageName.MatchString(group):
		return "0" + group
	case group == progress.OwnGroup:
		return "2"
	}
	return "1" + group
}

// script returns one script's outcome as the view shows it.
func (r *checkReport) script(res *scriptResult) progress.Script {
	s := progress.Script{Name: res.name, Status: progress.Passed, Where: res.where}
	switch {
	case res.failed:
		s.Status = progress.Failed
	case res.skipped:
		s.Status = progress.Skipped
	}
	file := r.files[res.name]
	s.Group, s.Listed = r.groupOf(file)
	if src, err := os.ReadFile(file); err == nil {
		s.Comment = progress.Comment(src)
		if i := strings.LastIndexByte(res.where, ':'); i >= 0 {
			if n, err := strconv.Atoi(res.where[i+1:]); err == nil {
				s.Command = progress.Line(src, n)
			}
		}
	}
	if res.failed {
		s.Why = plainWords(res.why)
	}
	return s
}

// groupOf returns the group of the script in file, and whether the view
// lists its scripts one by one: see progress.Script.
func (r *checkReport) groupOf(file string) (string, bool) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return progress.OwnGroup, true
	}
	dir := filepath.Dir(abs)
	testdata := filepath.Join(r.stage.root, "testdata")
	switch {
	case sameDir(filepath.Dir(dir), testdata) && stageName.MatchString(filepath.Base(dir)):
		m := stageName.FindStringSubmatch(filepath.Base(dir))
		n, _ := strconv.Atoi(m[1])
		return filepath.Base(dir), n == r.stage.num
	case sameDir(filepath.Dir(dir), filepath.Join(testdata, "exercises")):
		return progress.ExerciseGroup(strings.TrimSuffix(filepath.Base(file), ".txt")), true
	}
	return progress.OwnGroup, true
}

// plainWords keeps of a failure's message what a learner reads at a glance:
// its first line, without the name of the command (the view shows the
// command), with the line after it if it ends in a colon; then, from a
// client's expect (commands_clients.go), what was expected and what came
// instead, in one line; and whether the server has exited. The rest, such
// as the server's log, is in the session.
func plainWords(msg string) []string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	first := strings.TrimSpace(lines[0])
	if cmd, rest, ok := strings.Cut(first, ": "); ok && !strings.ContainsAny(cmd, " `'\"") {
		first = rest
	}
	rest := lines[1:]
	if strings.HasSuffix(first, ":") && len(rest) > 0 {
		first += " " + strings.TrimSpace(rest[0])
		rest = rest[1:]
	}
	words := []string{first}
	var expected, got, differ, exited string
	for _, line := range rest {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "expected" || k == "got") {
			v = strings.TrimSpace(v)
			if k == "expected" {
				expected = v
			} else {
				got = v
			}
		}
		// Byte 0 needs no pointing out: expected and got show it.
		if at, ok := strings.CutPrefix(line, "the first difference is "); ok && at != "at byte 0" {
			differ = " (the first difference is " + at + ")"
		}
		if strings.HasPrefix(line, "the server has exited") {
			exited = line
		}
	}
	if expected != "" && got != "" {
		words = append(words, "expected "+expected+", got "+got+differ)
	}
	if exited != "" {
		words = append(words, exited)
	}
	return words
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
			c.res.where, c.res.why = shortScriptName(m[1]), m[2]
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

// Fatal is how the harness itself fails a script outside any command: a
// server that panicked or raced (see session.end).
func (c checkT) Fatal(args ...any) {
	if c.res != nil && c.res.why == "" {
		c.res.why = fmt.Sprint(args...)
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
