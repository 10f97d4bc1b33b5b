package kqueue

import (
	"sync"
	"sync/atomic"
)

// table maps a kq descriptor to what the package keeps for it, indexed by
// the descriptor number. Kqueue and Close replace the table with an
// updated copy and never change a published one, so Kevent looks its
// queue up without taking a lock.
type table[T any] struct {
	mu      sync.Mutex // serialises publish
	entries atomic.Pointer[[]*T]
}

func (t *table[T]) lookup(kq int) *T {
	if p := t.entries.Load(); p != nil && kq >= 0 && kq < len(*p) {
		return (*p)[kq]
	}
	return nil
}

// publish sets the entry for kq and returns the one it replaced.
func (t *table[T]) publish(kq int, v *T) (old *T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var entries []*T
	if p := t.entries.Load(); p != nil {
		entries = *p
	}
	next := make([]*T, max(len(entries), kq+1))
	copy(next, entries)
	old, next[kq] = next[kq], v
	t.entries.Store(&next)
	return old
}
