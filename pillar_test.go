package pillar

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/compaction"
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

// fillHours writes metrics, traces and logs over [t0, t0+hours h), in
// many small writes so every store has pieces for maintenance to merge.
func fillHours(t *testing.T, db *DB, hours int) {
	ctx := t.Context()
	const series = 10
	refs := make([]tsdb.SeriesRef, series)
	end := t0.Add(time.Duration(hours) * time.Hour)
	for ts := t0; ts.Before(end); ts = ts.Add(30 * time.Second) {
		app := db.Metrics().Appender(ctx)
		for i := range series {
			var err error
			refs[i], err = app.Append(refs[i], tsdb.FromStrings("__name__", "load", "i", fmt.Sprint(i)), ts.UnixMilli(), float64(ts.Unix()%1000+int64(i)))
			require.NoError(t, err)
		}
		require.NoError(t, app.Commit())
	}
	var spans []tracestore.Span
	var recs []logindex.Record
	for i, ts := 0, t0; ts.Before(end); i, ts = i+1, ts.Add(time.Minute) {
		spans = append(spans, tracestore.Span{
			TraceID: traceID(i), SpanID: tracestore.SpanID{1}, Name: "GET /r",
			StartTime: ts.UnixNano(), EndTime: ts.Add(time.Duration(i%50) * time.Millisecond).UnixNano(),
			Resource: tracestore.Resource{Attributes: []tracestore.KeyValue{{Key: "service.name", Value: tracestore.StringValue("svc")}}},
		})
		recs = append(recs, logindex.Record{
			Timestamp: ts.UnixNano(), SeverityText: "INFO", Resource: service("svc"),
			Body: logindex.StringValue(fmt.Sprintf("request %d served in %d ms", i, i%50)),
		})
		if len(spans) == 10 {
			require.NoError(t, db.Traces().Write(ctx, spans))
			require.NoError(t, db.Logs().Write(ctx, recs))
			spans, recs = spans[:0], recs[:0]
		}
	}
	if len(spans) > 0 {
		require.NoError(t, db.Traces().Write(ctx, spans))
		require.NoError(t, db.Logs().Write(ctx, recs))
	}
}

// snapshot is what queries find of fillHours' data over [from, to).
type snapshot struct {
	samples map[string][][2]float64
	traces  []string
	logs    []string
}

func takeSnapshot(t *testing.T, db *DB, from, to time.Time) snapshot {
	ctx := t.Context()
	s := snapshot{samples: map[string][][2]float64{}}
	q, err := db.Metrics().Querier(from.UnixMilli(), to.UnixMilli()-1)
	require.NoError(t, err)
	defer q.Close()
	name, err := tsdb.NewMatcher(tsdb.MatchEqual, "__name__", "load")
	require.NoError(t, err)
	ss := q.Select(ctx, true, name)
	for ss.Next() {
		it := ss.At().Iterator(nil)
		for it.Next() != tsdb.ValNone {
			ts, v := it.At()
			k := ss.At().Labels().String()
			s.samples[k] = append(s.samples[k], [2]float64{float64(ts), v})
		}
		require.NoError(t, it.Err())
	}
	require.NoError(t, ss.Err())
	found, err := db.Traces().Find(ctx, tracestore.Query{Service: "svc", Start: from.UnixNano(), End: to.UnixNano() - 1, Limit: 1 << 20})
	require.NoError(t, err)
	for _, f := range found {
		s.traces = append(s.traces, fmt.Sprintf("%x %d %d", f.TraceID, f.Start, f.SpanCount))
	}
	hits, err := db.Logs().Search(ctx, "served", from.UnixNano(), to.UnixNano(), 1<<20)
	require.NoError(t, err)
	for _, h := range hits {
		s.logs = append(s.logs, h.Body.Str)
	}
	return s
}

func TestMaintenancePassKeepsRetainedDataAndDropsTheRest(t *testing.T) {
	dir := t.TempDir()
	now := t0.Add(12 * time.Hour)
	clock := func() time.Time { return now }
	small := logindex.Options{FlushRecords: 40}
	db, err := Open(dir, &Options{DisableMaintenance: true, Now: clock, Logs: small})
	require.NoError(t, err)
	fillHours(t, db, 12)
	cut := t0.Add(6 * time.Hour)
	kept := takeSnapshot(t, db, cut, now)
	require.Len(t, kept.samples, 10)
	require.Len(t, kept.traces, 360)
	require.Len(t, kept.logs, 360)
	old := takeSnapshot(t, db, t0, cut)
	require.Len(t, old.logs, 360)
	// A pass without retention: rollups written, partitions sealed.
	require.NoError(t, db.Compact(t.Context()))
	positive := func(m compaction.Metrics, names ...string) {
		t.Helper()
		for _, name := range names {
			j, ok := m.Job(name)
			require.True(t, ok, name)
			require.Positive(t, j.Items, name)
		}
	}
	positive(db.Maintenance().Metrics(), "metrics.compact", "metrics.downsample", "logs.seal", "traces.close")
	seal, _ := db.Maintenance().Metrics().Job("logs.seal")
	require.Positive(t, seal.BytesIn)
	require.Positive(t, seal.BytesOut)
	require.Equal(t, kept, takeSnapshot(t, db, cut, now))
	require.Equal(t, old, takeSnapshot(t, db, t0, cut))
	require.NoError(t, db.Close())
	disk := dirSize(t, dir)

	db, err = Open(dir, &Options{DisableMaintenance: true, Now: clock, Logs: small, Retention: 6 * time.Hour})
	require.NoError(t, err)
	require.NoError(t, db.Compact(t.Context()))
	m := db.Maintenance().Metrics()
	require.Equal(t, uint64(1), m.Passes)
	for _, j := range m.Jobs {
		require.Equal(t, uint64(1), j.Runs, j.Name)
		require.Empty(t, j.LastError, j.Name)
	}
	// Traces and logs enforce their retention on Open already.
	positive(m, "metrics.retention")
	require.Equal(t, kept, takeSnapshot(t, db, cut, now))
	gone := takeSnapshot(t, db, t0, cut)
	require.Empty(t, gone.samples)
	require.Empty(t, gone.logs)
	require.Empty(t, gone.traces)

	// A second pass finds nothing more to drop; reopening finds the same.
	require.NoError(t, db.Compact(t.Context()))
	j, _ := db.Maintenance().Metrics().Job("metrics.retention")
	require.Equal(t, uint64(2), j.Runs)
	require.NoError(t, db.Close())
	// Retention dropped half the data and the pass compacted it away. At
	// this size fixed costs (series records, files) weigh more than in the
	// benchmark, where the drop is measured.
	after := dirSize(t, dir)
	t.Logf("directory %d bytes before the pass, %d after", disk, after)
	require.Less(t, float64(after), 0.75*float64(disk))
	db, err = Open(dir, &Options{DisableMaintenance: true, Now: clock, Logs: small})
	require.NoError(t, err)
	defer db.Close()
	require.Equal(t, kept, takeSnapshot(t, db, cut, now))
}

func TestBackgroundMaintenance(t *testing.T) {
	db, err := Open(t.TempDir(), &Options{CompactionInterval: 10 * time.Millisecond, CompactionConcurrency: 2})
	require.NoError(t, err)
	writeAll(t, db, 2, 30)
	require.Eventually(t, func() bool { return db.Maintenance().Metrics().Passes >= 2 }, 10*time.Second, 5*time.Millisecond)
	db.Maintenance().Pause()
	require.True(t, db.Maintenance().Metrics().Paused)
	checkAll(t, db, 2, 30)
	begin := time.Now()
	require.NoError(t, db.Close())
	require.Less(t, time.Since(begin), 5*time.Second)
	for _, j := range db.Maintenance().Metrics().Jobs {
		require.Zero(t, j.Errors, "%s: %s", j.Name, j.LastError)
	}
}

func TestMaintenanceOptions(t *testing.T) {
	for _, o := range []Options{{Retention: -1}, {CompactionInterval: -1}, {CompactionConcurrency: -1}, {LateWindow: -1}, {DownsampleRetention: -1}} {
		_, err := Open(t.TempDir(), &o)
		require.ErrorIs(t, err, ErrOptions, "%+v", o)
	}
	db, err := Open(t.TempDir(), &Options{DisableMaintenance: true})
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	require.Zero(t, db.Maintenance().Metrics().Passes, "no background pass")
	require.NoError(t, db.Close())
	require.ErrorIs(t, db.Compact(t.Context()), compaction.ErrClosed)
}

// dirSize returns the bytes of the files in dir.
func dirSize(t *testing.T, dir string) int64 {
	var n int64
	require.NoError(t, filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	}))
	return n
}

const crashChildEnv = "PILLAR_MAINTENANCE_CRASH_DIR"

// crashOptions are the options of the crash test's child: maintenance
// with six hours of retention, twelve hours after t0.
func crashOptions(retention time.Duration) *Options {
	now := t0.Add(12 * time.Hour)
	return &Options{DisableMaintenance: true, DisableSpanMetrics: true, Retention: retention, Now: func() time.Time { return now },
		Logs: logindex.Options{FlushRecords: 40}}
}

// TestMaintenanceCrashChild is the child of TestMaintenanceKill9: in a
// loop it writes late items (log records into sealed partitions, spans
// into closed ones, samples of a new series, and samples past retention
// that the next pass drops), prints each acknowledged one, and runs a
// maintenance pass, until it is killed.
func TestMaintenanceCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestMaintenanceKill9")
	}
	round := os.Getenv(crashChildEnv + "_ROUND")
	db, err := Open(dir, crashOptions(6*time.Hour))
	if err != nil {
		fmt.Println("open error:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	late := tsdb.FromStrings("__name__", "late", "round", round)
	old := tsdb.FromStrings("__name__", "old", "round", round)
	var ref, oldRef tsdb.SeriesRef
	fail := func(what string, err error) {
		fmt.Println(what, "error:", err)
		os.Exit(3)
	}
	for k := 0; ; k++ {
		ts := t0.Add(7*time.Hour + time.Duration(k)*time.Second)
		if err := db.Logs().Write(ctx, []logindex.Record{{Timestamp: ts.UnixNano(), SeverityText: "WARN", Resource: service("late"),
			Body: logindex.StringValue(fmt.Sprintf("late record r%sk%d", round, k))}}); err != nil {
			fail("log", err)
		}
		fmt.Println("ack log", k)
		id := traceID(100000 + k)
		id[1] = round[0]
		if err := db.Traces().Write(ctx, []tracestore.Span{{TraceID: id, SpanID: tracestore.SpanID{2}, Name: "late",
			StartTime: ts.UnixNano(), EndTime: ts.Add(time.Millisecond).UnixNano(),
			Resource: tracestore.Resource{Attributes: []tracestore.KeyValue{{Key: "service.name", Value: tracestore.StringValue("late")}}}}}); err != nil {
			fail("span", err)
		}
		fmt.Println("ack span", k)
		app := db.Metrics().Appender(ctx)
		if ref, err = app.Append(ref, late, t0.Add(6*time.Hour+time.Duration(k)*15*time.Second).UnixMilli(), float64(k)); err != nil {
			fail("append", err)
		}
		// Past retention: the next pass drops it.
		if oldRef, err = app.Append(oldRef, old, t0.Add(time.Hour+time.Duration(k)*15*time.Second).UnixMilli(), float64(k)); err != nil {
			fail("append", err)
		}
		if err := app.Commit(); err != nil {
			fail("commit", err)
		}
		fmt.Println("ack metric", k)
		if k%4 == 3 {
			if err := db.Logs().Flush(ctx); err != nil {
				fail("flush", err)
			}
			if err := db.Metrics().Flush(ctx); err != nil {
				fail("flush", err)
			}
			if err := db.Compact(ctx); err != nil {
				fail("compact", err)
			}
			fmt.Println("pass", k)
		}
	}
}

// TestMaintenanceKill9 kills the child with SIGKILL at random moments,
// most of them inside maintenance passes, several rounds on the same
// directory, and checks after each that the seed data inside retention
// reads back exactly as before, and every acknowledged late item is there
// once.
func TestMaintenanceKill9(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("child")
	}
	dir := t.TempDir()
	db, err := Open(dir, crashOptions(0))
	require.NoError(t, err)
	fillHours(t, db, 12)
	now, cut := t0.Add(12*time.Hour), t0.Add(6*time.Hour)
	want := takeSnapshot(t, db, cut, now)
	require.NoError(t, db.Close())

	r := rand.New(rand.NewPCG(7, 7))
	passes := 0
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMaintenanceCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s_ROUND=%d", crashChildEnv, round))
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		acked := map[string]int{} // kind → items acknowledged
		note := func(l string) {
			f := strings.Fields(l)
			switch {
			case len(f) == 3 && f[0] == "ack":
				k, err := strconv.Atoi(f[2])
				require.NoError(t, err)
				acked[f[1]] = k + 1
			case len(f) == 2 && f[0] == "pass":
				passes++
			case strings.Contains(l, "error"):
				t.Fatalf("round %d child: %s", round, l)
			}
		}
		deadline := time.After(time.Duration(300+r.IntN(1200)) * time.Millisecond)
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				note(l)
			case <-deadline:
				require.NoError(t, cmd.Process.Kill())
				for l := range lines {
					note(l)
				}
				break read
			}
		}
		_ = cmd.Wait()

		db, err := Open(dir, crashOptions(0))
		require.NoError(t, err, "round %d: a crash never leaves a store that fails to open", round)
		ctx := t.Context()
		require.Equal(t, want, takeSnapshot(t, db, cut, now), "round %d: data inside retention changed", round)
		hits, err := db.Logs().Search(ctx, "late AND record", 0, 1<<62, 1<<20)
		require.NoError(t, err)
		seen := map[string]int{}
		for _, h := range hits {
			seen[h.Body.Str]++
		}
		for k := range acked["log"] {
			require.Equal(t, 1, seen[fmt.Sprintf("late record r%dk%d", round, k)], "round %d: log %d", round, k)
		}
		for k := range acked["span"] {
			id := traceID(100000 + k)
			id[1] = fmt.Sprint(round)[0]
			tr, err := db.Traces().Trace(ctx, id)
			require.NoError(t, err, "round %d: span %d", round, k)
			require.Len(t, tr.Spans, 1, "round %d: span %d", round, k)
		}
		q, err := db.Metrics().Querier(0, now.UnixMilli())
		require.NoError(t, err)
		m, err := tsdb.NewMatcher(tsdb.MatchEqual, "round", fmt.Sprint(round))
		require.NoError(t, err)
		name, err := tsdb.NewMatcher(tsdb.MatchEqual, "__name__", "late")
		require.NoError(t, err)
		ss := q.Select(ctx, true, m, name)
		var got []float64
		for ss.Next() {
			it := ss.At().Iterator(nil)
			for it.Next() != tsdb.ValNone {
				_, v := it.At()
				got = append(got, v)
			}
			require.NoError(t, it.Err())
		}
		require.NoError(t, ss.Err())
		require.GreaterOrEqual(t, len(got), acked["metric"], "round %d: acknowledged samples lost", round)
		for i, v := range got {
			require.Equal(t, float64(i), v, "round %d: sample %d lost or repeated", round, i)
		}
		require.NoError(t, q.Close())
		require.NoError(t, db.Close())
		t.Logf("round %d: %v acknowledged, all found once", round, acked)
	}
	require.Positive(t, passes, "the child ran maintenance passes")
}

// Chunk drops, which rewrite the metrics' key range, run once the
// retention cutoff has moved on by an eighth of the retention.
func TestMetricRetentionRunsInSteps(t *testing.T) {
	var mu sync.Mutex
	now := t0.Add(12 * time.Hour)
	db, err := Open(t.TempDir(), &Options{DisableMaintenance: true, Retention: 8 * time.Hour,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	require.NoError(t, err)
	defer db.Close()
	fillHours(t, db, 12)
	advance := func(d time.Duration) int64 {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
		require.NoError(t, db.Compact(t.Context()))
		j, _ := db.Maintenance().Metrics().Job("metrics.retention")
		return j.Items
	}
	first := advance(0)
	require.Positive(t, first, "the first pass drops")
	require.Equal(t, first, advance(30*time.Minute), "half a step: nothing dropped")
	require.Greater(t, advance(90*time.Minute), first, "past a step and a window: the next window goes")
	got := takeSnapshot(t, db, t0, t0.Add(12*time.Hour))
	for k, s := range got.samples {
		require.Equal(t, float64(t0.Add(6*time.Hour).UnixMilli()), s[0][0], k)
	}
}
