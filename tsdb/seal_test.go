package tsdb

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSealManySeries seals more series than fit in one seal batch, in
// one commit and in a flush, and checks that every sample reads back and
// nothing is left in the heads.
func TestSealManySeries(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(dir, &Options{ChunkSamples: 4})
	require.NoError(t, err)
	const n = maxSealSeries + 500
	refs := make([]SeriesRef, n)
	const scrapes = 6 // the fourth fills every chunk, so one commit seals all
	for k := range scrapes {
		app := db.Appender(ctx)
		for i := range refs {
			refs[i], err = app.Append(refs[i], FromStrings(MetricName, "m", "i", fmt.Sprint(i)), int64(k)*1000, float64(i*k))
			require.NoError(t, err)
		}
		require.NoError(t, app.Commit())
	}
	require.Greater(t, db.Stats().SealedChunks, uint64(n-1))
	require.NoError(t, db.Flush(ctx))
	require.Zero(t, db.Stats().HeadSamples)
	check := func(db *DB) {
		got := readAll(t, db, math.MinInt64, math.MaxInt64)
		require.Len(t, got, n)
		for i := range n {
			s := got[FromStrings(MetricName, "m", "i", fmt.Sprint(i)).String()]
			require.Len(t, s, scrapes)
			for k, smp := range s {
				require.Equal(t, fsample{int64(k) * 1000, float64(i * k)}, smp)
			}
		}
	}
	check(db)
	require.NoError(t, db.Close())
	db, err = Open(dir, nil)
	require.NoError(t, err)
	defer db.Close()
	check(db)
}
