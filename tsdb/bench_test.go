package tsdb

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"
)

// BenchmarkIngestScrapes appends one commit per scrape of 5,000 series with
// cached refs, the shape of a Prometheus scrape loop, and reports
// samples/s, heap bytes per series and disk bytes per sample after Close.
func BenchmarkIngestScrapes(b *testing.B) {
	const nSeries = 5000
	lss := make([]Labels, nSeries)
	for i := range lss {
		lss[i] = FromStrings(MetricName, fmt.Sprintf("metric_%d", i%4), "instance", fmt.Sprintf("host-%d", i%50), "id", fmt.Sprint(i))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, nSeries)
	dir := b.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	refs := make([]SeriesRef, nSeries)
	ctx := context.Background()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	scrape := 0
	for b.Loop() {
		app := db.Appender(ctx)
		t := int64(scrape)*15_000 + rng.Int64N(51) - 25
		for i := range lss {
			switch i % 4 {
			case 0:
				vals[i] += float64(rng.IntN(100))
			case 1:
				vals[i] = math.Round(rng.Float64()*10000) / 100
			case 2:
				vals[i] += rng.NormFloat64()
			}
			refs[i], err = app.Append(refs[i], lss[i], t, vals[i])
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
		scrape++
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if path := os.Getenv("TSDB_HEAP_PROFILE"); path != "" {
		// A live-heap profile before Close, to see what a series costs.
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
	}
	b.ReportMetric(float64(nSeries)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric((float64(ms.HeapAlloc)-float64(base))/nSeries, "heapB/series")
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	var size int64
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			size += fi.Size()
			if testing.Verbose() {
				b.Logf("%-40s %d", d.Name(), fi.Size())
			}
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(size)/(float64(nSeries)*float64(b.N)), "diskB/sample")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkOpen100k measures Open of a store holding 100,000 series whose
// heads were not sealed (a crash-style reopen: records, marks and the
// write-ahead entries are all read).
func BenchmarkOpen100k(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for lo := 0; lo < n; lo += 10_000 {
		app := db.Appender(ctx)
		for i := lo; i < lo+10_000; i++ {
			ls := FromStrings(MetricName, "m", "pod", fmt.Sprintf("pod-%d", i), "job", fmt.Sprintf("job-%d", i%100))
			if _, err := app.Append(0, ls, 1000, float64(i)); err != nil {
				b.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.p.Close(); err != nil { // no Flush: Open replays
		b.Fatal(err)
	}
	db.closed.Store(true)
	for b.Loop() {
		db, err := Open(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		if got := db.Stats().Series; got != n {
			b.Fatalf("reopened %d series, want %d", got, n)
		}
		if err := db.p.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
