package tsdb

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type fsample struct {
	t int64
	v float64
}

func readAll(t *testing.T, db *DB, mint, maxt int64, ms ...*Matcher) map[string][]fsample {
	t.Helper()
	q, err := db.Querier(mint, maxt)
	require.NoError(t, err)
	defer q.Close()
	out := map[string][]fsample{}
	ss := q.Select(context.Background(), true, ms...)
	var it Iterator
	var prev Labels
	for ss.Next() {
		s := ss.At()
		if prev != nil {
			require.Negative(t, Compare(prev, s.Labels()), "sorted")
		}
		prev = s.Labels()
		it = s.Iterator(it)
		var got []fsample
		for vt := it.Next(); vt != ValNone; vt = it.Next() {
			require.Equal(t, ValFloat, vt)
			ts, v := it.At()
			got = append(got, fsample{ts, v})
		}
		require.NoError(t, it.Err())
		if len(got) > 0 {
			out[s.Labels().String()] = got
		}
	}
	require.NoError(t, ss.Err())
	return out
}

func mustMatcher(t testing.TB, mt MatchType, n, v string) *Matcher {
	m, err := NewMatcher(mt, n, v)
	require.NoError(t, err)
	return m
}

func TestAppendQueryReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := Open(dir, nil)
	require.NoError(t, err)
	a := FromStrings(MetricName, "up", "job", "a")
	b := FromStrings(MetricName, "up", "job", "b")
	var ra, rb SeriesRef
	for i := range 500 {
		app := db.Appender(ctx)
		ra, err = app.Append(ra, a, int64(i)*15000, float64(i))
		require.NoError(t, err)
		rb, err = app.Append(rb, b, int64(i)*15000, -float64(i))
		require.NoError(t, err)
		require.NoError(t, app.Commit())
	}
	check := func(db *DB) {
		got := readAll(t, db, 0, math.MaxInt64, mustMatcher(t, MatchEqual, MetricName, "up"))
		require.Len(t, got, 2)
		require.Len(t, got[a.String()], 500)
		require.Equal(t, fsample{499 * 15000, 499}, got[a.String()][499])
		got = readAll(t, db, 15000*10, 15000*20, mustMatcher(t, MatchRegexp, "job", "b|c"))
		require.Len(t, got[b.String()], 11)
		require.Equal(t, fsample{15000 * 10, -10}, got[b.String()][0])
	}
	check(db)
	require.Greater(t, db.Stats().SealedChunks, uint64(0))
	// Reopen without Close: the write-ahead entries are replayed.
	require.NoError(t, db.p.Close())
	db, err = Open(dir, nil)
	require.NoError(t, err)
	check(db)
	require.NoError(t, db.Close())
	db, err = Open(dir, &Options{OutOfOrderWindow: time.Minute})
	require.NoError(t, err)
	check(db)
	st := db.Stats()
	require.Equal(t, uint64(0), st.HeadSamples, "Close sealed every head")
	require.Equal(t, uint64(2), st.Series)
	require.NoError(t, db.Close())
}
