package bench

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// A tiny run of every workload produces every figure, positive and finite.
func TestRunAllWorkloadsSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a few hundred thousand items")
	}
	var progress bytes.Buffer
	rep, err := Run(t.Context(), Config{Scale: 0.02, QuerySeconds: 0.01, Dir: t.TempDir(), Progress: &progress,
		Workloads: []string{"metrics", "tsbs", "traces", "logs"}})
	require.NoError(t, err)
	want := map[string][]string{
		"metrics": {"ingest, one commit per scrape", "disk per sample, index included", "heap per series"},
		"tsbs":    {"ingest, one commit per scrape"},
		"traces":  {"ingest, ~1,000-span batches, every index", "disk per span, indexes included", "trace by ID (5–50 spans), p50"},
		"logs":    {"ingest, durable 1,000-line batches", "disk, lines and index, per raw byte", "rare term, p50"},
	}
	got := map[string]map[string]float64{}
	for _, r := range rep.Results {
		if got[r.Workload] == nil {
			got[r.Workload] = map[string]float64{}
		}
		got[r.Workload][r.Metric] = r.Value
	}
	for w, metrics := range want {
		for _, m := range metrics {
			v, ok := got[w][m]
			require.True(t, ok, "%s: no %q in %v", w, m, got[w])
			require.Greater(t, v, 0.0, "%s: %s", w, m)
		}
	}
	require.Contains(t, progress.String(), "100%")

	var table, js bytes.Buffer
	require.NoError(t, rep.WriteTable(&table))
	require.Contains(t, table.String(), "samples/s")
	require.NoError(t, rep.WriteJSON(&js))
	var back Report
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	require.Equal(t, len(rep.Results), len(back.Results))
}

func TestRunRejectsUnknownWorkload(t *testing.T) {
	_, err := Run(t.Context(), Config{Workloads: []string{"nope"}})
	require.ErrorContains(t, err, `unknown workload "nope"`)
}

func TestPickTerms(t *testing.T) {
	lines := []string{
		"INFO Received block blk_12345678 of size 10",
		"INFO Received block blk_22345678 of size 10",
		"ERROR Connection refused to server",
	}
	rare, common, phrase := pickTerms(lines)
	require.Contains(t, []string{"blk_12345678", "blk_22345678"}, rare)
	require.Equal(t, []string{"block", "info"}, common)
	require.NotEmpty(t, phrase)
}
