package harness

// Commands for the scripts of stages 07 and 08 that watch the server over
// time rather than byte by byte:
//
//	cpu WINDOW LIMIT       over the next WINDOW (a duration such as 1s), the
//	                       server uses at most LIMIT of CPU time, user and
//	                       system together, from /proc/PID/stat. A server
//	                       that waits in kevent uses next to none; one that
//	                       spins uses the whole window.
//	trickle NAME TEXT EVERY
//	                       send TEXT (Go escapes, as send) one byte at a
//	                       time, EVERY apart (a duration), and return once
//	                       the last byte is sent: a client that is busy but
//	                       slow.
//
// CPU time is read from /proc, so on systems without it (macOS, the BSDs)
// cpu says so in the script's log and checks nothing.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func cmdCPU(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "cpu", "")
	if len(args) != 2 {
		ts.Fatalf("usage: cpu WINDOW LIMIT, as in cpu 1s 100ms")
	}
	window, err := time.ParseDuration(args[0])
	ts.Check(err)
	limit, err := time.ParseDuration(args[1])
	ts.Check(err)
	srv := runningServer(ts, "cpu")
	pid := srv.cmd.Process.Pid
	before, err := cpuTime(pid)
	if errors.Is(err, os.ErrNotExist) && !isDir("/proc/self") {
		ts.Logf("cpu: this system has no /proc; the server's CPU time is not checked")
		return
	}
	ts.Check(err)
	time.Sleep(window) // the window measured, not a wait for an event
	after, err := cpuTime(pid)
	if err != nil {
		ts.Fatalf("cpu: the server is gone: %v", err)
	}
	used := after - before
	ts.Logf("cpu: the server used %v of CPU time in %v", used, window)
	if used > limit {
		ts.Fatalf("cpu: the server used %v of CPU time in %v, more than the %v allowed: is something reported on every kevent call?", used, window, limit)
	}
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture (sysconf(_SC_CLK_TCK), which Go's standard library lacks).
const clockTicks = 100

// cpuTime is the CPU time the process has used so far, all its threads
// together: utime and stime, fields 14 and 15 of /proc/PID/stat (proc(5)).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The second field is the command name in parentheses, which may hold
	// spaces; count the fields from after its closing parenthesis, where
	// field 3 begins.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ticks int64
	for _, f := range fields[14-3 : 15-3+1] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %v", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

func cmdTrickle(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "trickle", "")
	c := clientOf(ts, "trickle", args, 3, "NAME TEXT EVERY")
	text := unescape(ts, args[1])
	every, err := time.ParseDuration(args[2])
	ts.Check(err)
	for i := range text {
		if i > 0 {
			time.Sleep(every) // the pace of a slow client, not a wait for an event
		}
		c.send(ts, "trickle", &writeOp{data: text[i : i+1]})
	}
}
