package main

import (
	"regexp"
	"strings"

	"github.com/alecthomas/chroma/v2"
	"github.com/yuin/goldmark/ast"
	east "github.com/yuin/goldmark/extension/ast"
)

// sentence is one sentence of a README's prose, in Markdown, with the
// section it stands in and the names it quotes as code.
type sentence struct {
	src       string
	heading   string // the text of its section's heading
	anchor    string // that heading's id
	weight    int    // how much its section explains code (see sectionWeight)
	names     map[string]bool
	firstUsed bool
}

// sentences splits the paragraphs and list items of a README into
// sentences. Code blocks, tables and headings are left out.
func sentences(d *doc) []*sentence {
	var out []*sentence
	heading, anchor, weight := "", "", 1
	for n := d.root.FirstChild(); n != nil; n = n.NextSibling() {
		if h, ok := n.(*ast.Heading); ok {
			if h.Level <= 2 {
				heading, weight = plainText(h, d.src), sectionWeight(plainText(h, d.src))
				anchor = ""
				if id, ok := h.AttributeString("id"); ok {
					anchor = string(id.([]byte))
				}
			}
			continue
		}
		if weight == 0 {
			continue
		}
		_ = ast.Walk(n, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
			switch n.(type) {
			case *east.Table, *ast.FencedCodeBlock, *ast.CodeBlock:
				return ast.WalkSkipChildren, nil
			case *ast.Paragraph, *ast.TextBlock:
				if !entering {
					return ast.WalkContinue, nil
				}
				var raw []string
				lines := n.Lines()
				for i := 0; i < lines.Len(); i++ {
					seg := lines.At(i)
					raw = append(raw, strings.TrimSpace(string(seg.Value(d.src))))
				}
				for _, s := range splitSentences(strings.Join(raw, " ")) {
					if strings.HasSuffix(s, ":") {
						continue // it leads into a list or a block, and says little alone
					}
					out = append(out, &sentence{src: s, heading: heading, anchor: anchor, weight: weight, names: codeNames(s)})
				}
				return ast.WalkSkipChildren, nil
			}
			return ast.WalkContinue, nil
		})
	}
	return out
}

// sectionWeight: the sections that say what the code does weigh more than
// those that say how to run it; exercises explain no code of the stage.
func sectionWeight(heading string) int {
	h := strings.ToLower(heading)
	switch {
	case strings.Contains(h, "exercise"):
		return 0
	case strings.Contains(h, "new"):
		return 3
	case strings.Contains(h, "wrong") || strings.Contains(h, "fix"):
		return 2
	}
	return 1
}

// splitSentences splits a paragraph's Markdown after a full stop, question
// or exclamation mark followed by a space and a capital, a backtick, an
// asterisk, a parenthesis or a bracket, never inside a code span or a link.
func splitSentences(p string) []string {
	var out []string
	start, code, bracket := 0, false, 0
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '`':
			code = !code
		case code:
		case c == '[':
			bracket++
		case c == ']' && bracket > 0:
			bracket--
		case bracket == 0 && (c == '.' || c == '?' || c == '!') && i+2 < len(p) && p[i+1] == ' ' &&
			strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZ`*([", rune(p[i+2])):
			out = append(out, strings.TrimSpace(p[start:i+1]))
			start = i + 2
		}
	}
	if rest := strings.TrimSpace(p[start:]); rest != "" {
		out = append(out, rest)
	}
	return out
}

var (
	codeSpan   = regexp.MustCompile("`([^`]+)`")
	identifier = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
)

// codeNames are the identifiers inside a sentence's code spans.
func codeNames(s string) map[string]bool {
	names := map[string]bool{}
	for _, m := range codeSpan.FindAllStringSubmatch(s, -1) {
		for _, id := range identifier.FindAllString(m[1], -1) {
			if len(id) > 2 {
				names[id] = true
			}
		}
	}
	return names
}

// hunkNames weighs the names a hunk touches: the declarations it changes
// weigh 3, names its added lines bring in that the old file did not have 2,
// and any other name on a changed line 1. Short names and Go's own
// predeclared ones say nothing about what a hunk is for.
func hunkNames(f *fileDiff, h *hunk, oldTokens, newTokens [][]chroma.Token) map[string]int {
	w := map[string]int{}
	add := func(name string, weight int) {
		if len(name) > 2 && w[name] < weight {
			w[name] = weight
		}
	}
	for _, n := range h.Names {
		add(declKey(n), 3)
	}
	oldNames := map[string]bool{}
	for _, id := range identifier.FindAllString(f.Old, -1) {
		oldNames[id] = true
	}
	for _, l := range h.Lines {
		var tokens []chroma.Token
		switch {
		case l.Kind == '+' && l.New <= len(newTokens):
			tokens = newTokens[l.New-1]
		case l.Kind == '-' && l.Old <= len(oldTokens):
			tokens = oldTokens[l.Old-1]
		default:
			continue
		}
		for _, t := range tokens {
			if t.Type.Category() != chroma.Name || t.Type == chroma.NameBuiltin {
				continue
			}
			if l.Kind == '+' && !oldNames[t.Value] {
				add(t.Value, 2)
			} else {
				add(t.Value, 1)
			}
		}
	}
	return w
}

// explain finds the sentence of the README that best explains a hunk: the
// one whose code spans name most of what the hunk touches, weighed by its
// section. A sentence already placed beside an earlier hunk counts half.
// It needs a name of weight 2 at least, or nothing is placed.
func explain(ss []*sentence, names map[string]int) *sentence {
	var best *sentence
	bestScore := 0
	for _, s := range ss {
		score, strong := 0, false
		for n := range s.names {
			if w := names[n]; w > 0 {
				score += w
				strong = strong || w >= 2
			}
		}
		if !strong {
			continue
		}
		score *= s.weight
		if s.firstUsed {
			score /= 2
		}
		if score > bestScore {
			best, bestScore = s, score
		}
	}
	if bestScore < 4 {
		return nil
	}
	best.firstUsed = true
	return best
}
