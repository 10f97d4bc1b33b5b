//go:build !linux

package kqueue_test

import "testing"

// asleep is asleep_linux_test.go's, where a thread's system call can be
// seen. Elsewhere the test goes on at once, and the goroutine is usually
// asleep by then.
func asleep(testing.TB, int, int) {}
