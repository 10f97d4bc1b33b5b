package harness

// The exercise loop of the README, proved end to end: start stage 03 from
// 02, check it and see it fail, put the reference 03 in its place, check it
// again and see it pass. The checks are what `make check` runs: the command
// internal/cmd/check, which runs go test in the exercise's directory, writes
// its log to a file, and shows only the summary.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kqueue-workbook/workbook/internal/exercise"
)

func TestExerciseLoop(t *testing.T) {
	t.Parallel()
	// make start STAGE=03, into a directory of the test's own.
	root, from, to, dir := start03(t)
	if err := exercise.Start(root, from, dir); err == nil {
		t.Fatalf("start: a second start into %s did not refuse", dir)
	}

	// Stage 02's code is no stage 03: it neither greets nor has -max. Every
	// wait it makes the scripts do is for something that will not come, so
	// a short deadline only makes the failure quicker.
	check := buildCheck(t, root)
	out, passed := runCheck(t, check, dir, "WORKBOOK_DEADLINE=1s")
	if passed {
		t.Fatalf("make check of stage 02's code as stage 03 passed; its output:\n%s", out)
	}
	// The summary says how far the exercise has got, and what the first
	// script that fails expected, in its words; the sessions are in the log.
	log := filepath.Join(dir, "check.log")
	for _, want := range []string{
		`(?m)^` + regexp.QuoteMeta(dir) + `, as stage 03$`,
		`(?m)^03-connpool:\n  ✗ unread-greeting-close-is-reset\n  ✗ max-flag-rejects-nonsense$`,
		`(?m)^  ✗ 01-select +\d+ of \d+`,
		`(?m)^█*░+  \d+ of \d+ behaviours done$`,
		`(?m)^first to fix: \S+ \(01-select\)\n  .+\n  line \d+: \[greets\] expect \w+ 'welcome!\\n'\n` +
			`  client \w+ did not get what it expected\n  expected "welcome!\\n", got nothing within 1s$`,
		`(?m)^The whole log, with every script's session: ` + regexp.QuoteMeta(log) + `$`,
		`(?m)^That script alone, with its session: make check STAGE=03 DIR=` + regexp.QuoteMeta(dir) + ` RUN=\S+ V=1$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the failed check does not say %q; its output:\n%s", want, out)
		}
	}
	for _, noise := range []string{"=== RUN", "--- FAIL", "the server's log", "FAIL\t"} {
		if strings.Contains(out, noise) {
			t.Errorf("the failed check shows go test's %q, which belongs in the log; its output:\n%s", noise, out)
		}
	}
	sessions := readFile(t, log)
	for _, want := range []string{
		`expected: "welcome!\\n"\n\s+got: +nothing within 1s`,
		`the server's log:\n\s+\S+ accepted client`,
		`server: flag provided but not defined: -max`,
	} {
		if !regexp.MustCompile(want).MatchString(sessions) {
			t.Errorf("the log of the failed check, %s, does not say %q", log, want)
		}
	}

	// The learner writes stage 03; here the reference stands in for that.
	sources, err := filepath.Glob(filepath.Join(root, to.Name, "*.go"))
	if err != nil || len(sources) == 0 {
		t.Fatalf("no Go files in %s: %v", to.Name, err)
	}
	for _, src := range sources {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A check that must pass gets the reference's deadline: on a busy
	// machine a learner's 3 s can run out before a correct server answers.
	out, passed = runCheck(t, check, dir, "WORKBOOK_DEADLINE=10s")
	if !passed {
		t.Fatalf("make check of the reference 03 copied into %s failed; its output:\n%s", dir, out)
	}
	if done, total := behaviours(t, strings.Split(out, "\n")); done != total {
		t.Errorf("the passing check says %d of %d behaviours done", done, total)
	}
	for _, want := range []string{
		`(?m)^  ✓ pool-full-refusal-survives-unread-input$`,
		`(?m)^  ✓ 02-kqueue-basic +(\d+) of \d+$`,
		`(?m)^█+  \d+ of \d+ behaviours done$`,
		`(?m)^The whole log, with every script's session: ` + regexp.QuoteMeta(log) + `$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the passing check does not say %q; its output:\n%s", want, out)
		}
	}
	if strings.Contains(out, "first to fix") || strings.Contains(out, "✗") {
		t.Errorf("the passing check shows a failure; its output:\n%s", out)
	}
}

// start03 starts 03's exercise, as make start STAGE=03 does, in a directory
// of the test's own, and returns the workbook's root, stages 02 and 03, and
// the exercise's directory.
func start03(t *testing.T) (root string, from, to exercise.Stage, dir string) {
	root = mustRoot(t)
	stages, err := exercise.Stages(root)
	if err != nil {
		t.Fatal(err)
	}
	from, ok2 := exercise.Find(stages, 2)
	to, ok3 := exercise.Find(stages, 3)
	if !ok2 || !ok3 {
		t.Skip("needs stages 02 and 03")
	}
	dir = filepath.Join(t.TempDir(), to.Name)
	if err := exercise.Start(root, from, dir); err != nil {
		t.Fatalf("start: %v", err)
	}
	return root, from, to, dir
}

// runCheck runs make check's command on the exercise in dir, as stage 03,
// and returns what it printed and whether it exited 0.
func runCheck(t *testing.T, check, dir string, env ...string) (string, bool) {
	cmd := exec.Command(check, "03", dir)
	cmd.Env = append(withoutWorkbookVars(), env...)
	return output(t, cmd)
}

// checkExercise runs the tests of the exercise in dir as stage num, as a
// learner does without make (go test there), and returns their output and
// whether they passed.
func checkExercise(t *testing.T, dir string, num int, env ...string) (string, bool) {
	cmd := exec.Command("go", "test", "-count=1", "-run=^TestScripts$")
	cmd.Dir = dir
	cmd.Env = append(withoutWorkbookVars(), fmt.Sprintf("WORKBOOK_STAGE=%02d", num))
	cmd.Env = append(cmd.Env, env...)
	return output(t, cmd)
}

// output runs cmd and returns its output, stdout and stderr together, and
// whether it exited 0.
func output(t *testing.T, cmd *exec.Cmd) (string, bool) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, failed := err.(*exec.ExitError); err != nil && !failed {
		t.Fatal(err)
	}
	return out.String(), err == nil
}

// mustRoot returns the workbook's root directory.
func mustRoot(t *testing.T) string {
	root, err := workbookRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
