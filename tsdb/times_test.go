package tsdb

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
)

// sharedTimes returns the timestamps of the shared-timestamp chunk v under
// key, in time order.
func sharedTimes(t *testing.T, db *DB, key, v []byte) []int64 {
	t.Helper()
	_, cmin, cmax, _, err := keys.ParseMetricChunk(key)
	require.NoError(t, err)
	hash, values, err := parseTimesRef(v)
	require.NoError(t, err)
	n, err := valuesLen(values)
	require.NoError(t, err)
	var c timesCodec
	ts, err := c.getColumn(nil, db, hash, n, cmin, cmax)
	require.NoError(t, err)
	return ts
}

// sharedStore is a store of targets whose series are scraped together,
// with jitter, plus one series with timestamps of its own, and the model of
// what it holds.
type sharedStore struct {
	db    *DB
	model map[string][]fsample
	lss   []Labels
	loner Labels
}

func fillShared(t *testing.T, db *DB, targets, perTarget int, hours int64) *sharedStore {
	t.Helper()
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(7, 7))
	s := &sharedStore{db: db, model: map[string][]fsample{}}
	for tg := range targets {
		for i := range perTarget {
			s.lss = append(s.lss, FromStrings(MetricName, "m", "target", fmt.Sprint(tg), "i", fmt.Sprint(i)))
		}
	}
	s.loner = FromStrings(MetricName, "loner")
	vals := make([]float64, len(s.lss)+1)
	for k := int64(0); k < hours*hourMs/15_000; k++ {
		app := db.Appender(ctx)
		for tg := range targets {
			ts := k*15_000 + rng.Int64N(51) - 25
			for i := range perTarget {
				j := tg*perTarget + i
				if j%2 == 0 {
					vals[j] += rng.NormFloat64()
				} else {
					vals[j] += float64(rng.IntN(10))
				}
				_, err := app.Append(0, s.lss[j], ts, vals[j])
				require.NoError(t, err)
				s.model[s.lss[j].String()] = append(s.model[s.lss[j].String()], fsample{ts, vals[j]})
			}
		}
		ts := k*15_000 + 7 + rng.Int64N(51) - 25
		vals[len(s.lss)] = math.Round(rng.Float64()*1e4) / 100
		_, err := app.Append(0, s.loner, ts, vals[len(s.lss)])
		require.NoError(t, err)
		s.model[s.loner.String()] = append(s.model[s.loner.String()], fsample{ts, vals[len(s.lss)]})
		require.NoError(t, app.Commit())
	}
	return s
}

// storedChunks counts the chunks that refer to a shared column and the
// columns, and returns the series of the referring chunks.
func storedChunks(t *testing.T, db *DB) (refs, columns int, ids map[uint32]bool) {
	t.Helper()
	ids = map[uint32]bool{}
	lo := keys.AppendPrefix(nil, keys.StoreMetrics, keys.MetricChunk)
	it, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	require.NoError(t, err)
	for it.First(); it.Valid(); it.Next() {
		if isTimesRef(it.Value()) {
			id, _, _, _, err := keys.ParseMetricChunk(it.Key())
			require.NoError(t, err)
			refs++
			ids[id] = true
		}
	}
	require.NoError(t, it.Close())
	lo = keys.AppendPrefix(nil, keys.StoreMetrics, keys.MetricTimes)
	it, err = db.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	require.NoError(t, err)
	for it.First(); it.Valid(); it.Next() {
		_, _, err := keys.ParseMetricTimes(it.Key())
		require.NoError(t, err)
		columns++
	}
	require.NoError(t, it.Close())
	return refs, columns, ids
}

// checkShared compares whole-store and windowed reads, and seeks, with the
// model.
func (s *sharedStore) check(t *testing.T, from int64) {
	t.Helper()
	want := map[string][]fsample{}
	for k, v := range s.model {
		i := sort.Search(len(v), func(i int) bool { return v[i].t >= from })
		if i < len(v) {
			want[k] = v[i:]
		}
	}
	require.Equal(t, want, readAll(t, s.db, math.MinInt64, math.MaxInt64))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		mint := max(from, 0) + rng.Int64N(3*hourMs)
		maxt := mint + rng.Int64N(3*hourMs)
		got := readAll(t, s.db, mint, maxt)
		for k, v := range want {
			var w []fsample
			for _, x := range v {
				if x.t >= mint && x.t <= maxt {
					w = append(w, x)
				}
			}
			require.Equal(t, w, got[k], "%s in [%d, %d]", k, mint, maxt)
		}
	}
	// SeekTo lands on the first sample at or after its target.
	q, err := s.db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	defer q.Close()
	ss := q.Select(t.Context(), false)
	var it Iterator
	for ss.Next() {
		v := want[ss.At().Labels().String()]
		it = ss.At().Iterator(it)
		base := max(from, 0)
		for _, target := range []int64{base + 3_600_001, base + 3_700_000, base + 2*hourMs + 45_000} {
			i := sort.Search(len(v), func(i int) bool { return v[i].t >= target })
			if i == len(v) {
				require.Equal(t, ValNone, it.SeekTo(target))
				break
			}
			require.Equal(t, ValFloat, it.SeekTo(target))
			gt, gv := it.At()
			require.Equal(t, v[i], fsample{gt, gv})
			require.Equal(t, ValFloat, it.Next())
			gt, gv = it.At()
			require.Equal(t, v[i+1], fsample{gt, gv})
		}
		require.NoError(t, it.Err())
	}
	require.NoError(t, ss.Err())
}

func TestSharedTimestampColumns(t *testing.T) {
	_, err := encoding.EncodingOf([]byte{timesRef, 0})
	require.Error(t, err, "no chunk encoding takes the shared-timestamp marker")

	dir := t.TempDir()
	db, err := Open(dir, &Options{OutOfOrderWindow: 24 * time.Hour})
	require.NoError(t, err)
	s := fillShared(t, db, 3, 8, 7)
	require.NoError(t, db.Compact(t.Context()))
	refs, cols, ids := storedChunks(t, db)
	// Three whole windows and a part (the first scrape, jittered before
	// 0, is a window too short to share); each target's first series
	// keeps its timestamps inline, the other seven share one column a
	// window.
	require.Equal(t, 3*4, cols)
	require.Equal(t, 3*7*4, refs)
	loner := db.reg.lookup(s.loner.Hash(), s.loner)
	require.NotNil(t, loner)
	require.False(t, ids[loner.id], "timestamps no other series has stay inline")
	s.check(t, math.MinInt64)

	// Same value at a stored timestamp: nothing changes; another value: an error.
	ls := s.lss[5]
	old := s.model[ls.String()][10]
	app := db.Appender(t.Context())
	_, err = app.Append(0, ls, old.t, old.v)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	app = db.Appender(t.Context())
	_, err = app.Append(0, ls, old.t, old.v+1)
	require.NoError(t, err)
	require.ErrorIs(t, app.Commit(), ErrDuplicateSampleForTimestamp)

	// A late sample in a shared window: the window is rewritten with
	// timestamps of its own, and the others keep the column.
	late := fsample{old.t + 1, 42}
	app = db.Appender(t.Context())
	_, err = app.Append(0, ls, late.t, late.v)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	m := s.model[ls.String()]
	m = append(m[:11], append([]fsample{late}, m[11:]...)...)
	s.model[ls.String()] = m
	require.NoError(t, db.Compact(t.Context()))
	s.check(t, math.MinInt64)

	require.NoError(t, db.Close())
	db, err = Open(dir, &Options{OutOfOrderWindow: 24 * time.Hour})
	require.NoError(t, err)
	s.db = db
	s.check(t, math.MinInt64)

	// Retention drops the columns of the windows it empties, and only those.
	cut := 4*hourMs + 1000
	_, err = db.DropBefore(t.Context(), cut)
	require.NoError(t, err)
	lo := keys.AppendMetricTimesFrom(nil, math.MinInt64)
	it, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(keys.AppendPrefix(nil, keys.StoreMetrics, keys.MetricTimes))})
	require.NoError(t, err)
	left := 0
	for it.First(); it.Valid(); it.Next() {
		minT, _, err := keys.ParseMetricTimes(it.Key())
		require.NoError(t, err)
		require.GreaterOrEqual(t, minT, chunkWindow(cut)*chunkRange)
		left++
	}
	require.NoError(t, it.Close())
	require.Equal(t, 3*2, left)
	s.check(t, chunkWindow(cut)*chunkRange)

	// The columns read so far are cached, and retention forgot those it
	// dropped.
	db.cols.mu.Lock()
	for k := range db.cols.cols {
		require.GreaterOrEqual(t, k.minT, chunkWindow(cut)*chunkRange)
	}
	require.NotEmpty(t, db.cols.cols)
	db.cols.mu.Unlock()

	// A missing column is damage, reported as such (once reopened: a
	// column cached while it existed is still right).
	require.NoError(t, db.p.DeleteRange(lo, keys.PrefixEnd(keys.AppendPrefix(nil, keys.StoreMetrics, keys.MetricTimes)), pebble.Sync))
	require.NoError(t, db.Close())
	db, err = Open(dir, &Options{OutOfOrderWindow: 24 * time.Hour})
	require.NoError(t, err)
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	ss := q.Select(t.Context(), false, mustMatcher(t, MatchEqual, "target", "1"))
	var sit Iterator
	var readErr error
	for ss.Next() && readErr == nil {
		sit = ss.At().Iterator(sit)
		for sit.Next() != ValNone {
		}
		readErr = sit.Err()
	}
	require.NoError(t, q.Close())
	require.ErrorIs(t, readErr, encoding.ErrCorrupt)
	require.NoError(t, db.Close())
}

func TestParseTimesRefRejectsDamage(t *testing.T) {
	for _, v := range [][]byte{nil, {timesRef}, {timesRef, 1, 2, 3, 4, 5, 6, 7, 8}, {1, 2}} {
		_, _, err := parseTimesRef(v)
		require.ErrorIs(t, err, encoding.ErrCorrupt, "%x", v)
	}
	h, values, err := parseTimesRef(appendTimesRef(nil, 0xabcdef, []byte{2, 3}))
	require.NoError(t, err)
	require.Equal(t, uint64(0xabcdef), h)
	require.Equal(t, []byte{2, 3}, values)

	var c timesCodec
	col, err := c.encodeColumn(nil, []int64{10, 20, 30})
	require.NoError(t, err)
	ts, err := c.decodeColumn(nil, col, 3, 10, 30)
	require.NoError(t, err)
	require.Equal(t, []int64{10, 20, 30}, ts)
	for _, bad := range [][3]int64{{2, 10, 30}, {3, 11, 30}, {3, 10, 31}} {
		_, err := c.decodeColumn(nil, col, int(bad[0]), bad[1], bad[2])
		require.ErrorIs(t, err, encoding.ErrCorrupt, "%v", bad)
	}
}

// FuzzSharedChunk reads arbitrary bytes as a shared-timestamp chunk and its
// column, the way a query does: damage is ErrCorrupt, never a panic, and
// every sample read has a time from the column.
func FuzzSharedChunk(f *testing.F) {
	f.Fuzz(func(t *testing.T, v, col []byte, minT, maxT int64) {
		_, values, err := parseTimesRef(v)
		if err != nil {
			require.ErrorIs(t, err, encoding.ErrCorrupt)
			return
		}
		n, err := valuesLen(values)
		if err != nil {
			require.ErrorIs(t, err, encoding.ErrCorrupt)
			return
		}
		var c timesCodec
		ts, err := c.decodeColumn(nil, col, n, minT, maxT)
		if err != nil {
			require.ErrorIs(t, err, encoding.ErrCorrupt)
			return
		}
		var buf sampleBuf
		if err := c.appendShared(&buf, values, ts); err != nil {
			require.ErrorIs(t, err, encoding.ErrCorrupt)
			return
		}
		for _, x := range buf.ts {
			_, ok := slices.BinarySearch(ts, x)
			require.True(t, ok)
		}
	})
}

// TestSharedColumnsConcurrentQuerier reads shared-timestamp chunks through
// one querier from several goroutines: its column cache is shared.
func TestSharedColumnsConcurrentQuerier(t *testing.T) {
	db, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer db.Close()
	s := fillShared(t, db, 4, 6, 5)
	require.NoError(t, db.Compact(t.Context()))
	refs, _, _ := storedChunks(t, db)
	require.Positive(t, refs)
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	defer q.Close()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			ss := q.Select(t.Context(), false)
			var it Iterator
			for ss.Next() {
				it = ss.At().Iterator(it)
				var got []fsample
				for it.Next() == ValFloat {
					ts, v := it.At()
					got = append(got, fsample{ts, v})
				}
				if err := it.Err(); err != nil {
					errs <- err
					return
				}
				if want := s.model[ss.At().Labels().String()]; !slices.Equal(want, got) {
					errs <- fmt.Errorf("%s: %d samples, want %d", ss.At().Labels(), len(got), len(want))
					return
				}
			}
			errs <- ss.Err()
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
}

func TestColumnCacheBounds(t *testing.T) {
	var c columnCache
	require.Nil(t, c.get(columnKey{minT: 1}))
	big := make([]int64, maxCachedTimestamps/2)
	c.put(columnKey{minT: 1}, big)
	c.put(columnKey{minT: 2}, big)
	require.NotNil(t, c.get(columnKey{minT: 1}))
	// A column past the bound empties the cache first.
	c.put(columnKey{minT: 3}, []int64{5})
	require.Nil(t, c.get(columnKey{minT: 1}))
	require.Equal(t, []int64{5}, c.get(columnKey{minT: 3}))
	require.Equal(t, 1, c.held)
	c.put(columnKey{minT: 10}, []int64{10, 11})
	c.dropBefore(10)
	require.Nil(t, c.get(columnKey{minT: 3}))
	require.Equal(t, []int64{10, 11}, c.get(columnKey{minT: 10}))
	require.Equal(t, 2, c.held)
	// One column larger than the bound is not kept.
	c.put(columnKey{minT: 20}, make([]int64, maxCachedTimestamps+1))
	require.Nil(t, c.get(columnKey{minT: 20}))
	var nilCache *columnCache
	require.Nil(t, nilCache.get(columnKey{}))
}
