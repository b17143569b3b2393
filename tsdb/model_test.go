package tsdb

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// model is the in-memory truth the store is compared with.
type model struct {
	series map[string]Labels
	data   map[string]map[int64]float64
	last   map[string]int64
}

func newModel() *model {
	return &model{series: map[string]Labels{}, data: map[string]map[int64]float64{}, last: map[string]int64{}}
}

func (m *model) query(mint, maxt int64, ms []*Matcher) map[string][]fsample {
	out := map[string][]fsample{}
	for k, ls := range m.series {
		ok := true
		for _, mt := range ms {
			if !mt.Matches(ls.Get(mt.Name)) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		var got []fsample
		for _, t := range slices.Sorted(maps.Keys(m.data[k])) {
			if t >= mint && t <= maxt {
				got = append(got, fsample{t, m.data[k][t]})
			}
		}
		if len(got) > 0 {
			out[k] = got
		}
	}
	return out
}

type modelSample struct {
	key string
	ls  Labels
	t   int64
	v   float64
}

// commit applies a batch to the model with the store's rules, returning the
// sentinel the store must fail with (nil when the batch is accepted).
func (m *model) commit(batch []modelSample, window int64) error {
	cur := map[string]int64{}
	vals := map[string]map[int64]float64{}
	for _, s := range batch {
		last, has := cur[s.key]
		if !has {
			last, has = m.last[s.key]
		}
		if vals[s.key] == nil {
			vals[s.key] = map[int64]float64{}
		}
		if has && s.t <= last {
			old, ok := vals[s.key][s.t]
			if !ok {
				old, ok = m.data[s.key][s.t]
			}
			if ok {
				if math.Float64bits(old) != math.Float64bits(s.v) {
					return ErrDuplicateSampleForTimestamp
				}
				continue
			}
			if last-s.t > window {
				return ErrOutOfOrderSample
			}
		} else {
			cur[s.key] = s.t
		}
		vals[s.key][s.t] = s.v
	}
	for _, s := range batch {
		m.series[s.key] = s.ls
		if m.data[s.key] == nil {
			m.data[s.key] = map[int64]float64{}
		}
		m.data[s.key][s.t] = s.v
		if l, ok := m.last[s.key]; !ok || s.t > l {
			m.last[s.key] = s.t
		}
	}
	return nil
}

func TestModelRandomized(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TSDB_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	dir := t.TempDir()
	window := int64(10 * 60 * 1000)
	opts := &Options{OutOfOrderWindow: time.Duration(window) * time.Millisecond, ChunkSamples: 16, MaxWALLag: 40}
	db, err := Open(dir, opts)
	require.NoError(t, err)
	defer func() { _ = db.Close() }()

	const nSeries = 2000
	all := make([]Labels, nSeries)
	for i := range all {
		ss := []string{MetricName, fmt.Sprintf("metric_%d", i%7), "job", fmt.Sprintf("job%d", i%5), "inst", fmt.Sprint(i)}
		if i%2 == 0 {
			ss = append(ss, "opt", fmt.Sprintf("o%d", i%3))
		}
		all[i] = FromStrings(ss...)
	}
	m := newModel()
	next := make([]int64, nSeries)
	refs := make([]SeriesRef, nSeries)
	added := make([][]int64, nSeries) // timestamps appended to each series, stored or not
	newest := int64(0)
	ctx := context.Background()

	for round := range 400 {
		app := db.Appender(ctx)
		var batch []modelSample
		for range 1 + rng.IntN(60) {
			i := rng.IntN(nSeries)
			if rng.IntN(10) < 7 { // a hot set, so heads fill, cross windows and seal
				i = rng.IntN(100)
			}
			ls := all[i]
			var ts int64
			switch r := rng.IntN(20); {
			case r == 0 && next[i] > 0: // out of order, maybe past the window
				ts = next[i] - rng.Int64N(2*window)
			case r == 1 && next[i] > 0: // exact repeat of the newest timestamp
				ts = next[i]
			case r == 2 && len(added[i]) > 0: // repeat of an older one, maybe sealed or compacted
				ts = added[i][rng.IntN(len(added[i]))]
			default:
				ts = next[i] + 1 + rng.Int64N(15*60*1000)
				next[i] = ts
			}
			v := float64(rng.IntN(1000)) / 10
			if old, ok := m.data[ls.String()][ts]; ok && rng.IntN(2) == 0 {
				v = old
			}
			if rng.IntN(50) == 0 {
				v = math.Float64frombits(0x7ff0000000000002) // a stale marker
			}
			ref, err := app.Append(refs[i], ls, ts, v)
			if err != nil {
				require.ErrorIs(t, err, ErrOutOfOrderSample)
				continue
			}
			refs[i] = ref
			added[i] = append(added[i], ts)
			newest = max(newest, ts)
			batch = append(batch, modelSample{key: ls.String(), ls: ls, t: ts, v: v})
		}
		if rng.IntN(10) == 0 {
			require.NoError(t, app.Rollback())
			continue
		}
		want := m.commit(slices.Clone(batch), window)
		err := app.Commit()
		if want != nil {
			require.ErrorIs(t, err, want, "round %d", round)
		} else {
			require.NoError(t, err, "round %d", round)
		}

		if rng.IntN(8) == 0 {
			// A compaction pass up to a random time: windows the
			// out-of-order window still reaches are compacted too, so
			// late samples land in compacted windows.
			_, err := db.CompactChunks(ctx, rng.Int64N(newest+1))
			require.NoError(t, err)
		}
		if round%20 == 19 {
			checkModel(t, rng, db, m)
		}
		switch round % 100 {
		case 49: // crash-style reopen: no Close, so the log is replayed
			require.NoError(t, db.p.Close())
			db.closed.Store(true)
			db, err = Open(dir, opts)
			require.NoError(t, err)
			checkModel(t, rng, db, m)
		case 99:
			require.NoError(t, db.Close())
			db, err = Open(dir, opts)
			require.NoError(t, err)
			checkModel(t, rng, db, m)
		}
	}
	st := db.Stats()
	require.Equal(t, uint64(len(m.series)), st.Series)
	require.LessOrEqual(t, st.WALEntries, uint64(3*40+truncateEvery), "the write-ahead log stays bounded")
}

func randomMatcher(t *testing.T, rng *rand.Rand) *Matcher {
	names := []string{MetricName, "job", "inst", "opt", "absent"}
	n := names[rng.IntN(len(names))]
	vals := []string{"metric_1", "metric_3", "job2", "job4", "5", "17", "o1", "o2", "", "x"}
	res := []string{"metric_.*", "job[12]", "1.*", "o1|o2", ".*", "|o0", "metric_1|metric_2", ".+"}
	switch rng.IntN(4) {
	case 0:
		return mustMatcher(t, MatchEqual, n, vals[rng.IntN(len(vals))])
	case 1:
		return mustMatcher(t, MatchNotEqual, n, vals[rng.IntN(len(vals))])
	case 2:
		return mustMatcher(t, MatchRegexp, n, res[rng.IntN(len(res))])
	default:
		return mustMatcher(t, MatchNotRegexp, n, res[rng.IntN(len(res))])
	}
}

func checkModel(t *testing.T, rng *rand.Rand, db *DB, m *model) {
	t.Helper()
	for range 15 {
		ms := []*Matcher{randomMatcher(t, rng)}
		if rng.IntN(2) == 0 {
			ms = append(ms, randomMatcher(t, rng))
		}
		mint, maxt := int64(math.MinInt64), int64(math.MaxInt64)
		if rng.IntN(3) > 0 {
			mint = rng.Int64N(40 * 3600 * 1000)
			maxt = mint + rng.Int64N(20*3600*1000)
		}
		want := m.query(mint, maxt, ms)
		got := readAll(t, db, mint, maxt, ms...)
		for k := range want {
			if _, ok := got[k]; !ok {
				t.Logf("missing %s: %v", k, want[k])
				ls := m.series[k]
				sr := db.reg.lookup(ls.Hash(), ls)
				if sr == nil {
					t.Logf("not registered")
				} else {
					t.Logf("id %d head %d mark %+v bounds %v %v %v walFirst %d", sr.id, sr.headLen(), sr.mark, sr.minT.Load(), sr.lastT.Load(), sr.hasData, sr.walFirst)
				}
			}
		}
		require.Equal(t, len(want), len(got), "matchers %v range [%d,%d]", ms, mint, maxt)
		for k, w := range want {
			g := got[k]
			require.Equal(t, len(w), len(g), "series %s", k)
			for i := range w {
				require.Equal(t, w[i].t, g[i].t, "series %s", k)
				require.Equal(t, math.Float64bits(w[i].v), math.Float64bits(g[i].v), "series %s at %d", k, w[i].t)
			}
		}
	}
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	vals, err := q.LabelValues(context.Background(), "job")
	require.NoError(t, err)
	wantVals := map[string]bool{}
	for _, ls := range m.series {
		wantVals[ls.Get("job")] = true
	}
	require.Equal(t, slices.Sorted(maps.Keys(wantVals)), vals)
	names, err := q.LabelNames(context.Background(), mustMatcher(t, MatchEqual, "opt", "o1"))
	require.NoError(t, err)
	if len(names) > 0 {
		require.Equal(t, []string{MetricName, "inst", "job", "opt"}, names)
	}
	require.NoError(t, q.Close())
}
