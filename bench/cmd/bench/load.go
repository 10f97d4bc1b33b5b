package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

const welcomeLine = "welcome!\n"

// ioTimeout bounds every wait on a server: a server that stops answering
// costs us this long, never forever.
const ioTimeout = 5 * time.Second

// probeWelcome finds out whether a server greets new clients. The greeting,
// if any, is sent before anything is echoed, so after sending a probe line
// the stream reads either "probe\n" or "welcome!\nprobe\n", whatever the
// timing.
func probeWelcome(addr string) (bool, error) {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return false, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, "probe\n"); err != nil {
		return false, err
	}
	var got []byte
	buf := make([]byte, 64)
	for !bytes.HasSuffix(got, []byte("probe\n")) && len(got) < 64 {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return false, fmt.Errorf("read %q, then %v", got, err)
		}
	}
	switch string(got) {
	case "probe\n":
		return false, nil
	case welcomeLine + "probe\n":
		return true, nil
	}
	return false, fmt.Errorf("expected an echo of %q, read %q", "probe\n", got)
}

// dial opens one client and makes sure the server has taken it on: it reads
// the welcome line (for servers that send one) and gets one byte echoed.
// Only then does the client count as connected, so N idle clients really
// are N clients the server is watching.
func dial(addr string, welcome bool) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	if welcome {
		line, err := readLine(c)
		if err != nil || line != welcomeLine {
			c.Close()
			return nil, fmt.Errorf("server said %q instead of %q (%v)", line, welcomeLine, err)
		}
	}
	b := []byte{'.'}
	if _, err := c.Write(b); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := io.ReadFull(c, b); err != nil || b[0] != '.' {
		c.Close()
		return nil, fmt.Errorf("no echo from the server (%v)", err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// readLine reads one short line a byte at a time, so nothing after it is
// taken from the socket.
func readLine(c net.Conn) (string, error) {
	var line []byte
	b := make([]byte, 1)
	for len(line) < 80 {
		if _, err := c.Read(b); err != nil {
			return string(line), err
		}
		line = append(line, b[0])
		if b[0] == '\n' {
			break
		}
	}
	return string(line), nil
}

// openMany opens n clients, a few at a time so the listen backlog never
// overflows. On the first failure it stops and returns the clients it has,
// with the error: that is how a server's connection limit shows up.
func openMany(addr string, welcome bool, n int) ([]net.Conn, error) {
	const parallel = 32
	var (
		mu       sync.Mutex
		conns    []net.Conn
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	for range min(parallel, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				c, err := dial(addr, welcome)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				conns = append(conns, c)
				failed := firstErr != nil
				mu.Unlock()
				if failed {
					return
				}
			}
		}()
	}
	wg.Wait()
	return conns, firstErr
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// window is the measuring interval of a timed run: round trips that start
// before from (warm-up) or end after to are not counted.
type window struct{ from, to time.Time }

func newWindow(warmup, length time.Duration) window {
	from := time.Now().Add(warmup)
	return window{from, from.Add(length)}
}

// pingPong is the idle-load experiment's active client: one connection,
// one 64-byte message at a time, each round trip timed. It runs until the
// window closes, counting only the round trips inside it.
func pingPong(c net.Conn, w window) (*hdrhistogram.Histogram, error) {
	h := newHistogram()
	msg, buf := message(64, 0), make([]byte, 64)
	c.SetDeadline(w.to.Add(ioTimeout))
	defer c.SetDeadline(time.Time{})
	for {
		t0 := time.Now()
		if t0.After(w.to) {
			return h, nil
		}
		if _, err := c.Write(msg); err != nil {
			return h, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return h, err
		}
		if !bytes.Equal(msg, buf) {
			return h, errors.New("the echo differs from the message sent")
		}
		if t1 := time.Now(); t0.After(w.from) && !t1.After(w.to) {
			h.RecordValue(t1.Sub(t0).Nanoseconds())
		}
	}
}

// micros converts a histogram value (ns) to microseconds, one decimal.
func micros(ns int64) float64 {
	return float64(ns/100) / 10
}
