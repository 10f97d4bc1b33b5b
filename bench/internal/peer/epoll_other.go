//go:build !linux

package peer

import (
	"errors"
	"runtime"
)

// StartEpoll fails everywhere but Linux: epoll is a Linux interface. The load
// generator reports the failure and measures the other servers.
func StartEpoll(string) (Server, error) {
	return nil, errors.New("raw epoll exists only on Linux, not on " + runtime.GOOS)
}
