//go:build linux || freebsd

package kqueue

// The timer's unit flags, as FreeBSD has them (timer_freebsd.go, and the
// emulation on Linux). Without one, data is in milliseconds.
func init() {
	noteNames = append(noteNames, noteName{EVFILT_TIMER, []bitName{
		bit(NOTE_SECONDS, "NOTE_SECONDS"),
		bit(NOTE_MSECONDS, "NOTE_MSECONDS"),
		bit(NOTE_USECONDS, "NOTE_USECONDS"),
		bit(NOTE_NSECONDS, "NOTE_NSECONDS"),
		bit(NOTE_ABSTIME, "NOTE_ABSTIME"),
	}})
}
