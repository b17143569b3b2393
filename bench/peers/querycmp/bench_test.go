package querycmp

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchWorkload is the tsdb bench workload: 1,000 series each of counters,
// 2-decimal gauges, random walks and constants, plus 100 classic
// histograms of 13 series (11 buckets, _sum, _count), one sample every 15 s
// for two hours.
func benchWorkload(seed uint64, start, dur int64) *dataset {
	r := rand.New(rand.NewPCG(seed, 7))
	d := &dataset{}
	var ts []int64
	for t := start; t < start+dur; t += 15000 {
		ts = append(ts, t)
	}
	labelsOf := func(name string, i int) []string {
		return []string{"__name__", name, "instance", "host-" + strconv.Itoa(i%100), "shard", strconv.Itoa(i / 100)}
	}
	for i := range 1000 {
		c := floatSeries{labels: labelsOf("counter_total", i), ts: ts}
		g := floatSeries{labels: labelsOf("g", i), ts: ts}
		w := floatSeries{labels: labelsOf("walk", i), ts: ts}
		k := floatSeries{labels: labelsOf("const", i), ts: ts}
		cv, wv, kv := float64(r.IntN(1000)), r.NormFloat64()*10, float64(r.IntN(100))
		for range ts {
			cv += float64(r.IntN(100))
			wv += r.NormFloat64()
			c.vs = append(c.vs, cv)
			g.vs = append(g.vs, math.Round(r.Float64()*10000)/100)
			w.vs = append(w.vs, wv)
			k.vs = append(k.vs, kv)
		}
		d.floats = append(d.floats, c, g, w, k)
	}
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, math.Inf(1)}
	for i := range 100 {
		base := labelsOf("h", i)[2:]
		bs := make([]floatSeries, len(bounds))
		for j, b := range bounds {
			bs[j] = floatSeries{labels: append([]string{"__name__", "h_bucket", "le", formatLe(b)}, base...), ts: ts}
		}
		sum := floatSeries{labels: append([]string{"__name__", "h_sum"}, base...), ts: ts}
		cnt := floatSeries{labels: append([]string{"__name__", "h_count"}, base...), ts: ts}
		counts := make([]float64, len(bounds))
		s := 0.0
		for range ts {
			for range 10 + r.IntN(20) {
				obs := math.Exp(r.NormFloat64() - 2.5)
				s += obs
				for j, b := range bounds {
					if obs <= b {
						counts[j]++
					}
				}
			}
			for j := range bs {
				bs[j].vs = append(bs[j].vs, counts[j])
			}
			sum.vs = append(sum.vs, s)
			cnt.vs = append(cnt.vs, counts[len(counts)-1])
		}
		d.floats = append(d.floats, bs...)
		d.floats = append(d.floats, sum, cnt)
	}
	return d
}

var benchQueries = []string{
	`rate(counter_total[5m])`,
	`sum by (instance) (rate(counter_total[5m]))`,
	`histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))`,
	`quantile_over_time(0.99, g[5m])`,
}

var (
	benchOnce sync.Once
	benchEng  *engines
	benchErr  error
)

// benchEngines loads the workload once per process into both stores; the
// stores live in a temporary directory removed at exit of the process.
func benchEngines(tb testing.TB) *engines {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "querycmp")
		if err != nil {
			benchErr = err
			return
		}
		tb := &onceTB{TB: tb, dir: dir}
		benchEng = openEngines(tb, benchWorkload(1, t0, 2*60*60*1000))
	})
	require.NoError(tb, benchErr)
	return benchEng
}

// onceTB hands openEngines temporary directories that outlive the first
// benchmark using them (the shared stores serve every benchmark).
type onceTB struct {
	testing.TB
	dir string
	n   int
}

func (o *onceTB) TempDir() string {
	o.n++
	d := fmt.Sprintf("%s/%d", o.dir, o.n)
	if err := os.MkdirAll(d, 0o755); err != nil {
		o.Fatal(err)
	}
	return d
}

func (o *onceTB) Cleanup(func()) {}

// benchWindow is the measured range: the last hour of the data at 15 s.
var benchWindow = window{name: "1h/15s", start: t0 + 60*60*1000, end: t0 + 2*60*60*1000 - 15000, step: 15 * time.Second}

func BenchmarkQuery(b *testing.B) {
	e := benchEngines(b)
	ctx := context.Background()
	for _, q := range benchQueries {
		b.Run("engine=prometheus/"+q, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.runProm(ctx, q, benchWindow); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("engine=pillar/"+q, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.runPillar(ctx, q, benchWindow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSideBySide prints, for each benchmark query, the median time and the
// bytes allocated per query of both engines and their ratio. It takes about
// a minute, so it runs only with QUERYCMP_SIDE_BY_SIDE=1.
func TestSideBySide(t *testing.T) {
	if os.Getenv("QUERYCMP_SIDE_BY_SIDE") == "" {
		t.Skip("set QUERYCMP_SIDE_BY_SIDE=1 to run")
	}
	e := benchEngines(t)
	ctx := context.Background()
	// The results must agree before the timings mean anything.
	for _, q := range benchQueries {
		want, err := e.runProm(ctx, q, benchWindow)
		require.NoError(t, err)
		got, err := e.runPillar(ctx, q, benchWindow)
		require.NoError(t, err)
		require.Empty(t, compareResults(want, got, false), q)
	}
	// Runs alternate between the engines so that load from elsewhere on
	// the machine falls on both alike; CPU time (user+system of the whole
	// process, so GC work counts) is reported next to wall time because it
	// is steadier on a shared machine.
	const runs = 9
	type stats struct {
		wall, cpu []time.Duration
		alloc     []uint64
		peak      uint64
	}
	one := func(st *stats, f func()) {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		stop := make(chan struct{})
		peakc := make(chan uint64)
		go func() { peakc <- samplePeak(before.HeapAlloc, stop) }()
		c0 := cpuTime()
		w0 := time.Now()
		f()
		st.wall = append(st.wall, time.Since(w0))
		st.cpu = append(st.cpu, cpuTime()-c0)
		close(stop)
		st.peak = max(st.peak, <-peakc)
		runtime.ReadMemStats(&after)
		st.alloc = append(st.alloc, after.TotalAlloc-before.TotalAlloc)
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	t.Logf("%-60s %9s %9s %5s | %9s %9s %5s | %8s %8s %5s | %8s %8s", "query (1h range, 15s step, 5m windows)",
		"prom wall", "pillar", "ratio", "prom cpu", "pillar", "ratio", "prom B", "pillar", "ratio", "prom pk", "pillar")
	for _, q := range benchQueries {
		var p, x stats
		for range runs {
			one(&p, func() { _, _ = e.runProm(ctx, q, benchWindow) })
			one(&x, func() { _, _ = e.runPillar(ctx, q, benchWindow) })
		}
		slices.Sort(p.alloc)
		slices.Sort(x.alloc)
		pw, xw, pc, xc := med(p.wall), med(x.wall), med(p.cpu), med(x.cpu)
		pa, xa := p.alloc[runs/2], x.alloc[runs/2]
		t.Logf("%-60s %9s %9s %5.2f | %9s %9s %5.2f | %7.1fM %7.1fM %5.2f | %7.1fM %7.1fM", q,
			pw.Round(time.Millisecond/10), xw.Round(time.Millisecond/10), float64(xw)/float64(pw),
			pc.Round(time.Millisecond/10), xc.Round(time.Millisecond/10), float64(xc)/float64(pc),
			float64(pa)/1e6, float64(xa)/1e6, float64(xa)/float64(pa), float64(p.peak)/1e6, float64(x.peak)/1e6)
	}
}

// cpuTime is the process' user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// samplePeak polls the heap until stop closes and returns the largest
// growth over base it saw.
func samplePeak(base uint64, stop chan struct{}) uint64 {
	var peak uint64
	var ms runtime.MemStats
	for {
		select {
		case <-stop:
			return peak
		case <-time.After(2 * time.Millisecond):
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak {
				peak = ms.HeapAlloc - base
			}
		}
	}
}
