// Package harness runs the workbook's end-to-end tests: the testscript files
// in testdata/, transcripts of a learner's terminal session with a stage (see
// testdata/README.md for how to read and write them).
//
// Every stage directory holds one small test file, the same in each stage,
// so that a stage's diff shows nothing there:
//
//	package main
//
//	import (
//		"testing"
//
//		"github.com/kqueue-workbook/workbook/internal/harness"
//	)
//
//	func TestMain(m *testing.M) { harness.Main(m, main) }
//
//	func TestScripts(t *testing.T) { harness.Run(t) }
//
// [Main] makes the test binary double as the stage's server: run under the
// name `server`, it calls the stage's own main. So nothing is built besides
// the test binary, and `go test -race` races the server too. [Run] runs the
// scripts, one subtest each:
//
//	go test ./03-connpool                               # stage 03
//	go test -run TestScripts/echo-one-line ./01-select  # one script
//	go test -v -run TestScripts/echo-one-line ./01-select   # and its session
//
// The contract is cumulative: the stage in directory NN-name runs the scripts
// of testdata/NN-*/ and of every earlier stage, so 07 still passes what 01
// promised. Conditions let a script say where later stages differ:
//
//	[stage:01]    the stage under test is 01
//	[since:03]    the stage under test is 03 or later
//	[greets]      the stage greets new clients with "welcome!\n" (since 03)
//	[handlers]    a handler, not the loop, answers clients (since 10)
//	[loops]       the stage runs several loops, -loops (since 11)
//	[fdlimit:N]   this process may open at least N files (skip if not)
//	[nc]          nc is the OpenBSD netcat, which has -N (Debian: netcat-openbsd)
//	[strace]      strace(1) is installed and may attach to the server
//	[ipv6]        the machine has an IPv6 loopback address
//
// The stage is on PATH as `server` (behind the time limit of guard.go), so a
// script runs it exactly as a learner types it: `! exec server -addr
// nonsense`. The commands that start it in the background and talk to it
// (serve, connect, send, expect, ...) are in commands_server.go and
// commands_clients.go; every command is one entry of the table `commands`, in
// commands.go.
//
// Checking an exercise: `make start STAGE=03` copies stage 02, this test file
// included, into work/03-connpool, a module of its own. There `go test` runs
// the same harness on the learner's code, as stage 03 because the directory's
// name starts with 03 (WORKBOOK_STAGE=03 says so for a directory named
// otherwise). What a check adds (the learner's own scripts, a summary, the
// smaller exercises' checks) is in check.go; `make check STAGE=03` and `make
// watch STAGE=03` run it through internal/cmd/check, which shows only the
// summary (internal/progress) and keeps go test's log in a file.
package harness

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// Module is the workbook's module path. An exercise's module is named under
// it, so that Go lets the exercise's test import this internal package.
const Module = "github.com/kqueue-workbook/workbook"

// Main is the TestMain of a stage: server is the stage's main function. When
// the test binary is run as `server`, by a script, it runs server (see
// guard.go); otherwise it runs the tests, and after a check of a learner's
// directory prints the summary of check.go.
func Main(m *testing.M, server func()) {
	stageMain = server
	testscript.Main(withSummary{m}, map[string]func(){"server": runServer})
}

// Run runs the scripts of the stage in the current directory (go test runs a
// test in its package's directory) and of every stage before it, each as a
// subtest named after its file.
func Run(t *testing.T) {
	st := stageUnderTest(t)
	var err error
	if deadline, err = deadlineFor(st); err != nil {
		t.Fatal(err)
	}
	scripts := scriptsFor(t, st)
	if len(scripts) == 0 {
		t.Skipf("no scripts in %s for stage %02d or earlier", filepath.Join(st.root, "testdata"), st.num)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	runScripts(t, st, testscript.Params{
		Files: scripts,
		Setup: func(env *testscript.Env) error {
			env.Setenv("WORKBOOK_DEADLINE", deadline.String())
			// Only `exec server` in a script sees this, not serve: see guard.go.
			env.Setenv(timeLimitEnv, deadline.String())
			startSession(env, st, self)
			return nil
		},
		Condition: func(cond string) (bool, error) { return condition(st, cond) },
		Cmds:      commands,
	})
}

// A stage is the program under test: a reference stage directory, or a
// learner's directory standing in for one.
type stage struct {
	num  int    // 1 for 01-select
	dir  string // its directory, as a learner would name it (work/03-connpool)
	root string // the workbook's root directory
	own  bool   // a learner's directory, not a reference stage
}

// stageName matches a stage directory's name and captures its number.
var stageName = regexp.MustCompile(`^([0-9][0-9])-`)

// stageUnderTest returns the stage in the current directory, numbered by
// WORKBOOK_STAGE or else by the directory's name.
func stageUnderTest(t *testing.T) stage {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := workbookRoot()
	if err != nil {
		t.Fatal(err)
	}
	st := stage{dir: wd, root: root, own: isLearnerDir(wd, root)}
	if rel, err := filepath.Rel(root, wd); err == nil && !strings.HasPrefix(rel, "..") {
		st.dir = rel
	}
	num := os.Getenv("WORKBOOK_STAGE")
	if num == "" {
		m := stageName.FindStringSubmatch(filepath.Base(wd))
		if m == nil {
			t.Fatalf("%s: which stage is this? Its name does not start with a stage number; run WORKBOOK_STAGE=03 go test to check it as stage 03", wd)
		}
		num = m[1]
	}
	st.num, err = strconv.Atoi(num)
	if err != nil || st.num < 1 {
		t.Fatalf("WORKBOOK_STAGE=%s: want a stage number such as 03", num)
	}
	if st.own {
		t.Logf("checking %s as stage %02d", st.dir, st.num)
	}
	return st
}

// isLearnerDir reports whether dir is a learner's, not one of the reference
// stages: those are the workbook's own packages, directly in its root, while
// an exercise is a module of its own, wherever it is.
func isLearnerDir(dir, root string) bool {
	_, err := os.Stat(filepath.Join(dir, "go.mod"))
	return err == nil || !sameDir(filepath.Dir(dir), root)
}

func sameDir(a, b string) bool {
	ia, err1 := os.Stat(a)
	ib, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(ia, ib)
}

// workbookRoot returns the workbook's root directory, where its go.mod is:
// two levels above this source file, or, in a build without source paths
// (-trimpath), the directory the go command says the module is in. The
// latter also finds the workbook from an exercise, through its replace line.
var workbookRoot = sync.OnceValues(func() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		if isWorkbook(root) {
			return root, nil
		}
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", Module).Output()
	if root := strings.TrimSpace(string(out)); err == nil && isWorkbook(root) {
		return root, nil
	}
	return "", fmt.Errorf("cannot find the workbook's directory (the module %s): %v", Module, err)
})

// isWorkbook reports whether dir holds the workbook's go.mod.
func isWorkbook(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "module "); ok {
			return strings.TrimSpace(rest) == Module
		}
	}
	return false
}

// scriptsUpTo returns the scripts of stage num and of every stage before it,
// named relative to the current directory, as testscript's messages show them.
func scriptsUpTo(t *testing.T, st stage) []string {
	files, err := filepath.Glob(filepath.Join(st.root, "testdata", "[0-9][0-9]-*", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var scripts []string
	seen := map[string]string{}
	for _, f := range files {
		m := stageName.FindStringSubmatch(filepath.Base(filepath.Dir(f)))
		if n, _ := strconv.Atoi(m[1]); n > st.num {
			continue
		}
		// A script's subtest is named after its file, and -run picks it by
		// that name: two stages' scripts must not share one.
		if other, dup := seen[filepath.Base(f)]; dup {
			t.Fatalf("two scripts named %s: %s and %s; rename one", filepath.Base(f), other, f)
		}
		seen[filepath.Base(f)] = f
		scripts = append(scripts, fromHere(f))
	}
	slices.Sort(scripts)
	return scripts
}

// fromHere returns path relative to the current directory, if it can.
func fromHere(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil {
		return rel
	}
	return path
}

// condition answers the scripts' [conditions] listed at the top of this file.
func condition(st stage, cond string) (bool, error) {
	name, arg, _ := strings.Cut(cond, ":")
	switch name {
	case "stage", "since", "fdlimit":
		n, err := strconv.Atoi(arg)
		if err != nil {
			return false, fmt.Errorf("[%s] wants a number, as in [%s:03]", cond, name)
		}
		switch name {
		case "stage":
			return st.num == n, nil
		case "since":
			return st.num >= n, nil
		}
		// The Go runtime raises its soft limit to the hard limit at start-up,
		// so this is what the test process, and each server, may open.
		var lim unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			return false, err
		}
		return uint64(lim.Cur) >= uint64(n), nil
	case "greets":
		return greets(st), nil
	case "handlers":
		return st.num >= handlerStage, nil
	case "loops":
		return st.num >= multiLoopStage, nil
	case "nc":
		return ncHasN(), nil
	case "strace":
		return straceWorks(), nil
	case "ipv6":
		ln, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			return false, nil
		}
		ln.Close()
		return true, nil
	}
	return false, errors.New("unknown condition; the workbook's are stage:NN, since:NN, greets, handlers, loops, fdlimit:N, nc, strace, ipv6")
}

// handlerStage is the first stage whose loop calls a handler (10-callbacks).
const handlerStage = 10

// greets reports whether the stage sends "welcome!\n" to each new client.
func greets(st stage) bool { return st.num >= 3 }

// ncHasN reports whether nc is the OpenBSD netcat: its usage (nc -h) lists
// -N, which shuts down the sending side at the end of the input and which
// the scripts rely on. Other netcats lack it or mean something else by it:
// macOS's nc lists "-N num_probes", hence the word after it.
var ncHasN = sync.OnceValue(func() bool {
	out, _ := exec.Command("nc", "-h").CombinedOutput()
	return regexp.MustCompile(`(?m)^\s*-N\s+[Ss]hutdown`).Match(out)
})
