package harness

// Commands for the scripts of stage 07 (send queues and backpressure), registered
// in commands.go. They read like the others:
//
//	slowread NAME SIZE     start reading NAME's stream back the way a slow
//	                       client does: 8 KiB at a time, a millisecond apart,
//	                       each piece checked as expectgen checks it. Returns at
//	                       once; the reading goes on in the background, so the
//	                       script can serve other clients meanwhile. NAME must
//	                       not be read by anything else until awaitread.
//	awaitread NAME         wait until slowread NAME has read all it was asked
//	                       to, and fail if a byte differed, the connection
//	                       ended first, or no byte came for the deadline.
//	flushed NAME           wait until the kernel has taken every byte NAME was
//	                       told to send, sendgen's included (send does not
//	                       wait while a sendgen is still going)
//	rss watch              note the server's resident memory now (VmRSS, from
//	                       /proc/PID/status), then keep sampling it in the
//	                       background, every few milliseconds, until the end
//	rss peak SIZE          the highest sample since rss watch is at most SIZE
//	                       above the first one
//
// Memory is read from /proc, so on systems without it (macOS, the BSDs) the
// rss commands say so in the script's log and check nothing.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func cmdFlushed(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "flushed", "")
	c := clientOf(ts, "flushed", args, 1, "NAME")
	if err := c.flush(); err != nil {
		ts.Fatalf("flushed: %v", err)
	}
}

// How a slow reader reads: small pieces, paced. 8 KiB a millisecond is a few
// MB/s, a small fraction of what the server writes over loopback, so its
// queue for this client stays full and backpressure stays engaged.
const (
	slowPiece = 8 << 10
	slowPause = time.Millisecond
)

// A slowRead is one background read started by slowread.
type slowRead struct {
	done chan struct{}
	err  error // set before done is closed

	mu   sync.Mutex
	read int       // bytes read and checked so far
	last time.Time // when the last of them arrived
}

// slowReads holds the reads in progress, by client.
var slowReads sync.Map // *client -> *slowRead

func cmdSlowread(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "slowread", "")
	c := clientOf(ts, "slowread", args, 2, "NAME SIZE")
	size := parseSize(ts, args[1])
	r := &slowRead{done: make(chan struct{}), last: time.Now()}
	if _, busy := slowReads.LoadOrStore(c, r); busy {
		ts.Fatalf("slowread: client %s is already reading; awaitread it first", c.name)
	}
	go r.run(c, size)
}

// run reads size bytes of c's stream, a piece at a time, and checks them.
func (r *slowRead) run(c *client, size int) {
	defer close(r.done)
	got := make([]byte, slowPiece)
	want := make([]byte, slowPiece)
	for done := 0; done < size; {
		time.Sleep(slowPause) // the pace of a slow client, not a wait for an event
		piece := min(size-done, slowPiece)
		// Each piece has the whole deadline; awaitread judges progress.
		c.conn.SetReadDeadline(time.Now().Add(deadline))
		n, err := c.conn.Read(got[:piece])
		if n > 0 {
			c.expectStream.Read(want[:n])
			if at := firstDifference(want[:n], got[:n]); at < n {
				r.err = fmt.Errorf("client %s did not get its own stream back: byte %d of %d differs\n\texpected: %s\n\tgot:      %s",
					c.name, done+at, size, show(want[:n], at, done), show(got[:n], at, done))
				return
			}
			done += n
			c.received += n
			r.mu.Lock()
			r.read, r.last = done, time.Now()
			r.mu.Unlock()
		}
		if err != nil {
			r.err = fmt.Errorf("client %s read %d of %d bytes, then %s", c.name, done, size, readFailure(err))
			return
		}
	}
}

func cmdAwaitread(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "awaitread", "")
	c := clientOf(ts, "awaitread", args, 1, "NAME")
	v, ok := slowReads.LoadAndDelete(c)
	if !ok {
		ts.Fatalf("awaitread: client %s is not reading; start it with slowread", c.name)
	}
	r := v.(*slowRead)
	// The read as a whole may take longer than the deadline; what must not
	// take that long is the next byte.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			if r.err != nil {
				ts.Fatalf("awaitread: %v", r.err)
			}
			ts.Logf("client %s read back %d bytes, all as sent", c.name, r.read)
			return
		case <-tick.C:
			r.mu.Lock()
			read, stalled := r.read, time.Since(r.last) > deadline
			r.mu.Unlock()
			if stalled {
				ts.Fatalf("awaitread: client %s has read %d bytes and nothing more for %v", c.name, read, deadline)
			}
		}
	}
}

// An rssWatch samples the server's resident memory.
type rssWatch struct {
	mu          sync.Mutex
	base, peak  int // kB, as /proc says
	samples     int
	unavailable string // why memory cannot be read here, if it cannot
}

var rssWatches sync.Map // *server -> *rssWatch

func cmdRSS(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "rss", "")
	srv := runningServer(ts, "rss")
	switch {
	case len(args) == 1 && args[0] == "watch":
		w := &rssWatch{}
		kb, err := residentKB(srv.cmd.Process.Pid)
		switch {
		case errors.Is(err, os.ErrNotExist) && !isDir("/proc/self"):
			w.unavailable = "this system has no /proc"
			ts.Logf("rss: %s; the server's memory is not checked", w.unavailable)
		case err != nil:
			ts.Fatalf("rss: %v", err)
		default:
			w.base, w.peak = kb, kb
			ts.Logf("rss: the server's resident memory is %d KiB", kb)
			go w.sample(srv)
		}
		if _, dup := rssWatches.LoadOrStore(srv, w); dup {
			ts.Fatalf("rss: already watching")
		}
	case len(args) == 2 && args[0] == "peak":
		limit := parseSize(ts, args[1])
		v, ok := rssWatches.Load(srv)
		if !ok {
			ts.Fatalf("rss peak: start with rss watch")
		}
		w := v.(*rssWatch)
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.unavailable != "" {
			ts.Logf("rss: %s; not checked", w.unavailable)
			return
		}
		grew := (w.peak - w.base) << 10
		ts.Logf("rss: from %d KiB at the start, the server peaked at %d KiB (+%d KiB) over %d samples",
			w.base, w.peak, w.peak-w.base, w.samples)
		if grew > limit {
			ts.Fatalf("rss peak: the server's resident memory grew by %d KiB, more than the %d KiB allowed", grew>>10, limit>>10)
		}
	default:
		ts.Fatalf("usage: rss watch, or rss peak SIZE")
	}
}

// sample reads the server's resident memory every few milliseconds until
// the server exits.
func (w *rssWatch) sample(srv *server) {
	for !srv.hasExited() {
		kb, err := residentKB(srv.cmd.Process.Pid)
		if err != nil {
			return
		}
		w.mu.Lock()
		w.peak = max(w.peak, kb)
		w.samples++
		w.mu.Unlock()
		time.Sleep(5 * time.Millisecond) // a sampling rate, not a wait for an event
	}
}

// residentKB is the VmRSS line of /proc/PID/status: the resident set, in kB.
func residentKB(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, io.ErrUnexpectedEOF
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}
