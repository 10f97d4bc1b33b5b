package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kqueue-workbook/workbook/internal/progress"
)

// pollEvery is how often watch looks for a save. It polls the exercise's
// files' sizes and modification times rather than asking the kernel to
// tell it (fsnotify), and it is as good here: the directory holds a handful
// of files, so a poll costs a few stat(2) calls, and the quarter of a
// second it may add to noticing a save is small next to what follows, a
// build of a second or so and a run of the scripts of three or more. It
// needs no dependency, and it sees every way an editor saves (in place, or
// a new file renamed over the old one) the same on every system.
const pollEvery = 250 * time.Millisecond

// watch is make watch: a run at once, and another after every save, each
// shown as it ends, until Ctrl-C, q, SIGINT or SIGTERM; then exit status 0.
// A save during a run is checked once that run has ended.
func watch(o options) int {
	scr := openScreen(os.Stdout, os.Stdin)
	defer scr.close()

	var quitOnce sync.Once
	quit := make(chan struct{})
	stop := func() { quitOnce.Do(func() { close(quit) }) }
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() { <-signals; stop() }()
	if scr.keys != nil {
		go func() {
			for k := range scr.keys {
				if k == 'q' || k == 3 || k == 4 { // q, Ctrl-C, Ctrl-D
					stop()
				}
			}
		}()
	}
	resized := make(chan os.Signal, 1)
	signal.Notify(resized, syscall.SIGWINCH)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()

	seen := snapshot(o.dir)
	saved := func() bool {
		now := snapshot(o.dir)
		changed := now != seen
		seen = now
		return changed
	}
	var last *result // the last run's, shown while the next one runs
	status := ""
	draw := func(final bool) {
		w, h := scr.size()
		var lines []string
		if last != nil {
			lines = last.summary(o, progress.Size{Width: w, Height: h}, status)
		} else {
			lines = []string{fmt.Sprintf("%s, as stage %02d · %s", o.dir, o.stage, status)}
		}
		scr.draw(lines, final)
	}

	for run := 1; ; run++ {
		var done atomic.Int32
		progressed := make(chan struct{}, 1)
		finished := func() {
			done.Add(1)
			select {
			case progressed <- struct{}{}:
			default:
			}
		}
		ended := make(chan result, 1)
		go func() { ended <- check(o, nil, finished, quit) }()
		again := false
		running := func() string {
			s := fmt.Sprintf("run %d: running, %d scripts done", run, done.Load())
			if again {
				s += "; saved since, runs again next"
			}
			return s
		}
		status = running()
		draw(false)
	running:
		for {
			select {
			case <-quit:
				<-ended
				return 0
			case <-progressed:
				status = running()
				draw(false)
			case <-tick.C:
				if saved() && !again {
					again = true
					status = running()
					draw(false)
				}
			case <-resized:
				draw(false)
			case res := <-ended:
				last = &res
				break running
			}
		}
		status = fmt.Sprintf("run %d at %s, %.1f s", run, time.Now().Format("15:04:05"), last.took.Seconds())
		draw(true)
		for !again {
			select {
			case <-quit:
				return 0
			case <-tick.C:
				again = saved()
			case <-resized:
				draw(false)
			}
		}
	}
}

// snapshot returns what a save changes: the name, size and modification
// time of each Go file, go.mod and go.sum in dir, and of the learner's own
// scripts in dir/testdata.
func snapshot(dir string) string {
	var b strings.Builder
	for _, pattern := range []string{"*.go", "go.mod", "go.sum", filepath.Join("testdata", "*.txt")} {
		files, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				fmt.Fprintf(&b, "%s %d %d\n", f, fi.Size(), fi.ModTime().UnixNano())
			}
		}
	}
	return b.String()
}
