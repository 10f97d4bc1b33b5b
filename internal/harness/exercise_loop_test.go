package harness

// The exercise loop of the README, proved end to end: start stage 03 from
// 02, check it and see it fail, put the reference 03 in its place, check it
// again and see it pass. The checks are what `make check` runs: go test in
// the exercise's directory.

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
	root := mustRoot(t)
	stages, err := exercise.Stages(root)
	if err != nil {
		t.Fatal(err)
	}
	from, ok2 := exercise.Find(stages, 2)
	to, ok3 := exercise.Find(stages, 3)
	if !ok2 || !ok3 {
		t.Skip("needs stages 02 and 03")
	}

	// make start STAGE=03, into a directory of the test's own.
	dir := filepath.Join(t.TempDir(), to.Name)
	if err := exercise.Start(root, from, dir); err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := exercise.Start(root, from, dir); err == nil {
		t.Fatalf("start: a second start into %s did not refuse", dir)
	}

	// Stage 02's code is no stage 03: it neither greets nor has -max. Every
	// wait it makes the scripts do is for something that will not come, so
	// a short deadline only makes the failure quicker.
	out, passed := checkExercise(t, dir, to.Num, "WORKBOOK_DEADLINE=1s")
	if passed {
		t.Fatalf("check of stage 02's code as stage 03 passed; its output:\n%s", out)
	}
	// The failures speak of behaviour: what was expected, what came back.
	for _, want := range []string{
		`(?m)^` + regexp.QuoteMeta(dir) + `, checked as stage 03: \d+ of \d+ scripts failed`,
		`expected: "welcome!\\n"\n\s+got: +nothing within 1s`,
		`the server's log:\n\s+\S+ accepted client`,
		`server: flag provided but not defined: -max`,
		`make check STAGE=03 DIR=` + regexp.QuoteMeta(dir) + ` RUN=\S+ V=1`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the failed check does not say %q; its output:\n%s", want, out)
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
	out, passed = checkExercise(t, dir, to.Num)
	if !passed {
		t.Fatalf("check of the reference 03 copied into %s failed; its output:\n%s", dir, out)
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(dir) + `, checked as stage 03: all \d+ scripts passed`).MatchString(out) {
		t.Errorf("the passing check does not say so; its output:\n%s", out)
	}
}

// checkExercise runs the tests of the exercise in dir as stage num, as make
// check does (go test there), and returns their output and whether they
// passed.
func checkExercise(t *testing.T, dir string, num int, env ...string) (string, bool) {
	cmd := exec.Command("go", "test", "-count=1", "-run=^TestScripts$")
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WORKBOOK_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, fmt.Sprintf("WORKBOOK_STAGE=%02d", num))
	cmd.Env = append(cmd.Env, env...)
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
