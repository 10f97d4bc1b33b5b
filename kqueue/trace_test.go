package kqueue

// The trace's format, pinned down: names for every filter, flag and errno
// the package can show, the shape of each kind of line, KQUEUE_TRACE's
// values, and that a program without the trace pays nothing for it.

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestTraceNamesEveryFilter(t *testing.T) {
	filters := append([]filterName{
		{EVFILT_READ, "EVFILT_READ"},
		{EVFILT_WRITE, "EVFILT_WRITE"},
		{EVFILT_TIMER, "EVFILT_TIMER"},
	}, moreFilters...)
	for _, tc := range append(filters, filterName{99, "filter=99"}) {
		if got := string(appendFilter(nil, tc.value)); got != tc.name {
			t.Errorf("filter %d: %q, want %q", tc.value, got, tc.name)
		}
	}
	if len(filterNames) != len(filters) {
		t.Errorf("%d filters have names; this test knows %d: add the new one here", len(filterNames), len(filters))
	}
}

type flagCase struct {
	flag uint16
	want string
}

func TestTraceNamesEveryFlag(t *testing.T) {
	flags := []flagCase{
		{EV_ADD, "EV_ADD"},
		{EV_DELETE, "EV_DELETE"},
		{EV_ENABLE, "EV_ENABLE"},
		{EV_DISABLE, "EV_DISABLE"},
		{EV_ONESHOT, "EV_ONESHOT"},
		{EV_CLEAR, "EV_CLEAR"},
		{EV_ERROR, "EV_ERROR"},
		{EV_EOF, "EV_EOF"},
	}
	flags = append(flags, receiptFlag...)
	var all uint16
	for _, tc := range flags {
		all |= tc.flag
		if got := string(appendBits(nil, uint64(tc.flag), flagNames)); got != tc.want {
			t.Errorf("flag %#x: %q, want %q", tc.flag, got, tc.want)
		}
	}
	if len(flagNames) != len(flags) {
		t.Errorf("%d flags have names; this test knows %d: add the new one here", len(flagNames), len(flags))
	}
	// Several at once come in the order of their values, and a bit
	// without a name shows as a number rather than vanishing.
	if got, want := string(appendBits(nil, uint64(EV_EOF|EV_ADD|EV_CLEAR), flagNames)), "EV_ADD|EV_CLEAR|EV_EOF"; got != want {
		t.Errorf("EV_ADD|EV_CLEAR|EV_EOF: %q, want %q", got, want)
	}
	unnamed := uint64(1)
	for uint16(unnamed)&all != 0 {
		unnamed <<= 1
	}
	got := string(appendBits(nil, unnamed|EV_ADD, flagNames))
	if want := "EV_ADD|0x" + strconv.FormatUint(unnamed, 16); got != want {
		t.Errorf("EV_ADD and an unnamed bit: %q, want %q", got, want)
	}
	if got := string(appendBits(nil, 0, flagNames)); got != "0x0" {
		t.Errorf("no flags: %q, want 0x0", got)
	}
	// All of them, those some systems only add among them, in the order
	// of their values too.
	value := map[string]uint16{}
	for _, tc := range flags {
		value[tc.want] = tc.flag
	}
	names := strings.Split(string(appendBits(nil, uint64(all), flagNames)), "|")
	for i := range names {
		if i > 0 && value[names[i-1]] >= value[names[i]] {
			t.Errorf("all flags: %s, not in the order of their values", strings.Join(names, "|"))
			break
		}
	}
}

// The fields of a line's head, in columns: the time right-aligned in ten
// characters, the queue, the verb padded to six, as the comment at the top
// of trace.go shows them.
func TestTraceHeadColumns(t *testing.T) {
	for _, tc := range []struct {
		kq   int
		verb string
		want string
	}{
		{4, "change", " kq=4  change "},
		{12, "wait", " kq=12 wait   "},
		{123, "event", " kq=123 event  "},
	} {
		got := string(traceHead(nil, tc.kq, tc.verb))
		if len(got) < 10 || !regexp.MustCompile(`^ *\d+\.\d{6}$`).MatchString(got[:10]) || got[10:] != tc.want {
			t.Errorf("kq=%d %s: %q, want the time in 10 characters, then %q", tc.kq, tc.verb, got, tc.want)
		}
	}
}

// What the files of some systems only add to the names: EVFILT_USER and
// the NOTE_* fflags (trace_user_test.go, trace_timer*_test.go add them).
var (
	moreFilters []filterName
	notes       = []noteCase{
		{EVFILT_READ, NOTE_LOWAT, "NOTE_LOWAT"},
		{EVFILT_WRITE, NOTE_LOWAT, "NOTE_LOWAT"},
	}
)

type noteCase struct {
	filter int16
	fflags uint32
	want   string
}

// Each filter's NOTE_* fflags, by name; and on a read or write event with
// EV_EOF, fflags is the socket's error instead.
func TestTraceNamesEveryNote(t *testing.T) {
	for _, tc := range notes {
		ev := Kevent_t{Filter: tc.filter, Fflags: tc.fflags}
		if got := string(appendFflags(nil, &ev)); got != tc.want {
			t.Errorf("filter %s fflags %#x: %q, want %q", appendFilter(nil, tc.filter), tc.fflags, got, tc.want)
		}
	}
	for _, n := range noteNames {
		for _, name := range n.names {
			tested := false
			for _, tc := range notes {
				tested = tested || tc.filter == n.filter && strings.Contains(tc.want, name.name)
			}
			if !tested {
				t.Errorf("%s of %s has a name but no case in this test", name.name, appendFilter(nil, n.filter))
			}
		}
	}
	ev := Kevent_t{Filter: EVFILT_READ, Flags: EV_EOF, Fflags: uint32(unix.ECONNRESET)}
	if got := string(appendFflags(nil, &ev)); got != "ECONNRESET" {
		t.Errorf("EV_EOF fflags: %q, want ECONNRESET", got)
	}
}

// The errnos a kevent can carry: EV_ERROR entries (kevent(2)'s ERRORS) and
// a socket's pending error in the fflags of EV_EOF.
func TestTraceNamesErrnos(t *testing.T) {
	for _, e := range []unix.Errno{
		unix.EACCES, unix.EBADF, unix.EEXIST, unix.EFAULT, unix.EINTR, unix.EINVAL,
		unix.ENOENT, unix.ENOMEM, unix.EPERM, unix.ESRCH, unix.ENOSYS, unix.EMFILE,
		unix.ECONNRESET, unix.ECONNREFUSED, unix.ECONNABORTED, unix.EPIPE,
		unix.ETIMEDOUT, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.ENETDOWN,
	} {
		want := unix.ErrnoName(e)
		if want == "" || !strings.HasPrefix(want, "E") {
			t.Fatalf("errno %d has no name on this system", e)
		}
		if got := string(appendErrno(nil, int64(e))); got != want {
			t.Errorf("errno %d: %q, want %q", e, got, want)
		}
		if got := string(appendError(nil, e)); got != want {
			t.Errorf("error %v: %q, want %q", e, got, want)
		}
	}
	for _, e := range []int64{0, -1, 100000} {
		if got, want := string(appendErrno(nil, e)), strconv.FormatInt(e, 10); got != want {
			t.Errorf("errno %d: %q, want %q", e, got, want)
		}
	}
}

func TestTraceKeventFields(t *testing.T) {
	for _, tc := range []struct {
		ev    Kevent_t
		event bool
		want  string
	}{
		{Kevent_t{Ident: 5, Filter: EVFILT_READ, Flags: EV_ADD, Udata: 0x10001}, false,
			"ident=5 EVFILT_READ EV_ADD udata=0x10001"},
		{Kevent_t{Ident: 7, Filter: EVFILT_READ, Data: 6, Udata: 0x20003}, true,
			"ident=7 EVFILT_READ data=6 udata=0x20003"},
		{Kevent_t{Ident: 7, Filter: EVFILT_READ, Flags: EV_EOF, Fflags: uint32(unix.ECONNRESET), Udata: 0x20003}, true,
			"ident=7 EVFILT_READ EV_EOF fflags=ECONNRESET data=0 udata=0x20003"},
		{Kevent_t{Ident: 8, Filter: EVFILT_WRITE, Flags: EV_EOF, Fflags: uint32(unix.EPIPE), Data: 4096}, true,
			"ident=8 EVFILT_WRITE EV_EOF fflags=EPIPE data=4096 udata=0x0"},
		{Kevent_t{Ident: 9, Filter: EVFILT_READ, Flags: EV_ERROR, Data: int64(unix.EBADF)}, true,
			"ident=9 EVFILT_READ EV_ERROR data=EBADF udata=0x0"},
		{Kevent_t{Ident: 9, Filter: EVFILT_READ, Flags: EV_ADD | EV_ERROR}, true,
			"ident=9 EVFILT_READ EV_ADD|EV_ERROR data=0 udata=0x0"},
		{Kevent_t{Ident: 1, Filter: EVFILT_TIMER, Flags: EV_ADD, Data: 500, Udata: 0xff}, false,
			"ident=1 EVFILT_TIMER EV_ADD data=500 udata=0xff"},
		{Kevent_t{Ident: 1, Filter: EVFILT_TIMER, Flags: EV_CLEAR, Data: 3, Udata: 0xff}, true,
			"ident=1 EVFILT_TIMER EV_CLEAR data=3 udata=0xff"},
		{Kevent_t{Ident: 4, Filter: EVFILT_WRITE, Flags: EV_DISABLE}, false,
			"ident=4 EVFILT_WRITE EV_DISABLE udata=0x0"},
		{Kevent_t{Ident: 4, Filter: EVFILT_READ, Flags: EV_ADD, Fflags: 1 << 30}, false,
			"ident=4 EVFILT_READ EV_ADD fflags=0x40000000 udata=0x0"},
	} {
		if got := string(appendKevent(nil, &tc.ev, tc.event)); got != tc.want {
			t.Errorf("%+v:\n got %s\nwant %s", tc.ev, got, tc.want)
		}
	}
}

func TestTraceTimeout(t *testing.T) {
	for _, tc := range []struct {
		ts   *unix.Timespec
		want string
	}{
		{nil, "timeout=none"},
		{&unix.Timespec{}, "timeout=0"},
		{&unix.Timespec{Sec: 1, Nsec: 500e6}, "timeout=1.5s"},
		{&unix.Timespec{Nsec: 250e3}, "timeout=0.00025s"},
		{&unix.Timespec{Sec: 1, Nsec: 999997014}, "timeout=1.999997014s"},
		{&unix.Timespec{Sec: 2}, "timeout=2s"},
		{&unix.Timespec{Nsec: 1}, "timeout=0.000000001s"},
		{&unix.Timespec{Sec: -1}, "timeout={sec:-1 nsec:0}"},
		{&unix.Timespec{Nsec: 1e9}, "timeout={sec:0 nsec:1000000000}"},
	} {
		if got := string(appendTimeout(nil, tc.ts)); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.ts, got, tc.want)
		}
	}
}

func TestTraceVariable(t *testing.T) {
	for _, tc := range []struct {
		value string
		level int
		path  string
	}{
		{"", 0, ""},
		{"0", 0, ""},
		{"1", 1, ""},
		{"2", 2, ""},
		{"trace.txt", 1, "trace.txt"},
		{"/tmp/k.trace", 1, "/tmp/k.trace"},
		{"1:trace.txt", 1, "trace.txt"},
		{"2:trace.txt", 2, "trace.txt"},
		{"2:", 1, "2:"},
		{"3:x", 1, "3:x"},
		{"./2", 1, "./2"},
	} {
		level, path := parseTrace(tc.value)
		if level != tc.level || path != tc.path {
			t.Errorf("KQUEUE_TRACE=%q: level %d, path %q; want %d, %q", tc.value, level, path, tc.level, tc.path)
		}
	}
}

// withTrace runs f with the trace on at level into a file, and returns the
// lines written.
func withTrace(t *testing.T, level int, f func()) []string {
	path := filepath.Join(t.TempDir(), "trace")
	saved := trace.level
	defer func() {
		trace.mu.Lock()
		if trace.out != os.Stderr {
			trace.out.Close()
		}
		trace.level, trace.out = saved, os.Stderr
		trace.mu.Unlock()
	}()
	setTrace(string(rune('0'+level)) + ":" + path)
	f()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// One registration, one wait that returns an event, and a failed change:
// each line in its place, with the time, the queue and the verb in front,
// and every call ended by one wait or return line.
func TestTraceLines(t *testing.T) {
	kq := openQueue(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	events := make([]Kevent_t, 4)
	lines := withTrace(t, 1, func() {
		var change [1]Kevent_t
		EV_SET(&change[0], fds[1], EVFILT_READ, EV_ADD, 0, 0, 0x2a)
		if _, err := Kevent(kq, change[:], nil, nil); err != nil {
			t.Fatal(err)
		}
		unix.Write(fds[0], []byte("hello\n"))
		if n, err := Kevent(kq, nil, events, &unix.Timespec{Sec: 5}); n != 1 || err != nil {
			t.Fatalf("Kevent = %d, %v", n, err)
		}
		EV_SET(&change[0], 1<<20, EVFILT_READ, EV_ADD, 0, 0, 0x7)
		if n, err := Kevent(kq, change[:], events, nil); n != 1 || err != nil {
			t.Fatalf("Kevent with a bad change = %d, %v", n, err)
		}
		Kevent(-1, nil, nil, nil)
	})
	kqs := ` *\d+\.\d{6} kq=` + strconv.Itoa(kq) + ` +`
	wants := []string{
		kqs + `change ident=` + strconv.Itoa(fds[1]) + ` EVFILT_READ EV_ADD udata=0x2a$`,
		kqs + `return n=0$`,
		kqs + `wait   timeout=5s slept=\d+\.\d{6}s events=1$`,
		kqs + `event  ident=` + strconv.Itoa(fds[1]) + ` EVFILT_READ data=6 udata=0x2a$`,
		kqs + `change ident=1048576 EVFILT_READ EV_ADD udata=0x7$`,
		kqs + `wait   timeout=none slept=\d+\.\d{6}s events=1$`,
		kqs + `event  ident=1048576 EVFILT_READ EV_ERROR data=EBADF udata=0x7$`,
		` *\d+\.\d{6} kq=-1 +return n=-1 error=EBADF$`,
	}
	if len(lines) != len(wants) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(wants), strings.Join(lines, "\n"))
	}
	for i, want := range wants {
		if !regexp.MustCompile("^" + want).MatchString(lines[i]) {
			t.Errorf("line %d:\n%s\ndoes not match\n%s", i+1, lines[i], want)
		}
	}
}

// With KQUEUE_TRACE unset, a steady loop's Kevent call allocates nothing,
// traced or not: the trace's whole cost is the check of trace.level. Not
// parallel: testing.AllocsPerRun counts the whole process's allocations.
func TestTraceOffDoesNotAllocate(t *testing.T) {
	saved := trace.level
	trace.level = 0
	defer func() { trace.level = saved }()
	kq := readyQueue(t)
	events := make([]Kevent_t, 4)
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := Kevent(kq, nil, events, nil); n != 1 || err != nil {
			t.Fatalf("Kevent = %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per call with the trace off, want 0", allocs)
	}
}

// openQueue makes a queue that is closed when the test ends, as newQueue
// does for the tests of package kqueue_test.
func openQueue(tb testing.TB) int {
	tb.Helper()
	kq, err := Kqueue()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { Close(kq) })
	return kq
}

// readyQueue makes a queue with one socket registered for reading that has
// a byte waiting, so that every Kevent call on it returns one event.
func readyQueue(tb testing.TB) int {
	tb.Helper()
	kq := openQueue(tb)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	var change [1]Kevent_t
	EV_SET(&change[0], fds[1], EVFILT_READ, EV_ADD, 0, 0, 0)
	if _, err := Kevent(kq, change[:], nil, nil); err != nil {
		tb.Fatal(err)
	}
	if _, err := unix.Write(fds[0], []byte("x")); err != nil {
		tb.Fatal(err)
	}
	return kq
}

// What the trace costs when it is off: the same Kevent call, one ready
// event, made in alternating blocks through Kevent (which checks
// trace.level) and straight through kevent (which does not). The ratio of
// the two times is the check's cost; on a shared machine it is the
// fairer figure, since both halves see the same load. Run with
//
//	go test -run '^$' -bench TraceOff -count 10 ./kqueue/
func BenchmarkTraceOff(b *testing.B) {
	saved := trace.level
	trace.level = 0
	defer func() { trace.level = saved }()
	kq := readyQueue(b)
	events := make([]Kevent_t, 4)
	poll := &unix.Timespec{}
	const block = 1000
	timed := func(call func(int, []Kevent_t, []Kevent_t, *unix.Timespec) (int, error)) time.Duration {
		start := time.Now()
		for range block {
			if n, err := call(kq, nil, events, poll); n != 1 || err != nil {
				b.Fatalf("= %d, %v", n, err)
			}
		}
		return time.Since(start)
	}
	var public, direct time.Duration
	calls := 0
	for b.Loop() {
		public += timed(Kevent)
		direct += timed(kevent)
		calls += block
	}
	b.ReportMetric(float64(public.Nanoseconds())/float64(calls), "Kevent-ns/call")
	b.ReportMetric(float64(direct.Nanoseconds())/float64(calls), "kevent-ns/call")
	b.ReportMetric(float64(public)/float64(direct), "ratio")
	b.ReportMetric(0, "ns/op")
}
