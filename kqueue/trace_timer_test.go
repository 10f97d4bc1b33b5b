//go:build linux || freebsd

package kqueue

func init() {
	notes = append(notes,
		noteCase{EVFILT_TIMER, NOTE_SECONDS, "NOTE_SECONDS"},
		noteCase{EVFILT_TIMER, NOTE_MSECONDS, "NOTE_MSECONDS"},
		noteCase{EVFILT_TIMER, NOTE_USECONDS, "NOTE_USECONDS"},
		noteCase{EVFILT_TIMER, NOTE_NSECONDS, "NOTE_NSECONDS"},
		noteCase{EVFILT_TIMER, NOTE_ABSTIME | NOTE_SECONDS, "NOTE_SECONDS|NOTE_ABSTIME"},
	)
}
