// The end-to-end tests of the workbook: every stage is built once and then
// driven, as a learner would drive it from a terminal, by the testscript files
// in testdata/ (see testdata/README.md for how to read and write them).
//
// The contract is cumulative: stage NN must pass the scripts of testdata/NN-*/
// and of every earlier stage, so 07 still passes what 01 promised. Conditions
// let a script say where later stages differ:
//
//	[stage:01]    the stage under test is 01
//	[since:03]    the stage under test is 03 or later
//	[greets]      the stage greets new clients with "welcome!\n" (since 03)
//	[fdlimit:N]   this process may open at least N files (skip if not)
//	[nc]          nc is the OpenBSD netcat, which has -N (Debian: netcat-openbsd)
//	[ipv6]        the machine has an IPv6 loopback address
//
// The built stage is on PATH as `server` (behind the time limit of
// server_guard_test.go), so a script can run it exactly as a learner types
// it: `! exec server -addr nonsense`. The commands that start it
// in the background and talk to it (serve, connect, send, expect, ...) are
// listed in commands_test.go.
//
// Checking your own code (the exercises): point the test at your directory
// and name the stage it should behave as. It is built instead of the
// reference and runs that stage's cumulative scripts:
//
//	WORKBOOK_DIR=work/03-connpool WORKBOOK_STAGE=03 go test -run TestStages -count=1 .
//
// WORKBOOK_STAGE may be left out when the directory's name starts with the
// stage number, as work/03-connpool does. WORKBOOK_DIR is relative to the
// module root, or absolute. The test tells `go test` which files it builds,
// so an edit makes it run again rather than report a cached result; but
// `go test` only watches files inside the module, hence -count=1 for a
// directory elsewhere. `make check STAGE=03` runs the same command. The
// learner's own scripts and the smaller exercises' checks are in
// check_test.go.
package workbook_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kqueue-workbook/workbook/internal/exercise"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// A stage is one program under test: a reference stage directory, or a
// learner's directory standing in for one.
type stage struct {
	num  int    // 1 for 01-select
	name string // the subtest's name: the stage directory's name
	dir  string // the directory to build
	own  bool   // a learner's directory (WORKBOOK_DIR), not a reference stage
}

// stageName matches a stage directory's name and captures its number.
var stageName = regexp.MustCompile(`^([0-9][0-9])-`)

func TestStages(t *testing.T) {
	stages := stagesUnderTest(t)
	for _, st := range stages {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			scripts := scriptsFor(t, st)
			if len(scripts) == 0 {
				t.Skipf("no scripts in testdata/ for stage %02d or earlier", st.num)
			}
			bin := build(t, st)
			runScripts(t, st, testscript.Params{
				Files: scripts,
				Setup: func(env *testscript.Env) error {
					// `exec server` runs the guard of server_guard_test.go,
					// which runs this.
					env.Setenv("WORKBOOK_SERVER", filepath.Join(bin, "server"))
					env.Setenv("WORKBOOK_DEADLINE", deadline.String())
					startSession(env, st, filepath.Join(bin, "server"))
					return nil
				},
				Condition: func(cond string) (bool, error) { return condition(st, cond) },
				Cmds:      commands,
			})
		})
	}
}

// stagesUnderTest returns the reference stages, found as the module root's
// NN-name directories, or the learner's directory when WORKBOOK_DIR is set.
func stagesUnderTest(t *testing.T) []stage {
	if dir := os.Getenv("WORKBOOK_DIR"); dir != "" {
		return []stage{learnerStage(t, dir, os.Getenv("WORKBOOK_STAGE"))}
	}
	found, err := exercise.Stages(".")
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	for _, st := range found {
		stages = append(stages, stage{num: st.Num, name: st.Name, dir: st.Name})
	}
	if len(stages) == 0 {
		t.Skip("no stage directories (NN-name/) at the module root yet")
	}
	return stages
}

func learnerStage(t *testing.T, dir, num string) stage {
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		t.Fatalf("WORKBOOK_DIR=%s: not a directory (it is relative to the module root, %s); make start STAGE=NN makes one", dir, mustGetwd(t))
	}
	if num == "" {
		m := stageName.FindStringSubmatch(filepath.Base(filepath.Clean(dir)))
		if m == nil {
			t.Fatalf("WORKBOOK_DIR=%s: set WORKBOOK_STAGE to the stage number it should pass, e.g. WORKBOOK_STAGE=03", dir)
		}
		num = m[1]
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		t.Fatalf("WORKBOOK_STAGE=%s: want a stage number such as 03", num)
	}
	t.Logf("checking %s as stage %02d", dir, n)
	name := filepath.Base(filepath.Clean(dir))
	if !strings.HasPrefix(name, fmt.Sprintf("%02d-", n)) {
		name = fmt.Sprintf("%02d-%s", n, name)
	}
	return stage{num: n, name: name, dir: dir, own: true}
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// scriptsUpTo returns the scripts of stage num and of every stage before it.
func scriptsUpTo(t *testing.T, num int) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "[0-9][0-9]-*", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var scripts []string
	for _, f := range files {
		m := stageName.FindStringSubmatch(filepath.Base(filepath.Dir(f)))
		if n, _ := strconv.Atoi(m[1]); n <= num {
			scripts = append(scripts, f)
		}
	}
	slices.Sort(scripts)
	return scripts
}

// build compiles the stage into a fresh directory as `server` and returns
// that directory, to be put on the scripts' PATH. The binary gets the race
// detector when this test has it (go test -race).
func build(t *testing.T, st stage) string {
	bin := t.TempDir()
	args := []string{"build", "-o", filepath.Join(bin, "server")}
	if raceEnabled {
		args = append(args, "-race")
	}
	goCmd(t, st.dir, append(args, ".")...)
	noteInputs(t, st.dir)
	return bin
}

// noteInputs opens the source directories the stage is built from (its own
// and those of the local packages it imports, such as kqueue/, even through
// a replace line as an exercise's go.mod has) and their go.mod and go.sum.
// The go command builds the stage in a child process, out of sight of
// `go test`; opening these here puts them on the list of files whose changes
// make `go test` run the test again instead of reporting a cached result.
func noteInputs(t *testing.T, dir string) {
	const local = `{{with .Module}}{{if or .Main (and .Replace (not .Replace.Version))}}` +
		`{{$.Dir}}{{"\n"}}{{.GoMod}}{{"\n"}}{{end}}{{end}}`
	out := goCmd(t, dir, "list", "-deps", "-f", local, ".")
	seen := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		if seen[p] {
			continue
		}
		seen[p] = true
		if strings.HasSuffix(p, ".mod") {
			os.ReadFile(p)
			os.ReadFile(strings.TrimSuffix(p, ".mod") + ".sum")
		} else {
			os.ReadDir(p)
		}
	}
}

// goCmd runs the go command in dir and returns its output; a failure stops
// the test with the command's own messages, which are what a learner whose
// code does not compile needs to see.
func goCmd(t *testing.T, dir string, args ...string) []byte {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, stderr.Bytes())
	}
	return out
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
	case "nc":
		return ncHasN(), nil
	case "ipv6":
		ln, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			return false, nil
		}
		ln.Close()
		return true, nil
	}
	return false, fmt.Errorf("unknown condition; the workbook's are stage:NN, since:NN, greets, fdlimit:N, nc, ipv6")
}

// greets reports whether the stage sends "welcome!\n" to each new client.
func greets(st stage) bool { return st.num >= 3 }

// ncHasN reports whether nc is the OpenBSD netcat: its usage (nc -h) lists
// -N, which shuts down the sending side at the end of the input and which
// the scripts rely on. Other netcats lack it or mean something else by it.
var ncHasN = sync.OnceValue(func() bool {
	out, _ := exec.Command("nc", "-h").CombinedOutput()
	return regexp.MustCompile(`(?m)^\s*-N\s`).Match(out)
})
