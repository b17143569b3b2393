package tsdb

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/encoding"
)

const hourMs = int64(3600_000)

// fillHours appends n series of one sample every step ms over [0, hours h)
// and seals everything. Values are full-precision, so chunks, not the
// store's fixed records, make up most of the disk bytes.
func fillHours(t *testing.T, db *DB, n int, hours, step int64) {
	t.Helper()
	ctx := t.Context()
	refs := make([]SeriesRef, n)
	for ts := int64(0); ts < hours*hourMs; ts += step {
		app := db.Appender(ctx)
		for i := range n {
			var err error
			refs[i], err = app.Append(refs[i], FromStrings(MetricName, "load", "i", fmt.Sprint(i)), ts, math.Sqrt(float64(ts/step+int64(i))))
			require.NoError(t, err)
		}
		require.NoError(t, app.Commit())
	}
	require.NoError(t, db.Compact(ctx))
}

func TestDropBeforeDropsWholeChunks(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, nil)
	require.NoError(t, err)
	const step = 30_000
	fillHours(t, db, 20, 10, step)
	before := readAll(t, db, math.MinInt64, math.MaxInt64)
	require.Len(t, before, 20)
	// Measure tables, not the memtable: Pebble's estimate counts only
	// what has reached sstables.
	require.NoError(t, db.Compact(t.Context()))
	disk := db.Stats().DiskBytes

	// Half way through the window [4h, 6h): that window's chunk holds
	// samples on both sides of the cut and stays whole.
	cut := 5 * hourMs
	st, err := db.DropBefore(t.Context(), cut)
	require.NoError(t, err)
	require.Positive(t, st.Items)
	require.Positive(t, st.BytesIn)
	require.Zero(t, st.BytesOut)

	check := func(db *DB) {
		after := readAll(t, db, math.MinInt64, math.MaxInt64)
		require.Len(t, after, len(before))
		for k, samples := range before {
			got := after[k]
			require.NotEmpty(t, got, k)
			// Every sample at or after the cut is there, unchanged.
			var keep []fsample
			for _, s := range samples {
				if s.t >= cut {
					keep = append(keep, s)
				}
			}
			require.Equal(t, keep, got[len(got)-len(keep):], k)
			// Nothing before the straddling chunk's window is left, and
			// what is left before the cut is a suffix of what was there.
			require.GreaterOrEqual(t, got[0].t, chunkWindow(cut)*chunkRange, k)
			require.LessOrEqual(t, got[0].t, cut, k)
			require.Equal(t, samples[len(samples)-len(got):], got, k)
		}
		// A query wholly before the cut's window finds no series.
		require.Empty(t, readAll(t, db, 0, chunkWindow(cut)*chunkRange-1))
	}
	check(db)
	// Dropping again changes nothing.
	st, err = db.DropBefore(t.Context(), cut)
	require.NoError(t, err)
	require.Zero(t, st.Items)
	check(db)

	// The space comes back: about 40 % of the data is gone.
	require.Less(t, float64(db.Stats().DiskBytes), 0.75*float64(disk), "disk %d before", disk)

	require.NoError(t, db.Close())
	db, err = Open(dir, nil)
	require.NoError(t, err)
	check(db)
	require.NoError(t, db.Close())
}

func TestDropBeforeEverything(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, nil)
	require.NoError(t, err)
	fillHours(t, db, 3, 4, 60_000)
	st, err := db.DropBefore(t.Context(), 100*hourMs)
	require.NoError(t, err)
	require.Equal(t, 3*2, st.Items, "one merged chunk per window per series")
	require.Empty(t, readAll(t, db, math.MinInt64, math.MaxInt64))

	// The series still exist and take new samples, which queries see.
	app := db.Appender(t.Context())
	l := FromStrings(MetricName, "load", "i", "1")
	_, err = app.Append(0, l, 200*hourMs, 7)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	require.Equal(t, map[string][]fsample{l.String(): {{200 * hourMs, 7}}}, readAll(t, db, math.MinInt64, math.MaxInt64))
	// An older sample than the newest ever stored is still out of order.
	app = db.Appender(t.Context())
	_, err = app.Append(0, l, 150*hourMs, 7)
	require.ErrorIs(t, err, ErrOutOfOrderSample)
	require.NoError(t, app.Rollback())

	require.NoError(t, db.Close())
	db, err = Open(dir, nil)
	require.NoError(t, err)
	require.Equal(t, map[string][]fsample{l.String(): {{200 * hourMs, 7}}}, readAll(t, db, math.MinInt64, math.MaxInt64))
	names, err := db.mustQuerier(t).LabelValues(t.Context(), "i")
	require.NoError(t, err)
	require.Equal(t, []string{"0", "1", "2"}, names, "series records are kept")
	require.NoError(t, db.Close())
}

func (db *DB) mustQuerier(t *testing.T) *Querier {
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func TestDropBeforeKeepsHeadAndHistograms(t *testing.T) {
	db, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer db.Close()
	ctx := t.Context()
	h := FromStrings(MetricName, "latency")
	f := FromStrings(MetricName, "up")
	var rh, rf SeriesRef
	for ts := int64(0); ts < 5*hourMs; ts += 60_000 {
		app := db.Appender(ctx)
		rh, err = app.AppendHistogram(rh, h, ts, &Histogram{Count: 1, Sum: float64(ts), Schema: 0,
			PositiveSpans: []encoding.BucketSpan{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{1}})
		require.NoError(t, err)
		rf, err = app.Append(rf, f, ts, 1)
		require.NoError(t, err)
		require.NoError(t, app.Commit())
	}
	// Samples of the window [4h, 6h) are partly still in the heads.
	st, err := db.DropBefore(ctx, 4*hourMs+30*60_000)
	require.NoError(t, err)
	require.Positive(t, st.Items)
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	defer q.Close()
	ss := q.Select(ctx, true)
	n := 0
	for ss.Next() {
		it := ss.At().Iterator(nil)
		first := true
		count := 0
		for vt := it.Next(); vt != ValNone; vt = it.Next() {
			ts := it.AtT()
			if first {
				require.GreaterOrEqual(t, ts, 4*hourMs, ss.At().Labels().String())
				first = false
			}
			count++
		}
		require.NoError(t, it.Err())
		require.Equal(t, 60, count, "the last window whole: %s", ss.At().Labels())
		n++
	}
	require.NoError(t, ss.Err())
	require.Equal(t, 2, n)
}

func TestDropBeforeWithConcurrentAppends(t *testing.T) {
	db, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer db.Close()
	ctx := t.Context()
	fillHours(t, db, 50, 6, 60_000)
	var wg sync.WaitGroup
	wg.Go(func() {
		l := FromStrings(MetricName, "fresh")
		var ref SeriesRef
		for i := range 2000 {
			app := db.Appender(ctx)
			var err error
			ref, err = app.Append(ref, l, 6*hourMs+int64(i)*1000, float64(i))
			if err == nil {
				err = app.Commit()
			}
			if !assertNoError(t, err) {
				return
			}
		}
	})
	for cut := int64(1); cut <= 5; cut++ {
		_, err := db.DropBefore(ctx, cut*hourMs)
		require.NoError(t, err)
	}
	wg.Wait()
	got := readAll(t, db, math.MinInt64, math.MaxInt64)
	require.Len(t, got, 51)
	require.Len(t, got[FromStrings(MetricName, "fresh").String()], 2000)
	for k, s := range got {
		require.GreaterOrEqual(t, s[0].t, 4*hourMs, k)
	}
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

func TestDropBeforeStops(t *testing.T) {
	db, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	fillHours(t, db, 2, 4, 60_000)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = db.DropBefore(ctx, 3*hourMs)
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, readAll(t, db, 0, hourMs), 2, "nothing dropped")
	require.NoError(t, db.Close())
	_, err = db.DropBefore(t.Context(), 3*hourMs)
	require.ErrorIs(t, err, ErrClosed)
}

// TestDropBeforeWhileSealing drops old chunks again and again while every
// series is being sealed every few commits, so seals land between a drop
// batch's scan (done without the commit lock) and its commit. Every
// acknowledged sample at or after the last cut is kept, nothing older
// than the chunk straddling it is, and a reopened store (its marks and
// write-ahead replay) reads back the same.
func TestDropBeforeWhileSealing(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{ChunkSamples: 4}
	db, err := Open(dir, opts)
	require.NoError(t, err)
	ctx := t.Context()
	const series, commits, step = 300, 600, int64(60_000)
	lss := make([]Labels, series)
	for i := range lss {
		lss[i] = FromStrings(MetricName, "sealing", "i", fmt.Sprint(i))
	}
	var acked atomic.Int64 // commits acknowledged
	var wg sync.WaitGroup
	wg.Go(func() {
		refs := make([]SeriesRef, series)
		for k := range int64(commits) {
			app := db.Appender(ctx)
			for i := range lss {
				var err error
				if refs[i], err = app.Append(refs[i], lss[i], k*step, float64(k)); !assertNoError(t, err) {
					return
				}
			}
			if !assertNoError(t, app.Commit()) {
				return
			}
			acked.Store(k + 1)
		}
	})
	var cut int64
	for drops := 0; acked.Load() < commits && !t.Failed(); drops++ {
		if c := (acked.Load() - 120) * step; c > cut {
			cut = c
		}
		_, err := db.DropBefore(ctx, cut)
		require.NoError(t, err)
	}
	wg.Wait()
	require.False(t, t.Failed())
	_, err = db.DropBefore(ctx, cut)
	require.NoError(t, err)
	check := func(db *DB) map[string][]fsample {
		got := readAll(t, db, math.MinInt64, math.MaxInt64)
		require.Len(t, got, series)
		for k, s := range got {
			var keep []fsample
			for _, x := range s {
				if x.t >= cut {
					keep = append(keep, x)
				}
			}
			require.Len(t, keep, int(commits-cut/step), k)
			for j, x := range keep {
				require.Equal(t, fsample{t: cut + int64(j)*step, v: float64(cut/step + int64(j))}, x, k)
			}
			// Only the chunk straddling the cut holds older samples.
			require.Greater(t, s[0].t, cut-int64(opts.ChunkSamples)*step, k)
		}
		return got
	}
	want := check(db)
	require.NoError(t, db.Close())
	db, err = Open(dir, opts)
	require.NoError(t, err)
	require.Equal(t, want, check(db))
	require.NoError(t, db.Close())
}
