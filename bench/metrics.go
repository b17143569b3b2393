package bench

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/pillar-db/pillar/bench/metricgen"
	"github.com/pillar-db/pillar/query"
	"github.com/pillar-db/pillar/tsdb"
)

// replayScrapes appends every scrape of w to db, one commit per scrape
// with cached refs, and returns the time it took less the time spent
// generating the samples. after, when not nil, runs after each commit with
// the scrape's index and timestamps.
func replayScrapes(ctx context.Context, db *tsdb.DB, w *metricgen.Workload, after func(k int, ts []int64)) (time.Duration, error) {
	n := w.NumSeries()
	labels := make([]tsdb.Labels, n)
	for i, ls := range w.Labels {
		labels[i] = tsdb.FromStrings(ls...)
	}
	refs := make([]tsdb.SeriesRef, n)
	ts, vs := make([]int64, n), make([]float64, n)
	var genTime time.Duration
	start := time.Now()
	for k := range w.Scrapes {
		g := time.Now()
		w.Scrape(k, ts, vs)
		genTime += time.Since(g)
		app := db.Appender(ctx)
		for i := range n {
			var err error
			if refs[i], err = app.Append(refs[i], labels[i], ts[i], vs[i]); err != nil {
				_ = app.Rollback()
				return 0, err
			}
		}
		if err := app.Commit(); err != nil {
			return 0, err
		}
		if after != nil {
			after(k, ts)
		}
	}
	return time.Since(start) - genTime, nil
}

// ingestMetrics appends every scrape of w as one commit with cached refs
// and reports samples/s, heap per series and disk bytes per sample.
func (r *runner) ingestMetrics(ctx context.Context, name, dir string, w *metricgen.Workload) (*tsdb.DB, error) {
	r.progress(name+": ingest "+w.String(), 0)
	heap0 := heapInUse()
	db, err := tsdb.Open(dir, nil)
	if err != nil {
		return nil, err
	}
	n := w.NumSeries()
	took, err := replayScrapes(ctx, db, w, func(k int, _ []int64) {
		if k%64 == 0 {
			r.progress(fmt.Sprintf("%s: ingest scrape %d/%d", name, k, w.Scrapes), float64(k)/float64(w.Scrapes)*0.6)
		}
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	samples := float64(w.NumSamples())
	r.add(name, "ingest, one commit per scrape", samples/took.Seconds(), "samples/s", w.String())
	r.add(name, "heap per series", float64(heapInUse()-min(heap0, heapInUse()))/float64(n), "B/series", "live heap after ingest, GC'd")

	r.progress(name+": close and compact", 0.65)
	if err := db.Close(); err != nil {
		return nil, err
	}
	closed, size, err := diskSizes(ctx, dir)
	if err != nil {
		return nil, err
	}
	r.add(name, "disk per sample, index included", float64(size)/samples, "B/sample", "live tables after a full compaction")
	r.add(name, "directory after Close, per sample", float64(closed)/samples, "B/sample", "with Pebble's write-ahead log files")
	return tsdb.Open(dir, nil)
}

// metrics runs the mixed workload: 5,300 series at 15 s, 6 h × scale.
func (r *runner) metrics(ctx context.Context, dir string) error {
	w := metricgen.Mix(1, 6*r.cfg.Scale, 1)
	db, err := r.ingestMetrics(ctx, "metrics", dir, w)
	if err != nil {
		return err
	}
	defer db.Close()
	end := time.UnixMilli(w.Start + int64(w.Scrapes)*w.Interval)
	start := end.Add(-time.Hour)
	budget := time.Duration(r.cfg.QuerySeconds * float64(time.Second))

	eq, _ := tsdb.NewMatcher(tsdb.MatchEqual, "__name__", "http_requests_total")
	re, _ := tsdb.NewMatcher(tsdb.MatchRegexp, "instance", "host-1.*")
	r.progress("metrics: select", 0.7)
	var selected int
	p50, p99, err := latencies(ctx, budget, func(int) error {
		q, err := db.Querier(start.UnixMilli(), end.UnixMilli())
		if err != nil {
			return err
		}
		defer q.Close()
		ss := q.Select(ctx, true, eq, re)
		var it tsdb.Iterator
		selected = 0
		for ss.Next() {
			it = ss.At().Iterator(it)
			for it.Next() != tsdb.ValNone {
				selected++
			}
		}
		return ss.Err()
	})
	if err != nil {
		return err
	}
	r.add("metrics", "select = and =~, last hour, p50", ms(p50), "ms", fmt.Sprintf("%d samples; p99 %.2f ms", selected, ms(p99)))

	eng := query.NewEngine(db, query.Options{})
	queries := []struct{ name, q string }{
		{"rate", `rate(http_requests_total[5m])`},
		{"sum by (instance) of rate", `sum by (instance) (rate(http_requests_total[5m]))`},
		{"histogram_quantile of summed rates", `histogram_quantile(0.99, sum by (le) (rate(request_duration_seconds_bucket[5m])))`},
		{"quantile_over_time", `quantile_over_time(0.99, memory_usage_ratio[5m])`},
	}
	for i, q := range queries {
		r.progress("metrics: "+q.name, 0.75+0.25*float64(i)/float64(len(queries)))
		var series int
		p50, p99, err := latencies(ctx, budget, func(int) error {
			m, err := eng.Range(ctx, q.q, start, end, 15*time.Second)
			series = len(m)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", q.q, err)
		}
		r.add("metrics", "1 h at 15 s: "+q.name+", p50", ms(p50), "ms", fmt.Sprintf("%d series; p99 %.1f ms", series, ms(p99)))
	}
	return nil
}

// tsbs runs the TSBS cpu-only shape: 100 × scale hosts × 10 fields at 10 s
// for 6 hours.
func (r *runner) tsbs(ctx context.Context, dir string) error {
	w := metricgen.CPUOnly(int(math.Max(1, 100*r.cfg.Scale)), 6, 2)
	db, err := r.ingestMetrics(ctx, "tsbs", dir, w)
	if err != nil {
		return err
	}
	defer db.Close()
	end := time.UnixMilli(w.Start + int64(w.Scrapes)*w.Interval)
	eng := query.NewEngine(db, query.Options{})
	budget := time.Duration(r.cfg.QuerySeconds * float64(time.Second))
	qs := []struct{ name, q string }{
		{"max per 5 min, 1 host, 1 field, 6 h", `max_over_time(cpu_usage_user{hostname="host_1"}[5m])`},
		{"hourly avg by host, 1 field, 6 h", `avg by (hostname) (avg_over_time(cpu_usage_user[1h]))`},
	}
	for i, q := range qs {
		r.progress("tsbs: "+q.name, 0.75+0.25*float64(i)/float64(len(qs)))
		p50, p99, err := latencies(ctx, budget, func(int) error {
			_, err := eng.Range(ctx, q.q, end.Add(-6*time.Hour), end, 5*time.Minute)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", q.q, err)
		}
		r.add("tsbs", q.name+", p50", ms(p50), "ms", fmt.Sprintf("p99 %.1f ms", ms(p99)))
	}
	return nil
}
