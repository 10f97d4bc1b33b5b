package kqueue

// macOS's timer unit flags (timer_darwin.go): no NOTE_MSECONDS, since
// milliseconds are the default, and NOTE_ABSOLUTE for an absolute time.
func init() {
	noteNames = append(noteNames, noteName{EVFILT_TIMER, []bitName{
		bit(NOTE_SECONDS, "NOTE_SECONDS"),
		bit(NOTE_USECONDS, "NOTE_USECONDS"),
		bit(NOTE_NSECONDS, "NOTE_NSECONDS"),
		bit(NOTE_ABSOLUTE, "NOTE_ABSOLUTE"),
	}})
}
