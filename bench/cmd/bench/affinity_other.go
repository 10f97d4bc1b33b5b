//go:build !linux

package main

// canPin is false where there is no sched_setaffinity: one-core runs then
// share the server's core with the load generator, idle-load runs are not
// pinned at all, and the report says so.
var canPin = false

func pinAway(int) (restore func()) { return func() {} }
func pinOnly(int) (restore func()) { return func() {} }
