// Package stat summarises the per-round figures of the benchmark tools.
package stat

import (
	"fmt"
	"slices"
)

// Median of v (0 for none); v is left as it is.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Ratios formats per-round ratios as the reports give them: the median in
// bold, then the spread and the number of rounds.
func Ratios(v []float64) string {
	if len(v) == 0 {
		return "–"
	}
	return fmt.Sprintf("**%.2f** (%.2f–%.2f, %d)", Median(v), slices.Min(v), slices.Max(v), len(v))
}
