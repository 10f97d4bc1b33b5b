package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/kqueue-workbook/workbook/internal/progress"
)

// A result is what one run of go test in the exercise came to.
type result struct {
	build  []string        // the compiler's errors, if the code did not compile
	report progress.Report // otherwise how each script ended
	err    []string        // or, if go test ran no script, why, in its words
	passed bool            // go test passed
	took   time.Duration
}

// An event is one line of go test -json (go doc test2json).
type event struct {
	Action string
	Test   string
	Output string
}

// check runs go test once in the exercise's directory, as make check did
// before this command: cd DIR && go test, with the stage in WORKBOOK_STAGE.
// The harness writes its report to a file of ours (WORKBOOK_RESULTS); go
// test's -json output says, apart from the log, what the compiler printed
// and when each script ends. The whole log goes to the file o.log, and to
// echo too if it is not nil. finished, if not nil, is called as each script
// ends. Closing stop ends the run at once: go test, the test binary and its
// servers, which run in a process group of their own when stop is given.
func check(o options, echo io.Writer, finished func(), stop <-chan struct{}) result {
	began := time.Now()
	fail := func(format string, args ...any) result {
		return result{err: []string{fmt.Sprintf(format, args...)}, took: time.Since(began)}
	}
	results, err := os.CreateTemp("", "workbook-results-*.json")
	if err != nil {
		return fail("%v", err)
	}
	results.Close()
	defer os.Remove(results.Name())
	logFile, err := os.Create(o.log)
	if err != nil {
		return fail("the log: %v", err)
	}
	defer logFile.Close()
	var log io.Writer = logFile
	if echo != nil {
		log = io.MultiWriter(logFile, echo)
	}

	run := "^TestScripts$"
	if o.run != "" {
		run += "/" + o.run
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", "-run", run)
	cmd.Dir = o.dir
	for _, kv := range os.Environ() {
		// Only the variables a learner sets for a whole session carry over.
		if !strings.HasPrefix(kv, "WORKBOOK_STAGE=") && !strings.HasPrefix(kv, "WORKBOOK_EXERCISE=") &&
			!strings.HasPrefix(kv, "WORKBOOK_RESULTS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, fmt.Sprintf("WORKBOOK_STAGE=%02d", o.stage), "WORKBOOK_RESULTS="+results.Name())
	if o.exercise != "" {
		cmd.Env = append(cmd.Env, "WORKBOOK_EXERCISE="+o.exercise)
	}
	var stderr bytes.Buffer
	cmd.Stderr = io.MultiWriter(&stderr, log)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fail("%v", err)
	}
	if stop != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		return fail("go test: %v", err)
	}
	if stop != nil {
		ended := make(chan struct{})
		defer close(ended)
		go func() {
			select {
			case <-stop:
			case <-ended:
				return
			}
			// As Ctrl-C would: the go command cleans up after itself, and
			// the test binary and its servers go (the scripts' $WORK
			// directories stay behind, as they do after a Ctrl-C of go
			// test). Whatever is left after a while is killed.
			syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
			select {
			case <-time.After(2 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			case <-ended:
			}
		}()
	}

	var build []string
	built := true
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var ev event
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			fmt.Fprintln(log, sc.Text())
			continue
		}
		switch ev.Action {
		case "build-output":
			io.WriteString(log, ev.Output)
			if !strings.HasPrefix(ev.Output, "# ") { // the go command's name for the package
				build = append(build, strings.TrimRight(ev.Output, "\n"))
			}
		case "build-fail":
			built = false
		case "output":
			io.WriteString(log, ev.Output)
		case "pass", "fail", "skip":
			if finished != nil && strings.HasPrefix(ev.Test, "TestScripts/") {
				finished()
			}
		}
	}
	io.Copy(io.Discard, stdout)
	passed := cmd.Wait() == nil
	took := time.Since(began)

	if !built {
		return result{build: build, took: took}
	}
	var rep progress.Report
	if data, err := os.ReadFile(results.Name()); err == nil && len(data) > 0 {
		if err := json.Unmarshal(data, &rep); err != nil {
			return fail("%s: %v", results.Name(), err)
		}
		rep.Dir = o.dir
		if len(rep.Scripts) > 0 {
			return result{report: rep, passed: passed, took: took}
		}
	}
	// No script ran: go test stopped before the harness could write its
	// report, or the harness found nothing to run. The reasons are on
	// stderr, or in the log's indented lines (a test's messages).
	var why []string
	for line := range strings.Lines(stderr.String()) {
		why = append(why, strings.TrimRight(line, "\n"))
	}
	if data, err := os.ReadFile(o.log); err == nil && len(why) == 0 {
		for line := range strings.Lines(string(data)) {
			if strings.HasPrefix(line, "    ") {
				why = append(why, strings.TrimSpace(line))
			}
		}
	}
	if len(why) == 0 {
		why = []string{"go test ran no script; the log says why: " + o.log}
	}
	return result{err: why, took: took}
}

// summary returns the lines that show r: the view of its report; or the
// compiler's errors and nothing else; or why no script ran. A status puts
// a line of its own above the compiler's errors.
func (r result) summary(o options, size progress.Size, status string) []string {
	var lines []string
	switch {
	case r.build != nil:
		if status != "" {
			lines = append(lines, fmt.Sprintf("%s, as stage %02d · %s · it does not compile:", o.dir, o.stage, status))
		}
		lines = append(lines, r.build...)
	case r.err != nil:
		lines = append(lines, fmt.Sprintf("%s, as stage %02d%s · no script ran:", o.dir, o.stage, prefixed(" · ", status)))
		lines = append(lines, r.err...)
	default:
		lines = progress.View(r.report, size, status)
		if _, failed := r.report.FirstFailure(); !failed && !r.passed {
			// Every script passed, and yet go test did not: the harness
			// failed the test outside any script. The log says how.
			lines = append(lines, "", "but go test failed all the same; the log says why: "+o.log)
		}
		return lines
	}
	if size.Height > 0 && len(lines) > size.Height {
		lines = lines[:size.Height]
	}
	return lines
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
