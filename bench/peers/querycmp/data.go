// Package querycmp compares Pillar's PromQL engine (package query over
// Pillar's tsdb) with Prometheus' own engine over Prometheus' TSDB, on the
// same data: a differential test of the numbers and side-by-side
// benchmarks.
package querycmp

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/tsdb"
)

// floatSeries is one generated float series.
type floatSeries struct {
	labels []string // name, value pairs
	ts     []int64
	vs     []float64
}

// histSeries is one generated native-histogram series.
type histSeries struct {
	labels []string
	ts     []int64
	hs     []*histogram.Histogram
}

// dataset is the same data for both stores.
type dataset struct {
	floats []floatSeries
	hists  []histSeries
}

// classicBounds are the `le` bounds of the generated classic histograms.
var classicBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, math.Inf(1)}

func formatLe(b float64) string {
	if math.IsInf(b, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(b, 'f', -1, 64)
}

// randomDataset generates, from seed, every shape the engines must agree
// on: counters with resets, gaps and staleness markers, 2-decimal gauges
// (some negative, an occasional NaN), constants, classic histograms with
// resets, and native histograms (counter and gauge) with resets and
// changing bucket layouts. Samples are every ~15 s with jitter from t0 for
// dur milliseconds.
func randomDataset(seed uint64, t0, dur int64) *dataset {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	d := &dataset{}
	times := func() []int64 {
		var ts []int64
		for t := t0 + r.Int64N(15000); t < t0+dur; t += 15000 + r.Int64N(4000) - 2000 {
			if r.Float64() < 0.05 { // gap
				continue
			}
			ts = append(ts, t)
		}
		return ts
	}
	for _, job := range []string{"a", "b"} {
		for inst := range 4 {
			in := strconv.Itoa(inst)
			// Counter.
			c := floatSeries{labels: []string{"__name__", "c_total", "job", job, "instance", in}}
			v := float64(r.IntN(100))
			staleAt := -1
			if inst == 1 {
				staleAt = 150
			}
			for i, t := range times() {
				if i == staleAt {
					c.ts = append(c.ts, t)
					c.vs = append(c.vs, math.Float64frombits(value.StaleNaN))
					continue
				}
				if staleAt >= 0 && i > staleAt && i < staleAt+30 {
					continue // gone for a while after the marker
				}
				if r.Float64() < 0.03 {
					v = float64(r.IntN(5))
				} else {
					v += float64(r.IntN(10))
				}
				c.ts = append(c.ts, t)
				c.vs = append(c.vs, v)
			}
			d.floats = append(d.floats, c)
			// Gauge.
			g := floatSeries{labels: []string{"__name__", "g", "job", job, "instance", in}}
			gv := float64(r.IntN(200)-100) / 10
			for _, t := range times() {
				gv = math.Round((gv+r.NormFloat64())*100) / 100
				x := gv
				if r.Float64() < 0.002 {
					x = math.NaN()
				}
				g.ts = append(g.ts, t)
				g.vs = append(g.vs, x)
			}
			d.floats = append(d.floats, g)
			// Classic histogram: cumulative buckets, _sum and _count.
			ts := times()
			counts := make([]float64, len(classicBounds))
			sum := 0.0
			bs := make([]floatSeries, len(classicBounds))
			for i, b := range classicBounds {
				bs[i] = floatSeries{labels: []string{"__name__", "h_bucket", "job", job, "instance", in, "le", formatLe(b)}}
			}
			hs := floatSeries{labels: []string{"__name__", "h_sum", "job", job, "instance", in}}
			hc := floatSeries{labels: []string{"__name__", "h_count", "job", job, "instance", in}}
			for _, t := range ts {
				if r.Float64() < 0.02 {
					clear(counts)
					sum = 0
				}
				for range r.IntN(20) {
					obs := math.Exp(r.NormFloat64()*1.5 - 2)
					sum += obs
					for i, b := range classicBounds {
						if obs <= b {
							counts[i]++
						}
					}
				}
				for i := range bs {
					bs[i].ts = append(bs[i].ts, t)
					bs[i].vs = append(bs[i].vs, counts[i])
				}
				hs.ts, hs.vs = append(hs.ts, t), append(hs.vs, sum)
				hc.ts, hc.vs = append(hc.ts, t), append(hc.vs, counts[len(counts)-1])
			}
			d.floats = append(d.floats, bs...)
			d.floats = append(d.floats, hs, hc)
			// Native histogram (counter).
			d.hists = append(d.hists, nativeSeries(r, []string{"__name__", "nh", "job", job, "instance", in}, times(), int32(inst%4), false))
		}
		// Constant and a gauge native histogram per job.
		k := floatSeries{labels: []string{"__name__", "const", "job", job}}
		for _, t := range times() {
			k.ts, k.vs = append(k.ts, t), append(k.vs, 42)
		}
		d.floats = append(d.floats, k)
		d.hists = append(d.hists, nativeSeries(r, []string{"__name__", "nhg", "job", job}, times(), 1, true))
	}
	return d
}

// nativeSeries generates a native histogram series with integer counts.
func nativeSeries(r *rand.Rand, ls []string, ts []int64, schema int32, gauge bool) histSeries {
	s := histSeries{labels: ls}
	const nb = 16
	pos := make([]int64, nb) // absolute counts for bucket indexes 0..nb-1 (offset -4)
	neg := make([]int64, 4)
	var zero uint64
	sum := 0.0
	for _, t := range ts {
		if gauge {
			clear(pos)
			clear(neg)
			zero = 0
			sum = 0
		} else if r.Float64() < 0.02 {
			clear(pos)
			clear(neg)
			zero = 0
			sum = 0
		}
		for range r.IntN(15) {
			switch x := r.IntN(20); {
			case x == 0:
				zero++
			case x == 1:
				i := r.IntN(len(neg))
				neg[i]++
				sum -= math.Exp2(float64(i))
			default:
				i := r.IntN(nb)
				pos[i]++
				sum += math.Exp2(float64(i-4) / math.Exp2(float64(schema)))
			}
		}
		h := &histogram.Histogram{
			Schema:        schema,
			ZeroThreshold: 0.001,
			ZeroCount:     zero,
			Sum:           sum,
		}
		if gauge {
			h.CounterResetHint = histogram.GaugeType
		}
		var count uint64 = zero
		h.PositiveSpans, h.PositiveBuckets, count = spansOf(pos, -4, count)
		h.NegativeSpans, h.NegativeBuckets, count = spansOf(neg, 0, count)
		h.Count = count
		s.ts = append(s.ts, t)
		s.hs = append(s.hs, h)
	}
	return s
}

// spansOf encodes absolute counts at indexes offset.. as one span with
// delta-coded buckets (empty buckets kept so the layout is fixed).
func spansOf(abs []int64, offset int32, count uint64) ([]histogram.Span, []int64, uint64) {
	spans := []histogram.Span{{Offset: offset, Length: uint32(len(abs))}}
	deltas := make([]int64, len(abs))
	var prev int64
	for i, c := range abs {
		deltas[i] = c - prev
		prev = c
		count += uint64(c)
	}
	return spans, deltas, count
}

func toPillarHistogram(h *histogram.Histogram) *encoding.Histogram {
	e := &encoding.Histogram{
		CounterResetHint: encoding.CounterResetHint(h.CounterResetHint),
		Schema:           h.Schema,
		ZeroThreshold:    h.ZeroThreshold,
		ZeroCount:        h.ZeroCount,
		Count:            h.Count,
		Sum:              h.Sum,
		PositiveBuckets:  append([]int64(nil), h.PositiveBuckets...),
		NegativeBuckets:  append([]int64(nil), h.NegativeBuckets...),
	}
	for _, s := range h.PositiveSpans {
		e.PositiveSpans = append(e.PositiveSpans, encoding.BucketSpan{Offset: s.Offset, Length: s.Length})
	}
	for _, s := range h.NegativeSpans {
		e.NegativeSpans = append(e.NegativeSpans, encoding.BucketSpan{Offset: s.Offset, Length: s.Length})
	}
	return e
}

// span returns the first and last sample time in d.
func (d *dataset) span() (int64, int64) {
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range d.floats {
		if len(s.ts) > 0 {
			lo, hi = min(lo, s.ts[0]), max(hi, s.ts[len(s.ts)-1])
		}
	}
	for _, s := range d.hists {
		if len(s.ts) > 0 {
			lo, hi = min(lo, s.ts[0]), max(hi, s.ts[len(s.ts)-1])
		}
	}
	return lo, hi
}

// inTimeOrder calls batch once per 5-minute slice of time, and inside it
// float(i, j) / hist(i, j) for sample j of series i, so every store sees the
// data roughly in time order as a scraper would write it (Prometheus'
// head refuses samples far behind its newest).
func (d *dataset) inTimeOrder(batch func(fn func(float func(i, j int) error, hist func(i, j int) error) error) error) error {
	lo, hi := d.span()
	fc := make([]int, len(d.floats))
	hc := make([]int, len(d.hists))
	const slice = 5 * 60 * 1000
	for end := lo + slice; end-slice <= hi; end += slice {
		err := batch(func(float func(i, j int) error, hist func(i, j int) error) error {
			for i := range d.floats {
				s := &d.floats[i]
				for ; fc[i] < len(s.ts) && s.ts[fc[i]] < end; fc[i]++ {
					if err := float(i, fc[i]); err != nil {
						return err
					}
				}
			}
			for i := range d.hists {
				s := &d.hists[i]
				for ; hc[i] < len(s.ts) && s.ts[hc[i]] < end; hc[i]++ {
					if err := hist(i, hc[i]); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// loadPrometheus appends d to a Prometheus TSDB.
func (d *dataset) loadPrometheus(db *promtsdb.DB) error {
	fl := make([]labels.Labels, len(d.floats))
	for i, s := range d.floats {
		fl[i] = labels.FromStrings(s.labels...)
	}
	hl := make([]labels.Labels, len(d.hists))
	for i, s := range d.hists {
		hl[i] = labels.FromStrings(s.labels...)
	}
	fref := make([]storage.SeriesRef, len(d.floats))
	href := make([]storage.SeriesRef, len(d.hists))
	return d.inTimeOrder(func(fn func(float func(i, j int) error, hist func(i, j int) error) error) error {
		app := db.Appender(context.Background())
		err := fn(func(i, j int) error {
			var err error
			fref[i], err = app.Append(fref[i], fl[i], d.floats[i].ts[j], d.floats[i].vs[j])
			return err
		}, func(i, j int) error {
			var err error
			href[i], err = app.AppendHistogram(href[i], hl[i], d.hists[i].ts[j], d.hists[i].hs[j], nil)
			return err
		})
		if err != nil {
			_ = app.Rollback()
			return fmt.Errorf("prometheus append: %w", err)
		}
		return app.Commit()
	})
}

// loadPillar appends d to a Pillar tsdb.
func (d *dataset) loadPillar(db *tsdb.DB) error {
	fl := make([]tsdb.Labels, len(d.floats))
	for i, s := range d.floats {
		fl[i] = tsdb.FromStrings(s.labels...)
	}
	hl := make([]tsdb.Labels, len(d.hists))
	for i, s := range d.hists {
		hl[i] = tsdb.FromStrings(s.labels...)
	}
	fref := make([]tsdb.SeriesRef, len(d.floats))
	href := make([]tsdb.SeriesRef, len(d.hists))
	return d.inTimeOrder(func(fn func(float func(i, j int) error, hist func(i, j int) error) error) error {
		app := db.Appender(context.Background())
		err := fn(func(i, j int) error {
			var err error
			fref[i], err = app.Append(fref[i], fl[i], d.floats[i].ts[j], d.floats[i].vs[j])
			return err
		}, func(i, j int) error {
			var err error
			href[i], err = app.AppendHistogram(href[i], hl[i], d.hists[i].ts[j], toPillarHistogram(d.hists[i].hs[j]))
			return err
		})
		if err != nil {
			_ = app.Rollback()
			return fmt.Errorf("pillar append: %w", err)
		}
		return app.Commit()
	})
}
