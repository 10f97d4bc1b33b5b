package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SyscallCount is one row of strace's summary.
type SyscallCount struct {
	Name  string `json:"name"`
	Calls int64  `json:"calls"`
}

// straceEchoes attaches strace to a running server, has every client echo a
// fixed number of 64-byte messages, detaches, and returns the counts and
// the number of messages echoed.
func (r *runner) straceEchoes(p *proc, conns []net.Conn) ([]SyscallCount, int64, error) {
	out := filepath.Join(r.tmp, "strace-"+filepath.Base(p.log.Name())+".txt")
	// -f with -p attaches to every thread of the process; -c counts
	// instead of printing each call.
	cmd := exec.Command(r.strace, "-c", "-f", "-p", strconv.Itoa(p.pid()), "-o", out)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, 0, err
	}
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	// strace says "Process N attached ..." once it holds the process;
	// echoes sent before that would go uncounted.
	attached := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var last string
		for sc.Scan() {
			last = sc.Text()
			if strings.Contains(last, "attached") {
				attached <- nil
				break
			}
		}
		if sc.Err() == nil && !strings.Contains(last, "attached") {
			attached <- fmt.Errorf("strace: %s", last)
		}
		for sc.Scan() { // drain
		}
	}()
	finish := func() error {
		cmd.Process.Signal(os.Interrupt) // detach and write the summary
		werr := make(chan error, 1)
		go func() { werr <- cmd.Wait() }()
		select {
		case err := <-werr:
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
				return nil
			}
			return err
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			return errors.New("strace did not stop")
		}
	}
	select {
	case err := <-attached:
		if err != nil {
			finish()
			return nil, 0, err
		}
	case <-time.After(10 * time.Second):
		finish()
		return nil, 0, errors.New("strace did not attach within 10s")
	}
	lr := closedLoop(conns, 64, window{}, r.plan.StraceMsgs)
	if err := finish(); err != nil {
		return nil, 0, err
	}
	if lr.firstErr != nil {
		return nil, 0, fmt.Errorf("echo under strace: %v", lr.firstErr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, 0, err
	}
	counts, err := parseStraceSummary(string(b))
	return counts, lr.done, err
}

// parseStraceSummary reads the table strace -c prints:
//
//	% time     seconds  usecs/call     calls    errors syscall
//	------ ----------- ----------- --------- --------- ----------------
//	 41.00    0.000410          10        40           epoll_pwait
//	...
//	------ ----------- ----------- --------- --------- ----------------
//	100.00    0.001000          10       100         5 total
//
// The errors column is blank for most rows, so the calls figure is found by
// position: it is the field that ends where the "calls" heading ends.
func parseStraceSummary(s string) ([]SyscallCount, error) {
	var (
		callsEnd = -1
		counts   []SyscallCount
	)
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "calls"); i >= 0 && strings.Contains(line, "syscall") {
			callsEnd = i + len("calls")
			continue
		}
		if callsEnd < 0 || strings.HasPrefix(line, "---") || strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.Fields(line)
		name := fields[len(fields)-1]
		if name == "total" {
			break
		}
		if len(line) < callsEnd {
			return nil, fmt.Errorf("strace summary: short line %q", line)
		}
		start := strings.LastIndex(line[:callsEnd], " ") + 1
		n, err := strconv.ParseInt(line[start:callsEnd], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("strace summary: no call count in %q", line)
		}
		counts = append(counts, SyscallCount{Name: name, Calls: n})
	}
	if callsEnd < 0 {
		return nil, errors.New("strace wrote no summary table")
	}
	return counts, nil
}
