package main

import (
	"fmt"
	"slices"
)

// A spread is what every table shows for a figure measured several times:
// the median, and the lowest and highest value.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// format prints a spread as "median [min–max]" with the given verb, or the
// median alone when there is one value.
func (s spread) format(verb string) string {
	if s.N == 0 {
		return "-"
	}
	if s.N == 1 {
		return fmt.Sprintf(verb, s.Median)
	}
	return fmt.Sprintf(verb+" ["+verb+"–"+verb+"]", s.Median, s.Min, s.Max)
}

// atLeastZero is the spread with readings below zero raised to zero, for a
// figure that cannot be negative but is measured as a difference of meters
// that may disagree (other work: see cpuBetween).
func (s spread) atLeastZero() spread {
	s.Median, s.Min, s.Max = max(s.Median, 0), max(s.Min, 0), max(s.Max, 0)
	return s
}

// bimodal looks at the medians of a step's windows for two groups with a
// clear gap between them: a gap wider than 8% of the lower group and three
// times as wide as either group. It returns a description, or "".
func bimodal(v []float64) string {
	if len(v) < 4 {
		return ""
	}
	s := slices.Clone(v)
	slices.Sort(s)
	gap, at := 0.0, 0
	for i := 1; i < len(s); i++ {
		if d := s[i] - s[i-1]; d > gap {
			gap, at = d, i
		}
	}
	if at == 0 {
		return "" // every window alike: no gap at all
	}
	lo, hi := s[:at], s[at:]
	width := max(lo[len(lo)-1]-lo[0], hi[len(hi)-1]-hi[0])
	if gap < 0.08*lo[len(lo)-1] || gap < 3*width {
		return ""
	}
	return fmt.Sprintf("%d windows near %.1f µs, %d near %.1f µs", len(lo), spreadOf(lo).Median, len(hi), spreadOf(hi).Median)
}
