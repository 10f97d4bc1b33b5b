package kqueue

// The trace's names for what the package defines on Linux only so far:
// EVFILT_USER, EV_DISPATCH and the NOTE_* fflags. Where another system's
// file defines them too, this file's build constraint should widen to it.

func init() {
	filterNames = append(filterNames, filterName{EVFILT_USER, "EVFILT_USER"})
	addFlagName(bit(EV_DISPATCH, "EV_DISPATCH"))
	lowat := []bitName{bit(NOTE_LOWAT, "NOTE_LOWAT")}
	noteNames = append(noteNames,
		noteName{EVFILT_READ, lowat},
		noteName{EVFILT_WRITE, lowat},
		noteName{EVFILT_TIMER, []bitName{
			bit(NOTE_SECONDS, "NOTE_SECONDS"),
			bit(NOTE_MSECONDS, "NOTE_MSECONDS"),
			bit(NOTE_USECONDS, "NOTE_USECONDS"),
			bit(NOTE_NSECONDS, "NOTE_NSECONDS"),
			bit(NOTE_ABSTIME, "NOTE_ABSTIME"),
		}},
		// NOTE_FFNOP is the absence of the others; the user's own
		// flags (NOTE_FFLAGSMASK) show as a number after them.
		noteName{EVFILT_USER, []bitName{
			bit(NOTE_TRIGGER, "NOTE_TRIGGER"),
			{NOTE_FFCTRLMASK, NOTE_FFAND, "NOTE_FFAND"},
			{NOTE_FFCTRLMASK, NOTE_FFOR, "NOTE_FFOR"},
			{NOTE_FFCTRLMASK, NOTE_FFCOPY, "NOTE_FFCOPY"},
		}},
	)
}
