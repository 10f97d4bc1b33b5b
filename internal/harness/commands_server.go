package harness

// The commands the scripts in testdata/ use besides testscript's own (exec,
// stdout, stderr, cmp, skip, ...). They read like a learner's session with a
// server in one terminal and clients in others. Every wait is bounded by the
// one deadline below; nothing sleeps.
//
// A command is an entry of the one table, commands (commands.go): a name, and
// a function that gets the script, whether the line began with ! (neg), and
// the arguments. Further commands live in files by topic, commands_TOPIC.go,
// each documented at the top of its file and registered in that table.
//
// The server (this file):
//
//	serve [args...]        start `server args...` in $WORK in the background and wait
//	                       for its first `listening on` line; anything else on stdout
//	                       first fails. Sets ADDR (first TCP listener, host:port), HOST
//	                       and PORT (its parts), ADDR4 and ADDR6 (first IPv4 and IPv6
//	                       TCP listener) and SOCK (first UNIX socket), for the
//	                       listeners seen so far. A server still running at the end
//	                       of the script is asked to stop (SIGTERM), then killed; that
//	                       is fine, but if it logged a panic or a data race (under go
//	                       test -race) the script fails.
//	listening tcp4|tcp6|unix
//	                       wait for a `listening on` line of that kind and set its
//	                       variable (for servers with more than one listener)
//	signal [-elsewhere] [-nowait|-killed] [INT|TERM]
//	                       send the signal (default INT), wait for the server to exit
//	                       and require exit status 0; `! signal` requires non-zero,
//	                       -killed that the signal killed it (as it does a program
//	                       with no handler), and -nowait only sends it.
//	                       (Not `stop`: that is testscript's, and ends the script.)
//	                       The kernel gives a process's signal to any one of its
//	                       threads; -elsewhere chooses one that is not asleep in
//	                       write(2), so that no blocked write is cut short by it
//	                       (Linux; elsewhere the kernel still chooses).
//	pause DURATION         let DURATION pass, as a person does between two key
//	                       presses: the time passing is what is tested, never a
//	                       wait for something to happen
//	exits                  wait for the server to exit by itself (after signal -nowait,
//	                       say) and require exit status 0; `! exits` requires non-zero
//	log [-count N] REGEXP  the server's stderr has a line matching REGEXP: waits for it
//	                       (the server logs as it goes); with -count, exactly N such
//	                       lines. `! log REGEXP`: no such line now (use after signal
//	                       to mean "ever")
//
// Clients (commands_clients.go); NAME is any word naming a connection:
//
//	connect NAME [ADDR]    connect over TCP to ADDR (default $ADDR); `! connect` expects
//	                       the connection to be refused
//	connect -unix NAME PATH
//	                       connect over the UNIX socket PATH
//	send NAME TEXT         send TEXT, written with Go escapes: 'hello\n', '\x00\xff'
//	sendgen NAME SIZE      send SIZE bytes of NAME's own pseudo-random stream (SIZE is a
//	                       number of bytes, or ends in KiB or MiB); the bytes go out in
//	                       the background, so the script can read the echo meanwhile
//	expect NAME TEXT       the next bytes from the server are exactly TEXT
//	expectgen NAME SIZE    the next SIZE bytes are NAME's stream, continuing where the
//	                       last expectgen stopped
//	allbytes NAME          send every byte value 0..255 and expect them back
//	shut NAME              half-close: no more sending, but keep reading (shutdown(2))
//	reset NAME             vanish: close with SO_LINGER 0, so the server sees a reset
//	                       (a UNIX socket is just closed, which is as abrupt);
//	                       whatever sendgen had not sent yet is dropped
//	close NAME             close normally, after everything sent has gone out
//	eof NAME               the server closes the connection: no more bytes, then EOF
//	idle N                 open N connections to $ADDR that send nothing and stay open
//	                       to the end of the script
//	refused LO [HI]        between LO and HI (default LO) of the idle connections were
//	                       closed by the server, the newest ones; waits for the newest
//	                       LO to close, then counts. Sets REFUSED to the count.
//	swarm CLIENTS MSGS     CLIENTS clients at once each send MSGS distinct messages, in
//	                       rounds, and each gets back exactly its own bytes in order
//	                       (after its "welcome!\n" in stages that greet)
//
// Sends are written in order. send and shut wait until the kernel has taken
// their bytes, unless a sendgen is still going, in which case they queue
// behind it; expect and eof read what the server sent, within the deadline.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// deadline bounds every wait in the scripts: for the server's first line, an
// echo, a close, an exit. A correct stage answers within milliseconds; the
// deadline only decides how long a broken one takes to fail. Checking a
// learner's directory, where scripts are expected to fail, it is shorter,
// so that a check of a stage not yet written fails in seconds.
//
// WORKBOOK_DEADLINE (a duration, such as 30s) replaces it: longer for a slow
// machine or a server under a debugger, shorter where a check is meant to fail
// (the exercise tests). Run sets it before any script starts.
var deadline = referenceDeadline

const (
	referenceDeadline = 10 * time.Second
	learnerDeadline   = 3 * time.Second
)

// deadlineFor returns the deadline for checking st.
func deadlineFor(st stage) (time.Duration, error) {
	d := referenceDeadline
	if st.own {
		d = learnerDeadline
	}
	if s := os.Getenv("WORKBOOK_DEADLINE"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			return 0, fmt.Errorf("WORKBOOK_DEADLINE=%s: want a duration such as 30s", s)
		}
	}
	return d, nil
}

// A session is one script's state: the stage, its server and its clients.
type session struct {
	t       testscript.T
	stage   stage
	binary  string
	trace   string // KQUEUE_TRACE for the servers serve starts, if not empty
	server  *server
	clients map[string]*client
	idle    []*idleConn
}

type sessionKey struct{}

func startSession(env *testscript.Env, st stage, binary string) {
	s := &session{t: env.T(), stage: st, binary: binary, clients: map[string]*client{}}
	env.Values[sessionKey{}] = s
	env.Defer(s.end)
}

func sessionOf(ts *testscript.TestScript) *session {
	return ts.Value(sessionKey{}).(*session)
}

// end releases what the script left open: the server is killed (the script
// has already checked whatever it wanted to), the connections closed. A
// server that panicked, or that the race detector caught, fails the script
// even if no command noticed.
func (s *session) end() {
	for _, c := range s.clients {
		c.conn.Close()
	}
	for _, c := range s.idle {
		c.conn.Close()
	}
	srv := s.server
	if srv == nil {
		return
	}
	srv.kill()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i, line := range srv.stderr {
		if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "WARNING: DATA RACE") {
			report := srv.stderr[i:min(len(srv.stderr), i+60)]
			s.t.Fatal("the server reported:\n\t" + strings.Join(report, "\n\t"))
		}
	}
}

// A server is a running stage and what it has said so far.
type server struct {
	cmd *exec.Cmd

	mu        sync.Mutex
	changed   chan struct{} // closed (and replaced) whenever anything below changes
	listeners []listener    // the `listening on` lines, in order
	badStdout string        // the first stdout line that is not a `listening on` line
	stdoutEOF bool
	stderr    []string // the log, line by line
	stderrEOF bool
	exited    bool
	state     *os.ProcessState

	// The stderr pipe's read end, for logjam (commands_faults.go), which
	// stops the reader while jammed is set; parked says it has stopped.
	stderrR        *os.File
	jammed, parked bool
}

type listener struct {
	network string // tcp or unix, as the line says
	addr    string // host:port or a path
}

// listeningLine is the stage contract's announcement of one listener.
var listeningLine = regexp.MustCompile(`^listening on (tcp[46]?|unix) (\S+)$`)

func cmdServe(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "serve", "to check a server that fails to start, use: ! exec server ARGS")
	s := sessionOf(ts)
	if s.server != nil && !s.server.hasExited() {
		ts.Fatalf("serve: a server is already running; stop it with signal first")
	}
	srv := &server{changed: make(chan struct{})}
	srv.cmd = exec.Command(s.binary, args...)
	srv.cmd.Args[0] = "server" // as a learner types it, in the server's own messages
	srv.cmd.Dir = ts.MkAbs(".")
	if s.trace != "" {
		srv.cmd.Env = append(os.Environ(), "KQUEUE_TRACE="+s.trace)
	}
	stdout := srv.pipe(ts, &srv.cmd.Stdout, srv.readStdout)
	stderr := srv.pipe(ts, &srv.cmd.Stderr, srv.readStderr)
	ts.Check(srv.cmd.Start())
	// The child has its own copies of the pipes' write ends now; closing ours
	// lets the readers see EOF when the server exits.
	stdout.Close()
	stderr.Close()
	s.server = srv
	go func() {
		err := srv.cmd.Wait()
		srv.update(func() {
			srv.exited = true
			srv.jammed = false // read what is left, to the end
			srv.state = srv.cmd.ProcessState
			if err != nil && srv.state == nil {
				srv.badStdout = "wait: " + err.Error()
			}
		})
	}()
	// A server that exits is waited for until its stderr is read to the end,
	// so that the failure below shows why it exited.
	ok := srv.waitUntil(func() bool {
		return len(srv.listeners) > 0 || srv.badStdout != "" || srv.exited && srv.stdoutEOF && srv.stderrEOF
	})
	srv.mu.Lock()
	defer srv.mu.Unlock()
	switch {
	case srv.badStdout != "":
		ts.Fatalf("serve: the server wrote %q on stdout before (or instead of) `listening on`; only those lines belong on stdout, logs go to stderr", srv.badStdout)
	case len(srv.listeners) == 0 && srv.exited:
		ts.Fatalf("serve: the server exited (%v) without listening; its stderr:\n%s", srv.state, srv.logTail())
	case !ok:
		ts.Fatalf("serve: no `listening on` line within %v; its stderr so far:\n%s", deadline, srv.logTail())
	}
	clearListenerVars(ts)
	s.setListenerVars(ts, srv.listeners)
}

// pipe connects the child's output (*w) to a pipe read by read in the
// background, and returns the write end, which the parent must close after
// starting the child.
func (srv *server) pipe(ts *testscript.TestScript, w *io.Writer, read func(*os.File)) *os.File {
	r, wf, err := os.Pipe()
	ts.Check(err)
	*w = wf
	go func() {
		read(r)
		r.Close()
	}()
	return wf
}

func (srv *server) readStdout(r *os.File) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		srv.update(func() {
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				srv.listeners = append(srv.listeners, listener{network: m[1], addr: m[2]})
			} else if srv.badStdout == "" {
				srv.badStdout = line
			}
		})
	}
	srv.update(func() { srv.stdoutEOF = true })
}

func (srv *server) readStderr(r *os.File) {
	srv.update(func() { srv.stderrR = r })
	sc := bufio.NewScanner(jamReader{srv, r})
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue // logjam's filler; the server logs no empty lines
		}
		srv.update(func() { srv.stderr = append(srv.stderr, line) })
	}
	srv.update(func() { srv.stderrEOF = true })
}

// update changes the server's state under its lock and wakes every waiter.
func (srv *server) update(f func()) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	f()
	srv.wake()
}

// wake wakes every waiter; the caller holds the lock.
func (srv *server) wake() {
	close(srv.changed)
	srv.changed = make(chan struct{})
}

// waitUntil waits, at most for the deadline, until cond (called with the
// lock held) is true, and reports whether it became true.
func (srv *server) waitUntil(cond func() bool) bool {
	timeout := time.NewTimer(deadline)
	defer timeout.Stop()
	for {
		srv.mu.Lock()
		done, changed := cond(), srv.changed
		srv.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-changed:
		case <-timeout.C:
			return false
		}
	}
}

func (srv *server) hasExited() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.exited
}

// logTail returns the last lines of the server's log, for failure messages.
// The caller holds the lock.
func (srv *server) logTail() string {
	lines := srv.stderr
	const most = 20
	prefix := ""
	if len(lines) > most {
		prefix = fmt.Sprintf("\t... (%d lines before)\n", len(lines)-most)
		lines = lines[len(lines)-most:]
	}
	if len(lines) == 0 {
		return "\t(nothing)"
	}
	return prefix + "\t" + strings.Join(lines, "\n\t")
}

// lastWords says what the server logged last, and whether it has exited,
// for the failure of a client that did not get what it expected.
func (srv *server) lastWords() string {
	const most = 5
	srv.mu.Lock()
	defer srv.mu.Unlock()
	lines := srv.stderr[max(0, len(srv.stderr)-most):]
	var b strings.Builder
	switch {
	case len(lines) == 0:
		b.WriteString("\tthe server has logged nothing")
	case len(lines) < len(srv.stderr):
		fmt.Fprintf(&b, "\tthe server's log ends (its last %d of %d lines):", len(lines), len(srv.stderr))
	default:
		b.WriteString("\tthe server's log:")
	}
	for _, line := range lines {
		b.WriteString("\n\t\t" + line)
	}
	if srv.exited {
		fmt.Fprintf(&b, "\n\tthe server has exited (%v)", srv.state)
	}
	return b.String()
}

// kill stops a server still running when its script ends. It asks first,
// with SIGTERM, as a learner's Ctrl-C would: a server that exits by itself
// runs its shutdown (which may report a data race under -race), and a
// server built for coverage (go test -cover, as the mutation tester runs it)
// writes its profile, which a killed process never does. One that has not
// gone within the deadline is killed.
func (srv *server) kill() {
	if srv.cmd.Process == nil || srv.hasExited() {
		return
	}
	gone := func() bool { return srv.exited && srv.stderrEOF }
	if srv.cmd.Process.Signal(syscall.SIGTERM) == nil && srv.waitUntil(gone) {
		return
	}
	srv.cmd.Process.Kill()
	srv.waitUntil(gone)
}

// setListenerVars sets ADDR, HOST, PORT, ADDR4, ADDR6 and SOCK from the
// first listener of each kind.
func (s *session) setListenerVars(ts *testscript.TestScript, listeners []listener) {
	set := func(key, value string) {
		if ts.Getenv(key) == "" {
			ts.Setenv(key, value)
		}
	}
	for _, l := range listeners {
		kind := listenerKind(l)
		switch kind {
		case "unix":
			set("SOCK", l.addr)
			continue
		case "tcp4":
			set("ADDR4", l.addr)
		case "tcp6":
			set("ADDR6", l.addr)
		}
		if ts.Getenv("ADDR") == "" {
			host, port, _ := net.SplitHostPort(l.addr)
			ts.Setenv("ADDR", l.addr)
			ts.Setenv("HOST", host)
			ts.Setenv("PORT", port)
		}
	}
}

// listenerKind tells tcp4, tcp6 and unix listeners apart by their address.
func listenerKind(l listener) string {
	if l.network == "unix" {
		return "unix"
	}
	host, _, _ := net.SplitHostPort(l.addr)
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return "tcp6"
	}
	return "tcp4"
}

// clearListenerVars forgets the previous server's addresses, so a second
// serve in one script sets them afresh.
func clearListenerVars(ts *testscript.TestScript) {
	for _, key := range []string{"ADDR", "HOST", "PORT", "ADDR4", "ADDR6", "SOCK"} {
		ts.Setenv(key, "")
	}
}

func cmdListening(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "listening", "")
	if len(args) != 1 || (args[0] != "tcp4" && args[0] != "tcp6" && args[0] != "unix") {
		ts.Fatalf("usage: listening tcp4|tcp6|unix")
	}
	srv := runningServer(ts, "listening")
	found := func() bool {
		for _, l := range srv.listeners {
			if listenerKind(l) == args[0] {
				return true
			}
		}
		return false
	}
	ok := srv.waitUntil(func() bool { return found() || srv.stdoutEOF })
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if !ok || !found() {
		ts.Fatalf("listening: the server announced no %s listener; it said: %v", args[0], srv.listeners)
	}
	sessionOf(ts).setListenerVars(ts, srv.listeners)
}

// runningServer returns the script's server, which must have been started.
func runningServer(ts *testscript.TestScript, cmd string) *server {
	srv := sessionOf(ts).server
	if srv == nil {
		ts.Fatalf("%s: no server; start one with serve", cmd)
	}
	return srv
}

func cmdSignal(ts *testscript.TestScript, neg bool, args []string) {
	var elsewhere, nowait, killed bool
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-elsewhere":
			elsewhere = true
		case "-nowait":
			nowait = true
		case "-killed":
			killed = true
		default:
			ts.Fatalf("signal: unknown option %s", args[0])
		}
		args = args[1:]
	}
	if nowait && (killed || neg) {
		ts.Fatalf("signal: -nowait checks nothing: no ! and no -killed")
	}
	sig, name := syscall.SIGINT, "INT"
	if len(args) > 0 {
		name = strings.TrimPrefix(args[0], "SIG")
	}
	switch {
	case len(args) > 1:
		ts.Fatalf("usage: signal [-elsewhere] [-nowait|-killed] [INT|TERM]")
	case name == "INT":
	case name == "TERM":
		sig = syscall.SIGTERM
	default:
		ts.Fatalf("signal: %s: want INT or TERM", args[0])
	}
	srv := runningServer(ts, "signal")
	if srv.hasExited() {
		ts.Fatalf("signal: the server has already exited")
	}
	if elsewhere {
		pid := srv.cmd.Process.Pid
		tid := threadNotInWrite(pid)
		if tid == 0 {
			ts.Logf("signal: no thread of the server to choose here; the kernel chooses")
			tid = pid
		}
		ts.Check(tgkill(pid, tid, sig))
	} else {
		ts.Check(srv.cmd.Process.Signal(sig))
	}
	if nowait {
		return
	}
	if killed {
		srv.awaitExit(ts, "signal", "after SIG"+name, func(ws syscall.WaitStatus) bool { return ws.Signaled() && ws.Signal() == sig }, "to be killed by the signal")
		return
	}
	srv.awaitExit(ts, "signal", "after SIG"+name, func(ws syscall.WaitStatus) bool { return (ws.ExitStatus() == 0) != neg }, map[bool]string{false: "exit status 0", true: "a non-zero exit status"}[neg])
}

func cmdPause(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "pause", "")
	if len(args) != 1 {
		ts.Fatalf("usage: pause DURATION")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d) // the pause is the point, as freeze's
}

func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 0 {
		ts.Fatalf("usage: exits, or ! exits")
	}
	srv := runningServer(ts, "exits")
	srv.awaitExit(ts, "exits", "", func(ws syscall.WaitStatus) bool { return ws.Exited() && (ws.ExitStatus() == 0) != neg }, map[bool]string{false: "exit status 0", true: "a non-zero exit status"}[neg])
}

// awaitExit waits for the server to exit (killing it after the deadline),
// and fails the script, for cmd, unless its wait status is as ok says:
// want says how, for the message, and when how the exit came about.
func (srv *server) awaitExit(ts *testscript.TestScript, cmd, when string, ok func(syscall.WaitStatus) bool, want string) {
	exited := srv.waitUntil(func() bool { return srv.exited && srv.stderrEOF })
	if !exited {
		srv.kill()
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if when != "" {
		when = " " + when
	}
	if !exited {
		ts.Fatalf("%s: the server was still running %v%s; its stderr:\n%s", cmd, deadline, when, srv.logTail())
	}
	if ws, isWS := srv.state.Sys().(syscall.WaitStatus); !isWS || !ok(ws) {
		ts.Fatalf("%s:%s the server ended with %v, expected %s; its stderr:\n%s", cmd, when, srv.state, want, srv.logTail())
	}
	ts.Logf("server ended with %v", srv.state)
}

func cmdLog(ts *testscript.TestScript, neg bool, args []string) {
	count := -1
	if len(args) == 3 && args[0] == "-count" {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 0 {
			ts.Fatalf("log: -count %s: want a number", args[1])
		}
		count, args = n, args[2:]
	}
	if len(args) != 1 || (neg && count >= 0) {
		ts.Fatalf("usage: log [-count N] REGEXP, or ! log REGEXP")
	}
	re, err := regexp.Compile(args[0])
	ts.Check(err)
	srv := runningServer(ts, "log")
	matches := func() (n int, first string) {
		for _, line := range srv.stderr {
			if re.MatchString(line) {
				if n == 0 {
					first = line
				}
				n++
			}
		}
		return n, first
	}
	if neg || count == 0 {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if n, first := matches(); n > 0 {
			ts.Fatalf("log: expected no line matching %q, but the server logged %q", re, first)
		}
		return
	}
	want := max(count, 1)
	srv.waitUntil(func() bool {
		n, _ := matches()
		return n >= want || srv.stderrEOF
	})
	srv.mu.Lock()
	defer srv.mu.Unlock()
	n, _ := matches()
	switch {
	case count >= 0 && n != count:
		ts.Fatalf("log: expected %d lines matching %q, the server logged %d:\n%s", count, re, n, srv.logTail())
	case n == 0:
		ts.Fatalf("log: no line matching %q within %v; the server logged:\n%s", re, deadline, srv.logTail())
	}
}

// noNeg stops a script that puts ! before a command that has no failing form.
func noNeg(ts *testscript.TestScript, neg bool, cmd, hint string) {
	if neg {
		if hint != "" {
			hint = "; " + hint
		}
		ts.Fatalf("%s does not take !%s", cmd, hint)
	}
}

// errorsIsTimeout reports whether err is a missed deadline.
func errorsIsTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
