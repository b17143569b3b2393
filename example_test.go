package pillar_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/pillar-db/pillar"
	"github.com/pillar-db/pillar/logindex"
	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tsdb"
)

// Embedding Pillar: one directory holds metrics, traces and logs.
func Example() {
	dir, _ := os.MkdirTemp("", "pillar-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := pillar.Open(dir, nil)
	if err != nil {
		panic(err)
	}
	defer db.Close()

	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	app := db.Metrics().Appender(ctx)
	_, _ = app.Append(0, tsdb.FromStrings("__name__", "http_requests_total", "job", "api"), now.UnixMilli(), 42)
	_ = app.Commit()

	trace := tracestore.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	_ = db.Traces().Write(ctx, []tracestore.Span{{
		TraceID: trace, SpanID: tracestore.SpanID{1}, Name: "GET /r",
		StartTime: now.UnixNano(), EndTime: now.Add(3 * time.Second).UnixNano(),
		Resource: tracestore.Resource{Attributes: []tracestore.KeyValue{{Key: "service.name", Value: tracestore.StringValue("redirect")}}},
	}})
	_ = db.Logs().Write(ctx, []logindex.Record{{
		Timestamp: now.UnixNano(), SeverityText: "ERROR", TraceID: trace,
		Body:     logindex.StringValue("slow query: SELECT destination FROM links"),
		Resource: []logindex.Attribute{{Key: "service.name", Value: logindex.StringValue("redirect")}},
	}})

	found, _ := db.Traces().Find(ctx, tracestore.Query{Service: "redirect", MinDuration: time.Second})
	hits, _ := db.Logs().Search(ctx, `"slow query" AND service:redirect`, 0, now.Add(time.Hour).UnixNano(), 10)
	fmt.Println(len(found), "slow trace;", len(hits), "log line:", hits[0].Body.Str)
	// Output: 1 slow trace; 1 log line: slow query: SELECT destination FROM links
}

// Background maintenance: retention, rollups and compaction run as jobs of
// a scheduler; Compact runs a pass now and Maintenance reports each job.
func Example_maintenance() {
	dir, _ := os.MkdirTemp("", "pillar-example")
	defer os.RemoveAll(dir)
	db, err := pillar.Open(dir, &pillar.Options{
		Retention:           15 * 24 * time.Hour, // drop what is older than 15 days
		DownsampleRetention: 90 * 24 * time.Hour, // keep 5 m and 1 h rollups for 90
		CompactionInterval:  time.Minute,
	})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if err := db.Compact(context.Background()); err != nil {
		panic(err)
	}
	for _, j := range db.Maintenance().Metrics().Jobs {
		fmt.Println(j.Name, j.Runs, j.Errors)
	}
	// Output:
	// metrics.compact 1 0
	// metrics.downsample 1 0
	// metrics.retention 1 0
	// metrics.rollup_retention 1 0
	// traces.close 1 0
	// traces.compact 1 0
	// traces.retention 1 0
	// logs.seal 1 0
	// logs.retention 1 0
}
