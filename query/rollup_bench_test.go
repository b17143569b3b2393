package query

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/tsdb"
)

// BenchmarkRollupVsRaw runs range queries over 1,000 series × 30 days at a
// 60 s interval (43.2 M samples, appended through the Appender and then
// downsampled) at a 1 h step, each iteration once from raw samples and
// once from rollups, and reports both times and their ratio measured in
// the same run. The answers are checked equal to the bit first. Set
// PILLAR_ROLLUP_BENCH_SERIES to load fewer series for a quick run, and
// PILLAR_ROLLUP_BENCH_CACHE_MB to size Pebble's block cache (default 64):
// with the default, each raw query evicts the rollup blocks and the rollup
// query reads (and decompresses) them again.
func BenchmarkRollupVsRaw(b *testing.B) {
	nSeries := 1000
	if v, err := strconv.Atoi(os.Getenv("PILLAR_ROLLUP_BENCH_SERIES")); err == nil && v > 0 {
		nSeries = v
	}
	const (
		days     = 30
		interval = minute
	)
	ctx := context.Background()
	var opts tsdb.Options
	if v, err := strconv.Atoi(os.Getenv("PILLAR_ROLLUP_BENCH_CACHE_MB")); err == nil && v > 0 {
		opts.CacheSize = int64(v) << 20
	}
	db, err := tsdb.Open(b.TempDir(), &opts)
	require.NoError(b, err)
	defer func() { require.NoError(b, db.Close()) }()
	t0 := int64(1_750_000_000_000) / hour * hour
	end := t0 + days*24*hour
	loadStart := time.Now()
	r := rand.New(rand.NewPCG(1, 2))
	refs := make([]tsdb.SeriesRef, nSeries)
	lsets := make([]tsdb.Labels, nSeries)
	vals := make([]float64, nSeries)
	for i := range lsets {
		lsets[i] = tsdb.FromStrings("__name__", "http_requests_total", "instance", "i"+strconv.Itoa(i), "job", "api")
	}
	n := 0
	for t := t0 + interval; t <= end; {
		app := db.Appender(ctx)
		for range 30 { // 30 scrapes per commit
			for i := range nSeries {
				if r.IntN(20_000) == 0 {
					vals[i] = 0 // counter reset
				} else {
					vals[i] += float64(r.IntN(100))
				}
				if refs[i], err = app.Append(refs[i], lsets[i], t, vals[i]); err != nil {
					b.Fatal(err)
				}
				n++
			}
			t += interval
		}
		require.NoError(b, app.Commit())
	}
	require.NoError(b, db.Flush(ctx))
	loaded := time.Since(loadStart)
	dsStart := time.Now()
	st, err := db.Downsample(ctx, end)
	require.NoError(b, err)
	b.Logf("%d samples loaded in %v; Downsample wrote %d windows (%d bytes) in %v", n, loaded.Round(time.Millisecond),
		st.Items, st.BytesOut, time.Since(dsStart).Round(time.Millisecond))
	// Queries run on a store at rest: Pebble's tables compacted, as after
	// a day of background compactions, so that neither side pays for them.
	require.NoError(b, db.Compact(ctx))

	raw := NewEngine(db, Options{NoRollups: true})
	roll := NewEngine(db, Options{})
	start, stop := time.UnixMilli(t0+hour), time.UnixMilli(end)
	for _, q := range []string{`max_over_time(http_requests_total[1h])`, `rate(http_requests_total[1h])`} {
		b.Run(q, func(b *testing.B) {
			want, err := raw.Range(ctx, q, start, stop, time.Hour)
			require.NoError(b, err)
			got, st, err := roll.RangeWithStats(ctx, q, start, stop, time.Hour)
			require.NoError(b, err)
			require.Equal(b, time.Hour, st.Resolution)
			require.Zero(b, st.RawSteps)
			require.Len(b, got, len(want))
			for i := range want {
				require.Len(b, got[i].Floats, len(want[i].Floats))
				for j := range want[i].Floats {
					require.Equal(b, math.Float64bits(want[i].Floats[j].F), math.Float64bits(got[i].Floats[j].F))
				}
			}
			// Each query starts after a collection, so neither pays for the
			// other's garbage; CPU time is the whole process's, which on a
			// shared machine is steadier than wall time.
			var rawT, rollT, rawCPU, rollCPU time.Duration
			for b.Loop() {
				b.StopTimer()
				runtime.GC()
				b.StartTimer()
				s, sc := time.Now(), processCPU()
				if _, err := raw.Range(ctx, q, start, stop, time.Hour); err != nil {
					b.Fatal(err)
				}
				rawT, rawCPU = rawT+time.Since(s), rawCPU+processCPU()-sc
				b.StopTimer()
				runtime.GC()
				b.StartTimer()
				s, sc = time.Now(), processCPU()
				if _, err := roll.Range(ctx, q, start, stop, time.Hour); err != nil {
					b.Fatal(err)
				}
				rollT, rollCPU = rollT+time.Since(s), rollCPU+processCPU()-sc
			}
			b.ReportMetric(float64(rawT.Nanoseconds())/float64(b.N), "raw-ns/query")
			b.ReportMetric(float64(rollT.Nanoseconds())/float64(b.N), "rollup-ns/query")
			b.ReportMetric(float64(rawT)/float64(rollT), "speedup")
			if rollCPU > 0 {
				b.ReportMetric(float64(rawCPU.Nanoseconds())/float64(b.N), "raw-cpu-ns/query")
				b.ReportMetric(float64(rollCPU.Nanoseconds())/float64(b.N), "rollup-cpu-ns/query")
				b.ReportMetric(float64(rawCPU)/float64(rollCPU), "cpu-speedup")
			}
		})
	}
}
