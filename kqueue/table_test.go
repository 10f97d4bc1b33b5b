package kqueue

import "testing"

// The table of queues: a number finds what was published under it, and
// nothing else, at either end of the table and past it.
func TestTableLookup(t *testing.T) {
	var tb table[int]
	if tb.lookup(0) != nil {
		t.Fatal("an empty table finds 0")
	}
	zero, three := 10, 13
	tb.publish(0, &zero)
	tb.publish(3, &three)
	for kq, want := range map[int]*int{-1: nil, 0: &zero, 1: nil, 2: nil, 3: &three, 4: nil, 100: nil} {
		if got := tb.lookup(kq); got != want {
			t.Errorf("lookup(%d) = %v, want %v", kq, got, want)
		}
	}
	if old := tb.publish(3, nil); old != &three || tb.lookup(3) != nil {
		t.Errorf("publish(3, nil) = %v, then lookup(3) = %v; want %v, nil", old, tb.lookup(3), &three)
	}
}
