//go:build linux || darwin || dragonfly || freebsd

package kqueue

func init() {
	moreFilters = append(moreFilters, filterName{EVFILT_USER, "EVFILT_USER"})
	notes = append(notes,
		noteCase{EVFILT_USER, NOTE_TRIGGER, "NOTE_TRIGGER"},
		noteCase{EVFILT_USER, NOTE_FFAND | 0x5, "NOTE_FFAND|0x5"},
		noteCase{EVFILT_USER, NOTE_FFOR | 0x5, "NOTE_FFOR|0x5"},
		noteCase{EVFILT_USER, NOTE_TRIGGER | NOTE_FFCOPY | 0xff, "NOTE_TRIGGER|NOTE_FFCOPY|0xff"},
		noteCase{EVFILT_USER, NOTE_FFNOP | 0x3, "0x3"},
	)
}
