//go:build !linux

package kqueue

// Elsewhere the package defines no filters, flags or NOTE_* fflags beyond
// the common ones yet (see trace_notes_linux.go).
var (
	moreFilters []filterName
	moreFlags   []flagCase
	notes       []noteCase
)
