package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/pillar-db/pillar"
	"github.com/pillar-db/pillar/bench/urlshortener"
	"github.com/pillar-db/pillar/query"
	"github.com/pillar-db/pillar/tracestore"
)

// demo writes the demo's hour of URL-shortener telemetry into one store
// and times the incident walk's queries.
func (r *runner) demo(ctx context.Context, dir string) error {
	r.progress("demo: generate", 0.1)
	db, err := pillar.Open(dir, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	cfg := urlshortener.DefaultConfig(start)
	t := time.Now()
	sum, err := urlshortener.Generate(ctx, db, cfg)
	if err != nil {
		return err
	}
	r.add("demo", "write one hour of the URL shortener", time.Since(t).Seconds(), "s",
		fmt.Sprintf("%d spans, %d log lines, %d samples", sum.Spans, sum.Logs, sum.Samples))
	budget := time.Duration(r.cfg.QuerySeconds * float64(time.Second))
	eng := query.NewEngine(db.Metrics(), query.Options{})
	r.progress("demo: queries", 0.5)
	p50, _, err := latencies(ctx, budget, func(int) error {
		_, err := eng.Range(ctx, `histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{service="redirect"}[1m])))`,
			start, start.Add(time.Hour), time.Minute)
		return err
	})
	if err != nil {
		return err
	}
	r.add("demo", "p99 per minute over the hour, p50", ms(p50), "ms", "")
	var found []tracestore.TraceSummary
	p50, _, err = latencies(ctx, budget, func(int) error {
		found, err = db.Traces().Find(ctx, tracestore.Query{Service: "redirect", MinDuration: 500 * time.Millisecond,
			Start: start.Add(cfg.IncidentStart).UnixNano(), End: start.Add(cfg.IncidentStart + cfg.IncidentLen).UnixNano(), Limit: 20})
		return err
	})
	if err != nil {
		return err
	}
	r.add("demo", "find slow traces in the incident, p50", ms(p50), "ms", "")
	if len(found) == 0 {
		return fmt.Errorf("no slow traces found in the incident window")
	}
	id := found[0].TraceID
	p50, _, err = latencies(ctx, budget, func(int) error {
		_, err := db.Logs().Search(ctx, "trace_id:"+id.String(), start.UnixNano(), start.Add(2*time.Hour).UnixNano(), 100)
		return err
	})
	if err != nil {
		return err
	}
	r.add("demo", "a trace's logs by trace_id, p50", ms(p50), "ms", "")
	r.add("demo", "store on disk after the hour", float64(db.DiskUsage())/(1<<20), "MiB", "before compaction")
	return nil
}
