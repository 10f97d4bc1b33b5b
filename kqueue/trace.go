package kqueue

// KQUEUE_TRACE: a line for every change and every event that goes through
// Kevent, in kevent(2)'s own names, so that a learner can watch the loop
// talk to the kernel. The variable is read once, when the program starts:
//
//	KQUEUE_TRACE=1          every Kevent call, on stderr
//	KQUEUE_TRACE=2          the same, and under it the system calls the
//	                        Linux emulation made for it (elsewhere, as 1)
//	KQUEUE_TRACE=trace.txt  level 1 into that file (created or truncated)
//	KQUEUE_TRACE=2:trace.txt  level 2 into that file
//
// Unset, empty or 0: no trace, and Kevent pays one load and one branch for
// it. Lines look like this (seconds since the program started, the queue,
// what happened):
//
//	  0.000214 kq=4  change ident=3 EVFILT_READ EV_ADD udata=0x0
//	  0.000215 kq=4  return n=0
//	  1.520193 kq=4  wait   timeout=none slept=1.519962s events=1
//	  1.520201 kq=4  event  ident=3 EVFILT_READ data=1 udata=0x0
//
// A call writes its changes before it starts, and when it returns one line
// that ends it: wait (it had an event list, so it could wait) and its
// events, or return (it had none) and what it returned. So every call has
// exactly one wait or return line, and counting them counts the calls. Each
// group is one write(2), so that the lines of calls on different queues do
// not tear each other. kqueue/README.md shows a level 2 trace.

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

var trace struct {
	level int // 0 off, 1 Kevent calls, 2 also the emulation's system calls
	start time.Time

	mu  sync.Mutex // serialises writers of out and buf
	out *os.File
	buf []byte
}

func init() {
	setTrace(os.Getenv("KQUEUE_TRACE"))
}

// setTrace turns tracing on as the value of KQUEUE_TRACE says.
func setTrace(value string) {
	level, path := parseTrace(value)
	trace.level, trace.out, trace.start = level, os.Stderr, time.Now()
	if level == 0 || path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		// The trace was asked for: better on stderr than nowhere.
		fmt.Fprintf(os.Stderr, "kqueue: KQUEUE_TRACE=%s: %v; tracing to stderr instead\n", value, err)
		return
	}
	trace.out = f
}

// parseTrace splits KQUEUE_TRACE into a level and a file ("" for stderr).
func parseTrace(value string) (level int, path string) {
	switch value {
	case "", "0":
		return 0, ""
	case "1", "2":
		return int(value[0] - '0'), ""
	}
	if l, p, ok := strings.Cut(value, ":"); ok && (l == "1" || l == "2") && p != "" {
		return int(l[0] - '0'), p
	}
	return 1, value
}

// tracedKevent is Kevent with the trace on.
func tracedKevent(kq int, changes, events []Kevent_t, timeout *unix.Timespec) (int, error) {
	if len(changes) > 0 {
		b := traceBegin()
		for i := range changes {
			b = appendKevent(traceHead(b, kq, "change"), &changes[i], false)
		}
		traceEnd(b)
	}
	start := time.Now()
	n, err := kevent(kq, changes, events, timeout)
	slept := time.Since(start)
	b := traceBegin()
	if len(events) > 0 {
		b = appendTimeout(traceHead(b, kq, "wait"), timeout)
		b = append(b, " slept="...)
		b = appendSeconds(b, slept)
	} else {
		b = append(traceHead(b, kq, "return"), "n="...)
		b = strconv.AppendInt(b, int64(n), 10)
	}
	if err != nil {
		b = append(b, " error="...)
		b = appendError(b, err)
	} else if len(events) > 0 {
		b = append(b, " events="...)
		b = strconv.AppendInt(b, int64(n), 10)
	}
	for i := range max(n, 0) {
		b = appendKevent(traceHead(b, kq, "event"), &events[i], true)
	}
	traceEnd(b)
	return n, err
}

// traceBegin locks the trace and returns its empty buffer; traceEnd writes
// what was appended to it and unlocks.
func traceBegin() []byte {
	trace.mu.Lock()
	return trace.buf[:0]
}

func traceEnd(b []byte) {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	trace.out.Write(b)
	trace.buf = b
	trace.mu.Unlock()
}

// traceHead starts a line: the time since the start, the queue, the verb.
func traceHead(b []byte, kq int, verb string) []byte {
	if len(b) > 0 {
		b = append(b, '\n')
	}
	b = appendStamp(b)
	kqField := len(b)
	b = append(b, " kq="...)
	b = strconv.AppendInt(b, int64(kq), 10)
	for len(b)-kqField < 6 {
		b = append(b, ' ')
	}
	b = append(b, ' ')
	b = append(b, verb...)
	for range 6 - len(verb) {
		b = append(b, ' ')
	}
	return append(b, ' ')
}

func appendStamp(b []byte) []byte {
	s := strconv.FormatFloat(time.Since(trace.start).Seconds(), 'f', 6, 64)
	for range 10 - len(s) {
		b = append(b, ' ')
	}
	return append(b, s...)
}

func appendSeconds(b []byte, d time.Duration) []byte {
	return append(strconv.AppendFloat(b, d.Seconds(), 'f', 6, 64), 's')
}

// appendTimeout writes kevent's timeout: none (wait for ever), 0 (poll), or
// seconds, exactly: the nanoseconds in decimal, without trailing zeros, not
// through a float64 (which prints 1 s and 999997014 ns as
// 1.9999970139999999).
func appendTimeout(b []byte, ts *unix.Timespec) []byte {
	b = append(b, "timeout="...)
	switch {
	case ts == nil:
		return append(b, "none"...)
	case ts.Sec == 0 && ts.Nsec == 0:
		return append(b, '0')
	case ts.Sec < 0 || ts.Nsec < 0 || ts.Nsec >= 1e9:
		return fmt.Appendf(b, "{sec:%d nsec:%d}", ts.Sec, ts.Nsec)
	}
	b = strconv.AppendInt(b, int64(ts.Sec), 10)
	if ts.Nsec != 0 {
		b = append(b, strings.TrimRight(fmt.Sprintf(".%09d", ts.Nsec), "0")...)
	}
	return append(b, 's')
}

// appendKevent writes a kevent's fields, by name where kevent(2) has names.
// Zero fflags are left out, and so is a change's zero data; an event always
// shows its data, since "EV_EOF data=0" says that nothing is left to read.
func appendKevent(b []byte, ev *Kevent_t, event bool) []byte {
	b = append(b, "ident="...)
	b = strconv.AppendUint(b, ev.Ident, 10)
	b = append(b, ' ')
	b = appendFilter(b, ev.Filter)
	if ev.Flags != 0 {
		b = append(b, ' ')
		b = appendBits(b, uint64(ev.Flags), flagNames)
	}
	if ev.Fflags != 0 {
		b = append(b, " fflags="...)
		b = appendFflags(b, ev)
	}
	switch {
	case ev.Flags&EV_ERROR != 0:
		// The errno of the change that failed; 0 for an EV_RECEIPT
		// entry of one that did not.
		b = append(b, " data="...)
		if ev.Data == 0 {
			b = append(b, '0')
		} else {
			b = appendErrno(b, ev.Data)
		}
	case event || ev.Data != 0:
		b = append(b, " data="...)
		b = strconv.AppendInt(b, ev.Data, 10)
	}
	b = append(b, " udata=0x"...)
	return strconv.AppendUint(b, ev.Udata, 16)
}

func appendFilter(b []byte, filter int16) []byte {
	for _, f := range filterNames {
		if f.value == filter {
			return append(b, f.name...)
		}
	}
	return append(append(b, "filter="...), strconv.Itoa(int(filter))...)
}

// appendFflags names the filter-specific flags: on a read or write event
// with EV_EOF they are the socket's pending error.
func appendFflags(b []byte, ev *Kevent_t) []byte {
	if ev.Flags&EV_EOF != 0 && (ev.Filter == EVFILT_READ || ev.Filter == EVFILT_WRITE) {
		return appendErrno(b, int64(ev.Fflags))
	}
	for _, f := range noteNames {
		if f.filter == ev.Filter {
			return appendBits(b, uint64(ev.Fflags), f.names)
		}
	}
	return strconv.AppendUint(append(b, "0x"...), uint64(ev.Fflags), 16)
}

// appendBits writes the names of the bits set in v, joined by |, and any
// bits without a name in hexadecimal. A name stands for the value bits
// under mask, so that a field of several bits (EVFILT_USER's NOTE_FFAND,
// NOTE_FFOR, NOTE_FFCOPY) can be named too.
func appendBits(b []byte, v uint64, names []bitName) []byte {
	start := len(b)
	for _, n := range names {
		if n.bits == 0 || v&n.mask != n.bits {
			continue
		}
		if len(b) > start {
			b = append(b, '|')
		}
		b = append(b, n.name...)
		v &^= n.mask
	}
	if v != 0 || len(b) == start {
		if len(b) > start {
			b = append(b, '|')
		}
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, v, 16)
	}
	return b
}

func appendErrno(b []byte, e int64) []byte {
	if e > 0 && e < 1<<16 {
		if name := unix.ErrnoName(unix.Errno(e)); name != "" {
			return append(b, name...)
		}
	}
	return strconv.AppendInt(b, e, 10)
}

func appendError(b []byte, err error) []byte {
	if e, ok := err.(unix.Errno); ok {
		return appendErrno(b, int64(e))
	}
	return append(b, strconv.Quote(err.Error())...)
}

// A bitName names the value bits of a flags word under mask: usually one
// flag, mask == bits.
type bitName struct {
	mask, bits uint64
	name       string
}

func bit(v uint64, name string) bitName { return bitName{v, v, name} }

type filterName struct {
	value int16
	name  string
}

// filterNames lists the filters every system has; trace_user.go adds
// EVFILT_USER where the package has it.
var filterNames = []filterName{
	{EVFILT_READ, "EVFILT_READ"},
	{EVFILT_WRITE, "EVFILT_WRITE"},
	{EVFILT_TIMER, "EVFILT_TIMER"},
}

// flagNames lists kevent's flags in the order of their values: these, and
// those only some systems have, added by their own files (EV_RECEIPT, which
// NetBSD lacks, by trace_receipt.go).
var flagNames []bitName

func init() {
	for _, n := range []bitName{
		bit(EV_ADD, "EV_ADD"),
		bit(EV_DELETE, "EV_DELETE"),
		bit(EV_ENABLE, "EV_ENABLE"),
		bit(EV_DISABLE, "EV_DISABLE"),
		bit(EV_ONESHOT, "EV_ONESHOT"),
		bit(EV_CLEAR, "EV_CLEAR"),
		bit(EV_ERROR, "EV_ERROR"),
		bit(EV_EOF, "EV_EOF"),
	} {
		addFlagName(n)
	}
}

// noteNames names the fflags of each filter that has some (the NOTE_*
// flags): NOTE_LOWAT everywhere, the others where the package defines them
// (trace_timer*.go, trace_user.go).
var noteNames = []noteName{
	{EVFILT_READ, []bitName{bit(NOTE_LOWAT, "NOTE_LOWAT")}},
	{EVFILT_WRITE, []bitName{bit(NOTE_LOWAT, "NOTE_LOWAT")}},
}

type noteName struct {
	filter int16
	names  []bitName
}

func addFlagName(n bitName) {
	flagNames = append(flagNames, n)
	slices.SortFunc(flagNames, func(a, b bitName) int { return int(a.mask) - int(b.mask) })
}
