//go:build linux

package stats

import (
	"math"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"odd", []float64{3, 1, 2}, 2},
		{"even", []float64{4, 1, 3, 2}, 2.5},
		{"one", []float64{7}, 7},
		{"nan ignored", []float64{math.NaN(), 5, 1}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Median(tt.in); got != tt.want {
				t.Errorf("Median(%v) = %v; want %v", tt.in, got, tt.want)
			}
		})
	}
	if got := Median(nil); !math.IsNaN(got) {
		t.Errorf("Median(nil) = %v; want NaN", got)
	}
}

func TestPercentile(t *testing.T) {
	xs := make([]float64, 0, 100)
	for i := 100; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	for _, tt := range []struct {
		p    float64
		want float64
	}{{99, 99}, {50, 50}, {100, 100}, {0.1, 1}} {
		if got := Percentile(xs, tt.p); got != tt.want {
			t.Errorf("Percentile(1..100, %v) = %v; want %v", tt.p, got, tt.want)
		}
	}
}
