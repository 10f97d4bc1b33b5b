package harness

// The test binary is also the stage's server: Main registers runServer with
// testscript under the name `server`, so a script's `exec server ARGS`, and
// the serve command, run this test binary as `server ARGS`, and it calls the
// stage's main with those arguments. The stage is thus built once, as part of
// its test, with the same flags (-race included) as the test itself.
//
// Run by `exec`, the server also gets a time limit. Every script that execs
// the server expects it to exit on its own: a bad flag, a failed start, -h. A
// server that starts anyway (a learner's, before the check in question is
// written) would otherwise keep `exec` waiting until `go test` gives up,
// minutes later, with a stack dump. The guard stops it after the scripts'
// deadline and says so on stderr, so the script fails on what the server did
// instead, such as a `listening on` line where `! stdout .` wanted none. The
// serve command starts servers meant to keep running, without the limit.
//
// Every server also goes when the test that started it goes. A test binary
// that is killed (go test -timeout, or a mutation tester's own timeout)
// cleans up nothing, and its servers would live on, orphans, some of them
// (a mutant's) spinning on a CPU until the machine is rebooted.

import (
	"flag"
	"fmt"
	"os"
	"time"
)

// stageMain is the stage's main function, given to Main.
var stageMain func()

// timeLimitEnv holds the time limit of a server run by exec. It is set in
// the scripts' environment, which exec passes on and serve does not.
const timeLimitEnv = "WORKBOOK_TIME_LIMIT"

// runServer is the test binary run as `server`.
func runServer() {
	go exitWithParent(os.Getppid())
	if limit := os.Getenv(timeLimitEnv); limit != "" {
		os.Unsetenv(timeLimitEnv)
		d, err := time.ParseDuration(limit)
		if err != nil {
			fmt.Fprintf(os.Stderr, "server: %s=%s: %v\n", timeLimitEnv, limit, err)
			os.Exit(2)
		}
		time.AfterFunc(d, func() {
			fmt.Fprintf(os.Stderr, "[the server was still running after %v; a script that runs it with exec expects it to exit by itself, so the test stopped it]\n", d)
			os.Exit(124)
		})
	}
	withoutTestFlags()
	stageMain()
}

// withoutTestFlags gives the stage an empty command line of its own. The
// testing package and testscript have already defined their flags (-test.v,
// -testwork, ...) on flag.CommandLine, which the stage's -h would list and
// its parsing would accept. The stages define their flags in main, so none of
// theirs is lost; a flag defined in a package-level var would be.
func withoutTestFlags() {
	flag.CommandLine = flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	flag.CommandLine.Usage = func() { flag.Usage() }
}

// exitWithParent ends the server once its parent, the test, has gone: an
// orphan is given a new parent, so its parent's process id changes. Polling
// is crude but portable (Linux's PR_SET_PDEATHSIG has no match on the BSDs),
// and a quarter of a second is soon enough for a process nobody talks to.
func exitWithParent(parent int) {
	for range time.Tick(250 * time.Millisecond) {
		if os.Getppid() != parent {
			fmt.Fprintln(os.Stderr, "[the test that started this server has gone; the server exits]")
			os.Exit(3)
		}
	}
}
