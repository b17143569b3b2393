package query

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// The sliding window's sorted values always equal a fresh sort of the
// window, whatever the step, range, duplicates and NaNs, and across a
// change of series.
func TestSlidingSortedMatchesFreshSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s slidingSorted
	for series := uint64(1); series <= 200; series++ {
		n := 1 + r.IntN(300)
		pts := make([]FPoint, n)
		for i := range pts {
			pts[i].T = int64(i) * 15
			switch r.IntN(10) {
			case 0:
				pts[i].F = math.NaN()
			case 1, 2:
				pts[i].F = float64(r.IntN(3)) // duplicates
			default:
				pts[i].F = r.NormFloat64()
			}
		}
		rangeMs := int64(15 * (1 + r.IntN(40)))
		step := int64(15 * (1 + r.IntN(20)))
		for ts := int64(0); ts <= int64(n)*15; ts += step {
			lo := slices.IndexFunc(pts, func(p FPoint) bool { return p.T > ts-rangeMs })
			hi := slices.IndexFunc(pts, func(p FPoint) bool { return p.T > ts })
			if lo < 0 {
				continue
			}
			if hi < 0 {
				hi = n
			}
			win := pts[lo:hi]
			if len(win) == 0 {
				continue
			}
			got := s.slide(series, win)
			want := make([]float64, len(win))
			for i, p := range win {
				want[i] = p.F
			}
			slices.SortFunc(want, cmpNaNFirst)
			require.Equal(t, len(want), len(got))
			for i := range want {
				require.True(t, want[i] == got[i] || (math.IsNaN(want[i]) && math.IsNaN(got[i])),
					"series %d ts %d index %d: want %v got %v", series, ts, i, want[i], got[i])
			}
			for _, q := range []float64{0, 0.25, 0.5, 0.99, 1} {
				a, b := quantileOfSorted(q, got), quantileOf(q, append([]float64(nil), want...))
				require.True(t, a == b || (math.IsNaN(a) && math.IsNaN(b)), "q=%v: %v vs %v", q, a, b)
			}
		}
	}
}

// Sliding by one sample per step allocates nothing once warm.
func TestSlidingSortedAllocs(t *testing.T) {
	pts := make([]FPoint, 1000)
	for i := range pts {
		pts[i] = FPoint{T: int64(i), F: float64(i % 37)}
	}
	var s slidingSorted
	s.slide(1, pts[0:20])
	i := 0
	allocs := testing.AllocsPerRun(500, func() {
		i = i%900 + 1
		s.slide(1, pts[i:i+20])
	})
	require.Zero(t, allocs)
}
