package tsdb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/internal/keys"
)

// chunkKeys counts the chunk keys of every series, and those written by
// CompactChunks (seq 0).
func chunkKeys(t *testing.T, db *DB) (all, compacted int) {
	t.Helper()
	lo := keys.AppendPrefix(nil, keys.StoreMetrics, keys.MetricChunk)
	it, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	require.NoError(t, err)
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		_, _, _, seq, err := keys.ParseMetricChunk(it.Key())
		require.NoError(t, err)
		all++
		if seq == 0 {
			compacted++
		}
	}
	return all, compacted
}

// TestOutOfOrderAtSealedTimestamp appends, within the out-of-order window,
// samples at timestamps that are already sealed: a different value is
// ErrDuplicateSampleForTimestamp, the same value changes nothing, for
// floats and histograms, before and after the chunks are compacted.
func TestOutOfOrderAtSealedTimestamp(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), &Options{OutOfOrderWindow: time.Hour, ChunkSamples: 4})
	require.NoError(t, err)
	defer db.Close()
	fl, hl := FromStrings(MetricName, "f"), FromStrings(MetricName, "h")
	for i := range 30 {
		app := db.Appender(ctx)
		_, err := app.Append(0, fl, int64(i)*1000, float64(i))
		require.NoError(t, err)
		_, err = app.AppendHistogram(0, hl, int64(i)*1000, testHist(i))
		require.NoError(t, err)
		require.NoError(t, app.Commit())
	}
	s := db.reg.lookup(fl.Hash(), fl)
	require.NotNil(t, s)
	require.GreaterOrEqual(t, s.mark.sealT, int64(20_000), "the early samples are sealed")
	want := readAll(t, db, math.MinInt64, math.MaxInt64, mustMatcher(t, MatchEqual, MetricName, "f"))

	try := func(phase string) {
		for _, ts := range []int64{0, 3000, 17_000} {
			app := db.Appender(ctx)
			_, err := app.Append(0, fl, ts, float64(ts/1000)+0.5)
			require.NoError(t, err)
			err = app.Commit()
			require.ErrorIs(t, err, ErrDuplicateSampleForTimestamp, "%s: float at %d", phase, ts)
			var se *SampleError
			require.True(t, errors.As(err, &se))
			require.Equal(t, ts, se.T)

			app = db.Appender(ctx)
			_, err = app.Append(0, fl, ts, float64(ts/1000))
			require.NoError(t, err)
			require.NoError(t, app.Commit(), "%s: the same float at %d", phase, ts)

			app = db.Appender(ctx)
			_, err = app.AppendHistogram(0, hl, ts, testHist(int(ts/1000)+1))
			require.NoError(t, err)
			require.ErrorIs(t, app.Commit(), ErrDuplicateSampleForTimestamp, "%s: histogram at %d", phase, ts)

			app = db.Appender(ctx)
			_, err = app.Append(0, hl, ts, 1)
			require.NoError(t, err)
			require.ErrorIs(t, app.Commit(), ErrDuplicateSampleForTimestamp, "%s: a float where a histogram is", phase)

			app = db.Appender(ctx)
			_, err = app.AppendHistogram(0, hl, ts, testHist(int(ts/1000)))
			require.NoError(t, err)
			require.NoError(t, app.Commit(), "%s: the same histogram at %d", phase, ts)
		}
		// A sealed gap is not a duplicate.
		app := db.Appender(ctx)
		_, err := app.Append(0, fl, 2500, 99)
		require.NoError(t, err)
		require.NoError(t, app.Commit())
		app = db.Appender(ctx)
		_, err = app.Append(0, fl, 2500, 98)
		require.NoError(t, err)
		require.ErrorIs(t, app.Commit(), ErrDuplicateSampleForTimestamp)
	}
	try("sealed")
	require.NoError(t, db.Flush(ctx))
	_, compacted := chunkKeys(t, db)
	require.Positive(t, compacted)
	got := readAll(t, db, math.MinInt64, math.MaxInt64, mustMatcher(t, MatchEqual, MetricName, "f"))
	f := got[fl.String()]
	require.Len(t, f, 31)
	require.Equal(t, fsample{2500, 99}, f[3])
	f = append(f[:3], f[4:]...)
	require.Equal(t, want[fl.String()], f, "nothing stored changed")
	try("compacted")
}

// genStore fills a DB with series at several scrape intervals, some late
// samples and a few histogram series, and returns the newest timestamp.
func genStore(t *testing.T, db *DB, rng *rand.Rand, nSeries, batches int) int64 {
	ctx := context.Background()
	refs := make([]SeriesRef, nSeries)
	step := make([]int64, nSeries)
	next := make([]int64, nSeries)
	for i := range step {
		step[i] = []int64{15_000, 60_000, 300_000}[i%3]
	}
	newest := int64(0)
	for range batches {
		app := db.Appender(ctx)
		for range 1 + rng.IntN(2*nSeries) {
			i := rng.IntN(nSeries)
			ls := FromStrings(MetricName, fmt.Sprintf("m%d", i%4), "i", fmt.Sprint(i))
			ts := next[i]
			late := rng.IntN(30) == 0 && ts > 3*chunkRange
			if late {
				ts -= rng.Int64N(3*chunkRange) | 1
			} else {
				next[i] += step[i] + rng.Int64N(50)
			}
			var err error
			if i%17 == 0 && !late {
				refs[i], err = app.AppendHistogram(refs[i], ls, ts, testHist(int(ts%1000)))
			} else {
				refs[i], err = app.Append(refs[i], ls, ts, float64(rng.IntN(200))/4)
			}
			if err != nil {
				require.ErrorIs(t, err, ErrOutOfOrderSample)
			}
			newest = max(newest, ts)
		}
		if err := app.Commit(); err != nil {
			require.ErrorIs(t, err, ErrDuplicateSampleForTimestamp)
		}
	}
	return newest
}

// readEverything reads every sample of every series in [mint, maxt],
// histograms as their count.
func readEverything(t *testing.T, db *DB, mint, maxt int64) map[string][]fsample {
	t.Helper()
	q, err := db.Querier(mint, maxt)
	require.NoError(t, err)
	defer q.Close()
	out := map[string][]fsample{}
	ss := q.Select(context.Background(), true)
	var it Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		var got []fsample
		for vt := it.Next(); vt != ValNone; vt = it.Next() {
			if vt == ValHistogram {
				ts, h := it.AtHistogram(nil)
				got = append(got, fsample{ts, float64(h.Count)})
				continue
			}
			ts, v := it.At()
			got = append(got, fsample{ts, v})
		}
		require.NoError(t, it.Err())
		if len(got) > 0 {
			out[ss.At().Labels().String()] = got
		}
	}
	require.NoError(t, ss.Err())
	return out
}

// TestCompactChunksSameResults checks that random range queries read the
// same samples before and after CompactChunks passes with different
// bounds, and after a reopen, and that the passes shrink the chunks.
func TestCompactChunksSameResults(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	dir := t.TempDir()
	opts := &Options{OutOfOrderWindow: 8 * time.Hour}
	db, err := Open(dir, opts)
	require.NoError(t, err)
	newest := genStore(t, db, rng, 40, 1000)
	type rng2 struct{ lo, hi int64 }
	ranges := []rng2{{math.MinInt64, math.MaxInt64}}
	for range 20 {
		lo := rng.Int64N(newest)
		ranges = append(ranges, rng2{lo, lo + rng.Int64N(3*chunkRange)})
	}
	before := make([]map[string][]fsample, len(ranges))
	for i, r := range ranges {
		before[i] = readEverything(t, db, r.lo, r.hi)
	}
	check := func(phase string) {
		for i, r := range ranges {
			require.Equal(t, before[i], readEverything(t, db, r.lo, r.hi), "%s: range [%d, %d]", phase, r.lo, r.hi)
		}
	}
	keys0, _ := chunkKeys(t, db)
	ctx := context.Background()
	for _, b := range []int64{newest / 3, newest / 3, newest - int64(opts.OutOfOrderWindow/time.Millisecond)} {
		_, err := db.CompactChunks(ctx, b)
		require.NoError(t, err)
		check(fmt.Sprintf("compacted before %d", b))
	}
	st, err := db.CompactChunks(ctx, math.MaxInt64)
	require.NoError(t, err)
	check("compacted everything")
	keys1, compacted := chunkKeys(t, db)
	require.Less(t, keys1, keys0)
	require.Positive(t, compacted)
	t.Logf("%d chunk keys, then %d (%d compacted); last pass %+v", keys0, keys1, compacted, st)
	require.NoError(t, db.Close())
	db, err = Open(dir, opts)
	require.NoError(t, err)
	check("reopened")
	st, err = db.CompactChunks(ctx, math.MaxInt64)
	require.NoError(t, err)
	require.Zero(t, st.Items, "nothing left to do after a reopen")
	require.NoError(t, db.Close())
}

// TestCompactChunksCancel cancels a pass: it stops with the context's
// error, nothing is lost, and a later pass finishes the work.
func TestCompactChunksCancel(t *testing.T) {
	db, err := Open(t.TempDir(), &Options{ChunkSamples: 8})
	require.NoError(t, err)
	defer db.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	genStore(t, db, rng, 1200, 30)
	want := readEverything(t, db, math.MinInt64, math.MaxInt64)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = db.CompactChunks(ctx, math.MaxInt64)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, want, readEverything(t, db, math.MinInt64, math.MaxInt64))
	st, err := db.CompactChunks(context.Background(), math.MaxInt64)
	require.NoError(t, err)
	require.Positive(t, st.Items)
	require.Equal(t, want, readEverything(t, db, math.MinInt64, math.MaxInt64))
}

// TestCompactChunksConcurrent runs passes while writers append in order
// and fill in late samples in windows already compacted, and readers check
// that every acknowledged sample is there exactly once, in order.
func TestCompactChunksConcurrent(t *testing.T) {
	ctx := context.Background()
	const step = 10 * 60_000 // 12 samples a window
	const lateLag = 40       // late samples land 40 steps (over three windows) back
	db, err := Open(t.TempDir(), &Options{ChunkSamples: 4, OutOfOrderWindow: 24 * time.Hour})
	require.NoError(t, err)
	defer db.Close()
	const series, batches = 12, 200
	var ackedMain, ackedLate atomic.Int64
	lss := make([]Labels, series)
	for i := range lss {
		lss[i] = FromStrings(MetricName, "c", "s", fmt.Sprint(i))
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		refs := make([]SeriesRef, series)
		for k := range int64(batches) {
			app := db.Appender(ctx)
			for i := range lss {
				var err error
				if refs[i], err = app.Append(refs[i], lss[i], k*step, float64(k)); err != nil {
					t.Error(err)
					return
				}
				if k >= lateLag {
					j := k - lateLag
					if refs[i], err = app.Append(refs[i], lss[i], j*step+1, -float64(j)); err != nil {
						t.Error(err)
						return
					}
				}
			}
			if err := app.Commit(); err != nil {
				t.Error(err)
				return
			}
			ackedMain.Store(k + 1)
			ackedLate.Store(max(0, k+1-lateLag))
		}
	})
	stop := make(chan struct{})
	var bg sync.WaitGroup
	passes := atomic.Int64{}
	bg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			// Windows that late samples no longer reach, and also ones they
			// do, so that late chunks land in compacted windows.
			bound := ackedMain.Load() * step
			if passes.Load()%2 == 1 {
				bound -= lateLag * step
			}
			if _, err := db.CompactChunks(ctx, bound); err != nil {
				t.Error(err)
				return
			}
			passes.Add(1)
			time.Sleep(100 * time.Microsecond) // leave the writer room
		}
	})
	for range 2 {
		bg.Go(func() {
			var it Iterator
			for {
				select {
				case <-stop:
					return
				default:
				}
				wantMain, wantLate := ackedMain.Load(), ackedLate.Load()
				q, err := db.Querier(math.MinInt64, math.MaxInt64)
				if err != nil {
					t.Error(err)
					return
				}
				ss := q.Select(ctx, false, mustMatcher(t, MatchEqual, MetricName, "c"))
				n := 0
				for ss.Next() {
					n++
					it = ss.At().Iterator(it)
					var main, late int64
					prev := int64(-1)
					for it.Next() == ValFloat {
						ts, v := it.At()
						switch {
						case ts <= prev:
							t.Errorf("%d after %d", ts, prev)
						case ts%step == 0 && ts/step == main && v == float64(main):
							main++
						case ts%step == 1 && ts/step == late && v == -float64(late):
							late++
						default:
							t.Errorf("unexpected sample %d %v (main %d, late %d)", ts, v, main, late)
						}
						prev = ts
					}
					if it.Err() != nil {
						t.Error(it.Err())
					}
					if main < wantMain || late < wantLate {
						t.Errorf("%s: %d and %d samples, want at least %d and %d", ss.At().Labels(), main, late, wantMain, wantLate)
					}
				}
				if wantMain > 0 && n != series {
					t.Errorf("%d series", n)
				}
				_ = q.Close()
				if t.Failed() {
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	require.Positive(t, passes.Load())
	_, err = db.CompactChunks(ctx, math.MaxInt64)
	require.NoError(t, err)
	got := readAll(t, db, math.MinInt64, math.MaxInt64)
	require.Len(t, got, series)
	for _, s := range got {
		require.Len(t, s, batches+batches-lateLag)
	}
	all, compacted := chunkKeys(t, db)
	t.Logf("%d passes; %d chunk keys, %d compacted", passes.Load(), all, compacted)
	require.Positive(t, compacted)
}
