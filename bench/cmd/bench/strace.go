package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
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

// straceCount attaches strace to a running process, runs work, detaches,
// and returns strace's counts by name (written to the file out).
func straceCount(strace, out string, pid int, work func() error) (map[string]int64, error) {
	// -f with -p attaches to every thread of the process; -c counts
	// instead of printing each call.
	cmd := exec.Command(strace, "-c", "-f", "-p", strconv.Itoa(pid), "-o", out)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// strace says "Process N attached ..." once it holds the process;
	// calls made before that would go uncounted.
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
			return nil, err
		}
	case <-time.After(10 * time.Second):
		finish()
		return nil, errors.New("strace did not attach within 10s")
	}
	werr := work()
	if err := finish(); err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, fmt.Errorf("work under strace: %v", werr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	rows, err := parseStraceSummary(string(b))
	if err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	for _, c := range rows {
		counts[c.Name] += c.Calls
	}
	return counts, nil
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
