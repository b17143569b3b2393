package tracestore_test

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/internal/kv"
	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tracestore/tracegen"
)

// Benchmarks run on the tracegen workload (10 services, 5–50 spans per
// trace, 11 attributes per span, fixed seed). TRACESTORE_BENCH_SPANS sets
// how many spans the query benchmarks store first (default 1,000,000).

const batchSpans = 1000

// genBatches pre-generates about n spans in Write-sized batches.
func genBatches(n int, interval time.Duration) ([][]tracestore.Span, int) {
	g := tracegen.New(tracegen.Config{Interval: interval})
	var out [][]tracestore.Span
	total := 0
	for total < n {
		b := g.Batch(make([]tracestore.Span, 0, batchSpans+50), batchSpans)
		out = append(out, b)
		total += len(b)
	}
	return out, total
}

// startHeapPeak samples the live heap every 20 ms; the returned func stops
// sampling and returns the peak in MiB above the heap in use at the start
// (which holds the pre-generated workload).
func startHeapPeak() func() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		close(stop)
		<-done
		return float64(peak.Load()-min(base, peak.Load())) / (1 << 20)
	}
}

// BenchmarkIngest measures Write throughput with every index on, in
// batches of ~1000 spans, and the peak heap while ingesting.
func BenchmarkIngest(b *testing.B) {
	batches, _ := genBatches(400_000, time.Millisecond)
	st, err := tracestore.Open(b.TempDir(), nil)
	require.NoError(b, err)
	defer st.Close()
	ctx := context.Background()
	heap := startHeapPeak()
	spans, i := 0, 0
	start, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		batch := batches[i%len(batches)]
		if i >= len(batches) { // past the pre-generated data: new trace IDs
			for j := range batch {
				batch[j].TraceID[0]++
			}
		}
		require.NoError(b, st.Write(ctx, batch))
		spans += len(batch)
		i++
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	peak := heap()
	b.ReportMetric(float64(spans)/el.Seconds(), "spans/s")
	if cpu > 0 {
		b.ReportMetric(float64(spans)/cpu.Seconds(), "spans/cpu-s")
	}
	b.ReportMetric(peak, "peak-heap-MB")
}

// BenchmarkIngestParallel is BenchmarkIngest with one writer per core:
// writers encode their blocks in parallel and serialize only the index
// update and commit.
func BenchmarkIngestParallel(b *testing.B) {
	batches, _ := genBatches(400_000, time.Millisecond)
	st, err := tracestore.Open(b.TempDir(), nil)
	require.NoError(b, err)
	defer st.Close()
	ctx := context.Background()
	heap := startHeapPeak()
	var next, spans atomic.Int64
	start, cpu0 := time.Now(), cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			// Past the pre-generated batches the same spans are written
			// again (stored as further copies); batches are only read.
			batch := batches[i%int64(len(batches))]
			if err := st.Write(ctx, batch); err != nil {
				b.Error(err)
				return
			}
			spans.Add(int64(len(batch)))
		}
	})
	el, cpu := time.Since(start), cpuTime()-cpu0
	peak := heap()
	b.ReportMetric(float64(spans.Load())/el.Seconds(), "spans/s")
	if cpu > 0 {
		b.ReportMetric(float64(spans.Load())/cpu.Seconds(), "spans/cpu-s")
	}
	b.ReportMetric(peak, "peak-heap-MB")
}

// BenchmarkDiskSize writes a fixed workload, merges postings, flushes and
// compacts Pebble, and reports bytes per span in Pebble's tables (spans and
// every index) and in the whole directory.
func BenchmarkDiskSize(b *testing.B) {
	n := envInt("TRACESTORE_BENCH_DISK_SPANS", 500_000)
	batches, total := genBatches(n, time.Millisecond)
	for b.Loop() {
		dir := b.TempDir()
		db, err := kv.Open(dir, kv.Options{})
		require.NoError(b, err)
		st, err := tracestore.OpenPebble(db, nil)
		require.NoError(b, err)
		ctx := context.Background()
		heap := startHeapPeak()
		start, cpu0 := time.Now(), cpuTime()
		for _, batch := range batches {
			require.NoError(b, st.Write(ctx, batch))
		}
		el, cpu := time.Since(start), cpuTime()-cpu0
		peak := heap()
		if cpu > 0 {
			b.ReportMetric(float64(total)/cpu.Seconds(), "spans/cpu-s")
		}
		_, err = st.Compact(ctx)
		require.NoError(b, err)
		require.NoError(b, db.Flush())
		require.NoError(b, db.Compact(ctx, []byte{0}, []byte{0xff}, true))
		m := db.Metrics()
		// Tables hold the data; the directory adds the recycled write-ahead
		// log, whose size does not grow with the data.
		b.ReportMetric(float64(m.Total().TablesSize)/float64(total), "B/span")
		b.ReportMetric(float64(m.DiskSpaceUsage())/float64(total), "dir-B/span")
		b.ReportMetric(float64(total)/el.Seconds(), "spans/s")
		b.ReportMetric(peak, "peak-heap-MB")
		b.ReportMetric(float64(total), "spans")
		require.NoError(b, st.Close())
		require.NoError(b, db.Close())
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// queryFixture is a store filled once for the query benchmarks.
type queryFixture struct {
	st      *tracestore.Store
	db      *pebble.DB
	spans   int
	small   []tracestore.TraceID // traces of about 10 spans
	large   tracestore.TraceID   // a 10,000-span trace
	t0, t1  int64
	cleanup func()
}

var (
	fixtureOnce sync.Once
	fixture     *queryFixture
	fixtureErr  error
)

func loadQueryFixture(b *testing.B) *queryFixture {
	fixtureOnce.Do(func() {
		n := envInt("TRACESTORE_BENCH_SPANS", 1_000_000)
		dir, err := os.MkdirTemp("", "tracestore-bench")
		if err != nil {
			fixtureErr = err
			return
		}
		db, err := kv.Open(dir, kv.Options{})
		if err != nil {
			fixtureErr = err
			return
		}
		st, err := tracestore.OpenPebble(db, nil)
		if err != nil {
			fixtureErr = err
			return
		}
		f := &queryFixture{st: st, db: db, cleanup: func() { st.Close(); db.Close(); os.RemoveAll(dir) }}
		// Traces start 10 ms apart: a million spans cover about 6 minutes.
		g := tracegen.New(tracegen.Config{Interval: 10 * time.Millisecond})
		ctx := context.Background()
		batch := make([]tracestore.Span, 0, batchSpans+50)
		for f.spans < n {
			batch = g.Batch(batch[:0], batchSpans)
			if fixtureErr = st.Write(ctx, batch); fixtureErr != nil {
				return
			}
			for i := 0; i < len(batch); {
				j := i
				for j < len(batch) && batch[j].TraceID == batch[i].TraceID {
					j++
				}
				if j-i >= 8 && j-i <= 12 && len(f.small) < 1000 {
					f.small = append(f.small, batch[i].TraceID)
				}
				if f.t0 == 0 {
					f.t0 = batch[i].StartTime
				}
				f.t1 = max(f.t1, batch[i].StartTime)
				i = j
			}
			f.spans += len(batch)
		}
		big := tracegen.New(tracegen.Config{Seed: 99, MinSpans: 10_000, MaxSpans: 10_000, Start: f.t1})
		large := big.Trace(nil)
		f.large = large[0].TraceID
		if fixtureErr = st.Write(ctx, large); fixtureErr != nil {
			return
		}
		f.spans += len(large)
		if _, fixtureErr = st.Compact(ctx); fixtureErr != nil {
			return
		}
		if fixtureErr = db.Flush(); fixtureErr != nil {
			return
		}
		// Settle the LSM so background compactions do not run during the
		// measurements.
		if fixtureErr = db.Compact(ctx, []byte{0}, []byte{0xff}, true); fixtureErr != nil {
			return
		}
		runtime.GC()
		fixture = f
	})
	if fixtureErr != nil {
		b.Fatal(fixtureErr)
	}
	return fixture
}

// reportLatency reports p50 and p99 of the measured durations and the
// process CPU time per operation since cpu0 (wall-clock tails on a shared
// machine include time spent waiting for a core).
func reportLatency(b *testing.B, lat []time.Duration, f *queryFixture, cpu0 time.Duration) {
	if cpu := cpuTime() - cpu0; cpu > 0 && len(lat) > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(lat)), "cpu-ms/op")
	}
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(0.5), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(float64(f.spans), "stored-spans")
}

func BenchmarkTrace10Spans(b *testing.B) {
	f := loadQueryFixture(b)
	ctx := context.Background()
	var lat []time.Duration
	i, cpu0 := 0, cpuTime()
	for b.Loop() {
		s := time.Now()
		tr, err := f.st.Trace(ctx, f.small[i%len(f.small)])
		lat = append(lat, time.Since(s))
		if err != nil || len(tr.Spans) < 8 {
			b.Fatalf("trace: %v", err)
		}
		i++
	}
	reportLatency(b, lat, f, cpu0)
}

func BenchmarkTrace10000Spans(b *testing.B) {
	f := loadQueryFixture(b)
	ctx := context.Background()
	var lat []time.Duration
	cpu0 := cpuTime()
	for b.Loop() {
		s := time.Now()
		tr, err := f.st.Trace(ctx, f.large)
		lat = append(lat, time.Since(s))
		if err != nil || len(tr.Spans) != 10_000 {
			b.Fatalf("trace: %v", err)
		}
	}
	reportLatency(b, lat, f, cpu0)
}

// BenchmarkFind runs the incident query: one service and one attribute in
// a one-hour window, 20 results.
func BenchmarkFind(b *testing.B) {
	f := loadQueryFixture(b)
	ctx := context.Background()
	svcs := tracegen.New(tracegen.Config{}).Services()
	var lat []time.Duration
	i, cpu0 := 0, cpuTime()
	for b.Loop() {
		q := tracestore.Query{
			Service:    svcs[1+i%(len(svcs)-1)],
			Attributes: map[string]string{"http.status_code": "500"},
			Start:      f.t1 - int64(time.Hour), End: f.t1, Limit: 20,
		}
		s := time.Now()
		found, err := f.st.Find(ctx, q)
		lat = append(lat, time.Since(s))
		if err != nil || len(found) == 0 {
			b.Fatalf("find %v: %d results, %v", q, len(found), err)
		}
		i++
	}
	reportLatency(b, lat, f, cpu0)
}

// BenchmarkFindCommonAttribute is the `pillar bench` query: a service and
// an attribute most spans carry, in a one-hour window ending at a random
// time of the stored range, 20 results.
func BenchmarkFindCommonAttribute(b *testing.B) {
	f := loadQueryFixture(b)
	ctx := context.Background()
	svcs := tracegen.New(tracegen.Config{}).Services()
	attrs := [][2]string{{"http.method", "GET"}, {"user.tier", "pro"}, {"cloud.region", "eu-west-1"}, {"retry", "false"}}
	var lat []time.Duration
	i, cpu0 := 0, cpuTime()
	for b.Loop() {
		a := attrs[i%len(attrs)]
		end := f.t0 + int64(time.Minute) + (f.t1-f.t0-int64(time.Minute))*int64(i%97)/96
		q := tracestore.Query{
			Service:    svcs[1+i%(len(svcs)-1)],
			Attributes: map[string]string{a[0]: a[1]},
			Start:      end - int64(time.Hour), End: end, Limit: 20,
		}
		s := time.Now()
		found, err := f.st.Find(ctx, q)
		lat = append(lat, time.Since(s))
		if err != nil || len(found) == 0 {
			b.Fatalf("find %v: %d results, %v", q, len(found), err)
		}
		i++
	}
	reportLatency(b, lat, f, cpu0)
}

// BenchmarkFindTraceDuration finds the newest 20 traces of one service
// whose whole duration is at least 100 ms, in a one-hour window.
func BenchmarkFindTraceDuration(b *testing.B) {
	f := loadQueryFixture(b)
	ctx := context.Background()
	svcs := tracegen.New(tracegen.Config{}).Services()
	var lat []time.Duration
	i, cpu0 := 0, cpuTime()
	for b.Loop() {
		q := tracestore.Query{
			Service:          svcs[i%len(svcs)],
			MinTraceDuration: 100 * time.Millisecond,
			Start:            f.t1 - int64(time.Hour), End: f.t1, Limit: 20,
		}
		s := time.Now()
		found, err := f.st.Find(ctx, q)
		lat = append(lat, time.Since(s))
		if err != nil || len(found) == 0 {
			b.Fatalf("find %v: %d results, %v", q, len(found), err)
		}
		i++
	}
	reportLatency(b, lat, f, cpu0)
}

// BenchmarkAttributeValues lists the values of one attribute key over the
// stored hour, 100 at most.
func BenchmarkAttributeValues(b *testing.B) {
	f := loadQueryFixture(b)
	ctx := context.Background()
	var lat []time.Duration
	cpu0 := cpuTime()
	for b.Loop() {
		s := time.Now()
		vals, err := f.st.AttributeValues(ctx, "load", f.t1-int64(time.Hour), f.t1, 100)
		lat = append(lat, time.Since(s))
		if err != nil || len(vals) != 100 {
			b.Fatalf("attribute values: %d, %v", len(vals), err)
		}
	}
	reportLatency(b, lat, f, cpu0)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture != nil {
		fixture.cleanup()
	}
	os.Exit(code)
}
