package tsdb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/encoding"
)

func testHist(i int) *Histogram {
	return &Histogram{
		Schema: 1, ZeroThreshold: 1e-128, ZeroCount: uint64(i), Count: uint64(3*i + 4), Sum: float64(i) * 1.5,
		PositiveSpans:   []encoding.BucketSpan{{Offset: 0, Length: 2}},
		PositiveBuckets: []int64{int64(i + 1), 2},
	}
}

func TestHistogramsAndSwitching(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := Open(dir, &Options{ChunkSamples: 7})
	require.NoError(t, err)
	ls := FromStrings(MetricName, "lat")
	var ref SeriesRef
	// 0..29 histograms, 30..39 floats, 40..49 histograms again.
	for i := range 50 {
		app := db.Appender(ctx)
		if i >= 30 && i < 40 {
			ref, err = app.Append(ref, ls, int64(i)*1000, float64(i))
		} else {
			ref, err = app.AppendHistogram(ref, ls, int64(i)*1000, testHist(i))
		}
		require.NoError(t, err)
		require.NoError(t, app.Commit())
	}
	check := func(db *DB) {
		q, err := db.Querier(5000, 45000)
		require.NoError(t, err)
		ss := q.Select(ctx, false, mustMatcher(t, MatchEqual, MetricName, "lat"))
		require.True(t, ss.Next())
		it := ss.At().Iterator(nil)
		var h Histogram
		n := 0
		for vt := it.Next(); vt != ValNone; vt = it.Next() {
			i := 5 + n
			require.Equal(t, int64(i)*1000, it.AtT())
			if i >= 30 && i < 40 {
				require.Equal(t, ValFloat, vt)
				_, v := it.At()
				require.Equal(t, float64(i), v)
			} else {
				require.Equal(t, ValHistogram, vt, "sample %d", i)
				_, got := it.AtHistogram(&h)
				require.True(t, histEqual(testHist(i), got), "sample %d: %+v", i, got)
			}
			n++
		}
		require.NoError(t, it.Err())
		require.Equal(t, 41, n)
		require.Equal(t, ValNone, it.SeekTo(1)) // forward only: stays at the end
		require.False(t, ss.Next())
	}
	check(db)
	require.NoError(t, db.p.Close())
	db, err = Open(dir, nil)
	require.NoError(t, err)
	check(db)
	require.NoError(t, db.Close())
	db, err = Open(dir, nil)
	require.NoError(t, err)
	check(db)
	require.NoError(t, db.Close())
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), &Options{OutOfOrderWindow: time.Minute})
	require.NoError(t, err)
	defer db.Close()
	app := db.Appender(ctx)
	for _, ls := range []Labels{
		{}, {{"", "x"}}, {{"a", "1"}, {"a", "2"}}, {{"b", "1"}, {"a", "1"}}, {{"9a", "1"}}, {{"a", ""}}, {{"a", "\xfe"}},
	} {
		_, err := app.Append(0, ls, 1, 1)
		require.ErrorIs(t, err, ErrInvalidLabels, "%v", ls)
	}
	_, err = app.Append(12345, nil, 1, 1)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = app.AppendHistogram(0, FromStrings("a", "1"), 1, nil)
	require.ErrorIs(t, err, ErrInvalidSample)
	_, err = app.AppendHistogram(0, FromStrings("a", "1"), 1, &Histogram{PositiveSpans: []encoding.BucketSpan{{Length: 3}}})
	require.ErrorIs(t, err, ErrInvalidSample)

	ls := FromStrings("a", "1")
	ref, err := app.Append(0, ls, 100_000, 1)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	require.ErrorIs(t, app.Commit(), ErrClosed)
	_, err = app.Append(ref, ls, 1, 1)
	require.ErrorIs(t, err, ErrClosed)

	// Out of order past the window: rejected at Append with a typed error.
	app = db.Appender(ctx)
	_, err = app.Append(ref, ls, 100_000-61_000, 1)
	require.ErrorIs(t, err, ErrOutOfOrderSample)
	var se *SampleError
	require.True(t, errors.As(err, &se))
	require.Equal(t, ls, se.Labels)
	// Within the window: accepted.
	_, err = app.Append(ref, ls, 100_000-30_000, 2)
	require.NoError(t, err)
	require.NoError(t, app.Commit())

	// Same timestamp, same value (NaN payload compared by bits): a no-op;
	// a different value fails the whole batch and stores none of it.
	stale := math.Float64frombits(0x7ff0000000000002)
	app = db.Appender(ctx)
	_, err = app.Append(ref, ls, 200_000, stale)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	app = db.Appender(ctx)
	_, err = app.Append(ref, ls, 200_000, stale)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	app = db.Appender(ctx)
	_, err = app.Append(0, FromStrings("new", "series"), 5, 5)
	require.NoError(t, err)
	_, err = app.Append(ref, ls, 300_000, 3)
	require.NoError(t, err)
	_, err = app.Append(ref, ls, 200_000, math.NaN())
	require.NoError(t, err)
	require.ErrorIs(t, app.Commit(), ErrDuplicateSampleForTimestamp)

	got := readAll(t, db, math.MinInt64, math.MaxInt64)
	require.Len(t, got, 1, "the failed batch made no series visible")
	s := got[ls.String()]
	require.Len(t, s, 3)
	require.Equal(t, int64(70_000), s[0].t)
	require.Equal(t, math.Float64bits(stale), math.Float64bits(s[2].v))

	// Rollback leaves nothing.
	app = db.Appender(ctx)
	_, err = app.Append(0, FromStrings("rolled", "back"), 5, 5)
	require.NoError(t, err)
	require.NoError(t, app.Rollback())
	require.Len(t, readAll(t, db, math.MinInt64, math.MaxInt64), 1)
	require.Equal(t, uint64(1), db.Stats().Series)

	_, err = NewMatcher(MatchRegexp, "a", "[")
	require.ErrorIs(t, err, ErrInvalidMatcher)
}

func TestUTF8Names(t *testing.T) {
	db, err := Open(t.TempDir(), &Options{AllowUTF8Names: true})
	require.NoError(t, err)
	defer db.Close()
	app := db.Appender(context.Background())
	_, err = app.Append(0, FromStrings("http.status-code", "200"), 1, 1)
	require.NoError(t, err)
	_, err = app.Append(0, Labels{{"a\xff", "1"}}, 1, 1)
	require.ErrorIs(t, err, ErrInvalidLabels)
	require.NoError(t, app.Commit())
}

func TestConcurrentAppendQuery(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), &Options{ChunkSamples: 20})
	require.NoError(t, err)
	defer db.Close()
	const writers, series, batches = 4, 50, 150
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			refs := make([]SeriesRef, series)
			for b := range batches {
				app := db.Appender(ctx)
				for s := range series {
					ls := FromStrings(MetricName, "c", "w", fmt.Sprint(w), "s", fmt.Sprint(s))
					ref, err := app.Append(refs[s], ls, int64(b)*1000, float64(b))
					refs[s] = ref
					if err != nil {
						t.Error(err)
						return
					}
				}
				if err := app.Commit(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	var rg sync.WaitGroup
	for range 2 {
		rg.Go(func() {
			var it Iterator
			for {
				select {
				case <-stop:
					return
				default:
				}
				q, err := db.Querier(0, math.MaxInt64)
				if err != nil {
					t.Error(err)
					return
				}
				ss := q.Select(ctx, true, mustMatcher(t, MatchRegexp, "w", "1|2"))
				for ss.Next() {
					it = ss.At().Iterator(it)
					prev := int64(-1)
					for it.Next() == ValFloat {
						ts, v := it.At()
						if ts <= prev || float64(ts/1000) != v {
							t.Errorf("bad sample %d %v after %d", ts, v, prev)
						}
						prev = ts
					}
					if it.Err() != nil {
						t.Error(it.Err())
					}
				}
				_, _ = q.LabelValues(ctx, "s")
				_ = q.Close()
			}
		})
	}
	wg.Wait()
	close(stop)
	rg.Wait()
	got := readAll(t, db, 0, math.MaxInt64)
	require.Len(t, got, writers*series)
	for _, s := range got {
		require.Len(t, s, batches)
	}
}

func TestIteratorAllocs(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), &Options{ChunkSamples: 30})
	require.NoError(t, err)
	defer db.Close()
	var ref SeriesRef
	ls := FromStrings(MetricName, "x")
	for i := range 200 {
		app := db.Appender(ctx)
		ref, err = app.Append(ref, ls, int64(i)*1000, float64(i))
		require.NoError(t, err)
		require.NoError(t, app.Commit())
	}
	q, err := db.Querier(0, math.MaxInt64)
	require.NoError(t, err)
	ss := q.Select(ctx, false)
	require.True(t, ss.Next())
	s := ss.At()
	it := s.Iterator(nil)
	sum := 0.0
	allocs := testing.AllocsPerRun(20, func() {
		for it.Next() == ValFloat {
			_, v := it.At()
			sum += v
		}
		it.SeekTo(1 << 40)
	})
	require.Zero(t, allocs)
	it = s.Iterator(it)
	n := 0
	for it.Next() == ValFloat {
		n++
	}
	require.Equal(t, 200, n)
	require.Positive(t, sum)
}
