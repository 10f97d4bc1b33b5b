package harness

// The smaller exercises' own checks (testdata/exercises/NN-name/NAME.txt,
// run by make check EXERCISE=NAME) must be able to fail and able to pass. A
// check fails against its reference stage, which does not do the exercise,
// and passes against a solution: the reference stage with the edits below.
// A solution that no longer applies, because the stage's code changed, fails
// this test; update its edits to the new code.

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/scanner"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kqueue-workbook/workbook/internal/exercise"
)

// An edit adds code to one function of a stage's main.go, next to a
// statement found by what it is, not by how it is laid out: the statement
// lies in the function fn and reads as at once comments, spaces and line
// breaks are set aside. For a statement with a body (for, if, switch, a
// case of a switch) at is only its head, up to the brace or the colon, and
// into puts code first in that body; with replace, code takes the whole
// statement's place; otherwise code goes right after the statement. An edit
// without fn adds declarations at the end of the file. The result is
// formatted as gofmt would, so code need not be indented.
type edit struct {
	fn      string
	at      string
	into    bool
	replace bool
	code    string
}

// solutions holds one solution per exercise check, by stage and name.
var solutions = map[string][]edit{
	"02-kqueue-basic/data-field": {{
		fn: "serve", at: "for _, ev := range events[:n]", into: true,
		code: `log.Printf("event fd=%d filter=%d flags=%#x data=%d", ev.Ident, ev.Filter, ev.Flags, ev.Data)`,
	}},
	"03-connpool/refuse-without-accepting": {
		{
			fn: "serve", at: "events := make([]kqueue.Kevent_t, 64)",
			code: `paused := false`,
		},
		{
			// A listener event can come in the same batch as the accept
			// that filled the pool: leave that newcomer queued too.
			fn: "serve", at: "case listener:", into: true,
			code: `if slotOf(clients, free) < 0 {
				continue
			}`,
		},
		{
			// Once the batch is handled, the pool is full or not: watch
			// the listener accordingly.
			fn: "serve", at: "for _, ev := range events[:n]",
			code: `if full := slotOf(clients, free) < 0; full != paused {
				paused = full
				flags := uint16(kqueue.EV_ENABLE)
				if full {
					flags = kqueue.EV_DISABLE
				}
				var change kqueue.Kevent_t
				kqueue.EV_SET(&change, listener, kqueue.EVFILT_READ, flags, 0, 0, 0)
				if _, err := kqueue.Kevent(kq, []kqueue.Kevent_t{change}, nil, nil); err != nil {
					log.Fatalf("kevent: listener: %v", err)
				}
			}`,
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

// applyEdits makes the edits to the file, in order.
func applyEdits(file string, edits []edit) error {
	src, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if src, err = patchAll(src, edits); err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	return os.WriteFile(file, src, 0o644)
}

// patch makes one edit to the Go source src and returns the result,
// formatted. The statement the edit names must be in its function exactly
// once.
func patch(src []byte, e edit) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "main.go", src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	if e.fn == "" {
		return format.Source(append(append(src, '\n'), e.code+"\n"...))
	}
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if d, ok := d.(*ast.FuncDecl); ok && d.Recv == nil && d.Name.Name == e.fn {
			fn = d
		}
	}
	if fn == nil || fn.Body == nil {
		return nil, fmt.Errorf("there is no func %s: the stage changed; update the edit", e.fn)
	}
	offset := func(p token.Pos) int { return fset.Position(p).Offset }

	want := tokens([]byte(e.at))
	type span struct{ from, to int } // what the code replaces: nothing, for an insertion
	var found []span                 // for each statement that matches
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		s, ok := n.(ast.Stmt)
		if !ok {
			return true
		}
		headEnd, bodyStart := head(s)
		if tokens(src[offset(s.Pos()):offset(headEnd)]) != want {
			return true
		}
		switch {
		case e.replace:
			found = append(found, span{offset(s.Pos()), offset(s.End())})
		case !e.into:
			found = append(found, span{offset(s.End()), offset(s.End())})
		case bodyStart.IsValid():
			found = append(found, span{offset(bodyStart), offset(bodyStart)})
		default:
			found = append(found, span{-1, -1}) // matched, but has no body to go into
		}
		return true
	})
	if len(found) != 1 {
		return nil, fmt.Errorf("%q is in func %s %d times, not once: the stage changed; update the edit", e.at, e.fn, len(found))
	}
	at := found[0]
	if at.from < 0 {
		return nil, fmt.Errorf("%q in func %s has no body to put code into", e.at, e.fn)
	}
	var out bytes.Buffer
	out.Write(src[:at.from])
	if !e.replace {
		out.WriteString("\n")
	}
	out.WriteString(e.code)
	out.Write(src[at.to:])
	return format.Source(out.Bytes())
}

// head returns where the head of statement s ends and, if s has a body,
// where the body's statements begin. A statement without a body is all head.
func head(s ast.Stmt) (end, body token.Pos) {
	var block *ast.BlockStmt
	switch s := s.(type) {
	case *ast.ForStmt:
		block = s.Body
	case *ast.RangeStmt:
		block = s.Body
	case *ast.IfStmt:
		block = s.Body
	case *ast.SwitchStmt:
		block = s.Body
	case *ast.TypeSwitchStmt:
		block = s.Body
	case *ast.SelectStmt:
		block = s.Body
	case *ast.CaseClause:
		return s.Colon + 1, s.Colon + 1
	case *ast.CommClause:
		return s.Colon + 1, s.Colon + 1
	default:
		return s.End(), token.NoPos
	}
	return block.Lbrace, block.Lbrace + 1
}

// tokens returns the Go tokens of src, one space between each, leaving out
// comments and the semicolons that line breaks imply: two pieces of code
// that differ only in layout and comments have the same tokens.
func tokens(src []byte) string {
	var s scanner.Scanner
	fset := token.NewFileSet()
	s.Init(fset.AddFile("", -1, len(src)), src, nil, 0)
	var toks []string
	for {
		_, tok, lit := s.Scan()
		switch {
		case tok == token.EOF:
			return strings.Join(toks, " ")
		case tok == token.SEMICOLON && lit == "\n":
			// implied by a line break: layout, not code
		case lit != "":
			toks = append(toks, lit)
		default:
			toks = append(toks, tok.String())
		}
	}
}

// The solutions do not depend on the layout of the code they patch: each
// applies the same to its stage's main.go as to a copy laid out otherwise,
// with a comment and a line break after every token that can have one, and
// the two results are the same code. So do the steps of watch_test.go, all
// of them made to the stage before theirs.
func TestSolutionsIgnoreLayout(t *testing.T) {
	root := mustRoot(t)
	type solution struct {
		name  string // what the edits do
		stage string // to the main.go of this stage
		edits []edit
	}
	var all []solution
	for key, edits := range solutions {
		stageName, _, _ := strings.Cut(key, "/")
		all = append(all, solution{key, stageName, edits})
	}
	stages, err := exercise.Stages(root)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(stages); i++ {
		sol := solution{name: "the steps to " + stages[i].Name, stage: stages[i-1].Name}
		for _, s := range steps[stages[i].Name] {
			sol.edits = append(sol.edits, s.edits...)
		}
		if sol.edits != nil {
			all = append(all, sol)
		}
	}
	for _, sol := range all {
		key, edits := sol.name, sol.edits
		src, err := os.ReadFile(filepath.Join(root, sol.stage, "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := patchAll(src, edits)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		relaid, err := patchAll(relayout(src), edits)
		if err != nil {
			t.Fatalf("%s, relaid: %v", key, err)
		}
		if tokens(plain) != tokens(relaid) {
			t.Errorf("%s patches its stage laid out otherwise into other code:\n%s", key, relaid)
		}
	}
}

// patchAll makes the edits to src, in order.
func patchAll(src []byte, edits []edit) ([]byte, error) {
	var err error
	for _, e := range edits {
		if src, err = patch(src, e); err != nil {
			return nil, err
		}
	}
	return src, nil
}

// relayout returns src with a comment at the end of every line of code, and
// a line break after every token that one may follow without ending the
// statement (the Go specification, Semicolons): the same code, laid out as
// nobody would.
func relayout(src []byte) []byte {
	var s scanner.Scanner
	fset := token.NewFileSet()
	file := fset.AddFile("", -1, len(src))
	s.Init(file, src, nil, scanner.ScanComments)
	var out bytes.Buffer
	end, last := 0, token.ILLEGAL // where the token before ends, and what it is
	lineComment := false          // whether it is a // comment
	for {
		pos, tok, lit := s.Scan()
		if tok == token.SEMICOLON && lit == "\n" {
			continue // not in the source: the scanner's, for a line break
		}
		off := file.Offset(pos)
		gap := src[end:off]
		if end > 0 && bytes.ContainsRune(gap, '\n') && !lineComment {
			out.WriteString(" /* relaid */")
		}
		switch last {
		case token.ILLEGAL, token.COMMENT, token.IDENT, token.INT, token.FLOAT, token.IMAG, token.CHAR, token.STRING,
			token.BREAK, token.CONTINUE, token.FALLTHROUGH, token.RETURN,
			token.INC, token.DEC, token.RPAREN, token.RBRACK, token.RBRACE:
			// a line break here would end the statement
		default:
			out.WriteString("\n")
		}
		out.Write(gap)
		if tok == token.EOF {
			return out.Bytes()
		}
		if lit == "" {
			lit = tok.String()
		}
		out.WriteString(lit)
		end, last, lineComment = off+len(lit), tok, strings.HasPrefix(lit, "//")
	}
}
