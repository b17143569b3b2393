package bench

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/bench/metricgen"
)

// A tiny run of each half of the compaction workload produces its
// figures, finite, with the ingest rate and disk sizes positive.
func TestCompactionWorkloadSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a few hundred thousand items")
	}
	require.Contains(t, Workloads, "compaction")
	rate, _, err := ingestPillar(t.Context(), t.TempDir(), metricgen.Mix(1, 0.1, 1), maintNormal)
	require.NoError(t, err)
	require.Positive(t, rate)

	r := &runner{cfg: Config{Scale: 0.01, QuerySeconds: 0.01}, rep: &Report{}}
	require.NoError(t, r.compactionRetention(t.Context(), t.TempDir()))
	got := map[string]float64{}
	for _, res := range r.rep.Results {
		require.Equal(t, "compaction", res.Workload)
		require.False(t, math.IsNaN(res.Value) || math.IsInf(res.Value, 0), res.Metric)
		got[res.Metric] = res.Value
	}
	for _, m := range []string{
		"disk before the retention pass",
		"disk after one pass dropping half",
		"rare term search, whole range, before sealing, p50",
		"rare term search, whole range, after sealing, p50",
	} {
		require.Positive(t, got[m], m)
	}
	_, ok := got["disk freed by the retention pass"]
	require.True(t, ok)
}

// BenchmarkCompactionWorkload runs the compaction workload at a tenth of
// its size (-benchtime=1x) and reports its figures: ingest with
// maintenance as a percentage of ingest without, and the disk freed by a
// retention pass that drops half the data.
func BenchmarkCompactionWorkload(b *testing.B) {
	for range b.N {
		rep, err := Run(b.Context(), Config{Scale: 0.1, QuerySeconds: 0.05, Dir: b.TempDir(), Workloads: []string{"compaction"}})
		require.NoError(b, err)
		var off float64
		for _, r := range rep.Results {
			switch {
			case r.Metric == "ingest, maintenance off":
				off = r.Value
				b.ReportMetric(r.Value, "samples/s-off")
			case strings.HasPrefix(r.Metric, "ingest, maintenance every 200 ms, low"):
				b.ReportMetric(100*r.Value/off, "%ingest-low-priority")
			case strings.HasPrefix(r.Metric, "ingest, maintenance every 200 ms, normal"):
				b.ReportMetric(100*r.Value/off, "%ingest-normal-priority")
			case r.Metric == "disk freed by the retention pass":
				b.ReportMetric(r.Value, "%disk-freed")
			}
		}
	}
}

// BenchmarkCompactionIngest times the compaction workload's ingest (3 h of
// the mixed metrics, 3.8 M samples) in each maintenance mode, one run per
// op, for profiling what maintenance costs ingestion. It reports the rate
// and the time maintenance jobs ran while the samples went in.
func BenchmarkCompactionIngest(b *testing.B) {
	for _, m := range []struct {
		name string
		mode ingestMode
	}{{"off", maintOff}, {"low", maintLow}, {"normal", maintNormal}} {
		b.Run(m.name, func(b *testing.B) {
			var rate, jobs float64
			for range b.N {
				r, ms, err := ingestPillar(b.Context(), b.TempDir(), metricgen.Mix(1, 3, 1), m.mode)
				require.NoError(b, err)
				rate += r
				for _, j := range ms.Jobs {
					require.Zero(b, j.Errors, j.LastError)
					jobs += j.Duration.Seconds()
				}
			}
			b.ReportMetric(rate/float64(b.N), "samples/s")
			b.ReportMetric(jobs/float64(b.N), "job-s/op")
		})
	}
}
