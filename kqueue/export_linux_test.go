package kqueue

// For the tests of package kqueue_test that must know where the Linux
// emulation stands, and that nothing a caller can see would tell them.

// StaleSeen is the registration the package has forgotten that the queue's
// last wait reported (see afterWait), or 0: it turns non-zero when a wait
// sees a leftover, and back to 0 when a second sighting in a row has
// rebuilt the epoll instance.
func StaleSeen(kq int) uint64 {
	q := lookup(kq)
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stale
}
