package tsdb

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/internal/keys"
)

// TestIteratorOverlappingChunks writes in-order samples, seals them, then
// writes out-of-order samples into the sealed ranges (so sealed chunks
// overlap) and checks Next and SeekTo against the expected samples for many
// query ranges, with one reused iterator.
func TestIteratorOverlappingChunks(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), &Options{OutOfOrderWindow: time.Hour, ChunkSamples: 12})
	require.NoError(t, err)
	defer db.Close()
	ls := FromStrings(MetricName, "x")
	want := map[int64]float64{}
	var ref SeriesRef
	add := func(ts int64, v float64) {
		app := db.Appender(ctx)
		ref, err = app.Append(ref, ls, ts, v)
		require.NoError(t, err)
		require.NoError(t, app.Commit())
		want[ts] = v
	}
	for i := range 300 {
		add(int64(i)*1000, float64(i))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 120 {
		ts := int64(rng.IntN(299))*1000 + 1 + int64(rng.IntN(998))
		if _, ok := want[ts]; !ok {
			add(ts, -float64(ts))
		}
	}
	all := make([]int64, 0, len(want))
	for ts := range want {
		all = append(all, ts)
	}
	slices.Sort(all)

	var it Iterator
	for round := range 60 {
		mint := int64(rng.IntN(320_000)) - 10_000
		maxt := mint + int64(rng.IntN(200_000))
		if round == 0 {
			mint, maxt = math.MinInt64, math.MaxInt64
		}
		q, err := db.Querier(mint, maxt)
		require.NoError(t, err)
		ss := q.Select(ctx, false)
		var exp []int64
		for _, ts := range all {
			if ts >= mint && ts <= maxt {
				exp = append(exp, ts)
			}
		}
		if !ss.Next() {
			require.Empty(t, exp)
			require.NoError(t, q.Close())
			continue
		}
		s := ss.At()
		it = s.Iterator(it)
		var got []int64
		for it.Next() == ValFloat {
			ts, v := it.At()
			require.Equal(t, want[ts], v, "t=%d", ts)
			got = append(got, ts)
		}
		require.NoError(t, it.Err())
		require.Equal(t, exp, got, "[%d, %d]", mint, maxt)
		if round == 0 {
			// The out-of-order samples made overlapping pieces, merged,
			// while the rest streams chunk by chunk.
			var merged, streamed int
			for _, seg := range it.(*seriesIterator).segs {
				if seg.kind == segMerged {
					merged++
				} else {
					streamed++
				}
			}
			require.Positive(t, merged)
			require.Positive(t, streamed)
		}

		// SeekTo forward through the range by random steps.
		it = s.Iterator(it)
		pos := 0
		target := mint
		if round == 0 {
			target = -5000
		}
		for pos < len(exp) {
			target += int64(rng.IntN(9000))
			typ := it.SeekTo(target)
			for pos < len(exp) && exp[pos] < target {
				pos++
			}
			if pos == len(exp) {
				require.Equal(t, ValNone, typ)
				break
			}
			require.Equal(t, ValFloat, typ)
			require.Equal(t, exp[pos], it.AtT())
			// Seeking backwards stays put.
			require.Equal(t, ValFloat, it.SeekTo(target-5000))
			require.Equal(t, exp[pos], it.AtT())
		}
		require.NoError(t, it.Err())
		require.NoError(t, q.Close())
	}
}

// TestIteratorAllocsPerSeries checks that reading a series with a reused
// iterator costs a few allocations whatever the number of samples (none
// per sample or per chunk).
func TestIteratorAllocsPerSeries(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	ctx := context.Background()
	db, err := Open(t.TempDir(), &Options{ChunkSamples: 30})
	require.NoError(t, err)
	defer db.Close()
	small, large := FromStrings(MetricName, "small"), FromStrings(MetricName, "large")
	var rs, rl SeriesRef
	for i := range 3000 {
		app := db.Appender(ctx)
		if i < 100 {
			rs, err = app.Append(rs, small, int64(i)*1000, float64(i))
			require.NoError(t, err)
		}
		rl, err = app.Append(rl, large, int64(i)*1000, float64(i%7))
		require.NoError(t, err)
		require.NoError(t, app.Commit())
	}
	q, err := db.Querier(0, math.MaxInt64)
	require.NoError(t, err)
	defer q.Close()
	measure := func(ls Labels, n int) float64 {
		m, err := NewMatcher(MatchEqual, MetricName, ls.Get(MetricName))
		require.NoError(t, err)
		ss := q.Select(ctx, false, m)
		require.True(t, ss.Next())
		s := ss.At()
		var it Iterator
		count := 0
		read := func() {
			it = s.Iterator(it)
			count = 0
			for it.Next() == ValFloat {
				count++
			}
		}
		read() // grow the buffers
		allocs := testing.AllocsPerRun(10, read)
		require.Equal(t, n, count)
		return allocs
	}
	a1 := measure(small, 100)
	a2 := measure(large, 3000)
	t.Logf("allocs per series read: %v (100 samples), %v (3000 samples)", a1, a2)
	// A few for Pebble's iterator; the large series has 100 chunks, so an
	// allocation per chunk or sample would show.
	require.LessOrEqual(t, a1, 4.0)
	require.LessOrEqual(t, a2, a1)
}

// TestCompactChunksWindows checks which windows CompactChunks merges: only
// closed ones below its bound, again after a late sample, never one with
// histograms, and that every sample reads back throughout and after a
// reopen.
func TestCompactChunksWindows(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(dir, &Options{OutOfOrderWindow: 5 * time.Hour})
	require.NoError(t, err)
	fl, hl := FromStrings(MetricName, "f"), FromStrings(MetricName, "h")
	const step = 15_000
	n := int(2*chunkRange/step) + 50 // two whole windows and part of a third
	var rf, rh SeriesRef
	want := map[int64]float64{}
	for i := range n {
		ts := int64(i) * step
		app := db.Appender(ctx)
		rf, err = app.Append(rf, fl, ts, float64(i%13))
		require.NoError(t, err)
		want[ts] = float64(i % 13)
		if i%100 == 0 {
			h := &Histogram{Count: 1, ZeroCount: 1, ZeroThreshold: 0.001}
			rh, err = app.AppendHistogram(rh, hl, ts, h)
		} else {
			rh, err = app.Append(rh, hl, ts, 1)
		}
		require.NoError(t, err)
		require.NoError(t, app.Commit())
	}
	// An out-of-order sample into the first, merged window.
	app := db.Appender(ctx)
	rf, err = app.Append(rf, fl, 7, 42)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	want[7] = 42

	perWindow := func(ref SeriesRef) map[int64]int {
		prefix := keys.AppendMetricChunkPrefix(nil, uint32(ref))
		it, err := db.p.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keys.PrefixEnd(prefix)})
		require.NoError(t, err)
		defer it.Close()
		got := map[int64]int{}
		for it.First(); it.Valid(); it.Next() {
			_, lo, _, _, err := keys.ParseMetricChunk(it.Key())
			require.NoError(t, err)
			got[chunkWindow(lo)]++
		}
		return got
	}
	check := func(db *DB) {
		m, err := NewMatcher(MatchEqual, MetricName, "f")
		require.NoError(t, err)
		series := readAll(t, db, math.MinInt64, math.MaxInt64, m)[fl.String()]
		require.Len(t, series, len(want))
		for _, s := range series {
			require.Equal(t, want[s.t], s.v, "t=%d", s.t)
		}
	}
	// Sealing wrote the chunks as they are: a window at 15 s is four.
	f := perWindow(rf)
	require.Equal(t, 5, f[0], "four chunks and the out-of-order sample's")
	require.Equal(t, 4, f[1])
	check(db)

	// Only windows that end at or before the bound are compacted.
	st, err := db.CompactChunks(ctx, 2*chunkRange)
	require.NoError(t, err)
	require.Equal(t, 1, st.Items, "one float series rewritten")
	require.Less(t, st.BytesOut, st.BytesIn)
	f = perWindow(rf)
	require.Equal(t, 1, f[0], "window 0 merged with its late sample")
	require.Equal(t, 1, f[1])
	require.Equal(t, map[int64]int{0: 1, 1: 1}, f, "window 2 is still in the head")
	check(db)
	again, err := db.CompactChunks(ctx, 2*chunkRange)
	require.NoError(t, err)
	require.Zero(t, again.Items, "a second pass has nothing to do")

	// A late sample in a compacted window is a chunk of its own until the
	// next pass.
	app = db.Appender(ctx)
	_, err = app.Append(rf, fl, 8, 43)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	want[8] = 43
	require.Equal(t, 2, perWindow(rf)[0])
	check(db)
	st, err = db.CompactChunks(ctx, 2*chunkRange)
	require.NoError(t, err)
	require.Equal(t, 1, st.Items)
	require.Equal(t, 1, perWindow(rf)[0])
	check(db)

	// Flush seals the heads and compacts every window.
	require.NoError(t, db.Flush(ctx))
	require.Equal(t, map[int64]int{0: 1, 1: 1, 2: 1}, perWindow(rf))
	require.Greater(t, perWindow(rh)[0], 4, "a window with histograms is not merged")
	check(db)
	require.NoError(t, db.Close())
	db, err = Open(dir, nil)
	require.NoError(t, err)
	defer db.Close()
	check(db)
}
