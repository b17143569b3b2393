package metricgen

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMixShape(t *testing.T) {
	w := Mix(1, 1, 1)
	require.Equal(t, 5300, w.NumSeries())
	require.Equal(t, 240, w.Scrapes)
	seen := map[string]bool{}
	for _, ls := range w.Labels {
		require.True(t, slices.IsSorted(pairsNames(ls)), "labels %v not sorted by name", ls)
		key := slices.Concat(ls)
		k := ""
		for _, s := range key {
			k += s + "\x00"
		}
		require.False(t, seen[k], "duplicate series %v", ls)
		seen[k] = true
	}
}

func pairsNames(ls []string) []string {
	var names []string
	for i := 0; i < len(ls); i += 2 {
		names = append(names, ls[i])
	}
	return names
}

func TestScrapeIsDeterministicAndMonotonic(t *testing.T) {
	a, b := Mix(1, 0.1, 7), Mix(1, 0.1, 7)
	n := a.NumSeries()
	ta, va := make([]int64, n), make([]float64, n)
	tb, vb := make([]int64, n), make([]float64, n)
	prevT, prevV := make([]int64, n), make([]float64, n)
	for k := range a.Scrapes {
		a.Scrape(k, ta, va)
		b.Scrape(k, tb, vb)
		require.Equal(t, ta, tb)
		require.Equal(t, va, vb)
		for i := range n {
			if k > 0 {
				require.Greater(t, ta[i], prevT[i], "timestamps strictly increase")
				require.InDelta(t, a.Interval, ta[i]-prevT[i], float64(2*a.Jitter))
				if a.kinds[i] == kCounter || a.kinds[i] == kHistBucket || a.kinds[i] == kHistCount {
					require.GreaterOrEqual(t, va[i], prevV[i], "counters never go down")
				}
			}
		}
		copy(prevT, ta)
		copy(prevV, va)
	}
}

func TestHistogramBucketsAreCumulative(t *testing.T) {
	w := Mix(1, 0.01, 3)
	n := w.NumSeries()
	ts, vs := make([]int64, n), make([]float64, n)
	w.Scrape(0, ts, vs)
	for i := 0; i < n; i++ {
		if w.kinds[i] != kHistBucket || w.Labels[i][len(w.Labels[i])-1] != "0.005" {
			continue
		}
		for j := 1; j < len(BucketBounds); j++ {
			require.GreaterOrEqual(t, vs[i+j], vs[i+j-1])
		}
		require.Equal(t, vs[i+len(BucketBounds)-1], vs[i+len(BucketBounds)+1], "+Inf bucket equals _count")
	}
}

func TestCPUOnly(t *testing.T) {
	w := CPUOnly(10, 1, 1)
	require.Equal(t, 100, w.NumSeries())
	require.Equal(t, 360, w.Scrapes)
	ts, vs := make([]int64, 100), make([]float64, 100)
	for k := range 20 {
		w.Scrape(k, ts, vs)
		for _, v := range vs {
			require.True(t, v >= 0 && v <= 100)
		}
	}
}
