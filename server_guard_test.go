package workbook_test

// `exec server` in a script runs this guard, not the built stage directly:
// the test binary installs itself on PATH as `server` (testscript.Main, in
// TestMain), and in that role runs the stage named by WORKBOOK_SERVER with
// the same arguments, input and output, passes signals on, and exits with
// its status.
//
// Its one addition is a time limit. Every script that execs the server
// expects it to exit on its own: a bad flag, a failed start, -h. A server
// that starts anyway (a learner's, before the check in question is written)
// would otherwise keep `exec` waiting until `go test` gives up, minutes later,
// with a stack dump. The guard stops it after the scripts' deadline and says
// so on stderr, so the script fails on what the server did instead, such as
// a `listening on` line where `! stdout .` wanted none.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func guardServer() {
	bin := os.Getenv("WORKBOOK_SERVER")
	if bin == "" {
		fmt.Fprintln(os.Stderr, "server: WORKBOOK_SERVER is not set; this is the test harness's stand-in for a stage")
		os.Exit(2)
	}
	cmd := exec.Command(bin, os.Args[1:]...)
	cmd.Args[0] = "server" // as the script wrote it, in the server's own messages
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "server: %v\n", err)
		os.Exit(2)
	}
	go func() {
		for sig := range signals {
			cmd.Process.Signal(sig)
		}
	}()
	var stopped atomic.Bool
	timer := time.AfterFunc(deadline, func() {
		stopped.Store(true)
		fmt.Fprintf(os.Stderr, "[the server was still running after %v; a script that runs it with exec expects it to exit by itself, so the test stopped it]\n", deadline)
		cmd.Process.Kill()
	})
	err := cmd.Wait()
	timer.Stop()
	var exit *exec.ExitError
	switch {
	case err == nil:
		os.Exit(0)
	case stopped.Load():
		os.Exit(124)
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		os.Exit(exit.ExitCode())
	default:
		fmt.Fprintf(os.Stderr, "[server: %v]\n", err) // killed by a signal
		os.Exit(128)
	}
}
