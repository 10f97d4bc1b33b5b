package harness

// The smaller exercises' own checks (testdata/exercises/NN-name/NAME.txt,
// run by make check EXERCISE=NAME) must be able to fail and able to pass. A
// check fails against its reference stage, which does not do the exercise,
// and passes against a solution: the reference stage with the edits below.
// A solution that no longer applies, because the stage's code changed, fails
// this test; update its edits to the new code.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kqueue-workbook/workbook/internal/exercise"
)

// An edit replaces the one occurrence of old in the stage's main.go with
// new, or appends new when old is empty.
type edit struct{ old, new string }

// solutions holds one solution per exercise check, by stage and name.
var solutions = map[string][]edit{
	"02-kqueue-basic/data-field": {{
		old: "\t\tfor _, ev := range events[:n] {\n",
		new: "\t\tfor _, ev := range events[:n] {\n" +
			"\t\t\tlog.Printf(\"event fd=%d filter=%d flags=%#x data=%d\", ev.Ident, ev.Filter, ev.Flags, ev.Data)\n",
	}},
	"03-connpool/refuse-without-accepting": {
		{
			old: "\tevents := make([]kqueue.Kevent_t, 64)\n",
			new: "\tevents := make([]kqueue.Kevent_t, 64)\n\tpaused := false\n",
		},
		{
			// A listener event can come in the same batch as the accept
			// that filled the pool: leave that newcomer queued too.
			old: "\t\t\tcase listener:\n",
			new: "\t\t\tcase listener:\n\t\t\t\tif slotOf(clients, free) < 0 {\n\t\t\t\t\tcontinue\n\t\t\t\t}\n",
		},
		{
			old: "\t\t\t\techo(fd, ev, buf, clients)\n\t\t\t}\n\t\t}\n",
			new: "\t\t\t\techo(fd, ev, buf, clients)\n\t\t\t}\n\t\t}\n" +
				"\t\tif full := slotOf(clients, free) < 0; full != paused {\n" +
				"\t\t\tpaused = full\n" +
				"\t\t\tflags := uint16(kqueue.EV_ENABLE)\n" +
				"\t\t\tif full {\n" +
				"\t\t\t\tflags = kqueue.EV_DISABLE\n" +
				"\t\t\t}\n" +
				"\t\t\tvar change kqueue.Kevent_t\n" +
				"\t\t\tkqueue.EV_SET(&change, listener, kqueue.EVFILT_READ, flags, 0, 0, 0)\n" +
				"\t\t\tif _, err := kqueue.Kevent(kq, []kqueue.Kevent_t{change}, nil, nil); err != nil {\n" +
				"\t\t\t\tlog.Fatalf(\"kevent: listener: %v\", err)\n" +
				"\t\t\t}\n" +
				"\t\t}\n",
		},
	},
}

func TestExerciseChecks(t *testing.T) {
	root := mustRoot(t)
	checks, err := filepath.Glob(filepath.Join(root, "testdata", "exercises", "[0-9][0-9]-*", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	stages, err := exercise.Stages(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, check := range checks {
		stageName := filepath.Base(filepath.Dir(check))
		name := strings.TrimSuffix(filepath.Base(check), ".txt")
		key := stageName + "/" + name
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			var st exercise.Stage
			for _, s := range stages {
				if s.Name == stageName {
					st = s
				}
			}
			if st.Name == "" {
				t.Fatalf("%s: there is no stage %s", check, stageName)
			}
			edits, ok := solutions[key]
			if !ok {
				t.Fatalf("%s has no solution in exercise_checks_test.go to show that it can pass", check)
			}

			// The reference does not do the exercise: the check fails. Its
			// waits are for what will not come, so a short deadline will do.
			ref := filepath.Join(t.TempDir(), st.Name)
			if err := exercise.Start(root, st, ref); err != nil {
				t.Fatal(err)
			}
			if out, passed := checkExercise(t, ref, st.Num, "WORKBOOK_EXERCISE="+name, "WORKBOOK_DEADLINE=2s"); passed {
				t.Errorf("%s passed against the reference %s, which does not do the exercise; it cannot fail:\n%s", check, st.Name, out)
			}

			// The solution does: the check passes.
			sol := filepath.Join(t.TempDir(), st.Name)
			if err := exercise.Start(root, st, sol); err != nil {
				t.Fatal(err)
			}
			if err := applyEdits(filepath.Join(sol, "main.go"), edits); err != nil {
				t.Fatalf("the solution of %s: %v", key, err)
			}
			if out, passed := checkExercise(t, sol, st.Num, "WORKBOOK_EXERCISE="+name); !passed {
				t.Errorf("%s failed against its solution:\n%s", check, out)
			}
		})
	}
}

// applyEdits makes the edits to the file, each of whose old text must occur
// exactly once.
func applyEdits(file string, edits []edit) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	src := string(data)
	for _, e := range edits {
		if e.old == "" {
			src += e.new
			continue
		}
		if n := strings.Count(src, e.old); n != 1 {
			return fmt.Errorf("%q occurs %d times in %s, not once: the stage changed; update the edit", e.old, n, file)
		}
		src = strings.Replace(src, e.old, e.new, 1)
	}
	return os.WriteFile(file, []byte(src), 0o644)
}
