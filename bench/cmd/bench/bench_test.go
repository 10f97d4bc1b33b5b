package main

import (
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

func TestGeneratorClosedLoop(t *testing.T) {
	t.Parallel()
	srv, err := peer.StartNet("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g, err := connectClients(srv.Addr(), false, 3)
	defer g.close()
	if err != nil {
		t.Fatal(err)
	}
	res := g.closedLoop(4096, window{}, 50, nil)
	if res.firstErr != nil || res.done != 150 {
		t.Fatalf("got %d round trips, error %v; want 150, nil", res.done, res.firstErr)
	}
	// A timed run counts only what falls in the window, and the meter
	// is read at both ends of it.
	meters := 0
	res = g.closedLoop(64, newWindow(20*time.Millisecond, 100*time.Millisecond), 0, func() cpuSample {
		meters++
		return sampleCPU(os.Getpid())
	})
	if res.firstErr != nil || res.done == 0 || meters != 2 || res.seconds < 0.09 {
		t.Fatalf("timed run: %d round trips, error %v, %d meter readings, %.3fs; want some, nil, 2, about 0.1s", res.done, res.firstErr, meters, res.seconds)
	}

	// A server that changes a byte of a message must be caught, not
	// counted (it leaves the one-byte probe alone).
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
	g2, err := connectClients(bad, false, 2)
	defer g2.close()
	if err != nil {
		t.Fatal(err)
	}
	res = g2.closedLoop(8, window{}, 5, nil)
	if res.errors != 2 || res.done != 0 {
		t.Fatalf("corrupting server: %d failed clients and %d round trips counted; want 2 and 0", res.errors, res.done)
	}
}

// TestGeneratorConnect: greetings are read, a refusal is quoted, and a
// port nobody listens on fails through SO_ERROR (or at once).
func TestGeneratorConnect(t *testing.T) {
	t.Parallel()
	greets := fakeServer(t, func(_ int, c net.Conn) { io.WriteString(c, welcomeLine); echo(c) })
	g, err := connectClients(greets, true, 40)
	if err != nil || g.live() != 40 {
		t.Fatalf("greeting server: %d clients, %v; want 40, nil", g.live(), err)
	}
	if res := g.closedLoop(64, window{}, 3, nil); res.done != 120 || res.firstErr != nil {
		t.Errorf("after the greeting: %d round trips, %v; want 120, nil", res.done, res.firstErr)
	}
	g.close()
	full := fakeServer(t, func(_ int, c net.Conn) { io.WriteString(c, "server full\n") })
	g, err = connectClients(full, true, 3)
	g.close()
	if err == nil || !strings.Contains(err.Error(), "server full") {
		t.Errorf("full server: error %v; want one quoting the server", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	g, err = connectClients(closed, false, 1)
	g.close()
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("closed port: error %v; want connection refused", err)
	}
}

// TestGeneratorOpenLoop: the rate is kept, and a server that stalls shows
// in the latency even though the generator sends only after each echo.
func TestGeneratorOpenLoop(t *testing.T) {
	t.Parallel()
	srv, err := peer.StartNet("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g, err := connectClients(srv.Addr(), false, 4)
	defer g.close()
	if err != nil {
		t.Fatal(err)
	}
	res := g.openLoop(64, newWindow(20*time.Millisecond, 300*time.Millisecond), 200, nil)
	if got := float64(res.done) / res.seconds; res.firstErr != nil || got < 400 || got > 1000 {
		t.Fatalf("4 clients at 200/s: %.0f/s, %v; want about 800, nil", got, res.firstErr)
	}

	// Every 20th message stalls 30 ms: at 500/s per client a closed
	// loop would see one slow round trip, the open loop sees the
	// messages that were due meanwhile wait too.
	var mu sync.Mutex
	n := 0
	slow := fakeServer(t, func(_ int, c net.Conn) {
		buf := make([]byte, 64)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			n++
			stall := n%20 == 0
			mu.Unlock()
			if stall {
				time.Sleep(30 * time.Millisecond)
			}
			c.Write(buf[:k])
		}
	})
	g2, err := connectClients(slow, false, 1)
	defer g2.close()
	if err != nil {
		t.Fatal(err)
	}
	res = g2.openLoop(64, newWindow(0, 500*time.Millisecond), 500, nil)
	if res.firstErr != nil {
		t.Fatal(res.firstErr)
	}
	// Of each 20 messages (40 ms of schedule), the stall delays the
	// ~15 due during it: far more than 1 in 20 take over 5 ms.
	if p80 := res.hist.ValueAtQuantile(80); p80 < int64(5*time.Millisecond) {
		t.Errorf("stalling server: p80 %v; want over 5ms (coordinated omission not accounted)", time.Duration(p80))
	}
}

func TestPerfIntervalsAndBursts(t *testing.T) {
	const out = `# started on Wed Dec  2 06:40:00 2026

     0.200,0,,syscalls:sys_enter_write,2323829,100.00,,
     0.200,3,,syscalls:sys_enter_futex,2323829,100.00,,
     0.400,120,,syscalls:sys_enter_write,2323829,100.00,,
     0.400,<not counted>,,syscalls:sys_enter_futex,0,0.00,,
     0.600,50,,syscalls:sys_enter_write,2323829,100.00,,
     0.600,7,,syscalls:sys_enter_epoll_pwait,2323829,100.00,,
     0.800,0,,syscalls:sys_enter_write,2323829,100.00,,
     1.000,40,,syscalls:sys_enter_write,2323829,100.00,,
     1.200,2,,syscalls:sys_enter_write,2323829,100.00,,
`
	iv, err := parsePerfIntervals(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(iv) != 6 || iv[0]["futex"] != 3 || iv[1]["write"] != 120 {
		t.Fatalf("intervals: got %v", iv)
	}
	bs := bursts(iv)
	if len(bs) != 2 || bs[0]["write"] != 170 || bs[0]["epoll_pwait"] != 7 || bs[1]["write"] != 40 {
		t.Errorf("bursts: got %v; want write 170 + epoll_pwait 7, then write 40 (the 2 after it is quiet)", bs)
	}
	if _, err := parsePerfIntervals("# started on ...\n"); err == nil {
		t.Error("no counts: want an error")
	}
}

func TestSpreadAndBimodal(t *testing.T) {
	s := spreadOf([]float64{3, 1, 2, 10})
	if s.Median != 2.5 || s.Min != 1 || s.Max != 10 || s.N != 4 {
		t.Errorf("spreadOf: got %+v", s)
	}
	if got := s.format("%.1f"); got != "2.5 [1.0–10.0]" {
		t.Errorf("format: got %q", got)
	}
	if b := bimodal([]float64{16.4, 21.1, 16.6, 20.9, 16.5}); !strings.Contains(b, "3 windows near 16.5") || !strings.Contains(b, "2 near 21.0") {
		t.Errorf("two clear groups: got %q", b)
	}
	if b := bimodal([]float64{20.1, 20.4, 20.2, 20.9, 20.5}); b != "" {
		t.Errorf("one group: got %q, want none", b)
	}
	if b := bimodal([]float64{20, 20, 20, 20, 20}); b != "" {
		t.Errorf("identical windows: bimodal says %q", b)
	}
}

func TestWhichLimit(t *testing.T) {
	for _, tc := range []struct {
		c       cellCPU
		oneCore bool
		want    string
	}{
		{cellCPU{Seconds: 1, ServerCPU: 0.95, GenCPU: 0.5, IdleCPU: 0.5, HasServer: true, HasStat: true}, true, "server"},
		{cellCPU{Seconds: 1, ServerCPU: 0.6, GenCPU: 0.97, IdleCPU: 0.4, HasServer: true, HasStat: true}, true, "generator"},
		{cellCPU{Seconds: 1, ServerCPU: 0.6, GenCPU: 0.6, IdleCPU: 0.1, HasServer: true, HasStat: true}, false, "machine busy"},
		{cellCPU{Seconds: 1, ServerCPU: 0.3, GenCPU: 0.3, IdleCPU: 1.4, HasServer: true, HasStat: true}, false, "round trip"},
	} {
		if got := whichLimit(tc.c, 2, tc.oneCore, false); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestParsePSTime(t *testing.T) {
	for in, want := range map[string]float64{"0:01.50": 1.5, "01:02:03": 3723, "1-00:00:01": 86401} {
		if got, err := parsePSTime(in); err != nil || got != want {
			t.Errorf("%q: got %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestPerfGroups(t *testing.T) {
	// The last full run's servers: 64 threads in all, 360 tracepoints, and
	// a hard limit of 20,000 open files. One session would need 26,344.
	threads := []int{6, 7, 6, 6, 6, 8, 8, 9, 8}
	if n := perfFiles(threads, 360); n != 26344 {
		t.Fatalf("perfFiles = %d, want 26344", n)
	}
	groups, tooBig := perfGroups(threads, 360, 20000)
	want := [][]int{{0, 1, 2, 3, 4, 5, 6}, {7, 8}}
	if len(tooBig) != 0 || len(groups) != len(want) {
		t.Fatalf("got groups %v, too big %v; want %v", groups, tooBig, want)
	}
	for i := range want {
		if !slices.Equal(groups[i], want[i]) {
			t.Errorf("group %d: got %v, want %v", i, groups[i], want[i])
		}
		var ts []int
		for _, j := range groups[i] {
			ts = append(ts, threads[j])
		}
		if n := perfFiles(ts, 360); n > 20000 {
			t.Errorf("group %d needs %d open files, over the limit", i, n)
		}
	}
	// Everything fits: one session.
	if groups, _ := perfGroups(threads, 10, 20000); len(groups) != 1 || len(groups[0]) != len(threads) {
		t.Errorf("10 tracepoints: got %v, want one group of all", groups)
	}
	// A server too big on its own is left out, the others still grouped.
	groups, tooBig = perfGroups([]int{2, 60, 2}, 360, 20000)
	if !slices.Equal(tooBig, []int{1}) || len(groups) != 1 || !slices.Equal(groups[0], []int{0, 2}) {
		t.Errorf("got groups %v, too big %v; want [[0 2]], [1]", groups, tooBig)
	}
}

// TestReportQuickAndOtherWork: a quick report says in its header that its
// figures are a smoke test's, and no report prints other work below zero
// without saying why (the raw readings stay in results.json).
func TestReportQuickAndOtherWork(t *testing.T) {
	cell := func(server string, other spread) ThroughputResult {
		one := spread{Median: 50, Min: 50, Max: 50, N: 1}
		return ThroughputResult{Server: server, Cores: "one core", Clients: 50, MsgBytes: 64, Rounds: 1,
			RPS: one, CPUPerEcho: one, ServerCPUPct: one, GenCPUPct: one, IdlePct: one, OtherPct: other, P99us: 999}
	}
	report := func(mode string, cells ...ThroughputResult) string {
		var b strings.Builder
		printTable(&b, &Results{Mode: mode, Plan: plans[mode], Throughput: cells})
		return b.String()
	}

	quick := report("quick", cell("02-kqueue-basic", spread{Median: -20, Min: -20, Max: -20, N: 1}),
		cell("net", spread{Median: 12, Min: 12, Max: 12, N: 1}))
	for _, want := range []string{
		"quick mode, a smoke test",
		"are not to be quoted",
		"came out below zero\n   in 1 of 2 cells (lowest -20), shown as 0",
		"6.7% of one CPU in a window of 150ms",
	} {
		if !strings.Contains(quick, want) {
			t.Errorf("the quick report does not say %q:\n%s", want, quick)
		}
	}
	for _, line := range strings.Split(quick, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "02-kqueue-basic" && !slices.Contains(f, "0") {
			t.Errorf("02-kqueue-basic's other work is not shown as 0: %q", line)
		}
	}
	if strings.Contains(quick, "-20 ") {
		t.Errorf("a reading below zero is printed in the table:\n%s", quick)
	}

	full := report("full", cell("net", spread{Median: 3, Min: 1, Max: 8, N: 5}))
	if strings.Contains(full, "smoke test") || strings.Contains(full, "below zero") {
		t.Errorf("a full report with no reading below zero says it is a smoke test or has one:\n%s", full)
	}
}
