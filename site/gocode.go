package main

import (
	"html/template"
	"regexp"
	"strings"
	"sync"

	"github.com/alecthomas/chroma/v2"
	"github.com/alecthomas/chroma/v2/lexers"
)

// lexer is chroma's lexer for a code block's language, or plain text.
func lexer(lang string) chroma.Lexer {
	if lang == "sh" || lang == "shell" || lang == "console" {
		lang = "bash"
	}
	l := lexers.Get(lang)
	if l == nil {
		l = lexers.Fallback
	}
	return chroma.Coalesce(l)
}

// tokenCache keeps each file's tokens: a stage's main.go is shown on its
// page and in two diffs, and lexing is most of a build's work.
var tokenCache struct {
	sync.Mutex
	lines map[[2]string][][]chroma.Token
}

// tokenLines splits source into lines of chroma tokens, one slice for each
// line of the source (its newline left out), so that a file is highlighted
// whole, with the state of the lexer carried from line to line. The slices
// are shared: callers must not change them.
func tokenLines(lang, src string) [][]chroma.Token {
	key := [2]string{lang, src}
	tokenCache.Lock()
	lines, ok := tokenCache.lines[key]
	tokenCache.Unlock()
	if ok {
		return lines
	}
	lines = lex(lang, src)
	tokenCache.Lock()
	if tokenCache.lines == nil {
		tokenCache.lines = map[[2]string][][]chroma.Token{}
	}
	tokenCache.lines[key] = lines
	tokenCache.Unlock()
	return lines
}

func lex(lang, src string) [][]chroma.Token {
	it, err := lexer(lang).Tokenise(nil, src)
	if err != nil {
		return plainLines(src)
	}
	lines := chroma.SplitTokensIntoLines(it.Tokens())
	want := strings.Count(src, "\n")
	if !strings.HasSuffix(src, "\n") {
		want++
	}
	for len(lines) < want {
		lines = append(lines, nil)
	}
	lines = lines[:want]
	for i, l := range lines {
		if n := len(l); n > 0 {
			last := l[n-1]
			last.Value = strings.TrimSuffix(last.Value, "\n")
			l[n-1] = last
		}
		lines[i] = l
	}
	// Every line's text must be the source's line, or the page would lie.
	for i, text := range strings.Split(strings.TrimSuffix(src, "\n"), "\n") {
		if lineText(lines[i]) != text {
			return plainLines(src)
		}
	}
	return lines
}

func plainLines(src string) [][]chroma.Token {
	var lines [][]chroma.Token
	for _, l := range strings.Split(strings.TrimSuffix(src, "\n"), "\n") {
		lines = append(lines, []chroma.Token{{Type: chroma.Text, Value: l}})
	}
	return lines
}

func lineText(tokens []chroma.Token) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteString(t.Value)
	}
	return b.String()
}

// class is chroma's CSS class for a token type, as its HTML formatter with
// classes names it (the style sheet comes from that formatter).
func class(t chroma.TokenType) string {
	for ; t != 0; t = t.Parent() {
		if cls, ok := chroma.StandardTypes[t]; ok {
			return cls
		}
	}
	return ""
}

// span is a part of a line to be marked: bytes [from, to) of its text.
type span struct{ from, to int }

// tokensHTML writes a line's tokens as highlighted HTML; the bytes inside
// marks are wrapped in <span class="chg">, the in-line change of a diff.
func tokensHTML(tokens []chroma.Token, marks []span) template.HTML {
	var b strings.Builder
	pos := 0
	for _, t := range tokens {
		cls := class(t.Type)
		for v := t.Value; v != ""; {
			// The piece of v up to the next edge of a mark.
			start, n, marked := pos, len(v), false
			for _, m := range marks {
				switch {
				case start >= m.from && start < m.to:
					marked, n = true, min(n, m.to-start)
				case m.from > start:
					n = min(n, m.from-start)
				}
			}
			piece := template.HTMLEscapeString(v[:n])
			if cls != "" {
				piece = `<span class="` + cls + `">` + piece + `</span>`
			}
			if marked {
				piece = `<span class="chg">` + piece + `</span>`
			}
			b.WriteString(piece)
			v, pos = v[n:], pos+n
		}
	}
	return template.HTML(b.String())
}

// highlightBlock highlights a README's code block.
func highlightBlock(lang, code string) template.HTML {
	var b strings.Builder
	for i, l := range tokenLines(lang, code) {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(string(tokensHTML(l, nil)))
	}
	return template.HTML(b.String())
}

// A Go source file in the manner of Go by Example: sections of a comment
// block and the code it explains, set side by side.
type section struct {
	Prose   template.HTML // the comment block, as paragraphs
	Lines   []codeLine
	Changed bool // a line of it is new since the stage before
}

type codeLine struct {
	N     int
	HTML  template.HTML
	New   bool
	blank bool
}

// sections splits a Go file into sections. A full-line comment that follows
// code starts a new section, at any depth: a comment inside a function sits
// beside the lines it explains. Comment lines go to the prose, with their
// slashes taken off; every other line stays in the code, trailing comments
// included. Directives (//go:) are code. added holds the line numbers, from
// 1, that are new since the stage before.
func sections(src string, added map[int]bool) []section {
	lines := tokenLines("go", src)
	var out []section
	var comment []string
	var cur *section
	sawCode := false
	for i, l := range lines {
		n := i + 1
		if c, ok := commentLine(l); ok {
			if sawCode || cur == nil {
				out = append(out, section{})
				cur = &out[len(out)-1]
				comment, sawCode = nil, false
			}
			comment = append(comment, c)
			cur.Prose = commentHTML(comment)
			if added[n] {
				cur.Changed = true
			}
			continue
		}
		if cur == nil {
			out = append(out, section{})
			cur = &out[len(out)-1]
		}
		blank := strings.TrimSpace(lineText(l)) == ""
		sawCode = sawCode || !blank
		cur.Lines = append(cur.Lines, codeLine{N: n, HTML: tokensHTML(l, nil), New: added[n], blank: blank})
		if added[n] {
			cur.Changed = true
		}
	}
	// Blank lines at the ends of a section's code are only spacing, which
	// the layout gives; a section left with no code keeps its prose.
	for i := range out {
		ls := out[i].Lines
		for len(ls) > 0 && ls[0].blank {
			ls = ls[1:]
		}
		for len(ls) > 0 && ls[len(ls)-1].blank {
			ls = ls[:len(ls)-1]
		}
		out[i].Lines = ls
	}
	return out
}

// commentLine returns the text of a full-line // comment without its
// slashes and the one space after them.
func commentLine(tokens []chroma.Token) (string, bool) {
	text := strings.TrimLeft(lineText(tokens), " \t")
	if !strings.HasPrefix(text, "//") || strings.HasPrefix(text, "//go:") {
		return "", false
	}
	for _, t := range tokens {
		if strings.TrimSpace(t.Value) != "" && t.Type.Category() != chroma.Comment {
			return "", false
		}
	}
	text = strings.TrimPrefix(text, "//")
	return strings.TrimPrefix(text, " "), true
}

// Words of a comment that are code: names with an underscore or a capital
// inside (EV_ADD, OnReceive, maxClients) and calls such as close().
var (
	codeWord = regexp.MustCompile(`\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9_]+|[a-z0-9][A-Z][A-Za-z0-9_]*)\b(?:\(\))?|\b[a-z][A-Za-z0-9]*\(\)`)
	notCode  = map[string]bool{"macOS": true, "FreeBSD": true, "NetBSD": true, "OpenBSD": true,
		"DragonFly": true, "GitHub": true, "iOS": true}
)

// commentHTML sets a comment block as prose: paragraphs split at empty
// lines, indented lines (after the slashes, a tab or a second space) as
// preformatted text, list items on lines of their own.
func commentHTML(lines []string) template.HTML {
	var b strings.Builder
	var para, pre []string
	flushPara := func() {
		if len(para) > 0 {
			b.WriteString("<p>" + strings.Join(para, "\n") + "</p>")
			para = nil
		}
	}
	flushPre := func() {
		if len(pre) > 0 {
			b.WriteString(`<pre>` + strings.Join(pre, "\n") + "</pre>")
			pre = nil
		}
	}
	for _, l := range lines {
		switch {
		case strings.TrimSpace(l) == "":
			flushPara()
			flushPre()
		case strings.HasPrefix(l, "\t") || strings.HasPrefix(l, " "):
			flushPara()
			pre = append(pre, template.HTMLEscapeString(strings.TrimPrefix(l, "\t")))
		default:
			flushPre()
			if isListItem(l) && len(para) > 0 {
				para = append(para, "<br>")
			}
			para = append(para, codeWords(l))
		}
	}
	flushPara()
	flushPre()
	return template.HTML(b.String())
}

func isListItem(l string) bool {
	return strings.HasPrefix(l, "- ") || strings.HasPrefix(l, "* ") ||
		(len(l) > 2 && l[0] >= '0' && l[0] <= '9' && (strings.HasPrefix(l[1:], ". ") || strings.HasPrefix(l[1:], ") ")))
}

// codeWords escapes a line of comment and sets its code words as code.
func codeWords(l string) string {
	var b strings.Builder
	last := 0
	for _, m := range codeWord.FindAllStringIndex(l, -1) {
		w := l[m[0]:m[1]]
		if notCode[w] {
			continue
		}
		b.WriteString(template.HTMLEscapeString(l[last:m[0]]))
		b.WriteString("<code>" + template.HTMLEscapeString(w) + "</code>")
		last = m[1]
	}
	b.WriteString(template.HTMLEscapeString(l[last:]))
	return b.String()
}
