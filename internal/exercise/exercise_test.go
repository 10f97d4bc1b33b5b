package exercise

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// fakeWorkbook lays out a workbook root with two stages and returns it.
func fakeWorkbook(t *testing.T) string {
	root := t.TempDir()
	files := map[string]string{
		"go.mod":            "module example.com/wb\n\ngo 1.26.0\n\nrequire golang.org/x/sys v0.49.0\n",
		"go.sum":            "golang.org/x/sys v0.49.0 h1:x\n",
		"01-first/main.go":  "package main\n\nfunc main() {}\n",
		"01-first/README":   "the lesson\n",
		"02-second/main.go": "package main\n\nfunc main() { println() }\n",
		"03-notes.txt":      "a file, not a stage\n",
	}
	for name, text := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestStages(t *testing.T) {
	root := fakeWorkbook(t)
	got, err := Stages(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Stage{{1, "01-first"}, {2, "02-second"}}
	if !slices.Equal(got, want) {
		t.Errorf("Stages = %v, want %v", got, want)
	}
	if st, ok := Find(got, 2); !ok || st.Name != "02-second" {
		t.Errorf("Find(2) = %v, %v", st, ok)
	}
	if _, ok := Find(got, 3); ok {
		t.Errorf("Find(3) found a stage that is a file")
	}
}

func TestStartCopiesGoFilesAndWritesAModule(t *testing.T) {
	root := fakeWorkbook(t)
	dir := filepath.Join(root, "work", "02-second")
	if err := Start(root, Stage{1, "01-first"}, dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"go.mod", "go.sum", "main.go"}; !slices.Equal(names, want) {
		t.Errorf("the exercise holds %v, want %v (the Go files, not the README)", names, want)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`(?m)^module example.com/wb/work/02-second$`,
		`(?m)^require golang.org/x/sys v0.49.0$`,
		`(?m)^require example.com/wb v0.0.0$`,
		`(?m)^replace example.com/wb => \.\./\.\.$`,
	} {
		if !regexp.MustCompile(want).Match(gomod) {
			t.Errorf("go.mod does not match %s:\n%s", want, gomod)
		}
	}
}

func TestStartElsewhereReplacesWithAPathBack(t *testing.T) {
	root := fakeWorkbook(t)
	dir := filepath.Join(t.TempDir(), "mine")
	if err := Start(root, Stage{2, "02-second"}, dir); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^replace example.com/wb => (\S+)$`).FindSubmatch(gomod)
	if m == nil {
		t.Fatalf("no replace line:\n%s", gomod)
	}
	back := filepath.Join(dir, filepath.FromSlash(string(m[1])))
	if _, err := os.Stat(filepath.Join(back, "02-second", "main.go")); err != nil {
		t.Errorf("replace => %s does not lead back to the workbook: %v", m[1], err)
	}
}

func TestStartNeverOverwrites(t *testing.T) {
	root := fakeWorkbook(t)
	dir := filepath.Join(root, "work", "02-second")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(dir, "main.go")
	if err := os.WriteFile(mine, []byte("my work"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Start(root, Stage{1, "01-first"}, dir); !errors.Is(err, ErrExists) {
		t.Fatalf("Start into an existing directory: %v, want ErrExists", err)
	}
	if data, _ := os.ReadFile(mine); string(data) != "my work" {
		t.Errorf("the learner's main.go now holds %q", data)
	}
}
