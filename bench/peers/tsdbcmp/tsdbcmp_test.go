package main

import (
	"context"
	"github.com/pillar-db/pillar/bench/metricgen"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/tsdb"
)

// TestSameSamples ingests a short workload into both stores and checks
// that they return the same samples for a sample of series, so the figures
// compare like with like.
func TestSameSamples(t *testing.T) {
	w := metricgen.Mix(1, 0.5, 7)
	require.Equal(t, 5300, w.NumSeries())
	o, p := &ours{}, &prom{}
	for _, s := range []store{o, p} {
		require.NoError(t, s.setLabels(w.Labels))
		require.NoError(t, s.open(t.TempDir()))
	}
	ts := make([]int64, w.NumSeries())
	vs := make([]float64, w.NumSeries())
	for k := range w.Scrapes {
		w.Scrape(k, ts, vs)
		require.NoError(t, o.appendScrape(ts, vs))
		require.NoError(t, p.appendScrape(ts, vs))
	}
	ctx := context.Background()
	oq, err := o.db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	pq, err := p.db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	for _, i := range []int{0, 1, 2, 3, 4001, 4012, 5299} {
		var ms []*tsdb.Matcher
		var pms []*labels.Matcher
		for j := 0; j < len(w.Labels[i]); j += 2 {
			m, err := tsdb.NewMatcher(tsdb.MatchEqual, w.Labels[i][j], w.Labels[i][j+1])
			require.NoError(t, err)
			ms = append(ms, m)
			pms = append(pms, labels.MustNewMatcher(labels.MatchEqual, w.Labels[i][j], w.Labels[i][j+1]))
		}
		ss := oq.Select(ctx, true, ms...)
		require.True(t, ss.Next())
		it := ss.At().Iterator(nil)
		pss := pq.Select(ctx, true, nil, pms...)
		require.True(t, pss.Next())
		pit := pss.At().Iterator(nil)
		n := 0
		for it.Next() == tsdb.ValFloat {
			require.Equal(t, chunkenc.ValFloat, pit.Next())
			t1, v1 := it.At()
			t2, v2 := pit.At()
			require.Equal(t, t2, t1)
			require.Equal(t, math.Float64bits(v2), math.Float64bits(v1))
			n++
		}
		require.Equal(t, chunkenc.ValNone, pit.Next())
		require.Equal(t, w.Scrapes, n)
	}
	require.NoError(t, oq.Close())
	require.NoError(t, pq.Close())
	_, _, err = o.closeAndSize(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, p.db.Close())
}
