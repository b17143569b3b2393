package encoding

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

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

// Schema limits of the exponential bucket layout, as in Prometheus.
const (
	MinHistogramSchema int32 = -4 // buckets grow by 2^16 per step
	MaxHistogramSchema int32 = 8  // buckets grow by 2^(1/256) per step
)

// ErrInvalidHistogram is wrapped by every error Validate returns, so callers
// can tell bad input from other failures with errors.Is.
var ErrInvalidHistogram = errors.New("encoding: invalid histogram")

// HistogramError names the field of a histogram that is invalid and why. It
// unwraps to ErrInvalidHistogram.
type HistogramError struct {
	Field  string // the offending field, e.g. "Schema" or "PositiveSpans[2].Offset"
	Reason string // what is wrong with it
}

// Error implements error.
func (e *HistogramError) Error() string {
	return "encoding: invalid histogram: " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalidHistogram.
func (e *HistogramError) Unwrap() error { return ErrInvalidHistogram }

func invalidf(field, format string, args ...any) error {
	return &HistogramError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks h the way Prometheus does before storing a native
// histogram: the schema is in range; the zero threshold is a non-negative
// number; every span after the first has a non-negative offset; the span
// lengths add up to the number of buckets on each side; no bucket's
// absolute count is negative; and the zero count plus all bucket counts
// equal Count — or, when Sum is NaN (NaN observations, or the stale
// marker), do not exceed it. The error is a *HistogramError.
func (h *Histogram) Validate() error {
	if h.Schema < MinHistogramSchema || h.Schema > MaxHistogramSchema {
		return invalidf("Schema", "%d is outside %d…%d", h.Schema, MinHistogramSchema, MaxHistogramSchema)
	}
	if !(h.ZeroThreshold >= 0) || math.IsInf(h.ZeroThreshold, 1) {
		return invalidf("ZeroThreshold", "%v is not a finite non-negative number", h.ZeroThreshold)
	}
	if h.CounterResetHint > GaugeType {
		return invalidf("CounterResetHint", "unknown hint %d", h.CounterResetHint)
	}
	if err := checkSpans("PositiveSpans", h.PositiveSpans, len(h.PositiveBuckets)); err != nil {
		return err
	}
	if err := checkSpans("NegativeSpans", h.NegativeSpans, len(h.NegativeBuckets)); err != nil {
		return err
	}
	pos, err := checkBuckets("PositiveBuckets", h.PositiveBuckets)
	if err != nil {
		return err
	}
	neg, err := checkBuckets("NegativeBuckets", h.NegativeBuckets)
	if err != nil {
		return err
	}
	total, c1 := bits.Add64(pos, neg, 0)
	total, c2 := bits.Add64(total, h.ZeroCount, 0)
	if c1|c2 != 0 {
		return invalidf("Count", "bucket counts overflow 64 bits")
	}
	if math.IsNaN(h.Sum) {
		if total > h.Count {
			return invalidf("Count", "%d observations in buckets, more than Count %d", total, h.Count)
		}
	} else if total != h.Count {
		return invalidf("Count", "%d observations in buckets, but Count is %d", total, h.Count)
	}
	return nil
}

func checkSpans(field string, spans []BucketSpan, numBuckets int) error {
	var n uint64
	for i, s := range spans {
		if i > 0 && s.Offset < 0 {
			return invalidf(fmt.Sprintf("%s[%d].Offset", field, i), "%d is negative", s.Offset)
		}
		n += uint64(s.Length)
	}
	if n != uint64(numBuckets) {
		return invalidf(field, "spans cover %d buckets, but there are %d", n, numBuckets)
	}
	return nil
}

// checkBuckets resolves delta-coded buckets and returns the sum of their
// absolute counts, or an error if one is negative or overflows.
func checkBuckets(field string, deltas []int64) (uint64, error) {
	var cur int64
	var sum uint64
	for i, d := range deltas {
		next := cur + d
		if (d > 0 && next < cur) || (d < 0 && next > cur) {
			return 0, invalidf(fmt.Sprintf("%s[%d]", field, i), "absolute count overflows")
		}
		cur = next
		if cur < 0 {
			return 0, invalidf(fmt.Sprintf("%s[%d]", field, i), "absolute count %d is negative", cur)
		}
		var carry uint64
		sum, carry = bits.Add64(sum, uint64(cur), 0)
		if carry != 0 {
			return 0, invalidf(field, "bucket counts overflow 64 bits")
		}
	}
	return sum, nil
}

// Equal reports whether h and o hold the same histogram: every field equal,
// floats compared by bit pattern (so NaN sums and the stale marker compare
// equal to themselves), and nil and empty slices treated alike.
func (h *Histogram) Equal(o *Histogram) bool {
	if h == nil || o == nil {
		return h == o
	}
	return h.CounterResetHint == o.CounterResetHint &&
		h.Schema == o.Schema &&
		math.Float64bits(h.ZeroThreshold) == math.Float64bits(o.ZeroThreshold) &&
		h.ZeroCount == o.ZeroCount &&
		h.Count == o.Count &&
		math.Float64bits(h.Sum) == math.Float64bits(o.Sum) &&
		slices.Equal(h.PositiveSpans, o.PositiveSpans) &&
		slices.Equal(h.NegativeSpans, o.NegativeSpans) &&
		slices.Equal(h.PositiveBuckets, o.PositiveBuckets) &&
		slices.Equal(h.NegativeBuckets, o.NegativeBuckets)
}
