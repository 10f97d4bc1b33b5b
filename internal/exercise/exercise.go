// Package exercise sets up a learner's exercise: a copy of one stage in a
// directory of its own, to be turned into the next stage (or changed as a
// smaller exercise asks) and then checked with that stage's tests.
//
// `make start` is its command (internal/cmd/start); the test that proves the
// whole loop, start then check, uses it directly.
package exercise

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// A Stage is one of the workbook's stage directories, such as 03-connpool.
type Stage struct {
	Num  int    // 3
	Name string // "03-connpool", the directory's name
}

// stageName matches a stage directory's name and captures its number.
var stageName = regexp.MustCompile(`^([0-9][0-9])-`)

// Stages returns the stages found in the workbook's root directory, in order.
func Stages(root string) ([]Stage, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var stages []Stage
	for _, e := range entries {
		m := stageName.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		num, _ := strconv.Atoi(m[1])
		stages = append(stages, Stage{Num: num, Name: e.Name()})
	}
	return stages, nil
}

// Find returns the stage numbered num.
func Find(stages []Stage, num int) (Stage, bool) {
	for _, st := range stages {
		if st.Num == num {
			return st, true
		}
	}
	return Stage{}, false
}

// ErrExists is returned by Start when the exercise directory is already
// there: it may hold the learner's work, which Start never overwrites.
var ErrExists = errors.New("already exists")

// Start creates dir and copies into it the Go files of stage from, found in
// root, the workbook's module root: its main.go, and its stage_test.go, which
// makes `go test` in dir check it. It also writes a go.mod (and copies the
// go.sum) that make dir a module of its own, which uses the workbook's
// packages from root: `go test ./...` in the workbook then leaves the
// exercise alone while it does not compile yet, and the exercise builds the
// same wherever it is.
func Start(root string, from Stage, dir string) error {
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("%s: %w", dir, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	gomod, err := exerciseGoMod(root, dir)
	if err != nil {
		return err
	}
	sources, err := filepath.Glob(filepath.Join(root, from.Name, "*.go"))
	if err != nil {
		return err
	}
	if len(sources) == 0 {
		return fmt.Errorf("%s has no Go files to copy", from.Name)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	// Mkdir, not MkdirAll: if dir appeared since the check above, this fails
	// instead of writing into it.
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", dir, ErrExists)
		}
		return err
	}
	for _, src := range sources {
		if err := copyFile(src, filepath.Join(dir, filepath.Base(src))); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), gomod, 0o644); err != nil {
		return err
	}
	return copyFile(filepath.Join(root, "go.sum"), filepath.Join(dir, "go.sum"))
}

// exerciseGoMod returns the go.mod of an exercise in dir: the workbook's own
// requirements (the stages import golang.org/x/sys directly), plus the
// workbook itself, replaced by its directory so that nothing is downloaded.
// The exercise's module path is under the workbook's, MODULE/work/NAME, so
// that its test may import the workbook's internal/harness: Go allows an
// internal package to be imported by any package whose path is under the
// internal directory's parent, whichever module it is in.
func exerciseGoMod(root, dir string) ([]byte, error) {
	workbook, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	var module string
	var b strings.Builder
	b.WriteString(`// This exercise is a module of its own, so that "go test ./..." in the
// workbook does not build it while it is half-written. It uses the
// workbook's packages (kqueue, and the test harness) from the directory named
// by the replace line at the end. Written by "make start"; there is no need
// to edit it.

`)
	for line := range strings.Lines(string(workbook)) {
		if rest, ok := strings.CutPrefix(line, "module "); ok {
			module = strings.TrimSpace(rest)
			fmt.Fprintf(&b, "module %s/work/%s\n", module, filepath.Base(filepath.Clean(dir)))
			continue
		}
		b.WriteString(line)
	}
	if module == "" {
		return nil, fmt.Errorf("%s: no module line", filepath.Join(root, "go.mod"))
	}
	rel, err := relPath(dir, root)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&b, "\nrequire %s v0.0.0\n\nreplace %s => %s\n", module, module, rel)
	return []byte(b.String()), nil
}

// relPath returns root as seen from dir, with forward slashes, as go.mod
// wants it: relative when it can be, so that the workbook can be moved.
func relPath(dir, root string) (string, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(absDir, absRoot)
	if err != nil {
		return filepath.ToSlash(absRoot), nil
	}
	rel = filepath.ToSlash(rel)
	if !strings.HasPrefix(rel, ".") {
		rel = "./" + rel // a path in a replace line must start with ./ or ../
	}
	return rel, nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}
