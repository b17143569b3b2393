package encoding

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func validHistogram() *Histogram {
	return &Histogram{
		Schema: 1, ZeroThreshold: 0.001, ZeroCount: 2, Count: 12, Sum: 42,
		PositiveSpans:   []BucketSpan{{Offset: -1, Length: 2}, {Offset: 3, Length: 1}},
		PositiveBuckets: []int64{1, 2, -1}, // 1, 3, 2
		NegativeSpans:   []BucketSpan{{Offset: 0, Length: 1}},
		NegativeBuckets: []int64{4},
	}
}

func TestHistogramValidate(t *testing.T) {
	require.NoError(t, validHistogram().Validate())
	require.NoError(t, (&Histogram{}).Validate(), "an empty histogram is valid")
	for _, tc := range []struct {
		field string
		mod   func(h *Histogram)
	}{
		{"Schema", func(h *Histogram) { h.Schema = 9 }},
		{"Schema", func(h *Histogram) { h.Schema = -5 }},
		{"ZeroThreshold", func(h *Histogram) { h.ZeroThreshold = -1 }},
		{"ZeroThreshold", func(h *Histogram) { h.ZeroThreshold = math.NaN() }},
		{"ZeroThreshold", func(h *Histogram) { h.ZeroThreshold = math.Inf(1) }},
		{"CounterResetHint", func(h *Histogram) { h.CounterResetHint = 4 }},
		{"PositiveSpans[1].Offset", func(h *Histogram) { h.PositiveSpans[1].Offset = -1 }},
		{"PositiveSpans", func(h *Histogram) { h.PositiveSpans[1].Length = 2 }},
		{"NegativeSpans", func(h *Histogram) { h.NegativeSpans = nil }},
		{"PositiveBuckets[2]", func(h *Histogram) { h.PositiveBuckets[2] = -4 }},
		{"NegativeBuckets[0]", func(h *Histogram) { h.NegativeBuckets[0] = -1; h.Count = 7 }},
		{"PositiveBuckets[1]", func(h *Histogram) { h.PositiveBuckets[0], h.PositiveBuckets[1] = math.MaxInt64, 1 }},
		{"Count", func(h *Histogram) { h.Count = 11 }},
		{"Count", func(h *Histogram) { h.Count = 13 }},
		{"Count", func(h *Histogram) { h.Sum = math.NaN(); h.Count = 11 }},
		{"Count", func(h *Histogram) { h.ZeroCount = math.MaxUint64 }},
	} {
		h := validHistogram()
		tc.mod(h)
		err := h.Validate()
		require.ErrorIs(t, err, ErrInvalidHistogram, tc.field)
		var he *HistogramError
		require.True(t, errors.As(err, &he))
		require.Equal(t, tc.field, he.Field)
		require.Contains(t, err.Error(), "encoding: invalid histogram: "+tc.field)
	}
	// A NaN sum allows more observations than the buckets hold.
	h := validHistogram()
	h.Sum, h.Count = math.NaN(), 20
	require.NoError(t, h.Validate())
	h.Sum = math.Float64frombits(0x7ff0000000000002) // the stale marker
	require.NoError(t, h.Validate())
}

func TestHistogramEqualAndCopy(t *testing.T) {
	h := validHistogram()
	c := h.Copy()
	require.True(t, h.Equal(c))
	c.PositiveBuckets[0]++
	require.False(t, h.Equal(c))
	require.Equal(t, int64(1), h.PositiveBuckets[0], "Copy is deep")

	var dst Histogram
	h.CopyTo(&dst)
	require.True(t, h.Equal(&dst))

	nan := &Histogram{Sum: math.NaN()}
	require.True(t, nan.Equal(nan.Copy()), "NaN sums compare by bit pattern")
	require.False(t, nan.Equal(&Histogram{Sum: math.Float64frombits(0x7ff0000000000002)}))
	require.True(t, (&Histogram{}).Equal(&Histogram{PositiveSpans: []BucketSpan{}}), "nil and empty alike")
	require.False(t, (&Histogram{Sum: 0}).Equal(&Histogram{Sum: math.Copysign(0, -1)}))
	require.True(t, (*Histogram)(nil).Equal(nil))
	require.False(t, h.Equal(nil))
}

func TestBucketBound(t *testing.T) {
	for _, tc := range []struct {
		schema, idx int32
		want        float64
	}{
		{0, 0, 1}, {0, 1, 2}, {0, -1, 0.5}, {0, 10, 1024},
		{3, 0, 1}, {3, 8, 2}, {3, 1, 2 * 0.5452538663326288}, {3, -8, 0.5},
		{8, 256, 2}, {1, 1, 2 * 0.7071067811865475},
		{-1, 1, 4}, {-4, 1, 65536}, {-4, -1, 1.0 / 65536},
		{0, 1024, math.MaxFloat64}, {0, 1025, math.Inf(1)},
		{-2, 256, math.MaxFloat64}, {8, 1024 << 8, math.MaxFloat64},
		{0, -1074, math.SmallestNonzeroFloat64}, {0, -1075, 0},
	} {
		require.Equal(t, tc.want, BucketBound(tc.schema, tc.idx), "schema %d idx %d", tc.schema, tc.idx)
	}
	for s := MinHistogramSchema; s <= MaxHistogramSchema; s++ {
		prev := 0.0
		for idx := int32(-3000); idx < 3000; idx++ {
			b := BucketBound(s, idx)
			if b < prev {
				t.Fatalf("schema %d: bound %v of index %d below the previous %v", s, b, idx, prev)
			}
			prev = b
			// Every bound of schema s is a bound of schema s+1.
			if s < MaxHistogramSchema && idx > -1000 && idx < 1000 && b != BucketBound(s+1, 2*idx) {
				t.Fatalf("schema %d index %d: %v, but schema %d index %d: %v", s, idx, b, s+1, 2*idx, BucketBound(s+1, 2*idx))
			}
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	h := validHistogram()
	var got []Bucket
	for b := range h.Buckets() {
		got = append(got, b)
	}
	half := 0.7071067811865475 // 2^(−1/2) as Prometheus has it, an ulp below the nearest float
	require.Equal(t, []Bucket{
		{Lower: -1, Upper: -half, LowerInclusive: true, Index: 0, Count: 4},
		{Lower: -0.001, Upper: 0.001, LowerInclusive: true, UpperInclusive: true, Count: 2},
		{Lower: 0.5, Upper: half, UpperInclusive: true, Index: -1, Count: 1},
		{Lower: half, Upper: 1, UpperInclusive: true, Index: 0, Count: 3},
		{Lower: BucketBound(1, 3), Upper: 4, UpperInclusive: true, Index: 4, Count: 2},
	}, got)

	// Buckets of a random histogram are in ascending order, do not overlap
	// and hold all observations.
	s := newHistSeries(9, 2, false)
	for range 50 {
		h := s.next()
		h.ZeroThreshold = 0 // the series reaches buckets far inside 2^-128
		var total uint64
		prev := math.Inf(-1)
		for b := range h.Buckets() {
			require.GreaterOrEqual(t, b.Lower, prev)
			require.LessOrEqual(t, b.Lower, b.Upper)
			prev = b.Upper
			total += b.Count
		}
		if !math.IsNaN(h.Sum) {
			require.Equal(t, h.Count, total)
		}
	}

	// Stopping early is honoured.
	n := 0
	for range h.Buckets() {
		n++
		break
	}
	require.Equal(t, 1, n)
}

func TestHistogramBucketsNegativeSpans(t *testing.T) {
	h := &Histogram{Schema: 0, Count: 6, Sum: -10,
		NegativeSpans:   []BucketSpan{{Offset: 1, Length: 2}, {Offset: 2, Length: 1}}, // indexes 1, 2, 5
		NegativeBuckets: []int64{1, 1, 1}}                                             // 1, 2, 3
	var idx []int32
	var counts []uint64
	var lowers []float64
	for b := range h.Buckets() {
		idx = append(idx, b.Index)
		counts = append(counts, b.Count)
		lowers = append(lowers, b.Lower)
	}
	require.Equal(t, []int32{5, 2, 1}, idx)
	require.Equal(t, []uint64{3, 2, 1}, counts)
	require.Equal(t, []float64{-32, -4, -2}, lowers)
}
