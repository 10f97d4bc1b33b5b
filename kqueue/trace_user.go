//go:build linux || darwin || dragonfly || freebsd

package kqueue

// EVFILT_USER, where the package has it (user_bsd.go, and the emulation on
// Linux). NOTE_FFNOP is the absence of the other three operations; the
// user's own flags (NOTE_FFLAGSMASK) show as a number after them.
func init() {
	filterNames = append(filterNames, filterName{EVFILT_USER, "EVFILT_USER"})
	noteNames = append(noteNames, noteName{EVFILT_USER, []bitName{
		bit(NOTE_TRIGGER, "NOTE_TRIGGER"),
		{NOTE_FFCTRLMASK, NOTE_FFAND, "NOTE_FFAND"},
		{NOTE_FFCTRLMASK, NOTE_FFOR, "NOTE_FFOR"},
		{NOTE_FFCTRLMASK, NOTE_FFCOPY, "NOTE_FFCOPY"},
	}})
}
