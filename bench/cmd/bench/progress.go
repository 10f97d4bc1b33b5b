package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress is the running display on stderr: one line, rewritten in place
// on a terminal, one line per step anywhere else (CI logs, pipes).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	start time.Time
	total int
	done  int
	shown bool // a line is on screen that the next write must clear
}

func newProgress(f *os.File) *progress {
	fi, err := f.Stat()
	return &progress{w: f, tty: err == nil && fi.Mode()&os.ModeCharDevice != 0, start: time.Now()}
}

// setTotal tells the display how many steps lie ahead.
func (p *progress) setTotal(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = n
}

// step starts the next step.
func (p *progress) step(server, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.print(fmt.Sprintf("[%3d/%d %6s] %-16s %s", p.done, p.total, time.Since(p.start).Round(time.Second), server, what))
}

// skip counts n steps that will not run (a server failed or hit a limit).
func (p *progress) skip(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += max(n, 0)
}

// say prints a message that stays, above the progress line.
func (p *progress) say(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
	fmt.Fprintln(p.w, msg)
}

func (p *progress) print(line string) {
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	fmt.Fprint(p.w, "\r\033[K"+line)
	p.shown = true
}

// finish clears the progress line for the report.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
	fmt.Fprintf(p.w, "finished in %s\n", time.Since(p.start).Round(100*time.Millisecond))
}
