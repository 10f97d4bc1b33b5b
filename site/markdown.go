package main

import (
	"bytes"
	"fmt"
	"html/template"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// doc is one Markdown file of the workbook, parsed.
type doc struct {
	path  string // its path in the repository: 03-connpool/README.md
	dir   string // the directory its relative links start from
	page  string // the page it becomes: 03-connpool.html
	title string // its first heading, as text
	src   []byte
	root  ast.Node
	ids   map[string]bool // the ids of its headings
}

// The Markdown of the READMEs as GitHub shows it: tables, strikethrough,
// autolinks, and GitHub's ids for headings, so that a link such as
// ../README.md#set-up finds its heading here as it does there.
var markdown = goldmark.New(
	goldmark.WithExtensions(extension.GFM),
	goldmark.WithParserOptions(parser.WithAutoHeadingID()),
	goldmark.WithRendererOptions(renderer.WithNodeRenderers(util.Prioritized(blockRenderer{}, 100))),
)

// parse reads and parses Markdown file p, and queues the Markdown files its
// links point to.
func (s *site) parse(p string) error {
	src := s.readFile(p)
	if src == nil {
		return fmt.Errorf("cannot read %s", p)
	}
	d := &doc{path: p, dir: path.Dir(p), page: s.pageFor(p), src: src, ids: map[string]bool{}}
	if st := s.byDir[d.dir]; st != nil && path.Base(p) == "README.md" {
		d.page = st.page()
	}
	ctx := parser.NewContext(parser.WithIDs(newSlugs()))
	d.root = markdown.Parser().Parse(text.NewReader(src), parser.WithContext(ctx))
	err := ast.Walk(d.root, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Heading:
			if id, ok := n.AttributeString("id"); ok {
				d.ids[string(id.([]byte))] = true
			}
			if d.title == "" && n.Level == 1 {
				d.title = plainText(n, src)
			}
		case *ast.Link:
			if t := s.resolve(d.dir, string(n.Destination)); t.doc != "" {
				s.want(t.doc)
			}
		}
		return ast.WalkContinue, nil
	})
	if d.title == "" {
		d.title = p
	}
	s.docs[p] = d
	return err
}

// render turns a parsed document into HTML, its links pointing into the
// site: a link whose target is not in the tree loses its link (and is
// reported), an anchor that its page lacks is dropped.
func (s *site) render(d *doc) (template.HTML, error) {
	return s.renderNode(d, d.root, d.src)
}

// renderMarkdown renders a fragment of Markdown (a sentence of a README)
// with the links of document d.
func (s *site) renderMarkdown(d *doc, src []byte) (template.HTML, error) {
	root := markdown.Parser().Parse(text.NewReader(src))
	return s.renderNode(d, root, src)
}

func (s *site) renderNode(d *doc, root ast.Node, src []byte) (template.HTML, error) {
	var dead []*ast.Link
	_ = ast.Walk(root, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Link:
			href, class, ok := s.href(d, string(n.Destination))
			if !ok {
				dead = append(dead, n)
				break
			}
			n.Destination = []byte(href)
			if class != "" {
				n.SetAttributeString("class", []byte(class))
			}
		case *ast.Image:
			if href, _, ok := s.href(d, string(n.Destination)); ok {
				n.Destination = []byte(href)
			}
		}
		return ast.WalkContinue, nil
	})
	// A link to nothing keeps its text.
	for _, l := range dead {
		parent := l.Parent()
		for c := l.FirstChild(); c != nil; {
			next := c.NextSibling()
			parent.InsertBefore(parent, l, c)
			c = next
		}
		parent.RemoveChild(parent, l)
	}
	var b bytes.Buffer
	if err := markdown.Renderer().Render(&b, src, root); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil
}

// target is where a README's link leads, as found in the tree.
type target struct {
	external bool   // a URL with a scheme: left as it is
	path     string // the repository path, cleaned
	frag     string
	page     string // the site's page for it, if it has one
	doc      string // the Markdown file that page is made from, if any
	copy     bool   // a file copied into the site under files/
	dir      bool
	missing  bool // nothing at that path, or outside the workbook
}

// resolve finds what a link written in directory dir leads to.
func (s *site) resolve(dir, dest string) target {
	if u, err := url.Parse(dest); err == nil && u.Scheme != "" {
		return target{external: true}
	}
	p, frag, _ := strings.Cut(dest, "#")
	if p == "" {
		return target{frag: frag}
	}
	if unescaped, err := url.PathUnescape(p); err == nil {
		p = unescaped
	}
	p = path.Join(dir, p)
	t := target{path: p, frag: frag}
	if p == ".." || strings.HasPrefix(p, "../") || strings.HasPrefix(p, "/") {
		t.missing = true
		return t
	}
	info, err := os.Stat(filepath.Join(s.root, p))
	if err != nil {
		t.missing = true
		return t
	}
	if p == "." {
		p = ""
	}
	base := path.Base(p)
	switch {
	case info.IsDir() && s.byDir[p] != nil:
		t.page, t.doc = s.byDir[p].page(), path.Join(p, "README.md")
	case info.IsDir():
		if _, err := os.Stat(filepath.Join(s.root, p, "README.md")); err == nil {
			t.doc = path.Join(p, "README.md")
			t.page = s.pageFor(t.doc)
		} else {
			t.dir = true
		}
	case strings.HasSuffix(p, ".md"):
		t.doc = p
		t.page = s.pageFor(p)
		if st := s.byDir[path.Dir(p)]; st != nil && base == "README.md" {
			t.page = st.page()
		}
	case s.byDir[path.Dir(p)] != nil && base == "main.go":
		t.page, t.frag = s.byDir[path.Dir(p)].page(), "main.go"
	case s.byDir[path.Dir(p)] != nil && base == "plumbing.go":
		t.page = s.byDir[path.Dir(p)].plumbingPage()
	case path.Dir(p) == "diffs" && strings.HasSuffix(base, ".diff") &&
		s.byDir[strings.TrimSuffix(base, ".diff")] != nil && s.byDir[strings.TrimSuffix(base, ".diff")].prev != nil:
		t.page, t.frag = s.byDir[strings.TrimSuffix(base, ".diff")].page(), "the-diff"
	case copied[path.Ext(p)] && info.Size() <= 4<<20:
		t.copy = true
	}
	return t
}

// The kinds of file a README may link to that are copied into the site, so
// that the site shows them without the repository: charts, tables, logs.
var copied = map[string]bool{".png": true, ".svg": true, ".jpg": true, ".txt": true, ".csv": true,
	".json": true, ".diff": true, ".yml": true, ".yaml": true}

// href is where a link of document d points in the site, and a class for a
// link that leaves it; ok is false for a link to nothing.
func (s *site) href(d *doc, dest string) (href, class string, ok bool) {
	t := s.resolve(d.dir, dest)
	switch {
	case t.external:
		return dest, "", true
	case t.missing:
		s.warnf("%s: link to %s, which is not in the tree", d.path, dest)
		return "", "", false
	case t.path == "" && t.frag != "":
		if !s.pageHasID(d.page, t.frag) {
			s.warnf("%s: link to #%s, which it has no heading for", d.path, t.frag)
			return "", "", false
		}
		return "#" + t.frag, "", true
	case t.page != "":
		if t.frag != "" && !s.pageHasID(t.page, t.frag) {
			s.warnf("%s: link to %s: %s has no heading #%s; linked to the page", d.path, dest, t.page, t.frag)
			t.frag = ""
		}
		if t.frag != "" {
			return t.page + "#" + t.frag, "", true
		}
		return t.page, "", true
	case t.copy:
		s.copy(t.path)
		return "files/" + t.path, "", true
	default:
		return s.sourceLink(t.path), "source", true
	}
}

// The ids a stage page has besides its README's headings.
var stageIDs = map[string]bool{"main.go": true, "the-diff": true}

// pageHasID says whether the page has an element with that id, as far as
// links from the READMEs can ask: the headings of its document, and the
// sections of a stage page.
func (s *site) pageHasID(page, id string) bool {
	for _, d := range s.docs {
		if d.page == page && d.ids[id] {
			return true
		}
	}
	for _, st := range s.stages {
		if st.page() == page && stageIDs[id] {
			return true
		}
	}
	return false
}

// slugs makes GitHub's ids for headings: lower case, punctuation dropped,
// spaces made dashes, and -1, -2, ... after a repeat.
type slugs map[string]bool

func newSlugs() slugs { return slugs{} }

func (s slugs) Generate(value []byte, kind ast.NodeKind) []byte {
	var b strings.Builder
	for _, r := range strings.ToLower(string(value)) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	id := b.String()
	if id == "" {
		id = "section"
	}
	unique := id
	for i := 1; s[unique]; i++ {
		unique = fmt.Sprintf("%s-%d", id, i)
	}
	s[unique] = true
	return []byte(unique)
}

func (s slugs) Put(value []byte) { s[string(value)] = true }

// plainText is the text of a node and its children, code spans included.
func plainText(n ast.Node, src []byte) string {
	var b strings.Builder
	_ = ast.Walk(n, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Text:
			b.Write(n.Segment.Value(src))
			if n.SoftLineBreak() {
				b.WriteByte(' ')
			}
		case *ast.String:
			b.Write(n.Value)
		}
		return ast.WalkContinue, nil
	})
	return b.String()
}

// blockRenderer renders what the READMEs hold besides prose: code blocks,
// highlighted by chroma, the traces of "Watch it" set as a table of the
// kernel's conversation, and headings with a link to themselves.
type blockRenderer struct{}

func (blockRenderer) RegisterFuncs(r renderer.NodeRendererFuncRegisterer) {
	r.Register(ast.KindFencedCodeBlock, renderCodeBlock)
	r.Register(ast.KindCodeBlock, renderCodeBlock)
	r.Register(ast.KindHeading, renderHeading)
}

func renderCodeBlock(w util.BufWriter, src []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkSkipChildren, nil
	}
	var code bytes.Buffer
	lines := n.Lines()
	for i := 0; i < lines.Len(); i++ {
		seg := lines.At(i)
		code.Write(seg.Value(src))
	}
	lang := ""
	if f, ok := n.(*ast.FencedCodeBlock); ok {
		lang = string(f.Language(src))
	}
	if lang == "" && isTrace(code.String()) {
		_, _ = w.WriteString(string(traceHTML(code.String())))
		return ast.WalkSkipChildren, nil
	}
	_, _ = w.WriteString(`<pre class="block chroma">`)
	_, _ = w.WriteString(string(highlightBlock(lang, code.String())))
	_, _ = w.WriteString("</pre>\n")
	return ast.WalkSkipChildren, nil
}

func renderHeading(w util.BufWriter, src []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	n := node.(*ast.Heading)
	id, hasID := n.AttributeString("id")
	if entering {
		fmt.Fprintf(w, "<h%d", n.Level)
		if hasID {
			fmt.Fprintf(w, ` id="%s"`, template.HTMLEscapeString(string(id.([]byte))))
		}
		_ = w.WriteByte('>')
		return ast.WalkContinue, nil
	}
	if hasID && n.Level > 1 {
		fmt.Fprintf(w, ` <a class="anchor" href="#%s" aria-label="link to this section">#</a>`,
			template.HTMLEscapeString(string(id.([]byte))))
	}
	fmt.Fprintf(w, "</h%d>\n", n.Level)
	return ast.WalkContinue, nil
}

// A trace line of the kqueue package (KQUEUE_TRACE): seconds, the queue, and
// what happened; at level 2 the system calls of the Linux emulation, and
// between them the server's own log lines.
var (
	traceLine   = regexp.MustCompile(`^\s*([0-9]+\.[0-9]+) (kq=[0-9]+)\s+(change|wait|event)(\s+)(.*)$`)
	syscallLine = regexp.MustCompile(`^\s*([0-9]+\.[0-9]+)(\s+)([a-z_0-9]+)(\(.*)$`)
	logLine     = regexp.MustCompile(`^[0-9][0-9]:[0-9][0-9]:[0-9][0-9] `)
	traceWord   = regexp.MustCompile(`\b(?:EVFILT_[A-Z]+|EV_[A-Z]+|NOTE_[A-Z]+|EPOLL[A-Z_]+|E[A-Z]{3,})\b|\b[a-z]+=`)
)

// isTrace says whether a code block is a trace: most of its lines are
// kqueue trace lines.
func isTrace(code string) bool {
	lines := strings.Split(strings.TrimRight(code, "\n"), "\n")
	n := 0
	for _, l := range lines {
		if traceLine.MatchString(l) {
			n++
		}
	}
	return n > 0 && 2*n >= len(lines)
}

// traceHTML sets a trace so that its columns read at a glance: each line
// classed by what it is (change, wait, event, a system call, a log line),
// filters and flags picked out, field names muted. The text is unchanged.
func traceHTML(code string) template.HTML {
	var lines strings.Builder
	kinds := map[string]bool{}
	for _, l := range strings.Split(strings.TrimRight(code, "\n"), "\n") {
		esc := template.HTMLEscapeString
		switch m := traceLine.FindStringSubmatch(l); {
		case m != nil:
			lead := l[:strings.Index(l, m[1])]
			fmt.Fprintf(&lines, `<span class="tl k-%s">%s<span class="t">%s</span> <span class="q">%s</span> <b>%s</b>%s%s`,
				m[3], lead, m[1], m[2], m[3], m[4], traceFields(m[5]))
			kinds[m[3]] = true
		case syscallLine.MatchString(l):
			m := syscallLine.FindStringSubmatch(l)
			lead := l[:strings.Index(l, m[1])]
			fmt.Fprintf(&lines, `<span class="tl k-sys">%s<span class="t">%s</span>%s<b>%s</b>%s`,
				lead, m[1], m[2], esc(m[3]), traceFields(m[4]))
			kinds["sys"] = true
		case logLine.MatchString(l):
			fmt.Fprintf(&lines, `<span class="tl k-log">%s`, esc(l))
			kinds["log"] = true
		default:
			fmt.Fprintf(&lines, `<span class="tl">%s`, esc(l))
		}
		lines.WriteString("\n</span>")
	}
	// The legend names the kinds of line this trace has.
	var b strings.Builder
	b.WriteString(`<figure class="trace"><figcaption>`)
	for _, k := range traceKinds {
		if kinds[k.class] {
			fmt.Fprintf(&b, `<span><b class="k-%s">%s</b> %s</span>`, k.class, k.name, k.says)
		}
	}
	b.WriteString(`</figcaption><pre>`)
	b.WriteString(lines.String())
	b.WriteString("</pre></figure>\n")
	return template.HTML(b.String())
}

// The kinds of trace line, in the order the legend gives them.
var traceKinds = []struct{ class, name, says string }{
	{"change", "change", "what the program asked for"},
	{"wait", "wait", "the call: its timeout, its sleep"},
	{"event", "event", "what came back"},
	{"sys", "epoll", "the emulation's system calls"},
	{"log", "log", "the server's own line on stderr"},
}

// traceFields picks out the filters, flags and errors of a trace line and
// mutes its field names.
func traceFields(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range traceWord.FindAllStringIndex(s, -1) {
		b.WriteString(template.HTMLEscapeString(s[last:m[0]]))
		w := s[m[0]:m[1]]
		if strings.HasSuffix(w, "=") {
			fmt.Fprintf(&b, `<span class="f">%s</span>`, template.HTMLEscapeString(w))
		} else {
			fmt.Fprintf(&b, `<span class="c">%s</span>`, template.HTMLEscapeString(w))
		}
		last = m[1]
	}
	b.WriteString(template.HTMLEscapeString(s[last:]))
	return b.String()
}
