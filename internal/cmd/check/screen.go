package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// A screen is where watch shows its view. In a terminal the view is drawn
// over the last one, in place, with plain ANSI escapes (home, clear to the
// end of the line, clear below), cut to the terminal's size so that it never
// scrolls; the keyboard is read a key at a time, without echo and without
// the terminal turning Ctrl-C into SIGINT, so that Ctrl-C and q end watch
// by its own hand: make, which would die of a SIGINT and say so, sees an
// exit status of 0. Anywhere else, such as a file or a pipe, each run's view
// is written out in full, and a line with a form feed (a page break) after
// it.
type screen struct {
	out     *os.File
	tty     bool
	colour  bool
	keys    chan byte // the keys pressed, if the input is a terminal
	restore func()    // puts the terminal back as it was
}

func openScreen(out, in *os.File) *screen {
	s := &screen{out: out}
	if _, _, ok := terminalSize(out); !ok {
		return s
	}
	s.tty = true
	s.colour = os.Getenv("NO_COLOR") == ""
	if restore, err := cbreak(in); err == nil {
		s.restore = restore
		s.keys = make(chan byte)
		go func() {
			var b [1]byte
			for {
				if n, err := in.Read(b[:]); err != nil || n == 0 {
					close(s.keys)
					return
				}
				s.keys <- b[0]
			}
		}()
	}
	out.WriteString("\x1b[?25l\x1b[H\x1b[2J") // hide the cursor, clear the screen
	return s
}

// size is the view's room: the terminal's, or 80 columns and no limit.
func (s *screen) size() (int, int) {
	if s.tty {
		if w, h, ok := terminalSize(s.out); ok {
			return w, h
		}
	}
	return 80, 0
}

// draw shows lines. Outside a terminal only a final view is written.
func (s *screen) draw(lines []string, final bool) {
	if !s.tty {
		if final {
			fmt.Fprintf(s.out, "%s\n\f\n", strings.Join(lines, "\n"))
		}
		return
	}
	w, h := s.size()
	var rows []string
	for _, line := range lines {
		// A line too long for the terminal (the compiler's, say) is broken
		// here, so that each row is one line of the screen.
		for r := []rune(line); ; r = r[w:] {
			if len(r) <= w {
				rows = append(rows, string(r))
				break
			}
			rows = append(rows, string(r[:w]))
		}
	}
	if len(rows) > h {
		rows = rows[:h]
	}
	var b bytes.Buffer
	b.WriteString("\x1b[H")
	for i, row := range rows {
		if s.colour {
			row = colour(row)
		}
		b.WriteString(row + "\x1b[K")
		if i < len(rows)-1 {
			b.WriteString("\r\n")
		}
	}
	b.WriteString("\x1b[J")
	s.out.Write(b.Bytes())
}

// close leaves the last view on the screen, the cursor below it.
func (s *screen) close() {
	if s.restore != nil {
		s.restore()
	}
	if s.tty {
		s.out.WriteString("\r\n\x1b[?25h")
	}
}

// colour shows passes in green and failures in red.
func colour(row string) string {
	const green, red, plain = "\x1b[32m", "\x1b[31m", "\x1b[0m"
	row = strings.ReplaceAll(row, "✓", green+"✓"+plain)
	row = strings.ReplaceAll(row, "✗", red+"✗"+plain)
	if i := strings.Index(row, "█"); i >= 0 {
		j := strings.LastIndex(row, "█") + utf8.RuneLen('█')
		row = row[:i] + green + row[i:j] + plain + row[j:]
	}
	return row
}

// terminalSize returns f's size if it is a terminal.
func terminalSize(f *os.File) (width, height int, ok bool) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 || ws.Row == 0 {
		return 0, 0, false
	}
	return int(ws.Col), int(ws.Row), true
}

// cbreak puts the terminal in into the mode described at screen: each key
// read as it is pressed, not echoed, and no signal from Ctrl-C. It returns
// how to put the terminal back.
func cbreak(in *os.File) (func(), error) {
	fd := int(in.Fd())
	old, err := unix.IoctlGetTermios(fd, getTermios)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Lflag &^= unix.ICANON | unix.ECHO | unix.ISIG
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, setTermios, &t); err != nil {
		return nil, err
	}
	return func() { unix.IoctlSetTermios(fd, setTermios, old) }, nil
}
