package logcmp

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pillar-db/pillar/internal/testutil"
	"github.com/pillar-db/pillar/logindex/loggen"
	"github.com/stretchr/testify/require"
)

func config(tb testing.TB, replicas int) Config {
	sets, err := loggen.Load(testutil.DataDir(tb, "loghub"))
	require.NoError(tb, err)
	return Config{Sets: sets, Replicas: replicas, Batch: 1000, Span: 24 * time.Hour, Reps: 21, Dir: tb.TempDir()}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestSmall runs both engines on one replica and checks that they agree
// on every query's result size where their tokenizers agree.
func TestSmall(t *testing.T) {
	cfg := config(t, 1)
	cfg.Reps = 1
	wl := DefaultWorkload(cfg)
	p, err := RunPillar(t.Context(), cfg, wl)
	require.NoError(t, err)
	b, err := RunBleve(t.Context(), cfg, wl)
	require.NoError(t, err)
	t.Log("\n" + Format(p, b))
	require.Equal(t, uint64(32000), p.Reopened)
	require.Equal(t, uint64(32000), b.Reopened)
	for i, q := range p.Queries {
		require.Positive(t, q.N, q.Name)
		// Bleve splits words by UAX #29 ("10.0.0.1" is one word there,
		// four tokens here), so totals may differ by a few lines.
		require.InDelta(t, b.Queries[i].N, q.N, float64(q.N)/100+0.5, "%s: both engines find about the same number", q.Name)
	}
}

// BenchmarkSideBySide ingests LOGCMP_REPLICAS (default 4) replicas of
// loghub into both engines and prints the comparison; LOGCMP_ENGINES=pillar
// runs ours alone (for the full ×32 corpus). Run with -benchtime=1x.
func BenchmarkSideBySide(b *testing.B) {
	cfg := config(b, envInt("LOGCMP_REPLICAS", 4))
	wl := DefaultWorkload(cfg)
	for b.Loop() {
		p, err := RunPillar(b.Context(), cfg, wl)
		require.NoError(b, err)
		rs := []*Result{p}
		if os.Getenv("LOGCMP_ENGINES") != "pillar" {
			bl, err := RunBleve(b.Context(), cfg, wl)
			require.NoError(b, err)
			rs = append(rs, bl)
		}
		b.ReportMetric(p.LinesPerSec(), "lines/s")
		b.ReportMetric(float64(p.DiskBytes)/float64(p.RawBytes), "disk/raw")
		// Printed, not logged: the testing package truncates long
		// benchmark logs.
		fmt.Println(Format(rs...))
	}
}
