package tracestore

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/tsdb"
)

// Span metrics (RED: rate, errors, duration) derived from written spans,
// named as Tempo's metrics generator names them.
const (
	// CallsMetric counts spans per service, span name and status.
	CallsMetric = "traces_spanmetrics_calls_total"
	// DurationMetric is a native histogram of span durations in seconds.
	DurationMetric = "traces_spanmetrics_duration_seconds"
	// Labels of both metrics.
	LabelService    = "service"
	LabelSpanName   = "span_name"
	LabelStatusCode = "status_code"
)

// durationSchema is the exponential schema of the duration histogram:
// bucket boundaries grow by 2^(1/8), about 9% per bucket.
const durationSchema = 3

// zeroThreshold puts spans shorter than a nanosecond in the zero bucket.
const zeroThreshold = 1e-9

var statusNames = [...]string{"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"}

func statusName(c StatusCode) string {
	if int(c) < len(statusNames) {
		return statusNames[c]
	}
	return fmt.Sprintf("STATUS_CODE_%d", c)
}

// redSeries is the cumulative state of one (service, span name, status).
type redSeries struct {
	service, name string
	status        StatusCode
	calls         tsdb.Labels
	dur           tsdb.Labels
	callsRef      tsdb.SeriesRef
	durRef        tsdb.SeriesRef

	count      uint64
	sum        float64
	zero       uint64
	buckets    []bucketCount // sorted by index
	hist       encoding.Histogram
	lastExTime int64 // span start of the last exemplar kept
	haveEx     bool

	// Per-Write state, valid while gen equals the Write's generation.
	gen     uint64
	slowest int // index into the batch of the slowest span of this series
}

type bucketCount struct {
	idx int32
	n   uint64
}

// bucketIndex returns the schema-3 bucket of v > zeroThreshold: bucket i
// holds (2^((i-1)/8), 2^(i/8)].
func bucketIndex(v float64) int32 {
	frac, exp := math.Frexp(v) // v = frac * 2^exp, frac in [0.5, 1)
	// log2(v) = exp + log2(frac), log2(frac) in [-1, 0).
	return int32(math.Ceil((float64(exp) + math.Log2(frac)) * (1 << durationSchema)))
}

func (r *redSeries) observe(seconds float64) {
	r.count++
	r.sum += seconds
	if seconds <= zeroThreshold {
		r.zero++
		return
	}
	idx := bucketIndex(seconds)
	i, found := slices.BinarySearchFunc(r.buckets, idx, func(b bucketCount, t int32) int { return cmp.Compare(b.idx, t) })
	if !found {
		r.buckets = slices.Insert(r.buckets, i, bucketCount{idx: idx})
	}
	r.buckets[i].n++
}

// quantile estimates the q-quantile (seconds) as the upper bound of the
// bucket where it falls.
func (r *redSeries) quantile(q float64) float64 {
	rank := uint64(math.Ceil(q * float64(r.count)))
	seen := r.zero
	if seen >= rank {
		return zeroThreshold
	}
	for _, b := range r.buckets {
		seen += b.n
		if seen >= rank {
			return math.Exp2(float64(b.idx) / (1 << durationSchema))
		}
	}
	return math.Inf(1)
}

// histogram fills r.hist with the cumulative state and returns it.
func (r *redSeries) histogram() *encoding.Histogram {
	h := &r.hist
	h.Schema, h.ZeroThreshold, h.ZeroCount, h.Count, h.Sum = durationSchema, zeroThreshold, r.zero, r.count, r.sum
	h.PositiveSpans, h.PositiveBuckets = h.PositiveSpans[:0], h.PositiveBuckets[:0]
	var prevIdx int32
	var prevN int64
	for i, b := range r.buckets {
		switch {
		case i == 0:
			h.PositiveSpans = append(h.PositiveSpans, encoding.BucketSpan{Offset: b.idx, Length: 1})
		case b.idx == prevIdx+1:
			h.PositiveSpans[len(h.PositiveSpans)-1].Length++
		default:
			h.PositiveSpans = append(h.PositiveSpans, encoding.BucketSpan{Offset: b.idx - prevIdx - 1, Length: 1})
		}
		h.PositiveBuckets = append(h.PositiveBuckets, int64(b.n)-prevN)
		prevIdx, prevN = b.idx, int64(b.n)
	}
	return h
}

// redState holds every series; it is guarded by Store.wmu.
type redState struct {
	series map[string]*redSeries
	gen    uint64
	lastT  int64 // last sample timestamp (ms), so samples strictly increase
	key    []byte
}

func (s *Store) redSeriesFor(sp *Span, svc string) *redSeries {
	st := &s.red
	st.key = append(st.key[:0], svc...)
	st.key = append(st.key, 0)
	st.key = append(st.key, sp.Name...)
	st.key = append(st.key, 0, byte(sp.Status.Code))
	if r, ok := st.series[string(st.key)]; ok {
		return r
	}
	status := statusName(sp.Status.Code)
	r := &redSeries{
		service: svc, name: sp.Name, status: sp.Status.Code,
		calls: tsdb.FromStrings(tsdb.MetricName, CallsMetric, LabelService, svc, LabelSpanName, sp.Name, LabelStatusCode, status),
		dur:   tsdb.FromStrings(tsdb.MetricName, DurationMetric, LabelService, svc, LabelSpanName, sp.Name, LabelStatusCode, status),
	}
	st.series[string(st.key)] = r
	return r
}

// selectExemplars runs before the span batch commits: for every series
// the batch touches it picks the batch's slowest span and, when that span
// is at least the series' running p90 and ExemplarInterval has passed since
// the series' last exemplar, writes it to b. wmu must be held.
func (s *Store) selectExemplars(b *pebble.Batch, ws *writeScratch, spans []Span) error {
	st := &s.red
	st.gen++
	ws.touched = ws.touched[:0]
	for i := range spans {
		sp := &spans[i]
		r := s.redSeriesFor(sp, sp.Service())
		if r.gen != st.gen {
			r.gen, r.slowest = st.gen, i
			ws.touched = append(ws.touched, r)
		} else if sp.Duration() > spans[r.slowest].Duration() {
			r.slowest = i
		}
	}
	ws.exemplars = ws.exemplars[:0]
	for _, r := range ws.touched {
		sp := &spans[r.slowest]
		if r.haveEx && sp.StartTime-r.lastExTime < int64(s.opts.ExemplarInterval) && sp.StartTime >= r.lastExTime {
			continue
		}
		if r.count >= 10 && float64(sp.Duration())/1e9 < r.quantile(0.9) {
			continue
		}
		ws.key = keys.AppendTraceExemplarKey(ws.key[:0], r.service, r.name, sp.StartTime, sp.TraceID)
		ws.val = append(ws.val[:0], sp.SpanID[:]...)
		ws.val = binary.AppendUvarint(ws.val, uint64(sp.Duration()))
		ws.val = append(ws.val, byte(sp.Status.Code))
		if err := b.Set(ws.key, ws.val, nil); err != nil {
			return err
		}
		ws.exemplars = append(ws.exemplars, exemplarMark{r: r, t: sp.StartTime})
	}
	return nil
}

// recordMetrics runs after the span batch committed: it adds the batch to
// every touched series and appends one calls and one duration sample per
// series to Options.Metrics. wmu must be held.
func (s *Store) recordMetrics(ctx context.Context, ws *writeScratch, spans []Span) error {
	for _, m := range ws.exemplars {
		m.r.lastExTime, m.r.haveEx = m.t, true
	}
	for i := range spans {
		sp := &spans[i]
		r := s.redSeriesFor(sp, sp.Service())
		r.observe(float64(sp.Duration()) / 1e9)
	}
	t := s.opts.Now().UnixMilli()
	if t <= s.red.lastT {
		t = s.red.lastT + 1
	}
	s.red.lastT = t
	app := s.opts.Metrics.Appender(ctx)
	for _, r := range ws.touched {
		var err error
		if r.callsRef, err = app.Append(r.callsRef, r.calls, t, float64(r.count)); err != nil {
			return errors.Join(err, app.Rollback())
		}
		if r.durRef, err = app.AppendHistogram(r.durRef, r.dur, t, r.histogram()); err != nil {
			return errors.Join(err, app.Rollback())
		}
	}
	return app.Commit()
}

type exemplarMark struct {
	r *redSeries
	t int64
}

// Exemplar is a slow span kept for a (service, operation) so that a latency
// seen in the span metrics leads to traces.
type Exemplar struct {
	TraceID  TraceID
	SpanID   SpanID
	Time     int64 // span start, Unix ns
	Duration time.Duration
	Status   StatusCode
}

// Exemplars returns the exemplars of one service and span name whose span
// started in [start, end] (zero end: no bound), oldest first. Exemplars are
// kept only when Options.Metrics is set.
func (s *Store) Exemplars(ctx context.Context, service, operation string, start, end int64) ([]Exemplar, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	prefix := keys.AppendTraceExemplarPrefix(nil, service, operation)
	lo := keys.AppendInt64(append([]byte(nil), prefix...), start)
	hi := keys.PrefixEnd(prefix)
	if end != 0 && end < math.MaxInt64 {
		hi = keys.AppendInt64(append([]byte(nil), prefix...), end+1)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("tracestore: exemplars: %w", err)
	}
	var out []Exemplar
	for it.First(); it.Valid(); it.Next() {
		_, _, t, id, err := keys.ParseTraceExemplarKey(it.Key())
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("tracestore: exemplars: %w", err)
		}
		v := it.Value()
		ex := Exemplar{TraceID: id, Time: t}
		if len(v) < len(ex.SpanID)+2 {
			it.Close()
			return nil, corruptf("exemplar value of %d bytes", len(v))
		}
		copy(ex.SpanID[:], v)
		d, rest, err := encoding.Uvarint(v[len(ex.SpanID):])
		if err != nil || len(rest) != 1 {
			it.Close()
			return nil, corruptf("exemplar value %x", v)
		}
		ex.Duration, ex.Status = time.Duration(d), StatusCode(rest[0])
		out = append(out, ex)
	}
	return out, errors.Join(it.Error(), it.Close())
}
