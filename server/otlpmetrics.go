package server

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/server/logql"
	"github.com/pillar-db/pillar/tsdb"
)

// staleNaN is Prometheus' stale marker, written for OTLP points flagged
// "no recorded value".
var staleNaN = math.Float64frombits(0x7ff0000000000002)

type metricResult struct {
	samples, histograms, rejected, accepted int
	msg                                     string
}

// metricAppender appends OTLP points, counting the rejected ones.
type metricAppender struct {
	app tsdb.Appender
	res metricResult
}

func (m *metricAppender) reject(err error) {
	m.res.rejected++
	if m.res.msg == "" {
		m.res.msg = err.Error()
	}
}

func (m *metricAppender) add(ls tsdb.Labels, t int64, v float64) {
	if _, err := m.app.Append(0, ls, t, v); err != nil {
		m.reject(err)
		return
	}
	m.res.samples++
	m.res.accepted++
}

// appendOTLPMetrics stores md in one commit, the Prometheus way: gauges and
// sums as float series (monotonic sums get _total), histograms as classic
// _bucket{le}/_sum/_count series, exponential histograms as native
// histograms, summaries as quantile series with _sum/_count. Names and
// label names are sanitised; the resource's service.name becomes job and
// service.instance.id instance. Delta temporality is rejected, as
// Prometheus' OTLP receiver does. Points the store refuses are counted as
// rejected and the rest is committed.
func (s *Server) appendOTLPMetrics(ctx context.Context, md *metricspb.MetricsData) (metricResult, error) {
	ma := &metricAppender{app: s.db.Metrics().Appender(ctx)}
	var h tsdb.Histogram
	for _, rm := range md.GetResourceMetrics() {
		var base []string
		for _, kv := range rm.GetResource().GetAttributes() {
			switch kv.GetKey() {
			case "service.name":
				base = append(base, "job", anyString(kv.GetValue()))
			case "service.instance.id":
				base = append(base, "instance", anyString(kv.GetValue()))
			}
		}
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				name := sanitizeMetricName(m.GetName())
				switch d := m.GetData().(type) {
				case *metricspb.Metric_Gauge:
					for _, p := range d.Gauge.GetDataPoints() {
						ma.add(pointLabels(base, name, p.GetAttributes()), ms(p.GetTimeUnixNano()), numberValue(p))
					}
				case *metricspb.Metric_Sum:
					if d.Sum.GetAggregationTemporality() == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
						ma.res.rejected += len(d.Sum.GetDataPoints())
						ma.res.msg = fmt.Sprintf("metric %q: delta temporality is not supported", m.GetName())
						continue
					}
					n := name
					if d.Sum.GetIsMonotonic() && !strings.HasSuffix(n, "_total") {
						n += "_total"
					}
					for _, p := range d.Sum.GetDataPoints() {
						ma.add(pointLabels(base, n, p.GetAttributes()), ms(p.GetTimeUnixNano()), numberValue(p))
					}
				case *metricspb.Metric_Histogram:
					if d.Histogram.GetAggregationTemporality() == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
						ma.res.rejected += len(d.Histogram.GetDataPoints())
						ma.res.msg = fmt.Sprintf("metric %q: delta temporality is not supported", m.GetName())
						continue
					}
					for _, p := range d.Histogram.GetDataPoints() {
						ma.classicHistogram(base, name, p)
					}
				case *metricspb.Metric_ExponentialHistogram:
					if d.ExponentialHistogram.GetAggregationTemporality() == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
						ma.res.rejected += len(d.ExponentialHistogram.GetDataPoints())
						ma.res.msg = fmt.Sprintf("metric %q: delta temporality is not supported", m.GetName())
						continue
					}
					for _, p := range d.ExponentialHistogram.GetDataPoints() {
						if err := nativeFromOTLP(&h, p); err != nil {
							ma.reject(fmt.Errorf("metric %q: %w", m.GetName(), err))
							continue
						}
						if _, err := ma.app.AppendHistogram(0, pointLabels(base, name, p.GetAttributes()), ms(p.GetTimeUnixNano()), &h); err != nil {
							ma.reject(err)
							continue
						}
						ma.res.histograms++
						ma.res.accepted++
					}
				case *metricspb.Metric_Summary:
					for _, p := range d.Summary.GetDataPoints() {
						t := ms(p.GetTimeUnixNano())
						for _, q := range p.GetQuantileValues() {
							ls := pointLabels(append(base, "quantile", strconv.FormatFloat(q.GetQuantile(), 'f', -1, 64)), name, p.GetAttributes())
							ma.add(ls, t, q.GetValue())
						}
						ma.add(pointLabels(base, name+"_sum", p.GetAttributes()), t, p.GetSum())
						ma.add(pointLabels(base, name+"_count", p.GetAttributes()), t, float64(p.GetCount()))
					}
				}
			}
		}
	}
	if err := ma.app.Commit(); err != nil {
		return ma.res, err
	}
	return ma.res, nil
}

func (m *metricAppender) classicHistogram(base []string, name string, p *metricspb.HistogramDataPoint) {
	t := ms(p.GetTimeUnixNano())
	bounds, counts := p.GetExplicitBounds(), p.GetBucketCounts()
	if len(counts) != 0 && len(counts) != len(bounds)+1 {
		m.reject(fmt.Errorf("metric %q: %d bucket counts for %d bounds", name, len(counts), len(bounds)))
		return
	}
	var cum uint64
	for i, c := range counts {
		cum += c
		le := "+Inf"
		if i < len(bounds) {
			le = strconv.FormatFloat(bounds[i], 'f', -1, 64)
		}
		m.add(pointLabels(append(base[:len(base):len(base)], "le", le), name+"_bucket", p.GetAttributes()), t, float64(cum))
	}
	if p.Sum != nil {
		m.add(pointLabels(base, name+"_sum", p.GetAttributes()), t, p.GetSum())
	}
	m.add(pointLabels(base, name+"_count", p.GetAttributes()), t, float64(p.GetCount()))
}

// nativeFromOTLP converts an exponential histogram point: OTLP bucket i of
// scale s covers (base^i, base^(i+1)], Prometheus' bucket i+1 of schema s.
// Scales above 8 are reduced to 8 by merging buckets; below -4 refused.
func nativeFromOTLP(h *tsdb.Histogram, p *metricspb.ExponentialHistogramDataPoint) error {
	scale := p.GetScale()
	if scale < -4 {
		return fmt.Errorf("%w: exponential histogram scale %d below -4", tsdb.ErrInvalidSample, scale)
	}
	reduce := int32(0)
	if scale > 8 {
		reduce, scale = scale-8, 8
	}
	*h = tsdb.Histogram{
		CounterResetHint: encoding.UnknownCounterReset,
		Schema:           scale,
		ZeroThreshold:    p.GetZeroThreshold(),
		ZeroCount:        p.GetZeroCount(),
		Count:            p.GetCount(),
		Sum:              p.GetSum(),
	}
	if p.Sum == nil {
		h.Sum = 0
	}
	if p.GetFlags()&uint32(metricspb.DataPointFlags_DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK) != 0 {
		h.Sum = staleNaN
	}
	h.PositiveSpans, h.PositiveBuckets = otlpBuckets(p.GetPositive(), reduce)
	h.NegativeSpans, h.NegativeBuckets = otlpBuckets(p.GetNegative(), reduce)
	if err := h.Validate(); err != nil {
		return fmt.Errorf("%w: %w", tsdb.ErrInvalidSample, err)
	}
	return nil
}

// otlpBuckets converts OTLP buckets to spans and delta-coded counts,
// merging 2^reduce neighbours into one.
func otlpBuckets(b *metricspb.ExponentialHistogramDataPoint_Buckets, reduce int32) ([]encoding.BucketSpan, []int64) {
	counts := b.GetBucketCounts()
	if len(counts) == 0 {
		return nil, nil
	}
	// Absolute Prometheus indexes and counts, merged.
	var idx []int32
	var cnt []uint64
	for i, c := range counts {
		k := (b.GetOffset() + int32(i)) >> reduce
		if len(idx) > 0 && idx[len(idx)-1] == k+1 {
			cnt[len(cnt)-1] += c
			continue
		}
		idx = append(idx, k+1)
		cnt = append(cnt, c)
	}
	var spans []encoding.BucketSpan
	var deltas []int64
	var prev int64
	next := int32(0)
	for i, k := range idx {
		if i == 0 {
			spans = append(spans, encoding.BucketSpan{Offset: k, Length: 1})
		} else if k == next {
			spans[len(spans)-1].Length++
		} else {
			spans = append(spans, encoding.BucketSpan{Offset: k - next, Length: 1})
		}
		next = k + 1
		deltas = append(deltas, int64(cnt[i])-prev)
		prev = int64(cnt[i])
	}
	return spans, deltas
}

func ms(ns uint64) int64 { return int64(ns / 1e6) }

func numberValue(p *metricspb.NumberDataPoint) float64 {
	if p.GetFlags()&uint32(metricspb.DataPointFlags_DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK) != 0 {
		return staleNaN
	}
	if _, ok := p.GetValue().(*metricspb.NumberDataPoint_AsInt); ok {
		return float64(p.GetAsInt())
	}
	return p.GetAsDouble()
}

// pointLabels builds a series' labels: base pairs, the point's attributes
// (sanitised names), and __name__.
func pointLabels(base []string, name string, attrs []*commonpb.KeyValue) tsdb.Labels {
	ss := make([]string, 0, len(base)+2*len(attrs)+2)
	for _, kv := range attrs {
		ss = append(ss, logql.SanitizeLabel(kv.GetKey()), anyString(kv.GetValue()))
	}
	ss = append(ss, base...)
	ss = append(ss, tsdb.MetricName, name)
	return tsdb.FromStrings(ss...)
}

// anyString renders an attribute value as a label value.
func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	}
	return valueFromOTLP(v).Text()
}

// sanitizeMetricName replaces characters outside [a-zA-Z0-9_:] with '_'
// and prefixes a leading digit with '_'.
func sanitizeMetricName(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	if s[0] >= '0' && s[0] <= '9' {
		b.WriteByte('_')
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
