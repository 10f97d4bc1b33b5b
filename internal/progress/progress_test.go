package progress

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// testdata is the workbook's directory of scripts, from this package's.
var testdata = filepath.Join("..", "..", "testdata")

// stageDirs returns the workbook's stage directories of scripts, in order.
func stageDirs(t *testing.T) []string {
	dirs, err := filepath.Glob(filepath.Join(testdata, "[0-9][0-9]-*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no stage directories in %s: %v", testdata, err)
	}
	return dirs
}

// scriptNames returns the names of the scripts in dir.
func scriptNames(t *testing.T, dir string) []string {
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".txt"))
	}
	return names
}

// An order file lists only scripts that exist, each once, and once a stage
// has one it lists all of the stage's scripts: the order is the path a
// learner follows, and a script left out of it would come last whatever it
// checks. A stage without an order file (one whose scripts are still being
// written) is only reported, so that adding a script never waits for its
// place in the path.
func TestOrderFiles(t *testing.T) {
	for _, dir := range stageDirs(t) {
		order, err := ReadOrder(dir)
		if err != nil {
			t.Error(err)
			continue
		}
		file := filepath.Join(dir, OrderFile)
		for i, name := range order {
			if slices.Contains(order[:i], name) {
				t.Errorf("%s lists %s twice", file, name)
			}
		}
		_, unlisted, missing := Arrange(scriptNames(t, dir), order)
		if len(missing) > 0 {
			t.Errorf("%s lists scripts that %s does not have: %s", file, dir, strings.Join(missing, ", "))
		}
		switch {
		case len(unlisted) == 0:
		case order == nil:
			t.Logf("%s has no %s file: its scripts come in name order", dir, OrderFile)
		default:
			t.Errorf("%s does not list %s: put each where a learner should make it pass", file, strings.Join(unlisted, ", "))
		}
	}
}

func TestArrange(t *testing.T) {
	arranged, unlisted, missing := Arrange([]string{"a", "b", "c", "d"}, []string{"c", "gone", "a"})
	if want := []string{"c", "a", "b", "d"}; !slices.Equal(arranged, want) {
		t.Errorf("arranged %v, want %v", arranged, want)
	}
	if want := []string{"b", "d"}; !slices.Equal(unlisted, want) {
		t.Errorf("unlisted %v, want %v", unlisted, want)
	}
	if want := []string{"gone"}; !slices.Equal(missing, want) {
		t.Errorf("missing %v, want %v", missing, want)
	}
}

func TestComment(t *testing.T) {
	for _, c := range []struct{ script, want string }{
		{"# One client,\n#   one line.\n\nserve\n", "One client, one line."},
		{"\n# First paragraph.\n#\n# Second.\nserve\n", "First paragraph."},
		{"# Up to the first command\nserve\n# not this\n", "Up to the first command"},
		{"serve\n", ""},
	} {
		if got := Comment([]byte(c.script)); got != c.want {
			t.Errorf("Comment(%q) = %q, want %q", c.script, got, c.want)
		}
	}
}

// Every stage's view, with everything failing, fits an 80×24 terminal and
// still shows the count, the first failure, its comment and its command:
// the densest case, with the stage's real scripts and comments.
func TestViewFitsSmallTerminal(t *testing.T) {
	why := []string{
		"client alice did not get what it expected",
		`expected "welcome!\n", got "hello, a line long enough to need wrapping in a terminal of eighty columns\n"`,
	}
	var scripts []Script
	for _, dir := range stageDirs(t) {
		stage := filepath.Base(dir)
		var listed []Script
		for _, name := range scriptNames(t, dir) {
			src, err := os.ReadFile(filepath.Join(dir, name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			listed = append(listed, Script{
				Name: name, Group: stage, Listed: true, Status: Failed, Comment: Comment(src),
				Where: stage + "/" + name + ".txt:12", Command: "expect alice 'welcome!\\n'", Why: why,
			})
		}
		if len(listed) == 0 {
			continue
		}
		num := 0
		fmt.Sscanf(stage, "%d", &num)
		r := Report{Dir: "work/" + stage, Stage: num, Scripts: append(slices.Clone(scripts), listed...)}
		lines := View(r, Size{Width: 80, Height: 24}, "run 12 at 10:01:02, 5.6 s")
		if len(lines) > 24 {
			t.Errorf("%s: the view has %d lines, more than 24", stage, len(lines))
		}
		for _, line := range lines {
			if n := utf8.RuneCountInString(line); n > 80 {
				t.Errorf("%s: a line of %d columns, more than 80: %q", stage, n, line)
			}
		}
		text := strings.Join(lines, "\n")
		for _, want := range []string{
			`(?m)^░+  0 of \d+ behaviours done$`,
			`(?m)^first to fix: \S+ \(\d\d-`,
			`(?m)^  line 12: expect alice`,
			`(?m)^  expected "welcome!\\n", got`,
		} {
			if !regexp.MustCompile(want).MatchString(text) {
				t.Errorf("%s: in 80×24 the view does not show %q:\n%s", stage, want, text)
			}
		}
		// The stage's scripts are earlier stages' for the next one.
		for i := range listed {
			listed[i].Listed = false
		}
		scripts = append(scripts, listed...)
	}
}

// Without a limit of rows the view lists every script of the stage, one a
// line, and says how many of each earlier stage's pass.
func TestViewWhole(t *testing.T) {
	r := Report{Dir: "work/03-connpool", Stage: 3, Scripts: []Script{
		{Name: "echo-one-line", Group: "01-select", Status: Passed},
		{Name: "select-refuses", Group: "01-select", Status: Skipped},
		{Name: "trace", Group: "02-kqueue-basic", Status: Failed, Why: []string{"no"}},
		{Name: "greet", Group: "03-connpool", Listed: true, Status: Passed},
		{Name: "refuse", Group: "03-connpool", Listed: true, Status: Failed, Comment: "A pool of two.",
			Where: "03-connpool/refuse.txt:7", Command: "expect carol 'server full\\n'", Why: []string{"the words"}},
		{Name: "mine", Group: OwnGroup, Listed: true, Status: Passed},
	}}
	got := strings.Join(View(r, Size{Width: 80}, ""), "\n")
	want := `work/03-connpool, as stage 03

03-connpool:
  ✓ greet
  ✗ refuse

your own scripts:
  ✓ mine

earlier stages:
  ✓ 01-select         1 of 1, 1 skipped
  ✗ 02-kqueue-basic   0 of 1

████████████████████████░░░░░░░░░░░░░░░░  3 of 5 behaviours done

first to fix: trace (02-kqueue-basic)
  no`
	if got != want {
		t.Errorf("the view:\n%s\nwant:\n%s", got, want)
	}
	r.Scripts[2].Status = Passed
	got = strings.Join(View(r, Size{Width: 80}, ""), "\n")
	if !strings.HasSuffix(got, `first to fix: refuse (03-connpool)
  A pool of two.
  line 7: expect carol 'server full\n'
  the words`) {
		t.Errorf("the view's first failure, once 02's script passes:\n%s", got)
	}
}
