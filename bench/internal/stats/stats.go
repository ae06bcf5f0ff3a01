//go:build linux

// Package stats holds the few statistics the harness reports: medians over
// rounds, latency percentiles, and the counts of its load client (Load).
package stats

import (
	"math"
	"slices"
)

// Median returns the median of xs, NaN for none. NaN values are ignored.
func Median(xs []float64) float64 {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of xs by the
// nearest-rank method; it sorts xs in place. NaN for none.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	rank := int(math.Ceil(p / 100 * float64(len(xs))))
	rank = min(max(rank, 1), len(xs))
	return xs[rank-1]
}
