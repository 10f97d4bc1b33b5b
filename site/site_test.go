package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"
)

// The workbook the tests build: this checkout, whatever its stages hold.
const root = ".."

var (
	builtOnce sync.Once
	builtDir  string
	builtErr  error
	warnings  bytes.Buffer
)

// built builds the site once for all the tests that only read it.
func built(t *testing.T) string {
	t.Helper()
	builtOnce.Do(func() {
		builtDir, builtErr = os.MkdirTemp("", "site-test-")
		if builtErr == nil {
			_, builtErr = build(config{root: root, out: filepath.Join(builtDir, "site"), warn: &warnings})
		}
	})
	if builtErr != nil {
		t.Fatal(builtErr)
	}
	return filepath.Join(builtDir, "site")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// stageDirs lists the stages as the tree has them, found here on their own
// rather than by the generator.
func stageDirs(t *testing.T, root string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "[0-9][0-9]-*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dirs {
		if info, err := os.Stat(d); err == nil && info.IsDir() {
			out = append(out, filepath.Base(d))
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		t.Fatalf("no stages in %s", root)
	}
	return out
}

// parsePage parses one page of the site.
func parsePage(t *testing.T, file string) *html.Node {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return doc
}

func attr(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

func hasClass(n *html.Node, class string) bool {
	c, _ := attr(n, "class")
	return slices.Contains(strings.Fields(c), class)
}

// textOf is the text inside a node, as a browser's textContent has it.
func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// find returns the elements under n for which match is true.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func byID(n *html.Node, id string) *html.Node {
	found := find(n, func(n *html.Node) bool { v, _ := attr(n, "id"); return v == id })
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

var space = regexp.MustCompile(`\s+`)

func collapse(s string) string { return strings.TrimSpace(space.ReplaceAllString(s, " ")) }

func TestEveryStageHasAPage(t *testing.T) {
	out := built(t)
	index := parsePage(t, filepath.Join(out, "index.html"))
	var linked []string
	for _, a := range find(index, func(n *html.Node) bool { return n.Data == "a" }) {
		href, _ := attr(a, "href")
		linked = append(linked, href)
	}
	for _, dir := range stageDirs(t, root) {
		file := filepath.Join(out, dir+".html")
		if _, err := os.Stat(file); err != nil {
			t.Errorf("stage %s has no page: %v", dir, err)
			continue
		}
		if !slices.Contains(linked, dir+".html") {
			t.Errorf("the index does not link to %s.html", dir)
		}
		page := parsePage(t, file)
		if byID(page, "main.go") == nil {
			t.Errorf("%s.html has no main.go section", dir)
		}
	}
}

func TestEveryScriptIsOnItsStagesPage(t *testing.T) {
	out := built(t)
	for _, dir := range stageDirs(t, root) {
		files, _ := filepath.Glob(filepath.Join(root, "testdata", dir, "*.txt"))
		if len(files) == 0 {
			continue
		}
		page := parsePage(t, filepath.Join(out, dir+".html"))
		sec := byID(page, "the-scripts")
		if sec == nil {
			t.Errorf("%s.html: no section of its %d scripts", dir, len(files))
			continue
		}
		shown := map[string]string{}
		for _, d := range find(sec, func(n *html.Node) bool { return n.Data == "details" }) {
			name := textOf(find(d, func(n *html.Node) bool { return n.Data == "code" })[0])
			shown[name] = strings.TrimSuffix(textOf(find(d, func(n *html.Node) bool { return n.Data == "pre" })[0]), "\n")
		}
		for _, f := range files {
			text, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(filepath.Base(f), ".txt")
			if got, ok := shown[name]; !ok || got != strings.TrimRight(string(text), "\n") {
				t.Errorf("%s.html: script %s is not there as it is in %s", dir, name, f)
			}
		}
	}
}

// checkLinks checks every link of every page of a site: a page or file of
// the site, or a file of the checkout, must be there, and an anchor must
// name an element of its page. No page may give one id to two elements.
func checkLinks(t *testing.T, out string) {
	t.Helper()
	pages, _ := filepath.Glob(filepath.Join(out, "*.html"))
	if len(pages) == 0 {
		t.Fatalf("no pages in %s", out)
	}
	ids := map[string]map[string]bool{}
	parsed := map[string]*html.Node{}
	for _, p := range pages {
		doc := parsePage(t, p)
		parsed[filepath.Base(p)] = doc
		ids[filepath.Base(p)] = map[string]bool{}
		for _, n := range find(doc, func(n *html.Node) bool { _, ok := attr(n, "id"); return ok }) {
			id, _ := attr(n, "id")
			if ids[filepath.Base(p)][id] {
				t.Errorf("%s: two elements with id %q", filepath.Base(p), id)
			}
			ids[filepath.Base(p)][id] = true
		}
	}
	links := 0
	for _, name := range sortedKeys(parsed) {
		for _, n := range find(parsed[name], func(*html.Node) bool { return true }) {
			var ref string
			var ok bool
			switch n.Data {
			case "a", "link":
				ref, ok = attr(n, "href")
			case "img", "script":
				ref, ok = attr(n, "src")
			}
			if !ok {
				continue
			}
			u, err := url.Parse(ref)
			if err != nil {
				t.Errorf("%s: bad link %q: %v", name, ref, err)
				continue
			}
			if u.Scheme != "" {
				continue // the web, or data: for the empty icon
			}
			links++
			target := name
			if u.Path != "" {
				target = filepath.Clean(filepath.Join(out, filepath.FromSlash(u.Path)))
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s: link %q leads to nothing", name, ref)
					continue
				}
				rel, err := filepath.Rel(out, target)
				if err != nil || strings.HasPrefix(rel, "..") {
					continue // a file of the checkout, not of the site
				}
				target = filepath.ToSlash(rel)
			}
			if u.Fragment != "" && strings.HasSuffix(target, ".html") && !ids[target][u.Fragment] {
				t.Errorf("%s: link %q: %s has no element with id %q", name, ref, target, u.Fragment)
			}
		}
	}
	if links == 0 {
		t.Errorf("no links checked in %s", out)
	}
}

func TestLinksResolve(t *testing.T) {
	checkLinks(t, built(t))
}

// isComment says whether a line of Go is a full-line comment, which the page
// shows as prose beside the code.
func isComment(line string) (string, bool) {
	text := strings.TrimSpace(line)
	if !strings.HasPrefix(text, "//") || strings.HasPrefix(text, "//go:") {
		return "", false
	}
	return collapse(strings.TrimPrefix(text, "//")), true
}

// checkGoFile checks that every line of a Go file is on its page: each line
// of code as line L<n> of the section, word for word, and each comment
// line's words in the prose beside the code.
func checkGoFile(t *testing.T, pageFile, sectionID, src string) {
	t.Helper()
	page := parsePage(t, pageFile)
	sec := byID(page, sectionID)
	if sec == nil {
		t.Fatalf("%s: no section %q", pageFile, sectionID)
	}
	var notes strings.Builder
	for _, n := range find(sec, func(n *html.Node) bool { return hasClass(n, "note") }) {
		notes.WriteString(" " + textOf(n))
	}
	prose := collapse(notes.String())
	lines := map[string]string{}
	for _, n := range find(sec, func(n *html.Node) bool { return hasClass(n, "sline") }) {
		id, _ := attr(n, "id")
		lines[id] = strings.TrimSuffix(textOf(n), "\n")
	}
	missing := 0
	for i, line := range strings.Split(strings.TrimSuffix(src, "\n"), "\n") {
		id := fmt.Sprintf("L%d", i+1)
		if strings.TrimSpace(line) == "" {
			continue
		}
		if c, ok := isComment(line); ok && (c == "" || strings.Contains(prose, c)) {
			continue
		}
		if got, ok := lines[id]; !ok || got != line {
			missing++
			if missing <= 5 {
				t.Errorf("%s: line %d is not on the page: %q (the page has %q)", filepath.Base(pageFile), i+1, line, got)
			}
		}
	}
	if missing > 5 {
		t.Errorf("%s: %d lines in all are not on the page", filepath.Base(pageFile), missing)
	}
}

func TestEveryLineOfMainGoIsOnItsPage(t *testing.T) {
	out := built(t)
	for _, dir := range stageDirs(t, root) {
		src, err := os.ReadFile(filepath.Join(root, dir, "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		checkGoFile(t, filepath.Join(out, dir+".html"), "main.go", string(src))
		if plumbing, err := os.ReadFile(filepath.Join(root, dir, "plumbing.go")); err == nil {
			checkGoFile(t, filepath.Join(out, dir+"-plumbing.html"), "plumbing.go", string(plumbing))
		}
	}
}

// changedLines are the removed and added lines of a diff, each as its kind
// and text, counted.
func changedLines(diff string) map[string]int {
	counts := map[string]int{}
	for _, l := range strings.Split(diff, "\n") {
		if strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "+++ ") {
			continue
		}
		switch {
		case strings.HasPrefix(l, "-"):
			counts["del "+l[1:]]++
		case strings.HasPrefix(l, "+"):
			counts["add "+l[1:]]++
		}
	}
	return counts
}

func TestEveryChangedLineIsOnTheNextStagesPage(t *testing.T) {
	out := built(t)
	dirs := stageDirs(t, root)
	for i := 1; i < len(dirs); i++ {
		from, to := dirs[i-1][:2], dirs[i][:2]
		cmd := exec.Command("bash", "scripts/diffs", from, to)
		cmd.Dir = root
		diff, err := cmd.Output()
		if err != nil {
			t.Fatalf("scripts/diffs %s %s: %v", from, to, err)
		}
		want := changedLines(string(diff))
		page := parsePage(t, filepath.Join(out, dirs[i]+".html"))
		sec := byID(page, "the-diff")
		if sec == nil {
			if len(want) > 0 {
				t.Errorf("%s.html: no diff section, and %d lines changed", dirs[i], len(want))
			}
			continue
		}
		got := map[string]int{}
		for _, n := range find(sec, func(n *html.Node) bool { return hasClass(n, "dline") }) {
			text := strings.TrimSuffix(textOf(n), "\n")
			switch {
			case hasClass(n, "add"):
				got["add "+text]++
			case hasClass(n, "del"):
				got["del "+text]++
			}
		}
		for line, n := range want {
			if got[line] < n {
				t.Errorf("%s.html: %d of %d times missing: %q", dirs[i], n-got[line], n, line)
			}
		}
	}
}

// readTree reads every file under dir, by its path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestTwoBuildsGiveTheSameBytes builds the site a second time, in a
// directory as deep as the first (links into the checkout are relative to
// it), and compares every file.
func TestTwoBuildsGiveTheSameBytes(t *testing.T) {
	first := readTree(t, built(t))
	dir, err := os.MkdirTemp("", "site-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "site")
	if _, err := build(config{root: root, out: out}); err != nil {
		t.Fatal(err)
	}
	second := readTree(t, out)
	if len(first) != len(second) {
		t.Errorf("the first build wrote %d files, the second %d", len(first), len(second))
	}
	for name, b := range first {
		if !bytes.Equal(b, second[name]) {
			t.Errorf("%s differs between two builds", name)
		}
	}
}

// TestAnyStages builds a workbook of two made-up stages, with a README that
// links to a file that is not there: the site has both pages, every line,
// and no link to nothing; the dangling link is reported.
func TestAnyStages(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script, err := os.ReadFile(filepath.Join(root, "scripts", "diffs"))
	if err != nil {
		t.Fatal(err)
	}
	write("scripts/diffs", string(script))
	write("README.md", "# A workbook\n\nStart at [the first stage](01-one).\n")
	write("01-one/README.md", "# 01-one: a start\n\nSee [nothing](../nowhere.md) and [two](../02-two#what-is-new).\n")
	write("01-one/main.go", "// Package main says hello.\npackage main\n\nfunc main() {\n\t// Say it.\n\tprintln(\"hi\")\n}\n")
	write("02-two/README.md", "# 02-two: more\n\n## What is new\n\nThe `greet` function says it, and `main` calls `greet`.\n")
	write("02-two/main.go", "// Package main says hello.\npackage main\n\n// greet says it.\nfunc greet() {\n\tprintln(\"hello\")\n}\n\nfunc main() {\n\t// Say it.\n\tgreet()\n}\n")
	out := filepath.Join(dir, "_site")
	var warn bytes.Buffer
	n, err := build(config{root: dir, out: out, warn: &warn})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d pages, want 3 (the index and two stages)", n)
	}
	if !strings.Contains(warn.String(), "01-one/README.md: link to ../nowhere.md, which is not in the tree") {
		t.Errorf("the dangling link was not reported; the warnings:\n%s", warn.String())
	}
	checkLinks(t, out)
	for _, s := range []string{"01-one", "02-two"} {
		src, _ := os.ReadFile(filepath.Join(dir, s, "main.go"))
		checkGoFile(t, filepath.Join(out, s+".html"), "main.go", string(src))
	}
	page, _ := os.ReadFile(filepath.Join(out, "02-two.html"))
	for _, want := range []string{`<code>func greet</code>`, `<blockquote class="why">`, `href="#what-is-new"`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("02-two.html lacks %s", want)
		}
	}
}

func TestWordDiff(t *testing.T) {
	a := "\tserve(kq, stop, listeners)"
	b := "\tsrv.serve(kq, listeners)"
	am, bm, alike := wordDiff(a, b)
	if !alike {
		t.Fatalf("%q and %q are not alike", a, b)
	}
	var gotA, gotB []string
	for _, s := range am {
		gotA = append(gotA, a[s.from:s.to])
	}
	for _, s := range bm {
		gotB = append(gotB, b[s.from:s.to])
	}
	if !slices.Equal(gotA, []string{"stop,"}) || !slices.Equal(gotB, []string{"srv."}) {
		t.Errorf("marked %q in the old line and %q in the new, want [stop,] and [srv.]", gotA, gotB)
	}
	if _, _, alike := wordDiff("for i := range clients {", "log.Printf(\"%v\", err)"); alike {
		t.Error("two unrelated lines are taken as alike")
	}
}

func TestSlugsAreGitHubs(t *testing.T) {
	s := newSlugs()
	for _, c := range [][2]string{
		{"Set-up", "set-up"},
		{"What the article gets wrong, and this stage fixes", "what-the-article-gets-wrong-and-this-stage-fixes"},
		{"1. Idle load: does the loop pay?", "1-idle-load-does-the-loop-pay"},
		{"Watch it", "watch-it"},
		{"Watch it", "watch-it-1"},
	} {
		if got := string(s.Generate([]byte(c[0]), 0)); got != c[1] {
			t.Errorf("id of %q: %q, want %q", c[0], got, c[1])
		}
	}
}

func TestSplitSentences(t *testing.T) {
	got := splitSentences("A `Server` owns it. See `a. B` here (e.g. that). `Send` returns. [One. Two](x) ends.")
	want := []string{"A `Server` owns it.", "See `a. B` here (e.g. that).", "`Send` returns.", "[One. Two](x) ends."}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
