package histcmp

import (
	"math"
	"testing"

	"github.com/pillar-db/pillar/encoding"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/stretchr/testify/require"
)

// TestBucketBoundsMatchPrometheus requires every bucket bound of every
// schema, across the whole float range, to be bit for bit Prometheus'.
func TestBucketBoundsMatchPrometheus(t *testing.T) {
	for s := encoding.MinHistogramSchema; s <= encoding.MaxHistogramSchema; s++ {
		// Indexes from below the smallest float to past the largest.
		lo, hi := int32(-1100)<<max(s, 0)>>max(-s, 0), int32(1030)<<max(s, 0)>>max(-s, 0)
		n := uint32(hi - lo)
		h := &histogram.Histogram{Schema: s, PositiveSpans: []histogram.Span{{Offset: lo, Length: n}},
			PositiveBuckets: make([]int64, n)}
		it := h.PositiveBucketIterator()
		count := 0
		for it.Next() {
			b := it.At()
			require.Equal(t, math.Float64bits(b.Upper), math.Float64bits(encoding.BucketBound(s, b.Index)), "schema %d index %d", s, b.Index)
			require.Equal(t, math.Float64bits(b.Lower), math.Float64bits(encoding.BucketBound(s, b.Index-1)), "schema %d index %d", s, b.Index)
			count++
		}
		require.Equal(t, int(n), count)
	}
}

// TestBucketsMatchPrometheus compares Histogram.Buckets with Prometheus'
// AllBucketIterator on histograms with negative, zero and positive buckets.
func TestBucketsMatchPrometheus(t *testing.T) {
	_, hs := latencySeries(3, 30)
	extra := []*encoding.Histogram{
		{Schema: 0, ZeroThreshold: 0.3, ZeroCount: 2, Count: 9, Sum: 1,
			PositiveSpans: []encoding.BucketSpan{{Offset: -3, Length: 3}, {Offset: 2, Length: 1}}, PositiveBuckets: []int64{1, 0, 1, -1},
			NegativeSpans: []encoding.BucketSpan{{Offset: -2, Length: 2}}, NegativeBuckets: []int64{1, 0}},
		{Schema: -2, Count: 3, Sum: -1, NegativeSpans: []encoding.BucketSpan{{Offset: 0, Length: 1}, {Offset: 3, Length: 0}, {Offset: 1, Length: 1}}, NegativeBuckets: []int64{1, 1}},
		{Schema: 5, ZeroCount: 4, Count: 4},
	}
	for i, h := range append(hs, extra...) {
		require.NoError(t, h.Validate())
		var want []encoding.Bucket
		it := toProm(h).ToFloat(nil).AllBucketIterator()
		for it.Next() {
			b := it.At()
			want = append(want, encoding.Bucket{Lower: b.Lower, Upper: b.Upper, LowerInclusive: b.LowerInclusive,
				UpperInclusive: b.UpperInclusive, Index: b.Index, Count: uint64(b.Count)})
		}
		var got []encoding.Bucket
		for b := range h.Buckets() {
			got = append(got, b)
		}
		require.Equal(t, want, got, "histogram %d", i)
	}
}
