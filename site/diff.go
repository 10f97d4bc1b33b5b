package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"html/template"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/alecthomas/chroma/v2"
)

// fileDiff is the change to one file from a stage to the next.
type fileDiff struct {
	Name     string // main.go
	Old, New string // the two versions' text; empty if the file is new or gone
	Hunks    []*hunk
	Adds     int
	Dels     int
}

type hunk struct {
	Header   string // @@ -a,b +c,d @@
	OldStart int
	NewStart int
	Lines    []dline
	Names    []string // the declarations its changes are in
}

type dline struct {
	Kind byte // ' ', '-' or '+'
	Text string
	Old  int // its number in the old file (context and '-'), from 1
	New  int // its number in the new file (context and '+'), from 1
}

// stageDiff is what scripts/diffs prints for the step from prev to st: the
// same diff a learner gets from make diff, parsed into files and hunks.
func (s *site) stageDiff(prev, st *stage) ([]*fileDiff, error) {
	cmd := exec.Command("bash", "scripts/diffs", prev.num, st.num)
	cmd.Dir = s.root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("scripts/diffs %s %s: %v: %s", prev.num, st.num, err, stderr.Bytes())
	}
	files, err := parseDiff(string(out))
	if err != nil {
		return nil, fmt.Errorf("scripts/diffs %s %s: %w", prev.num, st.num, err)
	}
	for _, f := range files {
		f.Old = string(s.readFile(path.Join(prev.dir, f.Name)))
		f.New = string(s.readFile(path.Join(st.dir, f.Name)))
		nameHunks(f)
	}
	return files, nil
}

var hunkHeader = regexp.MustCompile(`^@@ -([0-9]+)(?:,[0-9]+)? \+([0-9]+)(?:,[0-9]+)? @@`)

// parseDiff reads unified diffs, one per file, each headed by its --- and
// +++ lines; other lines between files (scripts/diffs's # line) are skipped.
func parseDiff(text string) ([]*fileDiff, error) {
	var files []*fileDiff
	var f *fileDiff
	var h *hunk
	oldN, newN := 0, 0
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "--- ") && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "+++ "):
			name := path.Base(strings.Fields(lines[i+1][4:])[0])
			f = &fileDiff{Name: name}
			files = append(files, f)
			h = nil
			i++
		case strings.HasPrefix(l, "@@"):
			m := hunkHeader.FindStringSubmatch(l)
			if m == nil || f == nil {
				return nil, fmt.Errorf("bad hunk header %q", l)
			}
			oldN, _ = strconv.Atoi(m[1])
			newN, _ = strconv.Atoi(m[2])
			h = &hunk{Header: m[0], OldStart: oldN, NewStart: newN}
			f.Hunks = append(f.Hunks, h)
		case h != nil && l != "" && (l[0] == ' ' || l[0] == '-' || l[0] == '+'):
			d := dline{Kind: l[0], Text: l[1:]}
			switch d.Kind {
			case ' ':
				d.Old, d.New = oldN, newN
				oldN++
				newN++
			case '-':
				d.Old = oldN
				oldN++
				f.Dels++
			case '+':
				d.New = newN
				newN++
				f.Adds++
			}
			h.Lines = append(h.Lines, d)
		case h != nil && l == "":
			// An empty context line whose space an editor took off.
			h.Lines = append(h.Lines, dline{Kind: ' ', Old: oldN, New: newN})
			oldN++
			newN++
		case strings.HasPrefix(l, `\ `):
			// "\ No newline at end of file"
		default:
			h = nil
		}
	}
	return files, nil
}

// decl is a top-level declaration of a Go file and the lines it spans, its
// doc comment included.
type decl struct {
	name       string
	start, end int
}

// decls lists a Go file's declarations; nil if it does not parse.
func decls(src string) []decl {
	if src == "" {
		return nil
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, parser.ParseComments)
	if err != nil {
		return nil
	}
	line := func(p token.Pos) int { return fset.Position(p).Line }
	var out []decl
	if f.Doc != nil {
		out = append(out, decl{"package comment", line(f.Doc.Pos()), line(f.Package)})
	}
	for _, d := range f.Decls {
		start := d.Pos()
		var name string
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Doc != nil {
				start = d.Doc.Pos()
			}
			name = src[fset.Position(d.Pos()).Offset:fset.Position(d.Name.End()).Offset]
		case *ast.GenDecl:
			if d.Doc != nil {
				start = d.Doc.Pos()
			}
			name = genDeclName(d)
		}
		out = append(out, decl{name, line(start), line(d.End())})
	}
	return out
}

// genDeclName names a group of imports, types, variables or constants by
// its first name, and how many more it holds.
func genDeclName(d *ast.GenDecl) string {
	var names []string
	for _, spec := range d.Specs {
		switch spec := spec.(type) {
		case *ast.TypeSpec:
			names = append(names, spec.Name.Name)
		case *ast.ValueSpec:
			for _, n := range spec.Names {
				names = append(names, n.Name)
			}
		}
	}
	switch {
	case d.Tok == token.IMPORT:
		return "import"
	case len(names) == 0:
		return d.Tok.String()
	case len(names) > 1:
		return fmt.Sprintf("%s %s, …", d.Tok, names[0])
	}
	return d.Tok.String() + " " + names[0]
}

// nameHunks heads each hunk with the declarations its changed lines are in:
// in the new file for added lines, in the old one for removed lines, where
// the new file has no declaration of that name (a function that became a
// method is named once, as the method).
func nameHunks(f *fileDiff) {
	oldDecls, newDecls := decls(f.Old), decls(f.New)
	find := func(ds []decl, n int) string {
		for _, d := range ds {
			if n >= d.start && n <= d.end {
				return d.name
			}
		}
		return ""
	}
	type named struct {
		name  string
		isNew bool
	}
	for _, h := range f.Hunks {
		var names []named
		for _, l := range h.Lines {
			switch l.Kind {
			case '-':
				names = append(names, named{find(oldDecls, l.Old), false})
			case '+':
				names = append(names, named{find(newDecls, l.New), true})
			}
		}
		seen := map[string]bool{}
		for _, n := range names {
			renamed := !n.isNew && slices.ContainsFunc(names, func(m named) bool {
				return m.isNew && m.name != n.name && declKey(m.name) == declKey(n.name)
			})
			if n.name == "" || seen[n.name] || renamed {
				continue
			}
			seen[n.name] = true
			h.Names = append(h.Names, n.name)
		}
	}
}

// declKey is the name a declaration declares: serve for both "func serve"
// and "func (s *Server) serve".
func declKey(name string) string {
	fields := strings.Fields(name)
	if len(fields) == 0 {
		return ""
	}
	return strings.TrimRight(fields[len(fields)-1], ",…")
}

// Lines of a diff, ready for the page: highlighted as the file they come
// from, with the words that changed inside a line marked.
type diffLine struct {
	Kind  string // "add", "del" or "ctx"
	Old   int
	New   int
	Text  string
	HTML  template.HTML
	Inner bool // part of the line is marked as changed
}

// hunkLines highlights a hunk's lines. Each line takes its tokens from the
// whole file it belongs to, so a line inside a raw string or a comment is
// coloured as one. A run of removed lines followed by a run of added lines
// is a change block: lines of the two runs that are alike are paired, and
// the words that differ between them are marked.
func hunkLines(f *fileDiff, h *hunk, oldTokens, newTokens [][]chroma.Token) []diffLine {
	tokensOf := func(l dline) []chroma.Token {
		lines, n := newTokens, l.New
		if l.Kind == '-' {
			lines, n = oldTokens, l.Old
		}
		if n >= 1 && n <= len(lines) && lineText(lines[n-1]) == l.Text {
			return lines[n-1]
		}
		return []chroma.Token{{Type: chroma.Text, Value: l.Text}}
	}
	marks := make([][]span, len(h.Lines))
	for i := 0; i < len(h.Lines); {
		if h.Lines[i].Kind != '-' {
			i++
			continue
		}
		dels := i
		for i < len(h.Lines) && h.Lines[i].Kind == '-' {
			i++
		}
		adds := i
		for i < len(h.Lines) && h.Lines[i].Kind == '+' {
			i++
		}
		pairLines(h.Lines, dels, adds, i, marks)
	}
	var out []diffLine
	for i, l := range h.Lines {
		kind := map[byte]string{' ': "ctx", '-': "del", '+': "add"}[l.Kind]
		out = append(out, diffLine{Kind: kind, Old: l.Old, New: l.New, Text: l.Text,
			HTML: tokensHTML(tokensOf(l), marks[i]), Inner: len(marks[i]) > 0})
	}
	return out
}

// pairLines pairs the removed lines [dels, adds) with the added lines
// [adds, end), in order, each with the first line after the last pair that
// is alike enough, and marks the words that differ in each pair.
func pairLines(lines []dline, dels, adds, end int, marks [][]span) {
	next := adds
	for d := dels; d < adds; d++ {
		for a := next; a < end; a++ {
			dm, am, alike := wordDiff(lines[d].Text, lines[a].Text)
			if alike {
				marks[d], marks[a] = dm, am
				next = a + 1
				break
			}
		}
	}
}

var wordToken = regexp.MustCompile(`[A-Za-z0-9_]+|\s+|.`)

// wordDiff compares two lines word by word (a word: a name or number, a
// run of spaces, or one other character). alike says whether at least half
// of the longer line's text is common to both; if so, the spans are the
// bytes of each line that are not.
func wordDiff(a, b string) (am, bm []span, alike bool) {
	if strings.TrimSpace(a) == "" || strings.TrimSpace(b) == "" {
		return nil, nil, false
	}
	at, bt := wordToken.FindAllStringIndex(a, -1), wordToken.FindAllStringIndex(b, -1)
	word := func(s string, t []int) string { return s[t[0]:t[1]] }
	// The longest common subsequence of the words, by dynamic programming.
	n, m := len(at), len(bt)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if word(a, at[i]) == word(b, bt[j]) {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	common := 0
	aKeep, bKeep := make([]bool, n), make([]bool, m)
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case word(a, at[i]) == word(b, bt[j]):
			aKeep[i], bKeep[j] = true, true
			if strings.TrimSpace(word(a, at[i])) != "" {
				common += at[i][1] - at[i][0]
			}
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			i++
		default:
			j++
		}
	}
	longer := max(len(strings.TrimSpace(a)), len(strings.TrimSpace(b)))
	if 2*common < longer {
		return nil, nil, false
	}
	return changedSpans(a, at, aKeep), changedSpans(b, bt, bKeep), true
}

// changedSpans merges the words not kept into spans; spaces between two
// changed words join them, spaces at a span's edges are left out.
func changedSpans(s string, words [][]int, keep []bool) []span {
	var out []span
	for i, w := range words {
		if keep[i] {
			continue
		}
		blank := strings.TrimSpace(s[w[0]:w[1]]) == ""
		if n := len(out); n > 0 && out[n-1].to == w[0] {
			out[n-1].to = w[1]
		} else if n > 0 && blank {
			continue
		} else if n > 0 && strings.TrimSpace(s[out[n-1].to:w[0]]) == "" {
			out[n-1].to = w[1]
		} else {
			out = append(out, span{w[0], w[1]})
		}
	}
	// Trim spaces at the ends of each span.
	for i := range out {
		for out[i].from < out[i].to && (s[out[i].from] == ' ' || s[out[i].from] == '\t') {
			out[i].from++
		}
		for out[i].to > out[i].from && (s[out[i].to-1] == ' ' || s[out[i].to-1] == '\t') {
			out[i].to--
		}
	}
	var kept []span
	for _, sp := range out {
		if sp.to > sp.from {
			kept = append(kept, sp)
		}
	}
	return kept
}
