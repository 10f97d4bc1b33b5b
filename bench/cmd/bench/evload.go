package main

import (
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// The load generator of the throughput and open-loop experiments: one
// thread, non-blocking sockets, every client in one event loop (epoll on
// Linux, kqueue on the BSDs: poll_*.go). A goroutine per client costs a
// wake-up through Go's scheduler per message on top of the system calls;
// here a message costs a write, a read and a share of one wait.

// clientState is where one client is in its life.
type clientState uint8

const (
	connecting clientState = iota // connect(2) in progress
	greeting                      // reading the server's "welcome!\n"
	probing                       // one byte sent, waiting for it to come back
	waiting                       // connected, nothing in flight
	inFlight                      // a message sent (maybe partly), its echo not all read
	failed
)

// A client is one connection of the generator.
type client struct {
	fd      int
	id      int
	state   clientState
	msg     []byte // this client's message (distinct per client)
	buf     []byte // the echo read so far: buf[:got]
	got     int
	sent    int       // bytes of msg written
	start   time.Time // when the message in flight was sent (closed loop) or due (open loop)
	due     time.Time // open loop: when the next message is due
	writeOn bool      // write interest registered
	index   int       // position in the open loop's heap, -1 when not there
}

// A generator holds a set of connected clients of one server.
type generator struct {
	addr    string
	welcome bool
	p       *poller
	clients []*client
	byFd    map[int]*client
	size    int // current message size
}

// loadResult is what one timed run measured.
type loadResult struct {
	hist     *hdrhistogram.Histogram // round-trip (closed) or response time from due (open), ns
	lag      *hdrhistogram.Histogram // open loop: how late each send left after its due time, ns
	done     int64                   // round trips counted in the window
	errors   int64                   // clients that failed
	firstErr error
	seconds  float64 // measured time
	cpu      cellCPU // the meters over the window
}

func (r *loadResult) fail(c *client, err error) {
	r.errors++
	if r.firstErr == nil {
		r.firstErr = fmt.Errorf("client %d: %w", c.id, err)
	}
}

// newHistogram records times in nanoseconds, from 1 ns to 100 s, to two
// significant figures (each value within 1%).
func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(100*time.Second), 2)
}

// connectClients opens n clients with non-blocking connects, at most 64
// under way at once so the listen backlog never overflows. A client counts
// as connected once the server has greeted it (if it greets) and echoed
// one byte: then the server is really watching it. On the first failure
// it stops and returns the generator with the clients it has, and the error.
func connectClients(addr string, welcome bool, n int) (*generator, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	g := &generator{addr: addr, welcome: welcome, p: p, byFd: map[int]*client{}}
	sa, family, err := sockaddrOf(addr)
	if err != nil {
		return g, err
	}
	const parallel = 64
	started, pending := 0, 0
	deadline := time.Now().Add(ioTimeout)
	var firstErr error
	drop := func(c *client, err error) {
		if firstErr == nil {
			firstErr = err
		}
		g.drop(c)
		pending--
	}
	for (started < n || pending > 0) && firstErr == nil {
		for started < n && pending < parallel {
			if _, err := g.dial(sa, family, started); err != nil {
				firstErr = err
				break
			}
			started++
			pending++
		}
		if firstErr != nil || pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			firstErr = fmt.Errorf("%d clients still connecting after %v", pending, ioTimeout)
			break
		}
		err := p.wait(deadline, func(fd int, r, w, fail bool) {
			c := g.byFd[fd]
			if c == nil || c.state == waiting || c.state == failed {
				return
			}
			if err := g.handshake(c, r, w, fail); err != nil {
				drop(c, err)
			} else if c.state == waiting {
				pending--
				deadline = time.Now().Add(ioTimeout)
			}
		})
		if err != nil {
			firstErr = err
		}
	}
	// Keep only the clients that made it.
	var ok []*client
	for _, c := range g.clients {
		if c.state == waiting {
			ok = append(ok, c)
		} else if c.state != failed {
			g.drop(c)
		}
	}
	g.clients = ok
	return g, firstErr
}

// dial starts one non-blocking connect. On a loopback address it may
// complete at once; usually it returns EINPROGRESS, and the socket becomes
// writable when the handshake is done, one way or the other: SO_ERROR then
// says which (handshake).
func (g *generator) dial(sa unix.Sockaddr, family, id int) (*client, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0) // macOS has no SOCK_NONBLOCK
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c := &client{fd: fd, id: id, state: connecting, buf: make([]byte, 64), index: -1}
	err = unix.Connect(fd, sa)
	switch {
	case err == nil:
		g.byFd[fd], g.clients = c, append(g.clients, c)
		if err := g.p.add(fd, false); err != nil {
			return nil, err
		}
		return c, g.connected(c)
	case err == unix.EINPROGRESS:
		g.byFd[fd], g.clients = c, append(g.clients, c)
		c.writeOn = true
		return c, g.p.add(fd, true)
	}
	unix.Close(fd)
	return nil, fmt.Errorf("connect: %w", err)
}

// handshake moves a new client on: connect done, greeting read, probe
// byte echoed.
func (g *generator) handshake(c *client, r, w, fail bool) error {
	if c.state == connecting {
		if !w && !fail {
			return nil
		}
		// Writable means the connect has finished, not that it worked:
		// the outcome is the socket's pending error.
		soerr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return fmt.Errorf("getsockopt SO_ERROR: %w", err)
		}
		if soerr != 0 {
			return fmt.Errorf("connect: %w", unix.Errno(soerr))
		}
		c.writeOn = false
		if err := g.p.setWrite(c.fd, false); err != nil {
			return err
		}
		return g.connected(c)
	}
	if !r && !fail {
		return nil
	}
	// Nothing but the greeting comes before the probe: reading past its
	// length only matters when the server said something else.
	want := 1
	if c.state == greeting {
		want = len(c.buf)
	}
	n, err := unix.Read(c.fd, c.buf[c.got:want])
	if err == unix.EAGAIN {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("server closed the connection after %q", c.buf[:c.got])
	}
	c.got += n
	// A refusal ("server full\n") is shorter than the greeting: look at
	// what has come so far, not only at the whole line.
	if c.state == greeting {
		if !bytes.HasPrefix([]byte(welcomeLine), c.buf[:c.got]) {
			// Take what else has come, to quote the whole line.
			if n, err := unix.Read(c.fd, c.buf[c.got:]); err == nil && n > 0 {
				c.got += n
			}
			return fmt.Errorf("server said %q instead of %q", c.buf[:c.got], welcomeLine)
		}
		if c.got < len(welcomeLine) {
			return nil
		}
	} else if c.got < want {
		return nil
	}
	c.got = 0
	if c.state == greeting {
		return g.probe(c)
	}
	if c.buf[0] != '.' {
		return fmt.Errorf("probe byte came back as %q", c.buf[:1])
	}
	c.state = waiting
	return nil
}

func (g *generator) connected(c *client) error {
	if g.welcome {
		c.state = greeting
		return nil
	}
	return g.probe(c)
}

func (g *generator) probe(c *client) error {
	c.state = probing
	if n, err := unix.Write(c.fd, []byte{'.'}); n != 1 {
		return fmt.Errorf("write: %v", err)
	}
	return nil
}

func (g *generator) drop(c *client) {
	if c.state != failed {
		unix.Close(c.fd)
		delete(g.byFd, c.fd)
		c.state = failed
	}
}

// close closes every client and the poller.
func (g *generator) close() {
	if g == nil {
		return
	}
	for _, c := range g.clients {
		g.drop(c)
	}
	g.clients = nil
	if g.p != nil {
		g.p.close()
	}
}

// live is the number of clients that have not failed.
func (g *generator) live() int {
	n := 0
	for _, c := range g.clients {
		if c.state != failed {
			n++
		}
	}
	return n
}

// setSize gives every client its message of size bytes.
func (g *generator) setSize(size int) {
	g.size = size
	for _, c := range g.clients {
		c.msg = message(size, c.id)
		if len(c.buf) < size {
			c.buf = make([]byte, size)
		}
	}
}

// message is the payload of one client: distinct per client, so an echo that
// reached the wrong client would not compare equal.
func message(size, client int) []byte {
	m := make([]byte, size)
	for i := range m {
		m[i] = byte('a' + (i+client)%26)
	}
	return m
}

// A loadRun is one timed run of the loop: closed (rate 0: each client sends its
// next message when the echo of the last is in) or open (each client sends
// rate messages a second on a fixed schedule, whatever the server does).
type loadRun struct {
	g        *generator
	from, to time.Time // the measuring window; warm-up before from
	rate     float64   // open loop: messages per second per client
	count    int       // closed loop with a count: round trips per client, no window
	meter    func() cpuSample
	res      loadResult
	first    cpuSample
	metered  bool
	due      dueHeap
	interval time.Duration
	busy     int // clients with a message in flight
}

// closedLoop runs every client as a closed loop in the window w (after
// warm-up), or, when perClient > 0, for that many round trips each.
func (g *generator) closedLoop(size int, w window, perClient int, meter func() cpuSample) loadResult {
	r := &loadRun{g: g, from: w.from, to: w.to, count: perClient, meter: meter}
	return r.loop(size)
}

// openLoop sends rate messages a second per client, each client on a fixed
// schedule staggered across clients, and measures each response from the
// time its message was due, not the time it left: if the server (or the
// generator) stalls, the messages that should have gone meanwhile are
// counted as late by the stall, as wrk2 does (coordinated omission).
func (g *generator) openLoop(size int, w window, rate float64, meter func() cpuSample) loadResult {
	r := &loadRun{g: g, from: w.from, to: w.to, rate: rate, meter: meter}
	return r.loop(size)
}

func (r *loadRun) loop(size int) loadResult {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	g := r.g
	if size != g.size {
		g.setSize(size)
	}
	r.res = loadResult{hist: newHistogram(), lag: newHistogram(), seconds: r.to.Sub(r.from).Seconds()}
	now := time.Now()
	if r.count > 0 {
		r.from, r.to = now, now.Add(time.Hour)
	}
	counts := make(map[*client]int)
	if r.rate > 0 {
		r.interval = time.Duration(float64(time.Second) / r.rate)
		n := g.live()
		k := 0
		for _, c := range g.clients {
			if c.state == waiting {
				c.due = now.Add(r.interval * time.Duration(k) / time.Duration(n))
				heap.Push(&r.due, c)
				k++
			}
		}
	} else {
		for _, c := range g.clients {
			if c.state == waiting {
				r.send(c, now, now)
			}
		}
	}
	hardStop := r.to.Add(ioTimeout)
	for {
		now = time.Now()
		if !r.metered && r.meter != nil && !now.Before(r.from) && r.count == 0 {
			r.first, r.metered = r.meter(), true
		}
		// Open loop: send what is due.
		for r.due.Len() > 0 && !r.due[0].due.After(now) {
			c := heap.Pop(&r.due).(*client)
			if c.due.After(r.to) {
				continue // the schedule ends with the window
			}
			r.send(c, c.due, now)
		}
		if r.busy == 0 && (r.due.Len() == 0 || r.count > 0 || now.After(r.to)) {
			break
		}
		if now.After(hardStop) {
			for _, c := range g.clients {
				if c.state == inFlight {
					r.res.fail(c, fmt.Errorf("no complete echo within %v (%d of %d bytes)", ioTimeout, c.got, len(c.msg)))
					g.drop(c)
				}
			}
			break
		}
		deadline := hardStop
		if r.due.Len() > 0 && r.due[0].due.Before(deadline) {
			deadline = r.due[0].due
		}
		if !r.metered && r.meter != nil && r.from.Before(deadline) {
			deadline = r.from
		}
		if err := g.p.wait(deadline, func(fd int, rd, wr, fail bool) {
			c := g.byFd[fd]
			if c == nil || c.state != inFlight {
				return
			}
			if err := r.ready(c, rd, wr, fail, counts); err != nil {
				r.res.fail(c, err)
				r.busy--
				g.drop(c)
			}
		}); err != nil {
			r.res.fail(&client{id: -1}, err)
			break
		}
	}
	if r.meter != nil && r.count == 0 {
		if !r.metered {
			r.first = r.meter()
		}
		r.res.cpu = cpuBetween(r.first, r.meter())
		r.res.seconds = r.res.cpu.Seconds
	}
	if r.count > 0 {
		r.res.seconds = time.Since(r.from).Seconds()
	}
	return r.res
}

// send starts c's next message; due is the time it counts from.
func (r *loadRun) send(c *client, due, now time.Time) {
	c.state, c.sent, c.got, c.start = inFlight, 0, 0, due
	r.busy++
	if r.rate > 0 && now.After(r.from) && !now.After(r.to) {
		r.res.lag.RecordValue(max(now.Sub(due).Nanoseconds(), 1))
	}
	if err := r.write(c); err != nil {
		r.res.fail(c, err)
		r.busy--
		r.g.drop(c)
	}
}

// write writes as much of c's message as the socket takes, and asks for a
// write event only when it did not take it all.
func (r *loadRun) write(c *client) error {
	for c.sent < len(c.msg) {
		n, err := unix.Write(c.fd, c.msg[c.sent:])
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		c.sent += n
	}
	if want := c.sent < len(c.msg); want != c.writeOn {
		c.writeOn = want
		return r.g.p.setWrite(c.fd, want)
	}
	return nil
}

// ready handles an event on a client with a message in flight.
func (r *loadRun) ready(c *client, rd, wr, fail bool, counts map[*client]int) error {
	if wr && c.sent < len(c.msg) {
		if err := r.write(c); err != nil {
			return err
		}
	}
	if !rd && !fail {
		return nil
	}
	n, err := unix.Read(c.fd, c.buf[c.got:len(c.msg)])
	if err == unix.EAGAIN {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if n == 0 {
		return errors.New("the server closed the connection")
	}
	c.got += n
	if c.got < len(c.msg) {
		return nil
	}
	if !bytes.Equal(c.buf[:c.got], c.msg) {
		return errors.New("the echo differs from the message sent")
	}
	now := time.Now()
	r.busy--
	c.state = waiting
	if !c.start.Before(r.from) && !now.After(r.to) {
		r.res.hist.RecordValue(max(now.Sub(c.start).Nanoseconds(), 1))
		r.res.done++
	}
	switch {
	case r.count > 0:
		if counts[c]++; counts[c] < r.count {
			r.send(c, now, now)
		}
	case r.rate > 0:
		c.due = c.due.Add(r.interval)
		heap.Push(&r.due, c) // sent in the main loop, on time or late
	case now.Before(r.to):
		r.send(c, now, now)
	}
	return nil
}

// dueHeap orders waiting open-loop clients by when their next message is due.
type dueHeap []*client

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *dueHeap) Push(x any)        { c := x.(*client); c.index = len(*h); *h = append(*h, c) }
func (h *dueHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	c.index = -1
	return c
}

// sockaddrOf turns host:port into a socket address and its family.
func sockaddrOf(addr string) (unix.Sockaddr, int, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: ta.Port}
		copy(sa.Addr[:], ip4)
		return sa, unix.AF_INET, nil
	}
	sa := &unix.SockaddrInet6{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To16())
	return sa, unix.AF_INET6, nil
}
