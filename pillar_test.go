package pillar

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/logindex"
	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tsdb"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func service(name string) []logindex.Attribute {
	return []logindex.Attribute{{Key: "service.name", Value: logindex.StringValue(name)}}
}

func traceID(i int) tracestore.TraceID {
	var id tracestore.TraceID
	id[0] = 1
	id[15] = byte(i)
	id[14] = byte(i >> 8)
	return id
}

// writeAll writes n items to each store from several goroutines at once.
func writeAll(t *testing.T, db *DB, writers, n int) {
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, writers*3)
	for w := range writers {
		wg.Add(3)
		go func() {
			defer wg.Done()
			l := tsdb.FromStrings("__name__", "requests_total", "writer", fmt.Sprint(w))
			var ref tsdb.SeriesRef
			for i := range n {
				app := db.Metrics().Appender(ctx)
				var err error
				if ref, err = app.Append(ref, l, t0.UnixMilli()+int64(i)*15_000, float64(i)); err != nil {
					errs <- err
					return
				}
				if err := app.Commit(); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range n {
				id := traceID(w*n + i)
				err := db.Traces().Write(ctx, []tracestore.Span{{
					TraceID: id, SpanID: tracestore.SpanID{1, byte(i)}, Name: "GET /r",
					StartTime: t0.UnixNano() + int64(i)*int64(time.Second), EndTime: t0.UnixNano() + int64(i+1)*int64(time.Second),
					Resource: tracestore.Resource{Attributes: []tracestore.KeyValue{{Key: "service.name", Value: tracestore.StringValue(fmt.Sprint("svc", w))}}},
				}})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range n {
				err := db.Logs().Write(ctx, []logindex.Record{{
					Timestamp: t0.UnixNano() + int64(i)*int64(time.Second), SeverityText: "INFO",
					Body:     logindex.StringValue(fmt.Sprintf("request %d served by writer%d", i, w)),
					Resource: service(fmt.Sprint("svc", w)),
				}})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// checkAll asserts every item written by writeAll is readable.
func checkAll(t *testing.T, db *DB, writers, n int) {
	ctx := t.Context()
	q, err := db.Metrics().Querier(t0.UnixMilli(), t0.Add(24*time.Hour).UnixMilli())
	require.NoError(t, err)
	defer q.Close()
	m, err := tsdb.NewMatcher(tsdb.MatchEqual, "__name__", "requests_total")
	require.NoError(t, err)
	ss := q.Select(ctx, true, m)
	series := 0
	for ss.Next() {
		series++
		it := ss.At().Iterator(nil)
		samples := 0
		for it.Next() != tsdb.ValNone {
			_, v := it.At()
			require.Equal(t, float64(samples), v)
			samples++
		}
		require.NoError(t, it.Err())
		require.Equal(t, n, samples, "series %s", ss.At().Labels())
	}
	require.NoError(t, ss.Err())
	require.Equal(t, writers, series)

	for w := range writers {
		for i := range n {
			tr, err := db.Traces().Trace(ctx, traceID(w*n+i))
			require.NoError(t, err)
			require.Len(t, tr.Spans, 1)
		}
		hits, err := db.Logs().Search(ctx, fmt.Sprintf("served AND writer%d", w), 0, t0.Add(time.Hour).UnixNano(), 10*n)
		require.NoError(t, err)
		require.Len(t, hits, n)
	}
	svcs, err := db.Traces().Services(ctx)
	require.NoError(t, err)
	require.Len(t, svcs, writers)
}

func TestOneDirectoryThreeStores(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, nil)
	require.NoError(t, err)
	const writers, n = 4, 50
	writeAll(t, db, writers, n)
	checkAll(t, db, writers, n)
	require.NoError(t, db.Close())

	// Everything comes back from the one directory after reopening.
	db, err = Open(dir, &Options{SyncWrites: true})
	require.NoError(t, err)
	defer db.Close()
	checkAll(t, db, writers, n)
	require.Greater(t, db.DiskUsage(), uint64(0))
}

func TestOpenBadDirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "not-a-dir")
	require.NoError(t, os.WriteFile(f, []byte("x"), 0o644))
	_, err := Open(f, nil)
	require.Error(t, err)
}

func TestOpenRejectsBadOptions(t *testing.T) {
	_, err := Open(t.TempDir(), &Options{Metrics: tsdb.Options{OutOfOrderWindow: -time.Second}})
	require.Error(t, err)
}

func TestQueryWhileWriting(t *testing.T) {
	db, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer db.Close()
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.Logs().Search(ctx, "served", 0, t0.Add(time.Hour).UnixNano(), 5); err != nil {
				t.Error(err)
				return
			}
			if _, err := db.Traces().Find(ctx, tracestore.Query{Limit: 5}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	writeAll(t, db, 2, 30)
	close(stop)
	wg.Wait()
	checkAll(t, db, 2, 30)
}

// Spans written through the shared store show up as RED metrics: a call
// counter and a native duration histogram per service and operation, whose
// p99 leads to the slow span's trace through an exemplar.
func TestSpanMetricsFlowIntoMetrics(t *testing.T) {
	now := t0
	db, err := Open(t.TempDir(), &Options{Traces: tracestore.Options{Now: func() time.Time { return now }}})
	require.NoError(t, err)
	defer db.Close()
	ctx := t.Context()
	for i := range 20 {
		d := 10 * time.Millisecond
		if i == 19 {
			d = 3 * time.Second
		}
		start := t0.Add(time.Duration(i) * time.Second)
		require.NoError(t, db.Traces().Write(ctx, []tracestore.Span{{
			TraceID: traceID(i), SpanID: tracestore.SpanID{1}, Name: "GET /r",
			StartTime: start.UnixNano(), EndTime: start.Add(d).UnixNano(),
			Resource: tracestore.Resource{Attributes: []tracestore.KeyValue{{Key: "service.name", Value: tracestore.StringValue("redirect")}}},
		}}))
		now = now.Add(time.Second)
	}
	q, err := db.Metrics().Querier(t0.UnixMilli(), now.UnixMilli())
	require.NoError(t, err)
	defer q.Close()
	m, err := tsdb.NewMatcher(tsdb.MatchEqual, "__name__", tracestore.CallsMetric)
	require.NoError(t, err)
	ss := q.Select(ctx, true, m)
	require.True(t, ss.Next())
	require.Equal(t, "redirect", ss.At().Labels().Get("service"))
	it := ss.At().Iterator(nil)
	var last float64
	for it.Next() != tsdb.ValNone {
		_, last = it.At()
	}
	require.Equal(t, 20.0, last)
	require.False(t, ss.Next())

	m, err = tsdb.NewMatcher(tsdb.MatchEqual, "__name__", tracestore.DurationMetric)
	require.NoError(t, err)
	ss = q.Select(ctx, true, m)
	require.True(t, ss.Next())
	it = ss.At().Iterator(nil)
	var h *tsdb.Histogram
	for vt := it.Next(); vt != tsdb.ValNone; vt = it.Next() {
		require.Equal(t, tsdb.ValHistogram, vt)
		_, h = it.AtHistogram(h)
	}
	require.Equal(t, uint64(20), h.Count)

	ex, err := db.Traces().Exemplars(ctx, "redirect", "GET /r", 0, 0)
	require.NoError(t, err)
	require.NotEmpty(t, ex)
	require.Equal(t, traceID(19), ex[len(ex)-1].TraceID)
}

func TestSpanMetricsCanBeDisabled(t *testing.T) {
	db, err := Open(t.TempDir(), &Options{DisableSpanMetrics: true})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Traces().Write(t.Context(), []tracestore.Span{{
		TraceID: traceID(1), SpanID: tracestore.SpanID{1}, Name: "x", StartTime: 1, EndTime: 2,
	}}))
	require.Zero(t, db.Metrics().Stats().Series)
}
