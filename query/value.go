package query

import (
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/histogram"

	"github.com/pillar-db/pillar/tsdb"
)

// FloatHistogram is a native histogram with float counts, the form results
// and intermediate values take (rates and sums of integer histograms are
// fractional). It is Prometheus' own model type so that bucket arithmetic
// (schema reduction, Kahan-compensated sums, compaction) matches to the bit.
type FloatHistogram = histogram.FloatHistogram

// FPoint is one float value of a series at T (Unix milliseconds).
type FPoint struct {
	T int64
	F float64
}

// HPoint is one native-histogram value of a series at T (Unix milliseconds).
type HPoint struct {
	T int64
	H *FloatHistogram
}

// Series is one labelled series of a Matrix: its float points and its
// histogram points, each in time order (a step has at most one of the two).
type Series struct {
	Labels     tsdb.Labels
	Floats     []FPoint
	Histograms []HPoint
}

// Matrix is the result of a range query or of a range-vector expression in
// an instant query. Range query results are sorted by labels.
type Matrix []Series

// Sample is one element of a Vector: a float F, or a histogram H when H is
// non-nil, at T.
type Sample struct {
	Labels tsdb.Labels
	T      int64
	F      float64
	H      *FloatHistogram
}

// Vector is the result of an instant query over an instant-vector
// expression: one sample per series. It is sorted by labels unless the
// query's outermost function is sort, sort_desc, or an aggregation
// topk/bottomk, whose order it keeps.
type Vector []Sample

// Scalar is the result of an instant query over a scalar expression.
type Scalar struct {
	T int64
	F float64
}

// String is the result of a query that is a string literal.
type String struct {
	T int64
	V string
}

// Value is the result of an instant query: Vector, Scalar, String or Matrix.
type Value interface{ valueType() string }

func (Matrix) valueType() string { return "matrix" }
func (Vector) valueType() string { return "vector" }
func (Scalar) valueType() string { return "scalar" }
func (String) valueType() string { return "string" }

// String renders a matrix as Prometheus' test output does, one series a line.
func (m Matrix) String() string {
	var b strings.Builder
	for _, s := range m {
		b.WriteString(s.Labels.String())
		b.WriteString(" =>")
		for _, p := range s.Floats {
			b.WriteString(" ")
			b.WriteString(strconv.FormatFloat(p.F, 'g', -1, 64))
			b.WriteString(" @")
			b.WriteString(strconv.FormatInt(p.T, 10))
		}
		for _, p := range s.Histograms {
			b.WriteString(" ")
			b.WriteString(p.H.String())
			b.WriteString(" @")
			b.WriteString(strconv.FormatInt(p.T, 10))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// staleNaN is Prometheus' staleness marker: a NaN with this exact payload
// written when a series disappears; it ends the series' presence.
const staleNaNBits = 0x7ff0000000000002

func isStaleNaN(f float64) bool { return math.Float64bits(f) == staleNaNBits }
