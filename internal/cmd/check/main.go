// Command check runs a learner's exercise against its stage's scripts and
// shows how far it has got. `make check STAGE=03` runs
//
//	check 03 work/03-connpool
//
// (built into bin/ from the workbook's root), which runs go test in the
// directory, as `cd work/03-connpool && go test` would, writes go test's
// whole log to work/03-connpool/check.log, and shows only the summary of
// internal/progress: which behaviours pass, and what the first one that
// fails expected. Code that does not compile gets the compiler's errors
// instead, and nothing else. The exit status is 0 when every script passed.
//
// `make watch STAGE=03` runs it with -watch: the same check again after every
// save, the view redrawn in place in a terminal, until Ctrl-C or q (exit
// status 0). Its output, when it is not a terminal, is each run's view in
// turn, each followed by a line with a form feed.
//
//	-watch          check again after every save
//	-run PATTERN    only the scripts whose names match (go test -run 'TestScripts/PATTERN')
//	-exercise NAME  a smaller exercise's own check instead (WORKBOOK_EXERCISE)
//	-v              also show the whole log, as it comes (not with -watch)
//	-log FILE       where the log goes (default DIR/check.log)
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/kqueue-workbook/workbook/internal/progress"
)

func main() {
	var o options
	flag.BoolVar(&o.watch, "watch", false, "check again after every save, until Ctrl-C")
	flag.StringVar(&o.run, "run", "", "only the scripts whose names match `PATTERN`")
	flag.StringVar(&o.exercise, "exercise", "", "a smaller exercise's own check, by `NAME`")
	flag.BoolVar(&o.verbose, "v", false, "also show the whole log")
	flag.StringVar(&o.log, "log", "", "where the log goes (default DIR/check.log)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: check [-watch] [-run PATTERN] [-exercise NAME] [-v] [-log FILE] STAGE DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if o.watch {
		verb = "make watch"
	}
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	num, err := strconv.Atoi(flag.Arg(0))
	if err != nil || num < 1 {
		fail("STAGE=%s: want a stage number such as 03", flag.Arg(0))
	}
	o.stage, o.dir = num, filepath.Clean(flag.Arg(1))
	if fi, err := os.Stat(o.dir); err != nil || !fi.IsDir() {
		fail("no directory %s; make start STAGE=%02d makes it", o.dir, num)
	}
	if o.log == "" {
		o.log = filepath.Join(o.dir, "check.log")
	}
	if o.watch {
		os.Exit(watch(o))
	}
	os.Exit(once(o))
}

// options are what the command line asks for.
type options struct {
	stage    int
	dir      string
	watch    bool
	run      string
	exercise string
	verbose  bool
	log      string
}

// once is make check: one run, its summary, and its outcome as the exit
// status.
func once(o options) int {
	var echo *os.File
	if o.verbose {
		echo = os.Stdout
	}
	res := check(o, echo, nil, nil)
	width := 80
	if w, _, ok := terminalSize(os.Stdout); ok {
		width = w
	}
	lines := res.summary(o, progress.Size{Width: width}, "")
	for _, line := range lines {
		fmt.Println(line)
	}
	if res.err != nil || res.build != nil {
		return 1
	}
	fmt.Printf("\nThe whole log, with every script's session: %s\n", o.log)
	first, failed := res.report.FirstFailure()
	if !failed {
		if res.passed {
			return 0
		}
		return 1
	}
	fmt.Printf("That script alone, with its session: make check STAGE=%02d DIR=%s%s RUN=%s V=1\n",
		o.stage, o.dir, exerciseArg(o), first.Name)
	return 1
}

func exerciseArg(o options) string {
	if o.exercise == "" {
		return ""
	}
	return " EXERCISE=" + o.exercise
}

// verb names the command in messages, as the learner typed it.
var verb = "make check"

// fail says what is wrong, as make's own errors do, and exits.
func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, verb+": "+format+"\n", args...)
	os.Exit(2)
}
