package query

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func pts(ts []int64, vs []float64) []FPoint {
	out := make([]FPoint, len(ts))
	for i := range ts {
		out[i] = FPoint{T: ts[i], F: vs[i]}
	}
	return out
}

func TestExtrapolatedRate(t *testing.T) {
	for _, tc := range []struct {
		name          string
		f             []FPoint
		start, end    int64
		counter, rate bool
		want          float64
		ok            bool
	}{
		{name: "one sample gives nothing", f: pts([]int64{10000}, []float64{5}), start: 0, end: 60000, counter: true, rate: true},
		{name: "no samples", start: 0, end: 60000, counter: true},
		{
			// Samples cover the whole window: extrapolated to both edges.
			name: "full window", f: pts([]int64{0 + 15000, 30000, 45000, 60000}, []float64{10, 20, 30, 40}),
			start: 0, end: 60000, counter: true, rate: true,
			// increase 30 over 45 s, extrapolated by 15 s at the start
			// (within 1.1 × interval) and 0 at the end: 40 in 60 s.
			want: 40.0 / 60, ok: true,
		},
		{
			// The counter would reach zero before the window starts:
			// extrapolation stops at the zero point.
			name: "stop at zero", f: pts([]int64{15000, 30000, 45000, 60000}, []float64{1, 11, 21, 31}),
			start: 0, end: 60000, counter: true,
			want: 30 * (45 + 1.5) / 45, ok: true,
		},
		{
			// A drop is a reset: the value before it is added back.
			name: "counter reset", f: pts([]int64{15000, 30000, 45000, 60000}, []float64{10, 20, 5, 15}),
			start: 0, end: 60000, counter: true,
			want: 25 * 60.0 / 45, ok: true,
		},
		{
			// A reset on the last sample, at the window's right edge.
			name: "reset at window edge", f: pts([]int64{15000, 30000, 45000, 60000}, []float64{10, 20, 30, 2}),
			start: 0, end: 60000, counter: true,
			want: 22 * 60.0 / 45, ok: true,
		},
		{
			// delta does not treat drops as resets and may go negative.
			name: "gauge delta", f: pts([]int64{15000, 30000, 45000, 60000}, []float64{10, 20, 5, 4}),
			start: 0, end: 60000,
			want: -6 * 60.0 / 45, ok: true,
		},
		{
			// Samples far from the edges: extrapolate by half an interval.
			name: "gap to edges", f: pts([]int64{100000, 115000, 130000}, []float64{100, 110, 120}),
			start: 0, end: 300000, counter: true,
			want: 20 * (30 + 7.5 + 7.5) / 30, ok: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := extrapolatedRate(tc.f, tc.start, tc.end, float64(tc.end-tc.start)/1000, tc.counter, tc.rate, false)
			require.Equal(t, tc.ok, ok)
			if ok {
				require.InDelta(t, tc.want, got, 1e-12)
			}
			drops := false
			for i := 1; i < len(tc.f); i++ {
				drops = drops || tc.f[i].F < tc.f[i-1].F
			}
			if !drops {
				again, _ := extrapolatedRate(tc.f, tc.start, tc.end, float64(tc.end-tc.start)/1000, tc.counter, tc.rate, true)
				require.Equal(t, got, again, "skipping the reset scan changes nothing without drops")
			}
		})
	}
}

func TestInstantRate(t *testing.T) {
	got, ok := instantRate(pts([]int64{0, 10000, 20000}, []float64{1, 5, 2}), true)
	require.True(t, ok)
	require.Equal(t, 0.2, got, "irate after a reset is the last value over the interval")
	got, ok = instantRate(pts([]int64{0, 10000, 20000}, []float64{1, 5, 2}), false)
	require.True(t, ok)
	require.Equal(t, -3.0, got, "idelta is the plain difference")
	_, ok = instantRate(pts([]int64{0}, []float64{1}), true)
	require.False(t, ok, "one sample gives nothing")
}

func TestBucketQuantile(t *testing.T) {
	inf := math.Inf(1)
	b := func(pairs ...float64) []bucket {
		var out []bucket
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, bucket{upperBound: pairs[i], count: pairs[i+1]})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		q       float64
		buckets []bucket
		want    float64
	}{
		{"median interpolates linearly", 0.5, b(1, 10, 2, 20, inf, 20), 1},
		{"inside a bucket", 0.75, b(1, 10, 2, 20, inf, 20), 1.5},
		{"first bucket starts at zero", 0.25, b(1, 10, 2, 20, inf, 20), 0.5},
		{"rank in +Inf bucket gives the bound below", 0.99, b(1, 10, 2, 20, inf, 40), 2},
		{"+Inf bucket only", 0.5, b(inf, 10), math.NaN()},
		{"no +Inf bucket", 0.5, b(1, 10, 2, 20), math.NaN()},
		{"empty buckets", 0.5, b(1, 0, 2, 0, inf, 0), math.NaN()},
		{"quantile below 0", -0.1, b(1, 10, inf, 10), math.Inf(-1)},
		{"quantile above 1", 1.1, b(1, 10, inf, 10), math.Inf(1)},
		{"NaN quantile", math.NaN(), b(1, 10, inf, 10), math.NaN()},
		{"unsorted input", 0.75, b(inf, 20, 2, 20, 1, 10), 1.5},
		{"non-monotonic counts are fixed", 0.5, b(1, 10, 2, 8, 3, 20, inf, 20), 1},
		{"duplicate bounds are merged", 0.5, b(1, 5, 1, 5, 2, 20, inf, 20), 1},
		{"negative lowest bound", 0.1, b(-1, 5, 1, 10, inf, 10), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := bucketQuantile(tc.q, slices.Clone(tc.buckets))
			if math.IsNaN(tc.want) {
				require.True(t, math.IsNaN(got), "got %v", got)
				return
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestBucketFraction(t *testing.T) {
	inf := math.Inf(1)
	bs := []bucket{{1, 10}, {2, 20}, {inf, 40}}
	require.Equal(t, 0.25, bucketFraction(0, 1, slices.Clone(bs)))
	require.Equal(t, 0.25, bucketFraction(0.5, 1.5, slices.Clone(bs)))
	require.Equal(t, 0.0, bucketFraction(2, 1, slices.Clone(bs)), "lower ≥ upper")
	require.Equal(t, 0.5, bucketFraction(2, inf, slices.Clone(bs)))
	require.True(t, math.IsNaN(bucketFraction(0, 1, []bucket{{1, 0}, {inf, 0}})))
}

func TestQuantileOfMatchesSortedDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 1 + r.IntN(40)
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = float64(r.IntN(20)) // many ties
			if r.IntN(30) == 0 {
				vals[i] = math.NaN()
			}
		}
		q := r.Float64()
		if r.IntN(10) == 0 {
			q = float64(r.IntN(2))
		}
		sorted := slices.Clone(vals)
		slices.SortFunc(sorted, func(a, b float64) int {
			switch {
			case lessNaNFirst(a, b):
				return -1
			case lessNaNFirst(b, a):
				return 1
			}
			return 0
		})
		rank := q * float64(n-1)
		lo := int(math.Max(0, math.Floor(rank)))
		hi := int(math.Min(float64(n-1), float64(lo+1)))
		w := rank - math.Floor(rank)
		want := sorted[lo]*(1-w) + sorted[hi]*w
		got := quantileOf(q, slices.Clone(vals))
		if math.IsNaN(want) {
			require.True(t, math.IsNaN(got), "q=%v vals=%v", q, vals)
		} else {
			require.Equal(t, want, got, "q=%v vals=%v", q, vals)
		}
	}
	require.True(t, math.IsNaN(quantileOf(0.5, nil)))
	require.Equal(t, math.Inf(-1), quantileOf(-1, []float64{1}))
	require.Equal(t, math.Inf(1), quantileOf(2, []float64{1}))
}

func TestKahanSum(t *testing.T) {
	// 1e16 + 1 + 1 - 1e16 loses both ones in naive float64 arithmetic.
	f := pts([]int64{1, 2, 3, 4}, []float64{1e16, 1, 1, -1e16})
	require.Equal(t, 2.0, sumOverTime(f))
	require.Equal(t, 0.5, avgOverTime(f))
	// avg switches to an incremental mean instead of overflowing.
	big := pts([]int64{1, 2}, []float64{math.MaxFloat64, math.MaxFloat64})
	require.Equal(t, math.MaxFloat64, avgOverTime(big))
}

func TestLinearRegression(t *testing.T) {
	f := pts([]int64{0, 10000, 20000}, []float64{1, 3, 5})
	slope, intercept := linearRegression(f, 0)
	require.InDelta(t, 0.2, slope, 1e-12)
	require.InDelta(t, 1, intercept, 1e-12)
	slope, intercept = linearRegression(pts([]int64{0, 10000}, []float64{7, 7}), 0)
	require.Equal(t, 0.0, slope)
	require.Equal(t, 7.0, intercept)
}

func TestQuantileOverTimeAllocatesNothing(t *testing.T) {
	w := &windowArgs{f: pts([]int64{1, 2, 3, 4, 5}, []float64{5, 1, 4, 2, 3}), args: []float64{0.5}, scratch: make([]float64, 0, 8)}
	fn := rangeFuncs["quantile_over_time"]
	allocs := testing.AllocsPerRun(100, func() {
		v, _, ok := fn(w)
		if !ok || v != 3 {
			t.Fatalf("got %v", v)
		}
	})
	require.Zero(t, allocs)
}
