package encoding

// CounterResetHint says how a native histogram relates to the one before it
// in its series, as in Prometheus.
type CounterResetHint uint8

const (
	// UnknownCounterReset: whether a reset happened is not known; readers
	// detect resets by comparing with the previous histogram.
	UnknownCounterReset CounterResetHint = iota
	// CounterReset: a counter reset happened at this histogram.
	CounterReset
	// NotCounterReset: no reset happened since the previous histogram.
	NotCounterReset
	// GaugeType: the histogram is a gauge histogram; buckets may go down.
	GaugeType
)

// BucketSpan is a run of consecutive populated buckets: Offset is the gap
// (in bucket indexes) from the end of the previous span, or the index of the
// first bucket for the first span; Length is the number of buckets in it.
type BucketSpan struct {
	Offset int32
	Length uint32
}

// Histogram is a native (sparse, exponential) histogram with integer counts,
// the model Prometheus uses. Bucket boundaries are powers of
// 2^(2^-Schema); Schema is in −4…8. Bucket counts are stored as deltas: each
// element of PositiveBuckets is the difference from the previous bucket's
// count (the first is absolute), and likewise for NegativeBuckets.
type Histogram struct {
	CounterResetHint CounterResetHint
	Schema           int32
	ZeroThreshold    float64
	ZeroCount        uint64
	Count            uint64
	Sum              float64
	PositiveSpans    []BucketSpan
	NegativeSpans    []BucketSpan
	PositiveBuckets  []int64
	NegativeBuckets  []int64
}

// Copy returns a deep copy of h.
func (h *Histogram) Copy() *Histogram {
	c := *h
	c.PositiveSpans = append([]BucketSpan(nil), h.PositiveSpans...)
	c.NegativeSpans = append([]BucketSpan(nil), h.NegativeSpans...)
	c.PositiveBuckets = append([]int64(nil), h.PositiveBuckets...)
	c.NegativeBuckets = append([]int64(nil), h.NegativeBuckets...)
	return &c
}

// CopyTo deep-copies h into dst, reusing dst's slices.
func (h *Histogram) CopyTo(dst *Histogram) {
	ps, ns, pb, nb := dst.PositiveSpans[:0], dst.NegativeSpans[:0], dst.PositiveBuckets[:0], dst.NegativeBuckets[:0]
	*dst = *h
	dst.PositiveSpans = append(ps, h.PositiveSpans...)
	dst.NegativeSpans = append(ns, h.NegativeSpans...)
	dst.PositiveBuckets = append(pb, h.PositiveBuckets...)
	dst.NegativeBuckets = append(nb, h.NegativeBuckets...)
}
