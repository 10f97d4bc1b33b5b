package main

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/kqueue-workbook/workbook/bench/internal/peer"
)

func TestParseStraceSummary(t *testing.T) {
	const out = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ------------------
 32.88    0.001418          83        17         1 futex
 28.40    0.001225          64        19           nanosleep
  3.96    0.000171          28      1006         3 accept4
------ ----------- ----------- --------- --------- ------------------
100.00    0.004313          44      1042         4 total
`
	got, err := parseStraceSummary(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []SyscallCount{{"futex", 17}, {"nanosleep", 19}, {"accept4", 1006}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := parseStraceSummary("strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted\n"); err == nil {
		t.Error("no table: want an error")
	}
}

// fakeServer accepts clients on a loopback port and hands each to serve.
func fakeServer(t *testing.T, serve func(n int, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(n, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func echo(c net.Conn) { io.Copy(c, c) }

func TestProbeWelcome(t *testing.T) {
	t.Parallel()
	plain := fakeServer(t, func(_ int, c net.Conn) { echo(c) })
	greets := fakeServer(t, func(_ int, c net.Conn) { io.WriteString(c, welcomeLine); echo(c) })
	full := fakeServer(t, func(_ int, c net.Conn) { io.WriteString(c, "server full\n") })
	if w, err := probeWelcome(plain); err != nil || w {
		t.Errorf("plain echo server: got welcome=%v, %v; want false, nil", w, err)
	}
	if w, err := probeWelcome(greets); err != nil || !w {
		t.Errorf("greeting server: got welcome=%v, %v; want true, nil", w, err)
	}
	if _, err := probeWelcome(full); err == nil {
		t.Error("full server: want an error")
	}
	if c, err := dial(full, true); err == nil {
		c.Close()
		t.Error("dial to a full server: want an error")
	} else if !strings.Contains(err.Error(), "server full") {
		t.Errorf("dial to a full server: error %q does not quote the server", err)
	}
}

// TestOpenManyStopsAtLimit: a server that drops every client after the
// fifth shows up as five clients and an error, as select's limit does.
func TestOpenManyStopsAtLimit(t *testing.T) {
	t.Parallel()
	const limit = 5
	addr := fakeServer(t, func(n int, c net.Conn) {
		if n < limit {
			echo(c)
		}
	})
	conns, err := openMany(addr, false, limit+20)
	defer closeAll(conns)
	if err == nil {
		t.Fatal("want an error past the limit")
	}
	if len(conns) != limit {
		t.Fatalf("held %d clients, want %d", len(conns), limit)
	}
}

func TestClosedLoop(t *testing.T) {
	t.Parallel()
	srv, err := peer.StartNet("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conns, err := openMany(srv.Addr(), false, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(conns)
	res := closedLoop(conns, 4096, window{}, 50)
	if res.firstErr != nil || res.done != 150 {
		t.Fatalf("got %d round trips, error %v; want 150, nil", res.done, res.firstErr)
	}

	// A server that changes a byte of a message must be caught, not
	// counted (it leaves dial's one-byte probe alone).
	bad := fakeServer(t, func(_ int, c net.Conn) {
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if n > 1 {
				buf[1]++
			}
			c.Write(buf[:n])
		}
	})
	conns, err = openMany(bad, false, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(conns)
	res = closedLoop(conns, 8, window{}, 5)
	if res.errors != 2 || res.done != 0 {
		t.Fatalf("corrupting server: %d failed clients and %d round trips counted; want 2 and 0", res.errors, res.done)
	}
}
