// Package progress is how far a learner's exercise has got: the outcome of
// each script of a check, in the order a learner makes them pass, and the
// view of it that `make check` ends with and `make watch` redraws after
// every save.
//
// The harness (internal/harness) fills a Report as the scripts end and, at
// the end of a check, prints its view and writes it as JSON to the file
// named by WORKBOOK_RESULTS; the check command (internal/cmd/check) reads
// that file and shows the same view, in a terminal or in make check's
// summary. Each script is one behaviour of a server: its name says which,
// and its opening comment says what it is.
//
// # The order of a stage's scripts
//
// A stage's directory of scripts, testdata/NN-name/, may hold a file named
// order (OrderFile) that lists them in the order a learner building the
// stage from the one before should make them pass, the smallest step
// first:
//
//	# Comments and blank lines are ignored.
//	pool-full-refuses-newcomer
//	pool-default-is-ten
//
// One script a line, by its file name without .txt. Scripts the file does
// not list come after those it lists, in name order, so a script added to a
// stage shows up before anyone has decided where it goes in the path; a
// stage without the file shows its scripts in name order.
package progress

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A Report is the outcome of one check of a learner's directory.
type Report struct {
	Dir     string   `json:"dir"`            // the directory, as the learner names it: work/03-connpool
	Stage   int      `json:"stage"`          // checked as this stage
	Only    string   `json:"only,omitempty"` // the -run pattern, if the check ran only some scripts
	Scripts []Script `json:"scripts"`        // in the order of the path: see Arrange
}

// A Script is how one script ended.
type Script struct {
	Name  string `json:"name"`  // its file name without .txt, which is also its subtest's name
	Group string `json:"group"` // its stage's directory of scripts (01-select), or one of the groups below
	// Listed says that the view lists the script on a line of its own, as
	// it does for the stage under test, an exercise's check and the
	// learner's own scripts; an earlier stage's scripts are one line in all.
	Listed  bool   `json:"listed,omitempty"`
	Status  Status `json:"status"`
	Comment string `json:"comment,omitempty"` // what the behaviour is: the script's opening comment, in one paragraph
	Where   string `json:"where,omitempty"`   // file:line of the command that failed, as testscript names it
	Command string `json:"command,omitempty"` // that command, as the script writes it
	// Why is the failure in a few lines of plain words, without the
	// session around it (which is in the log).
	Why []string `json:"why,omitempty"`
}

// The groups of scripts that are not a stage's.
const (
	OwnGroup = "your own scripts" // the learner's testdata/*.txt
)

// ExerciseGroup is the group of a smaller exercise's own check.
func ExerciseGroup(name string) string { return "the exercise " + name }

// A Status is how a script ended.
type Status string

const (
	Passed  Status = "pass"
	Failed  Status = "fail"
	Skipped Status = "skip" // not for this stage, or not on this machine
)

// OrderFile is the name of the file in a stage's directory of scripts that
// orders them as a path: see the package comment.
const OrderFile = "order"

// ReadOrder returns the script names listed in the order file of the
// directory of scripts dir, or nil if it has none.
func ReadOrder(dir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, OrderFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.ContainsAny(line, " \t") || strings.HasSuffix(line, ".txt") {
			return nil, fmt.Errorf("%s: %q: want one script a line, named without .txt", filepath.Join(dir, OrderFile), line)
		}
		names = append(names, line)
	}
	return names, nil
}

// Arrange returns names (one stage's scripts) in the order of the path:
// those order lists, as it lists them, then the others in name order. It
// also returns the names order does not list, and those it lists that are
// not among names (a script renamed or removed since the order was written).
func Arrange(names, order []string) (arranged, unlisted, missing []string) {
	for _, n := range order {
		if slices.Contains(names, n) {
			if !slices.Contains(arranged, n) {
				arranged = append(arranged, n)
			}
		} else {
			missing = append(missing, n)
		}
	}
	for _, n := range names {
		if !slices.Contains(order, n) {
			unlisted = append(unlisted, n)
		}
	}
	slices.Sort(unlisted)
	return append(arranged, unlisted...), unlisted, missing
}

// Comment returns a script's opening comment, the lines that start with #
// before its first command, as one paragraph: what the behaviour is.
func Comment(script []byte) string {
	var words []string
	sc := bufio.NewScanner(bytes.NewReader(script))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" && len(words) == 0 {
			continue
		}
		text, ok := strings.CutPrefix(line, "#")
		if !ok || strings.TrimSpace(text) == "" {
			break // the first command, or the end of the first paragraph
		}
		words = append(words, strings.Fields(text)...)
	}
	return strings.Join(words, " ")
}

// Line returns line n (from 1) of a script, trimmed, or "" if there is none.
func Line(script []byte, n int) string {
	i := 0
	for line := range strings.Lines(string(script)) {
		if i++; i == n {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// Count returns how many of scripts passed, and how many counted: those that
// ran and were not skipped.
func Count(scripts []Script) (passed, counted int) {
	for _, s := range scripts {
		switch s.Status {
		case Passed:
			passed++
			counted++
		case Failed:
			counted++
		}
	}
	return passed, counted
}

// FirstFailure returns the first script of the path that failed.
func (r Report) FirstFailure() (Script, bool) {
	for _, s := range r.Scripts {
		if s.Status == Failed {
			return s, true
		}
	}
	return Script{}, false
}
