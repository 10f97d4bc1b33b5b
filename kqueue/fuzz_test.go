package kqueue_test

// A fuzz target: random sequences of changes on two real socket pairs,
// checked after every step against a small model of kevent(2)'s rules.
// Its seed corpus (below and in testdata/fuzz/FuzzChanges) runs with every
// `go test`; to search for new failures, run
//
//	go test -run '^$' -fuzz FuzzChanges ./kqueue/

import (
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// One byte is one step: bit 0 picks the socket, bit 1 the filter, the rest
// (mod 9) the action.
const (
	stepAdd = iota
	stepAddOneshot
	stepAddDisabled
	stepDelete
	stepEnable
	stepDisable
	stepSend    // the peer sends a byte
	stepDrain   // the socket reads all it has
	stepReplace // dup2 a new socket over the descriptor: closed without EV_DELETE, number reused
	steps
)

// model is what kevent(2) says the queue holds.
type model struct {
	knotes  map[[2]int]modelKnote // by (socket, filter index)
	waiting [2]int                // bytes waiting on each socket
}

type modelKnote struct {
	udata            uint64
	enabled, oneshot bool
}

var fuzzFilters = [2]int16{kqueue.EVFILT_READ, kqueue.EVFILT_WRITE}

func FuzzChanges(f *testing.F) {
	f.Add([]byte{0, 24, 28, 20, 16, 12, 8, 4})
	f.Add([]byte{1, 3, 25, 4, 29, 6, 2, 14, 18})
	f.Add([]byte{24, 0, 2, 32, 24, 28, 24})
	f.Add([]byte{8, 24, 16, 24, 20, 24, 12, 28, 12})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 64 {
			script = script[:64]
		}
		kq := newQueue(t)
		var socks, peers [2]int
		socks[0], peers[0] = socketPair(t)
		socks[1], peers[1] = socketPair(t)
		m := model{knotes: map[[2]int]modelKnote{}}
		for i, b := range script {
			s, f, step := int(b&1), int(b>>1&1), int(b>>2)%steps
			key := [2]int{s, f}
			kn, exists := m.knotes[key]
			udata := uint64(i + 1)
			var flags uint16
			switch step {
			case stepAdd:
				flags = kqueue.EV_ADD
			case stepAddOneshot:
				flags = kqueue.EV_ADD | kqueue.EV_ONESHOT
				if exists {
					// Whether re-adding can make a knote one-shot
					// differs between systems; stay with EV_ADD.
					flags = kqueue.EV_ADD
				}
			case stepAddDisabled:
				flags = kqueue.EV_ADD | kqueue.EV_DISABLE
			case stepDelete:
				flags = kqueue.EV_DELETE
			case stepEnable:
				flags = kqueue.EV_ENABLE
			case stepDisable:
				flags = kqueue.EV_DISABLE
			case stepSend:
				send(t, peers[s], "x")
				m.waiting[s]++
			case stepDrain:
				if m.waiting[s] > 0 {
					recv(t, socks[s], m.waiting[s])
					m.waiting[s] = 0
				}
			case stepReplace:
				a, b := socketPair(t)
				if err := unix.Dup2(a, socks[s]); err != nil {
					t.Fatal(err)
				}
				closeNow(t, a)
				peers[s] = b
				m.waiting[s] = 0
				delete(m.knotes, [2]int{s, 0})
				delete(m.knotes, [2]int{s, 1})
			}
			if flags != 0 {
				err := changeErrUdata(kq, socks[s], fuzzFilters[f], flags, udata)
				switch {
				case flags&kqueue.EV_ADD != 0:
					if !exists {
						kn = modelKnote{enabled: true, oneshot: flags&kqueue.EV_ONESHOT != 0}
					}
					kn.udata = udata
					if flags&kqueue.EV_DISABLE != 0 {
						kn.enabled = false
					}
					m.knotes[key] = kn
				case !exists:
					if !isErrno(err, unix.ENOENT) {
						t.Fatalf("step %d: flags %#x on a missing filter: %v, want ENOENT", i, flags, err)
					}
					err = nil
				case flags == kqueue.EV_DELETE:
					delete(m.knotes, key)
				default:
					// Any change but a delete replaces udata
					// (kqueue_register() in kern_event.c).
					kn.enabled = flags == kqueue.EV_ENABLE
					kn.udata = udata
					m.knotes[key] = kn
				}
				if err != nil {
					t.Fatalf("step %d: flags %#x: %v", i, flags, err)
				}
			}
			m.check(t, i, kq, socks)
		}
	})
}

// check polls the queue twice, first with room for one event, then with
// room for all, and compares what it reports with the model: the first
// call returns one of the enabled knotes whose condition holds; the second
// returns each of them exactly once (a level-triggered knote reported by
// the first call is still ready), with its udata and data. One-shot knotes
// leave the model when they fire.
func (m *model) check(t *testing.T, step, kq int, socks [2]int) {
	t.Helper()
	for _, room := range []int{1, 8} {
		want := map[[2]int]bool{}
		for key, kn := range m.knotes {
			if kn.enabled && (key[1] == 1 || m.waiting[key[0]] > 0) {
				want[key] = true
			}
		}
		evs := poll(t, kq, room)
		got := map[[2]int]bool{}
		for _, ev := range evs {
			key := m.keyOf(ev, socks)
			kn := m.knotes[key]
			switch {
			case !want[key] || got[key]:
				t.Fatalf("step %d: unexpected %s in %s", step, describe(ev), describeAll(evs))
			case ev.Udata != kn.udata:
				t.Fatalf("step %d: %s, want udata %d", step, describe(ev), kn.udata)
			case key[1] == 0 && ev.Data != int64(m.waiting[key[0]]):
				t.Fatalf("step %d: %s, want data %d", step, describe(ev), m.waiting[key[0]])
			case key[1] == 1 && ev.Data <= 0:
				t.Fatalf("step %d: %s, want free space in data", step, describe(ev))
			}
			got[key] = true
			if kn.oneshot {
				delete(m.knotes, key)
			}
		}
		if len(got) != min(len(want), room) {
			t.Fatalf("step %d: room for %d: got %s, want %d events", step, room, describeAll(evs), min(len(want), room))
		}
	}
}

// keyOf names the model's knote for an event.
func (m *model) keyOf(ev kqueue.Kevent_t, socks [2]int) [2]int {
	for s := range socks {
		for f := range fuzzFilters {
			if ev.Ident == uint64(socks[s]) && ev.Filter == fuzzFilters[f] {
				return [2]int{s, f}
			}
		}
	}
	return [2]int{-1, -1}
}
