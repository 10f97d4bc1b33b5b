package main

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"path"
	"path/filepath"
	"strings"

	"github.com/alecthomas/chroma/v2"
	"github.com/alecthomas/chroma/v2/formatters/html"
	"github.com/alecthomas/chroma/v2/styles"
	"github.com/yuin/goldmark/ast"
)

//go:embed page.html style.css site.js
var files embed.FS

var pageTemplate = template.Must(template.ParseFS(files, "page.html"))

// page is what the template needs for any page.
type page struct {
	Title  string
	Kind   string // "doc", "stage" or "plumbing": the body's class
	Nav    []navStage
	More   []navStage // the kqueue package's page and the bench page, where they are
	Prose  template.HTML
	Toc    []tocEntry
	Charts []chart
	Stage  *stagePage
}

type navStage struct {
	Num, Dir, Title, Page string
	Current               bool
}

type chart struct{ Src, Name string }

// tocEntry is a line of the list of a page's sections beside its lesson.
type tocEntry struct {
	ID, Text string
	Code     bool // a section of code, after the README's
}

// toc lists a document's second-level headings.
func toc(d *doc) []tocEntry {
	var out []tocEntry
	for n := d.root.FirstChild(); n != nil; n = n.NextSibling() {
		if h, ok := n.(*ast.Heading); ok && h.Level == 2 {
			if id, ok := h.AttributeString("id"); ok {
				out = append(out, tocEntry{ID: string(id.([]byte)), Text: plainText(h, d.src)})
			}
		}
	}
	return out
}

// stagePage is the part of a stage's page, or of its plumbing.go page, that
// is made from its code.
type stagePage struct {
	Num, Dir, Count string
	Prev, Next      *navStage
	Plumbing        string // the plumbing.go page, if the stage has one
	StagePage       string
	File            string    // main.go or plumbing.go
	Sections        []section // the file, comment beside code
	Changed         int       // how many of its sections changed since the stage before
	Diff            []fileView
	Adds, Dels      int
	Same            string // for plumbing.go: the stages it is the same in
	Scripts         []script
	ScriptsDir      string
	ScriptsLink     string // the directory in the checkout or the repository
}

// script is one of a stage's testscript files, shown as the transcript it
// reads like.
type script struct {
	Name, About string
	Lines       template.HTML
}

type fileView struct {
	Name       string
	Adds, Dels int
	Hunks      []hunkView
}

type hunkView struct {
	ID      string
	Names   []string
	Where   string // the lines, for a hunk in no declaration
	Lines   []diffLine
	Why     template.HTML // the README's sentence that explains it
	WhyFrom string        // its section's heading
	WhyLink string        // and anchor
}

func (s *site) nav(current string) []navStage {
	var out []navStage
	for _, st := range s.stages {
		out = append(out, navStage{Num: st.num, Dir: st.dir, Title: st.title, Page: st.page(), Current: st.dir == current})
	}
	return out
}

// more links the two lessons beside the stages, the kqueue package and the
// bench, where the workbook has them.
func (s *site) more() []navStage {
	var out []navStage
	for _, p := range []string{"kqueue/README.md", "bench/README.md"} {
		if d := s.docs[p]; d != nil {
			out = append(out, navStage{Title: path.Dir(p), Page: d.page})
		}
	}
	return out
}

func navOf(st *stage) *navStage {
	if st == nil {
		return nil
	}
	return &navStage{Num: st.num, Dir: st.dir, Title: st.title, Page: st.page()}
}

func execute(p page) ([]byte, error) {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// docPage is the page of a Markdown file that is not a stage's README. The
// bench page shows the charts of bench/results besides.
func (s *site) docPage(d *doc) ([]byte, error) {
	prose, err := s.render(d)
	if err != nil {
		return nil, err
	}
	p := page{Title: d.title, Kind: "doc", Nav: s.nav(""), More: s.more(), Prose: prose, Toc: toc(d)}
	if d.path == "bench/README.md" {
		charts, _ := filepath.Glob(filepath.Join(s.root, "bench", "results", "*.png"))
		for _, c := range charts {
			rel := path.Join("bench", "results", filepath.Base(c))
			s.copy(rel)
			p.Charts = append(p.Charts, chart{Src: "files/" + rel, Name: filepath.Base(c)})
		}
		if len(p.Charts) > 0 {
			p.Toc = append(p.Toc, tocEntry{ID: "the-charts", Text: "The charts"})
		}
	}
	return execute(p)
}

// stagePages makes a stage's page (its README, the step's diff and main.go)
// and its plumbing.go page.
func (s *site) stagePages(st *stage) (stagePg, plumbingPg []byte, err error) {
	d := s.docs[path.Join(st.dir, "README.md")]
	var prose template.HTML
	title := st.dir
	if d != nil {
		if prose, err = s.render(d); err != nil {
			return nil, nil, err
		}
		title = d.title
	}
	sp := &stagePage{Num: st.num, Dir: st.dir, Count: s.stages[len(s.stages)-1].num,
		Prev: navOf(st.prev), Next: navOf(st.next), StagePage: st.page(), File: "main.go"}
	if s.readFile(path.Join(st.dir, "plumbing.go")) != nil {
		sp.Plumbing = st.plumbingPage()
	}

	added := map[string]map[int]bool{}
	if st.prev != nil {
		diff, err := s.stageDiff(st.prev, st)
		if err != nil {
			return nil, nil, err
		}
		var ss []*sentence
		if d != nil {
			ss = sentences(d)
		}
		for _, f := range diff {
			fv, err := s.fileView(d, f, ss)
			if err != nil {
				return nil, nil, err
			}
			sp.Diff = append(sp.Diff, fv)
			sp.Adds += f.Adds
			sp.Dels += f.Dels
			added[f.Name] = map[int]bool{}
			for _, h := range f.Hunks {
				for _, l := range h.Lines {
					if l.Kind == '+' {
						added[f.Name][l.New] = true
					}
				}
			}
		}
	}

	sp.Sections, sp.Changed = s.goFile(st, "main.go", added)
	sp.ScriptsDir = path.Join("testdata", st.dir)
	sp.Scripts = s.scripts(sp.ScriptsDir)
	sp.ScriptsLink = s.sourceLink(sp.ScriptsDir)
	var entries []tocEntry
	if d != nil {
		entries = toc(d)
	}
	if sp.Diff != nil {
		entries = append(entries, tocEntry{ID: "the-diff", Text: "What changed from " + st.prev.dir, Code: true})
	}
	entries = append(entries, tocEntry{ID: "main.go", Text: "main.go", Code: true})
	if sp.Scripts != nil {
		entries = append(entries, tocEntry{ID: "the-scripts", Text: "Its scripts", Code: true})
	}
	stagePg, err = execute(page{Title: title, Kind: "stage", Nav: s.nav(st.dir), More: s.more(), Prose: prose,
		Toc: entries, Stage: sp})
	if err != nil || sp.Plumbing == "" {
		return stagePg, nil, err
	}

	pp := *sp
	pp.File, pp.Diff, pp.Scripts = "plumbing.go", nil, nil
	pp.Sections, pp.Changed = s.goFile(st, "plumbing.go", added)
	pp.Same = s.sameIn(st, "plumbing.go")
	plumbingPg, err = execute(page{Title: st.dir + ": plumbing.go", Kind: "plumbing", Nav: s.nav(st.dir), More: s.more(), Stage: &pp})
	return stagePg, plumbingPg, err
}

// scripts reads a stage's testscript files, testdata/NN-name/*.txt: each
// with its name, the first sentence of its opening comment, and its lines,
// comments set apart from commands and a txtar file's "-- name --" headers
// from both.
func (s *site) scripts(dir string) []script {
	files, _ := filepath.Glob(filepath.Join(s.root, dir, "*.txt"))
	var out []script
	for _, f := range files {
		text := string(s.readFile(path.Join(dir, filepath.Base(f))))
		sc := script{Name: strings.TrimSuffix(filepath.Base(f), ".txt")}
		var about []string
		var b strings.Builder
		for i, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			esc := template.HTMLEscapeString(l)
			switch {
			case strings.HasPrefix(strings.TrimSpace(l), "#"):
				if i == len(about) {
					about = append(about, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#")))
				}
				b.WriteString(`<span class="c">` + esc + "</span>")
			case strings.HasPrefix(l, "-- ") && strings.HasSuffix(l, " --"):
				b.WriteString(`<span class="f">` + esc + "</span>")
			default:
				cmd, rest, _ := strings.Cut(esc, " ")
				b.WriteString(`<b>` + cmd + "</b>")
				if rest != "" {
					b.WriteString(" " + rest)
				}
			}
			b.WriteByte('\n')
		}
		sc.About = firstSentence(strings.Join(about, " "))
		sc.Lines = template.HTML(b.String())
		out = append(out, sc)
	}
	return out
}

// firstSentence is a text up to its first full stop followed by a space.
func firstSentence(text string) string {
	if i := strings.Index(text, ". "); i >= 0 {
		return text[:i+1]
	}
	return text
}

// goFile splits one Go file of a stage into sections, its lines new since
// the stage before marked, and counts the sections with such lines.
func (s *site) goFile(st *stage, name string, added map[string]map[int]bool) ([]section, int) {
	secs := sections(string(s.readFile(path.Join(st.dir, name))), added[name])
	changed := 0
	for _, sec := range secs {
		if sec.Changed {
			changed++
		}
	}
	return secs, changed
}

// sameIn names the run of stages around st whose copy of file is the same
// as st's, such as "04-unix-socket to 06-udata", or "" if it is st's alone.
func (s *site) sameIn(st *stage, file string) string {
	text := s.readFile(path.Join(st.dir, file))
	first, last := st, st
	for first.prev != nil && bytes.Equal(s.readFile(path.Join(first.prev.dir, file)), text) {
		first = first.prev
	}
	for last.next != nil && bytes.Equal(s.readFile(path.Join(last.next.dir, file)), text) {
		last = last.next
	}
	if first == last {
		return ""
	}
	return first.dir + " to " + last.dir
}

// fileView lays out one file's diff: each hunk headed by the declarations
// it changes and, where one is found, the README sentence that explains it.
func (s *site) fileView(d *doc, f *fileDiff, ss []*sentence) (fileView, error) {
	fv := fileView{Name: f.Name, Adds: f.Adds, Dels: f.Dels}
	oldTokens, newTokens := tokenLines("go", f.Old), tokenLines("go", f.New)
	for i, h := range f.Hunks {
		hv := hunkView{ID: fmt.Sprintf("diff-%s-%d", f.Name, i+1), Names: h.Names,
			Lines: hunkLines(f, h, oldTokens, newTokens)}
		if len(hv.Names) == 0 {
			hv.Where = fmt.Sprintf("line %d", h.NewStart)
		}
		if d != nil {
			if why := explain(ss, hunkNames(f, h, oldTokens, newTokens)); why != nil {
				html, err := s.renderMarkdown(d, []byte(why.src))
				if err != nil {
					return fv, err
				}
				hv.Why, hv.WhyFrom, hv.WhyLink = html, why.heading, why.anchor
			}
		}
		fv.Hunks = append(fv.Hunks, hv)
	}
	return fv, nil
}

// assets are the files every page shares: the style sheet, with chroma's
// colours for code (light, and dark where the reader's system asks for
// it), and the little script.
func assets() map[string][]byte {
	css, _ := files.ReadFile("style.css")
	js, _ := files.ReadFile("site.js")
	var b bytes.Buffer
	b.Write(css)
	b.WriteString("\n/* Code colours: chroma's github style, and github-dark in dark mode. */\n")
	b.WriteString(chromaCSS("github"))
	b.WriteString("@media (prefers-color-scheme: dark) {\n")
	b.WriteString(chromaCSS("github-dark"))
	b.WriteString("}\n")
	return map[string][]byte{"style.css": b.Bytes(), "site.js": js}
}

// chromaCSS is a chroma style's colours for the token classes only: the
// backgrounds and line layout are the site's own.
func chromaCSS(name string) string {
	var b strings.Builder
	_ = html.New(html.WithClasses(true)).WriteCSS(&b, styles.Get(name))
	var out strings.Builder
	for _, l := range strings.Split(b.String(), "\n") {
		rule := l
		if i := strings.Index(l, "*/ "); i >= 0 {
			rule = l[i+3:]
		}
		if !strings.HasPrefix(rule, ".chroma .") || strings.Contains(rule, "background-color") && !strings.Contains(rule, ".err") {
			continue
		}
		sel := strings.Fields(rule)[1]
		if lineClasses[strings.TrimPrefix(sel, ".")] {
			continue
		}
		out.WriteString(rule + "\n")
	}
	return out.String()
}

// chroma's classes for line numbers and line tables, which the site does
// not use.
var lineClasses = map[string]bool{}

func init() {
	for _, t := range []chroma.TokenType{chroma.LineLink, chroma.LineTableTD, chroma.LineTable, chroma.LineHighlight,
		chroma.LineNumbersTable, chroma.LineNumbers, chroma.Line, chroma.CodeLine} {
		lineClasses[chroma.StandardTypes[t]] = true
	}
}
