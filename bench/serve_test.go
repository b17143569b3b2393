package bench

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A tiny serve run reports every figure: HTTP and in-process ingest, their
// ratio, and each query's latency under load.
func TestServeSmall(t *testing.T) {
	r := &runner{cfg: Config{Scale: 0.02, QuerySeconds: 0.01}, rep: &Report{}}
	require.NoError(t, r.serve(t.Context(), t.TempDir()))
	got := map[string]Result{}
	for _, res := range r.rep.Results {
		require.Equal(t, "serve", res.Workload)
		require.False(t, math.IsInf(res.Value, 0) || math.IsNaN(res.Value), res.Metric)
		require.Greater(t, res.Value, 0.0, res.Metric)
		got[res.Metric] = res
	}
	for _, m := range []string{
		"remote-write through HTTP", "remote-write in process, same payloads", "remote-write HTTP / in process",
		"OTLP spans through HTTP", "OTLP spans in process, same payloads", "OTLP spans HTTP / in process",
		"remote-write through HTTP while querying", "OTLP spans through HTTP while querying",
	} {
		require.Contains(t, got, m)
	}
	queries := 0
	for m, res := range got {
		if strings.HasSuffix(m, "under ingest load, p50") {
			queries++
			require.Equal(t, "ms", res.Unit)
		}
	}
	require.Equal(t, 3, queries)
	require.Equal(t, "samples/s", got["remote-write through HTTP"].Unit)
}
