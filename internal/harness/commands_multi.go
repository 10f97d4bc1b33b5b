package harness

// What the harness adds for stage 11 (several event loops, -loops):
//
//	crowd N WELCOMED       N clients connect to $ADDR at the same moment, each
//	                       from a goroutine of its own, and read the first line
//	                       the server sends; exactly WELCOMED of them must be
//	                       greeted ("welcome!\n"), and every other one told
//	                       "server full\n" and closed. The greeted stay
//	                       connected to the end of the script.
//
// Every earlier stage's scripts run against stage 11 as they are, so with its
// default number of loops (one per CPU). To run them all with another
// number, set WORKBOOK_LOOPS; serve then starts stage 11 and later with
// -loops N in front of the script's own flags (a script's own -loops comes
// later on the line, and wins):
//
//	WORKBOOK_LOOPS=1 go test -count=1 ./11-multi-loop
//
// `exec server` is left as it is: its scripts are about flags and failed
// starts, which happen before any loop runs.

import (
	"bufio"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// multiLoopStage is the first stage with -loops.
const multiLoopStage = 11

// withLoops is serve as the table registers it: with WORKBOOK_LOOPS=N set,
// a stage that has -loops is started with -loops N in front of the script's
// own flags.
func withLoops(serve func(ts *testscript.TestScript, neg bool, args []string)) func(ts *testscript.TestScript, neg bool, args []string) {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		if n := os.Getenv("WORKBOOK_LOOPS"); n != "" && sessionOf(ts).stage.num >= multiLoopStage {
			args = append([]string{"-loops", n}, args...)
		}
		serve(ts, neg, args)
	}
}

func cmdCrowd(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "crowd", "")
	if len(args) != 2 {
		ts.Fatalf("usage: crowd N WELCOMED")
	}
	n, err1 := strconv.Atoi(args[0])
	want, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil || n < 1 || want < 0 || want > n {
		ts.Fatalf("crowd: %s %s: want a number of clients and how many of them are greeted", args[0], args[1])
	}
	addr := ts.Getenv("ADDR")
	type arrival struct {
		conn  net.Conn
		first string // the first line the server sent, or why there was none
		ended bool   // the server closed the connection after it
	}
	arrivals := make([]arrival, n)
	start := make(chan struct{})
	var all sync.WaitGroup
	for i := range arrivals {
		all.Add(1)
		go func(a *arrival) {
			defer all.Done()
			<-start
			conn, err := net.DialTimeout("tcp", addr, deadline)
			if err != nil {
				a.first = "connect: " + err.Error()
				return
			}
			a.conn = conn
			conn.SetReadDeadline(time.Now().Add(deadline))
			r := bufio.NewReader(conn)
			line, err := r.ReadString('\n')
			if err != nil {
				a.first = "no line: " + readFailure(err)
				return
			}
			a.first = line
			if line == "server full\n" {
				_, err := r.ReadByte()
				a.ended = err != nil && !errorsIsTimeout(err)
			}
		}(&arrivals[i])
	}
	close(start)
	all.Wait()

	s := sessionOf(ts)
	welcomed, refused := 0, 0
	for _, a := range arrivals {
		switch {
		case a.first == "welcome!\n":
			welcomed++
			s.idle = append(s.idle, &idleConn{conn: a.conn})
		case a.first == "server full\n" && a.ended:
			refused++
			a.conn.Close()
		case a.first == "server full\n":
			a.conn.Close()
			ts.Fatalf("crowd: a client told \"server full\" was not closed within %v", deadline)
		default:
			if a.conn != nil {
				a.conn.Close()
			}
			ts.Fatalf("crowd: a client got %q, expected \"welcome!\\n\" or \"server full\\n\"", a.first)
		}
	}
	ts.Logf("crowd: of %d clients at once, %d were greeted and %d refused", n, welcomed, refused)
	if welcomed != want {
		ts.Fatalf("crowd: %d of the %d clients were greeted, expected exactly %d", welcomed, n, want)
	}
}
