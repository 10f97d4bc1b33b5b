package progress

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// A Size is the room a view has: a terminal's columns and rows. Rows 0
// means as many as the view takes, for a summary printed once.
type Size struct{ Width, Height int }

// The marks of a script.
const (
	markPassed  = "✓"
	markFailed  = "✗"
	markSkipped = "-"
)

// View returns the lines of r's view, each at most size.Width columns wide,
// and at most size.Height of them if that is not 0. status goes on the
// first line, after the directory: "run 3, 4.1 s", say, or "".
//
// From the top: this stage's scripts, one line each with ✓ or ✗, in the
// order of the path; one line per earlier stage, with how many of its
// scripts pass; a progress bar; and for the first script of the path that
// fails, what the behaviour is (its comment), the command that failed and
// why, in a few lines. In a small terminal the view gives up, in turn, its
// blank lines, one column of scripts for two, and lines of the failure.
func View(r Report, size Size, status string) []string {
	if size.Width < 20 {
		size.Width = 20
	}
	var lines []string
	for _, l := range layouts {
		lines = view(r, size, status, l)
		if size.Height == 0 || len(lines) <= size.Height {
			return lines
		}
	}
	// Still too tall: cut, and say so on the last line.
	lines = lines[:size.Height-1]
	return append(lines, clip("… (the rest does not fit: make the terminal taller)", size.Width))
}

// A layout is how densely a view is laid out.
type layout struct {
	blank         bool // blank lines between the parts
	listedColumns int  // columns for the scripts listed one by one
	earlyColumns  int  // columns for the earlier stages
	commentLines  int  // at most this many lines of the failing script's comment
	whyLines      int  // and of why it failed
}

// layouts go from the most spacious to the densest.
var layouts = []layout{
	{blank: true, listedColumns: 1, earlyColumns: 1, commentLines: 3, whyLines: 3},
	{blank: false, listedColumns: 1, earlyColumns: 1, commentLines: 2, whyLines: 3},
	{blank: false, listedColumns: 2, earlyColumns: 1, commentLines: 2, whyLines: 2},
	{blank: false, listedColumns: 2, earlyColumns: 2, commentLines: 1, whyLines: 2},
}

func view(r Report, size Size, status string, l layout) []string {
	w := size.Width
	var out []string
	add := func(s ...string) {
		for _, line := range s {
			out = append(out, clip(line, w))
		}
	}
	part := func() {
		if l.blank && len(out) > 0 && out[len(out)-1] != "" {
			out = append(out, "")
		}
	}

	head := fmt.Sprintf("%s, as stage %02d", r.Dir, r.Stage)
	if r.Only != "" {
		head += fmt.Sprintf(" (only -run %s)", r.Only)
	}
	if status != "" {
		head += " · " + status
	}
	add(head)

	// The scripts listed one by one, group by group, then the earlier stages.
	width := 0 // of the earlier stages' names
	for _, g := range groups(r.Scripts) {
		if g[0].Listed {
			part()
			add(g[0].Group + ":")
			var items []string
			for _, s := range g {
				items = append(items, "  "+mark(s.Status)+" "+s.Name)
			}
			add(columns(items, l.listedColumns, w)...)
			continue
		}
		width = max(width, len(g[0].Group))
	}
	var early []string
	for _, g := range groups(r.Scripts) {
		if g[0].Listed {
			continue
		}
		passed, counted := Count(g)
		m := markPassed
		if passed < counted {
			m = markFailed
		}
		line := fmt.Sprintf("  %s %-*s %3d of %d", m, width, g[0].Group, passed, counted)
		if skipped := len(g) - counted; skipped > 0 {
			line += fmt.Sprintf(", %d skipped", skipped)
		}
		early = append(early, line)
	}
	if len(early) > 0 {
		part()
		add("earlier stages:")
		add(columns(early, l.earlyColumns, w)...)
	}

	part()
	if len(r.Scripts) == 0 {
		add("no script ran")
		return out
	}
	add(bar(r.Scripts, w))

	first, ok := r.FirstFailure()
	if !ok {
		return out
	}
	part()
	add(fmt.Sprintf("first to fix: %s (%s)", first.Name, first.Group))
	if first.Comment != "" {
		add(wrap(first.Comment, "  ", w, l.commentLines)...)
	}
	if first.Command != "" {
		add(clip("  "+lineOf(first.Where)+first.Command, w))
	}
	// Each line of why on lines of its own, the later ones given a line
	// each before the first gets a second.
	room := l.whyLines
	for i, why := range first.Why {
		most := max(1, room-(len(first.Why)-1-i))
		lines := wrap(why, "  ", w, most)
		add(lines...)
		room -= len(lines)
	}
	return out
}

// groups splits scripts into runs of the same group.
func groups(scripts []Script) [][]Script {
	var gs [][]Script
	for i, s := range scripts {
		if i == 0 || s.Group != scripts[i-1].Group {
			gs = append(gs, nil)
		}
		gs[len(gs)-1] = append(gs[len(gs)-1], s)
	}
	return gs
}

func mark(s Status) string {
	switch s {
	case Passed:
		return markPassed
	case Failed:
		return markFailed
	}
	return markSkipped
}

// lineOf turns "03-connpool/x.txt:12" into "line 12: ".
func lineOf(where string) string {
	if i := strings.LastIndexByte(where, ':'); i >= 0 {
		return "line " + where[i+1:] + ": "
	}
	return ""
}

// bar is the progress bar: how many behaviours pass out of those checked.
func bar(scripts []Script, w int) string {
	passed, counted := Count(scripts)
	text := fmt.Sprintf("%d of %d behaviours done", passed, counted)
	n := min(40, w-len(text)-3)
	if n < 5 || counted == 0 {
		return text
	}
	filled := n * passed / counted
	if passed > 0 && filled == 0 {
		filled = 1
	}
	if passed < counted && filled == n {
		filled = n - 1
	}
	return strings.Repeat("█", filled) + strings.Repeat("░", n-filled) + "  " + text
}

// columns lays items out in n columns, filled top to bottom, each at most
// w/n wide.
func columns(items []string, n, w int) []string {
	if n <= 1 || len(items) < 2 {
		return items
	}
	rows := (len(items) + n - 1) / n
	cw := w / n
	out := make([]string, rows)
	for i, item := range items {
		r, c := i%rows, i/rows
		if c < n-1 {
			item = pad(clip(item, cw-1), cw)
		}
		out[r] += item
	}
	for i := range out {
		out[i] = strings.TrimRight(out[i], " ")
	}
	return out
}

// wrap breaks text into lines of at most w columns, each starting with
// indent, and keeps at most most of them (0: all), ending the last one kept
// with … if text goes on.
func wrap(text, indent string, w, most int) []string {
	var lines []string
	line := indent
	for _, word := range strings.Fields(text) {
		if line != indent && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > w {
			lines = append(lines, line)
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += word
	}
	if line != indent {
		lines = append(lines, line)
	}
	if most > 0 && len(lines) > most {
		lines = lines[:most]
		lines[most-1] = clip(lines[most-1]+" …", w)
	}
	return lines
}

// clip cuts s to at most w columns, ending it with … if it had to.
func clip(s string, w int) string {
	if utf8.RuneCountInString(s) <= w {
		return s
	}
	r := []rune(s)
	return string(r[:w-1]) + "…"
}

// pad fills s with spaces to w columns.
func pad(s string, w int) string {
	return s + strings.Repeat(" ", max(0, w-utf8.RuneCountInString(s)))
}
