package harness

// The client commands listed in commands_server.go: named connections that
// send and expect, idle crowds, and swarms.

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/rogpeppe/go-internal/testscript"
)

// A client is one named connection to the server.
type client struct {
	name   string
	conn   net.Conn
	closed bool
	server *server // the server running when it connected, if any, for its log

	// Each client has its own pseudo-random stream for sendgen; expectgen
	// replays the same stream from its own copy of the generator.
	sendStream, expectStream *rand.ChaCha8

	received int // bytes read so far

	// Sends are written by a goroutine, in order, so that a script can send a
	// mebibyte and read its echo at the same time without either side
	// blocking for good.
	mu         sync.Mutex
	sent       int    // bytes queued for sending so far
	sentTail   []byte // the last of them, for failure messages
	queue      []*writeOp
	writing    bool  // the writer goroutine is running
	genPending int   // sendgen operations queued or being written
	werr       error // the first failed write; later ones are skipped
	dropped    bool  // reset: write nothing more
}

// A writeOp is one send, sendgen or shut, or (all zero) a marker to wait for.
type writeOp struct {
	data []byte
	gen  int
	shut bool
	done chan struct{}
}

func newClient(name string, conn net.Conn, srv *server) *client {
	seed := sha256.Sum256([]byte("workbook stream " + name))
	return &client{
		name:         name,
		conn:         conn,
		server:       srv,
		sendStream:   rand.NewChaCha8(seed),
		expectStream: rand.NewChaCha8(seed),
	}
}

// clientOf returns the open client NAME named by the command's first argument.
func clientOf(ts *testscript.TestScript, cmd string, args []string, nargs int, usage string) *client {
	if len(args) != nargs {
		ts.Fatalf("usage: %s %s", cmd, usage)
	}
	c := sessionOf(ts).clients[args[0]]
	switch {
	case c == nil:
		ts.Fatalf("%s: no client named %s; connect it first", cmd, args[0])
	case c.closed:
		ts.Fatalf("%s: client %s is closed", cmd, args[0])
	}
	return c
}

func cmdConnect(ts *testscript.TestScript, neg bool, args []string) {
	network := "tcp"
	if len(args) > 0 && args[0] == "-unix" {
		network, args = "unix", args[1:]
	}
	if len(args) < 1 || len(args) > 2 || network == "unix" && len(args) != 2 {
		ts.Fatalf("usage: connect NAME [ADDR], or connect -unix NAME PATH")
	}
	name, addr := args[0], ts.Getenv("ADDR")
	if len(args) == 2 {
		addr = args[1]
	}
	if network == "unix" {
		addr = ts.MkAbs(addr) // relative to the script's directory, not the test's
	}
	if addr == "" {
		ts.Fatalf("connect: no address; start a server with serve first")
	}
	s := sessionOf(ts)
	if c := s.clients[name]; c != nil && !c.closed {
		ts.Fatalf("connect: client %s is already connected", name)
	}
	conn, err := net.DialTimeout(network, addr, deadline)
	switch {
	case neg && err == nil:
		conn.Close()
		ts.Fatalf("connect: %s reached %s %s, expected the connection to be refused", name, network, addr)
	case neg:
		ts.Logf("%s: %v", name, err)
		return
	case err != nil:
		ts.Fatalf("connect %s: %v", name, err)
	}
	s.clients[name] = newClient(name, conn, s.server)
}

func cmdSend(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "send", "")
	c := clientOf(ts, "send", args, 2, "NAME TEXT")
	c.send(ts, "send", &writeOp{data: unescape(ts, args[1])})
}

func cmdSendgen(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "sendgen", "")
	c := clientOf(ts, "sendgen", args, 2, "NAME SIZE")
	c.send(ts, "sendgen", &writeOp{gen: parseSize(ts, args[1])})
}

func cmdShut(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "shut", "")
	c := clientOf(ts, "shut", args, 1, "NAME")
	c.send(ts, "shut", &writeOp{shut: true})
}

func cmdAllbytes(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "allbytes", "")
	c := clientOf(ts, "allbytes", args, 1, "NAME")
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	c.send(ts, "allbytes", &writeOp{data: all})
	if err := c.expect(all); err != nil {
		ts.Fatalf("allbytes: %v", err)
	}
}

// send queues op. For send and shut, unless a sendgen is still being
// written, it then waits until op is done, so that a script line such as
// `send a 'x'` has really happened before the next line (say, `reset a`)
// runs. A sendgen never waits: its echo is read by the lines after it.
func (c *client) send(ts *testscript.TestScript, cmd string, op *writeOp) {
	op.done = make(chan struct{})
	c.mu.Lock()
	if c.werr != nil {
		c.mu.Unlock()
		ts.Fatalf("%s: %v", cmd, c.werr)
	}
	wait := c.genPending == 0 && op.gen == 0
	c.enqueue(op)
	c.sent += len(op.data) + op.gen
	c.sentTail = append(c.sentTail, op.data...)
	if len(c.sentTail) > 64 {
		c.sentTail = c.sentTail[len(c.sentTail)-64:]
	}
	c.mu.Unlock()
	if !wait {
		return
	}
	select {
	case <-op.done:
	case <-time.After(deadline):
		ts.Fatalf("%s: client %s could not send within %v: the server is not reading", cmd, c.name, deadline)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr != nil {
		ts.Fatalf("%s: %v", cmd, c.werr)
	}
}

// enqueue adds op to the queue and starts the writer if it is not running.
// The caller holds the lock.
func (c *client) enqueue(op *writeOp) {
	if op.gen > 0 {
		c.genPending++
	}
	c.queue = append(c.queue, op)
	if !c.writing {
		c.writing = true
		go c.writer()
	}
}

// writer performs the queued operations in order until the queue is empty.
func (c *client) writer() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.dropped {
			c.writing = false
			c.mu.Unlock()
			return
		}
		op := c.queue[0]
		c.queue = c.queue[1:]
		skip := c.werr != nil
		c.mu.Unlock()

		var err error
		if !skip {
			err = c.write(op)
		}

		c.mu.Lock()
		if op.gen > 0 {
			c.genPending--
		}
		if err != nil && c.werr == nil && !c.dropped {
			c.werr = fmt.Errorf("client %s: sending failed: %v", c.name, err)
		}
		c.mu.Unlock()
		close(op.done)
	}
}

func (c *client) write(op *writeOp) error {
	c.conn.SetWriteDeadline(time.Now().Add(deadline))
	switch {
	case op.shut:
		return c.conn.(interface{ CloseWrite() error }).CloseWrite()
	case op.gen > 0:
		buf := make([]byte, min(op.gen, 64<<10))
		for left := op.gen; left > 0; left -= len(buf) {
			buf = buf[:min(left, len(buf))]
			c.sendStream.Read(buf)
			c.conn.SetWriteDeadline(time.Now().Add(deadline))
			if _, err := c.conn.Write(buf); err != nil {
				return err
			}
		}
		return nil
	default:
		_, err := c.conn.Write(op.data)
		return err
	}
}

// flush waits until everything queued has been written.
func (c *client) flush() error {
	op := &writeOp{done: make(chan struct{})}
	c.mu.Lock()
	c.enqueue(op)
	c.mu.Unlock()
	select {
	case <-op.done:
	case <-time.After(deadline):
		return fmt.Errorf("client %s could not send everything within %v: the server is not reading", c.name, deadline)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.werr
}

func cmdClose(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "close", "")
	c := clientOf(ts, "close", args, 1, "NAME")
	err := c.flush()
	c.closed = true
	c.conn.Close()
	if err != nil {
		ts.Fatalf("close: %v", err)
	}
}

func cmdReset(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "reset", "")
	c := clientOf(ts, "reset", args, 1, "NAME")
	c.mu.Lock()
	c.dropped = true
	c.queue = nil
	c.mu.Unlock()
	// With a zero linger time, close(2) discards unsent data and sends a TCP
	// reset (RST) instead of the orderly FIN. A UNIX-domain socket has no
	// such thing: closing it is already abrupt, and a server with data still
	// to deliver gets ECONNRESET or EPIPE. Closing also interrupts a write
	// still in progress.
	if tcp, ok := c.conn.(*net.TCPConn); ok {
		ts.Check(tcp.SetLinger(0))
	}
	c.closed = true
	ts.Check(c.conn.Close())
}

func cmdExpect(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "expect", "")
	c := clientOf(ts, "expect", args, 2, "NAME TEXT")
	if err := c.expect(unescape(ts, args[1])); err != nil {
		ts.Fatalf("expect: %v", err)
	}
}

func cmdExpectgen(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "expectgen", "")
	c := clientOf(ts, "expectgen", args, 2, "NAME SIZE")
	size := parseSize(ts, args[1])
	want := make([]byte, min(size, 64<<10))
	for done := 0; done < size; done += len(want) {
		want = want[:min(size-done, len(want))]
		c.expectStream.Read(want)
		if err := c.expectPart(want, done, fmt.Sprintf(" in its %d generated bytes", size)); err != nil {
			ts.Fatalf("expectgen: %v", err)
		}
	}
}

// expect reads len(want) bytes and says, in a learner's terms, how they
// differ from want.
func (c *client) expect(want []byte) error {
	return c.expectPart(want, 0, "")
}

// expectPart is expect for a part of something longer: want starts at byte
// base of it, and whole names it in messages.
func (c *client) expectPart(want []byte, base int, whole string) error {
	got := make([]byte, len(want))
	c.conn.SetReadDeadline(time.Now().Add(deadline))
	n, err := io.ReadFull(c.conn, got)
	c.received += n
	got = got[:n]
	if err == nil && bytes.Equal(got, want) {
		return nil
	}
	var msg strings.Builder
	fmt.Fprintf(&msg, "client %s did not get what it expected%s\n", c.name, whole)
	at := firstDifference(want, got)
	fmt.Fprintf(&msg, "\texpected: %s\n", show(want, at, base))
	switch {
	case err == nil:
		fmt.Fprintf(&msg, "\tgot:      %s\n\tthe first difference is at byte %d", show(got, at, base), base+at)
	case n == 0 && errorsIsTimeout(err):
		fmt.Fprintf(&msg, "\tgot:      nothing within %v", deadline)
	case n == 0:
		fmt.Fprintf(&msg, "\tgot:      nothing: %s", readFailure(err))
	case at < n:
		fmt.Fprintf(&msg, "\tgot:      %s, then %s\n\tthe first difference is at byte %d",
			show(got, at, base), readFailure(err), base+at)
	default:
		fmt.Fprintf(&msg, "\tgot:      %s, then %s", show(got, at, base), readFailure(err))
	}
	c.mu.Lock()
	fmt.Fprintf(&msg, "\n\tclient %s has sent %d bytes so far", c.name, c.sent)
	if len(c.sentTail) > 0 {
		fmt.Fprintf(&msg, ", the text ending %s", quote(c.sentTail))
	}
	if c.werr != nil {
		fmt.Fprintf(&msg, "\n\t%v", c.werr)
	}
	c.mu.Unlock()
	if c.server != nil {
		msg.WriteString("\n" + c.server.lastWords())
	}
	return errors.New(msg.String())
}

// readFailure says why a read stopped, in words.
func readFailure(err error) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection"
	case errorsIsTimeout(err):
		return fmt.Sprintf("nothing more came within %v", deadline)
	case errors.Is(err, syscall.ECONNRESET):
		return "the connection was reset"
	}
	return err.Error()
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// show quotes b, or for long b the part of it around byte at, numbering
// bytes from base.
func show(b []byte, at, base int) string {
	if len(b) <= 72 {
		return quote(b)
	}
	from := max(0, min(at, len(b))-24)
	to := min(len(b), from+48)
	s := quote(b[from:to])
	if from > 0 {
		s = "…" + s
	}
	if to < len(b) {
		s += "…"
	}
	return fmt.Sprintf("%s (bytes %d..%d)", s, base+from, base+to)
}

// quote writes b as a Go string literal with every byte that is not
// printable ASCII escaped, so that bytes show as bytes, never as whatever
// characters they happen to encode.
func quote(b []byte) string {
	var s strings.Builder
	s.WriteByte('"')
	for _, c := range b {
		switch {
		case c == '\n':
			s.WriteString(`\n`)
		case c == '\r':
			s.WriteString(`\r`)
		case c == '\t':
			s.WriteString(`\t`)
		case c == '"' || c == '\\':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&s, `\x%02x`, c)
		default:
			s.WriteByte(c)
		}
	}
	s.WriteByte('"')
	return s.String()
}

func cmdEOF(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "eof", "")
	c := clientOf(ts, "eof", args, 1, "NAME")
	buf := make([]byte, 256)
	c.conn.SetReadDeadline(time.Now().Add(deadline))
	n, err := c.conn.Read(buf)
	switch {
	case n > 0:
		ts.Fatalf("eof: expected the server to close client %s's connection, but it sent %s", c.name, quote(buf[:n]))
	case errors.Is(err, io.EOF):
		return
	case errorsIsTimeout(err):
		ts.Fatalf("eof: the server did not close client %s's connection within %v", c.name, deadline)
	case errors.Is(err, syscall.ECONNRESET):
		ts.Fatalf("eof: client %s's connection was reset instead of closed (a server that closes a socket with unread input sends a reset)", c.name)
	default:
		ts.Fatalf("eof: client %s: %v", c.name, err)
	}
}

// An idleConn is one of the crowd opened by idle.
type idleConn struct {
	conn   net.Conn
	closed bool   // the server has closed it
	got    []byte // what the server sent before that, if anything
}

func cmdIdle(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "idle", "")
	if len(args) != 1 {
		ts.Fatalf("usage: idle N")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		ts.Fatalf("idle: %s: want a number of connections", args[0])
	}
	s := sessionOf(ts)
	addr := ts.Getenv("ADDR")
	for i := range n {
		conn, err := net.DialTimeout("tcp", addr, deadline)
		if err != nil {
			ts.Fatalf("idle: opened %d of %d connections, then: %v", i, n, err)
		}
		s.idle = append(s.idle, &idleConn{conn: conn})
	}
	ts.Logf("opened %d idle connections (%d in all)", n, len(s.idle))
}

func cmdRefused(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "refused", "")
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: refused LO [HI]")
	}
	lo, err1 := strconv.Atoi(args[0])
	hi, err2 := lo, error(nil)
	if len(args) == 2 {
		hi, err2 = strconv.Atoi(args[1])
	}
	idle := sessionOf(ts).idle
	if err1 != nil || err2 != nil || lo < 0 || hi < lo || lo > len(idle) {
		ts.Fatalf("refused: want 0 <= LO <= HI, LO at most the %d idle connections", len(idle))
	}
	// A server refuses the clients it has no room for as it accepts them, in
	// the order they connected: the newest. Wait for the newest lo to close;
	// by then the server has accepted all of them, so counting now is fair.
	for i := len(idle) - 1; i >= len(idle)-lo; i-- {
		if err := idle[i].waitClosed(); err != nil {
			ts.Fatalf("refused: expected the newest %d of the %d idle connections to be closed by the server, but #%d %v",
				lo, len(idle), i+1, err)
		}
	}
	closed, firstClosed := 0, -1
	for i, c := range idle {
		if !c.closed {
			c.poll()
		}
		switch {
		case c.closed && firstClosed < 0:
			firstClosed = i
		case !c.closed && firstClosed >= 0:
			ts.Fatalf("refused: idle connection #%d was closed while the newer #%d is still open; the server should refuse the newest clients and keep serving the first", firstClosed+1, i+1)
		}
		if c.closed {
			closed++
		}
	}
	ts.Logf("of %d idle connections, %d are open and %d were closed by the server%s", len(idle), len(idle)-closed, closed, summarizeReceived(idle))
	if closed < lo || closed > hi {
		ts.Fatalf("refused: the server closed %d of the %d idle connections, expected %s", closed, len(idle), between(lo, hi))
	}
	ts.Setenv("REFUSED", strconv.Itoa(closed))
}

func between(lo, hi int) string {
	if lo == hi {
		return strconv.Itoa(lo)
	}
	return fmt.Sprintf("between %d and %d", lo, hi)
}

// waitClosed reads until the server closes the connection or the deadline.
func (c *idleConn) waitClosed() error {
	buf := make([]byte, 256)
	c.conn.SetReadDeadline(time.Now().Add(deadline))
	for {
		n, err := c.conn.Read(buf)
		c.got = append(c.got, buf[:n]...)
		switch {
		case err == nil:
			continue
		case errorsIsTimeout(err):
			return fmt.Errorf("was still open after %v", deadline)
		}
		c.closed = true
		return nil
	}
}

// poll reads what the server has sent without waiting, and notes whether the
// connection is closed (read returns 0, or an error) or still open (EAGAIN).
func (c *idleConn) poll() {
	raw, err := c.conn.(syscall.Conn).SyscallConn()
	if err != nil {
		c.closed = true
		return
	}
	buf := make([]byte, 256)
	raw.Read(func(fd uintptr) bool {
		for {
			n, err := syscall.Read(int(fd), buf)
			switch {
			case n > 0:
				c.got = append(c.got, buf[:n]...)
			case err == syscall.EINTR:
			case err == syscall.EAGAIN:
				return true
			default:
				c.closed = true
				return true
			}
		}
	})
}

// summarizeReceived says what the idle connections were sent, if anything,
// grouped by content: in stages that greet, "welcome!\n" and "server full\n".
func summarizeReceived(idle []*idleConn) string {
	counts := map[string]int{}
	for _, c := range idle {
		if len(c.got) > 0 {
			counts[string(c.got)]++
		}
	}
	var parts []string
	for text, n := range counts {
		parts = append(parts, fmt.Sprintf("%d got %s", n, quote([]byte(text))))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}

func cmdSwarm(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "swarm", "")
	if len(args) != 2 {
		ts.Fatalf("usage: swarm CLIENTS MSGS")
	}
	nclients, err1 := strconv.Atoi(args[0])
	nmsgs, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil || nclients < 1 || nmsgs < 1 {
		ts.Fatalf("swarm: want two positive numbers, CLIENTS and MSGS")
	}
	s := sessionOf(ts)
	addr := ts.Getenv("ADDR")
	clients := make([]*client, nclients)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.conn.Close()
			}
		}
	}()
	for i := range clients {
		conn, err := net.DialTimeout("tcp", addr, deadline)
		if err != nil {
			ts.Fatalf("swarm: connected %d of %d clients, then: %v", i, nclients, err)
		}
		clients[i] = newClient(fmt.Sprintf("swarm-%d", i+1), conn, s.server)
	}
	if greets(s.stage) {
		for _, c := range clients {
			if err := c.expect([]byte("welcome!\n")); err != nil {
				ts.Fatalf("swarm: %v", err)
			}
		}
	}
	// In each round every client sends one message before any reads its
	// echo, so the server always has all of them to serve at once.
	for m := 1; m <= nmsgs; m++ {
		msgs := make([][]byte, len(clients))
		for i, c := range clients {
			msgs[i] = fmt.Appendf(nil, "%s says message %d of %d\n", c.name, m, nmsgs)
			c.conn.SetWriteDeadline(time.Now().Add(deadline))
			if _, err := c.conn.Write(msgs[i]); err != nil {
				ts.Fatalf("swarm: client %s, message %d: %v", c.name, m, err)
			}
			c.sent += len(msgs[i])
			c.sentTail = msgs[i]
		}
		for i, c := range clients {
			if err := c.expect(msgs[i]); err != nil {
				ts.Fatalf("swarm: round %d: %v", m, err)
			}
		}
	}
}

// unescape decodes TEXT written with Go's escapes: \n, \t, \\, \x00, \u00e9.
func unescape(ts *testscript.TestScript, text string) []byte {
	var b []byte
	for s := text; s != ""; {
		r, multibyte, rest, err := strconv.UnquoteChar(s, 0)
		if err != nil {
			ts.Fatalf("bad escape in %q: %v", text, err)
		}
		if multibyte {
			b = utf8.AppendRune(b, r)
		} else {
			b = append(b, byte(r))
		}
		s = rest
	}
	return b
}

// parseSize reads a byte count such as 4096, 64KiB or 1MiB.
func parseSize(ts *testscript.TestScript, s string) int {
	num, unit := s, 1
	if n, ok := strings.CutSuffix(s, "KiB"); ok {
		num, unit = n, 1<<10
	} else if n, ok := strings.CutSuffix(s, "MiB"); ok {
		num, unit = n, 1<<20
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		ts.Fatalf("%s: want a size in bytes, such as 4096, 64KiB or 1MiB", s)
	}
	return n * unit
}
