package query

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// counterDB holds n counters of 15 s samples over two hours.
func counterDB(tb testing.TB, n int) *Engine {
	tb.Helper()
	var data []sample
	for i := range n {
		var vs []float64
		v := 0.0
		for k := range 480 {
			v += float64((k*7 + i) % 13)
			if k%100 == 99 {
				v = 0 // a reset now and then
			}
			vs = append(vs, v)
		}
		data = append(data, series([]string{"__name__", "req_total", "instance", strconv.Itoa(i % 10), "shard", strconv.Itoa(i / 10)}, 0, 15000, vs...)...)
	}
	return NewEngine(openDB(tb, data), Options{})
}

// TestRangeFunctionAllocatesPerSeriesNotPerSample checks that a range
// query's allocations grow with the number of series and steps' output, not
// with the samples read: the window buffer is reused across steps and
// series.
func TestRangeFunctionAllocatesPerSeriesNotPerSample(t *testing.T) {
	eng := counterDB(t, 20)
	ctx := context.Background()
	run := func(q string) float64 {
		return testing.AllocsPerRun(5, func() {
			_, err := eng.Range(ctx, q, time.UnixMilli(3600000), time.UnixMilli(7200000-15000), time.Minute)
			require.NoError(t, err)
		})
	}
	// The same number of output points from windows 1 and 20 samples wide.
	narrow := run(`rate(req_total[30s])`)
	wide := run(`rate(req_total[5m])`)
	require.Less(t, wide, narrow*1.1+20, "wider windows must not allocate per sample: %v vs %v", wide, narrow)
	// 20 series × 240 samples are read; allocations are a small multiple
	// of the series count.
	require.Less(t, wide, 20*240/10.0)
}

func BenchmarkRange(b *testing.B) {
	eng := counterDB(b, 200)
	ctx := context.Background()
	for _, q := range []string{
		`rate(req_total[5m])`,
		`sum by (instance) (rate(req_total[5m]))`,
		`quantile_over_time(0.99, req_total[5m])`,
		`req_total`,
	} {
		b.Run(q, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := eng.Range(ctx, q, time.UnixMilli(3600000), time.UnixMilli(7200000-15000), 15*time.Second); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
