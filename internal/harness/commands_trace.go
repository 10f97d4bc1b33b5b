package harness

// Commands for the scripts that watch a stage through KQUEUE_TRACE (see
// kqueue/trace.go), registered in commands.go:
//
//	tracing VALUE          the servers that serve starts from now on run with
//	                       KQUEUE_TRACE=VALUE, as a learner runs
//	                       KQUEUE_TRACE=trace.txt go run . (a relative path
//	                       is in $WORK, where the server runs)
//	inorder FILE PATTERNS  every pattern, one per line of the file PATTERNS
//	                       (blank lines and # comments aside), matches a line
//	                       of FILE, each further down than the one before; a
//	                       group (?P<name>...) captures what it matched, and
//	                       ${name} in a later pattern stands for exactly that;
//	                       a pattern written "! REGEXP" matches no line
//	                       between the matches of its neighbours
//	freeze DURATION        stop the server (SIGSTOP) for DURATION, then let it
//	                       go on (SIGCONT): its timers keep counting meanwhile
//	kevents FILE FROM TO   count the kevent calls of FILE from the one whose
//	                       line first matches FROM to the one whose line next
//	                       matches TO, both included, and print on stdout
//	                       how many there were (calls N), how many had an
//	                       event list and so could wait (waits N), how many had
//	                       none and only applied changes (alone N), how
//	                       many changes they carried (changes N), and how
//	                       many of those rode with a wait (riding N). A
//	                       stage that makes a call per change makes
//	                       waits+changes calls. Each call ends in one wait or
//	                       return line (kqueue/trace.go).
//
// serve starts the server with the test's own environment, not the script's,
// so testscript's env cannot reach it: tracing records the value in the
// script's session and serve adds it to that environment. (An earlier
// version wrote a shell script to run the server through; exec of a file
// just written fails at random with ETXTBSY while a parallel test forks,
// because the child holds the file's write descriptor until its own exec.)

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func cmdFreeze(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "freeze", "")
	if len(args) != 1 {
		ts.Fatalf("usage: freeze DURATION")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	srv := runningServer(ts, "freeze")
	ts.Check(srv.cmd.Process.Signal(syscall.SIGSTOP))
	time.Sleep(d) // not to wait for something: the time passing is the point
	ts.Check(srv.cmd.Process.Signal(syscall.SIGCONT))
}

// traceVerb finds a trace line's verb: change, wait, event or return.
var traceVerb = regexp.MustCompile(`^ *\d+\.\d+ kq=-?\d+ +(\w+) `)

func cmdKevents(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "kevents", "")
	if len(args) != 3 {
		ts.Fatalf("usage: kevents FILE FROM TO")
	}
	from, err := regexp.Compile(args[1])
	ts.Check(err)
	to, err := regexp.Compile(args[2])
	ts.Check(err)
	lines := strings.Split(ts.ReadFile(args[0]), "\n")
	// Number the calls: one begins at its first change line, or at its
	// wait or return line if it carried no change; its events follow that.
	// (Level 2's lines of the emulation's own system calls have no verb.)
	call := make([]int, len(lines))
	n, prev := 0, ""
	for i, line := range lines {
		v := ""
		if m := traceVerb.FindStringSubmatch(line); m != nil {
			v = m[1]
		}
		if v == "change" && prev != "change" || (v == "wait" || v == "return") && prev != "change" {
			n++
		}
		call[i] = n
		if v != "" {
			prev = v
		}
	}
	start := slices.IndexFunc(lines, from.MatchString)
	if start < 0 {
		ts.Fatalf("kevents: no line of %s matches %s", args[0], from)
	}
	stop := start + slices.IndexFunc(lines[start:], to.MatchString)
	if stop < start {
		ts.Fatalf("kevents: no line of %s after the one matching %s matches %s", args[0], from, to)
	}
	var calls, waits, alone, changes, riding, carried int
	for i, line := range lines {
		if call[i] < call[start] || call[i] > call[stop] {
			continue
		}
		m := traceVerb.FindStringSubmatch(line)
		switch {
		case m == nil:
		case m[1] == "wait":
			calls, waits, riding, carried = calls+1, waits+1, riding+carried, 0
		case m[1] == "return":
			calls, alone, carried = calls+1, alone+1, 0
		case m[1] == "change":
			changes, carried = changes+1, carried+1
		}
	}
	ts.Logf("kevents: calls %d to %d of %s, from line %d to line %d", call[start], call[stop], args[0], start+1, stop+1)
	fmt.Fprintf(ts.Stdout(), "calls %d\nwaits %d\nalone %d\nchanges %d\nriding %d\n", calls, waits, alone, changes, riding)
}

func cmdTracing(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "tracing", "")
	if len(args) != 1 || args[0] == "" {
		ts.Fatalf("usage: tracing VALUE (of KQUEUE_TRACE)")
	}
	s := sessionOf(ts)
	if s.trace != "" {
		ts.Fatalf("tracing: already set for this script")
	}
	s.trace = args[0]
}

var captureRef = regexp.MustCompile(`\$\{\w+\}`)

func cmdInorder(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "inorder", "")
	if len(args) != 2 {
		ts.Fatalf("usage: inorder FILE PATTERNS")
	}
	lines := strings.Split(ts.ReadFile(args[0]), "\n")
	captured := map[string]string{}
	compile := func(pattern string) *regexp.Regexp {
		expanded := captureRef.ReplaceAllStringFunc(pattern, func(ref string) string {
			name := ref[2 : len(ref)-1]
			if v, ok := captured[name]; ok {
				return regexp.QuoteMeta(v)
			}
			ts.Fatalf("inorder: %s: %s was not captured by an earlier pattern", pattern, ref)
			return ""
		})
		re, err := regexp.Compile(expanded)
		ts.Check(err)
		return re
	}
	// none holds the "! " patterns since the last match: no line may match
	// them before the next one.
	var none []*regexp.Regexp
	checkNone := func(from, to int) {
		for _, re := range none {
			for i := from; i < to; i++ {
				if re.MatchString(lines[i]) {
					ts.Fatalf("inorder: line %d of %s matches %s, which the patterns say must not appear there:\n%s", i+1, args[0], re, lines[i])
				}
			}
		}
		none = none[:0]
	}
	at := 0 // the line after the last match
	for _, pattern := range strings.Split(ts.ReadFile(args[1]), "\n") {
		pattern = strings.TrimSpace(pattern)
		if pattern == "" || strings.HasPrefix(pattern, "#") {
			continue
		}
		if p, ok := strings.CutPrefix(pattern, "! "); ok {
			none = append(none, compile(p))
			continue
		}
		re := compile(pattern)
		match := -1
		for i := at; i < len(lines) && match < 0; i++ {
			if m := re.FindStringSubmatch(lines[i]); m != nil {
				match = i
				for j, name := range re.SubexpNames() {
					if name != "" {
						captured[name] = m[j]
					}
				}
			}
		}
		if match < 0 {
			ts.Fatalf("inorder: no line of %s after line %d matches %s", args[0], at, re)
		}
		checkNone(at, match)
		ts.Logf("inorder: line %d: %s", match+1, lines[match])
		at = match + 1
	}
	checkNone(at, len(lines))
}
