package tsdb

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/internal/keys"
)

// Querier reads the samples in [mint, maxt] (both inclusive). It is safe for
// concurrent use; each series is read when its iterator is created, so it
// sees every sample committed before that.
type Querier struct {
	db         *DB
	mint, maxt int64
	closed     atomic.Bool
}

// Close releases the querier. Series sets it returned must not be used after.
func (q *Querier) Close() error {
	q.closed.Store(true)
	return nil
}

// Select returns the series matching every matcher that have samples in the
// querier's range, sorted by labels when sorted is true (otherwise in
// creation order). With no matchers it selects every series.
func (q *Querier) Select(ctx context.Context, sorted bool, ms ...*Matcher) SeriesSet {
	if q.closed.Load() || q.db.closed.Load() {
		return &seriesSet{err: ErrClosed}
	}
	if err := ctx.Err(); err != nil {
		return &seriesSet{err: err}
	}
	ids := q.db.reg.selectPostings(ms)
	set := &seriesSet{q: q, ctx: ctx}
	set.list = make([]*memSeries, 0, ids.GetCardinality())
	it := ids.Iterator()
	for it.HasNext() {
		if s := q.db.reg.get(it.Next()); s != nil {
			set.list = append(set.list, s)
		}
	}
	// Drop series whose whole life lies outside the range. The bounds are
	// read under the stripe lock because commits move them.
	set.list = slices.DeleteFunc(set.list, func(s *memSeries) bool {
		lo, hi, ok := q.db.bounds(s)
		return !ok || hi < q.mint || lo > q.maxt
	})
	if sorted {
		slices.SortFunc(set.list, func(a, b *memSeries) int { return Compare(a.lset, b.lset) })
	}
	return set
}

// bounds returns the earliest and newest timestamp a series has.
func (db *DB) bounds(s *memSeries) (lo, hi int64, ok bool) {
	st := db.reg.stripeOf(s.id)
	st.mu.RLock()
	defer st.mu.RUnlock()
	return s.boundMin, s.boundMax, s.boundOK
}

// LabelNames returns the sorted label names of the series matching ms
// (every series when ms is empty).
func (q *Querier) LabelNames(ctx context.Context, ms ...*Matcher) ([]string, error) {
	if q.closed.Load() || q.db.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var sel *roaring.Bitmap
	if len(ms) > 0 {
		sel = q.db.reg.selectPostings(ms)
	}
	r := q.db.reg
	r.postMu.RLock()
	names := make([]string, 0, len(r.byName))
	for n, bm := range r.byName {
		if sel == nil || bm.Intersects(sel) {
			names = append(names, n)
		}
	}
	r.postMu.RUnlock()
	sort.Strings(names)
	return names, nil
}

// LabelValues returns the sorted values of name among the series matching
// ms (every series when ms is empty).
func (q *Querier) LabelValues(ctx context.Context, name string, ms ...*Matcher) ([]string, error) {
	if q.closed.Load() || q.db.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var sel *roaring.Bitmap
	if len(ms) > 0 {
		sel = q.db.reg.selectPostings(ms)
	}
	r := q.db.reg
	r.postMu.RLock()
	vals := make([]string, 0, len(r.byPair[name]))
	for v, pl := range r.byPair[name] {
		if sel == nil || pl.intersects(sel) {
			vals = append(vals, v)
		}
	}
	r.postMu.RUnlock()
	sort.Strings(vals)
	return vals, nil
}

// seriesSet walks the selected series; it checks the context every
// ctxEvery series rather than per series.
type seriesSet struct {
	q    *Querier
	ctx  context.Context
	list []*memSeries
	i    int
	cur  series
	err  error
}

const ctxEvery = 256

func (ss *seriesSet) Next() bool {
	if ss.err != nil || ss.i >= len(ss.list) {
		return false
	}
	if ss.i%ctxEvery == 0 {
		if err := ss.ctx.Err(); err != nil {
			ss.err = err
			return false
		}
	}
	ss.cur = series{q: ss.q, s: ss.list[ss.i]}
	ss.i++
	return true
}

func (ss *seriesSet) At() Series { return &ss.cur }
func (ss *seriesSet) Err() error { return ss.err }

type series struct {
	q *Querier
	s *memSeries
}

func (s *series) Labels() Labels { return s.s.lset }

func (s *series) Iterator(reuse Iterator) Iterator {
	it, ok := reuse.(*seriesIterator)
	if !ok || it == nil {
		it = &seriesIterator{}
	}
	it.load(s.q.db, s.s, s.q.mint, s.q.maxt)
	return it
}

// seriesIterator holds one series' samples in range, read from the head
// first and then from the sealed chunks (so a sample sealed in between is
// read twice and counted once, never missed).
type seriesIterator struct {
	buf   sampleBuf
	i     int
	err   error
	codec chunkCodec
	key   []byte
}

func (it *seriesIterator) load(db *DB, s *memSeries, mint, maxt int64) {
	it.buf.reset()
	it.i, it.err = -1, nil
	// The write lock, not the read lock: FloatChunk.Bytes finishes the
	// chunk's trailing bits in place, so two readers must not run it at once.
	st := db.reg.stripeOf(s.id)
	st.mu.Lock()
	s.copyHead(&it.buf, &it.codec.fit, mint, maxt)
	st.mu.Unlock()

	// A chunk never crosses a window, so one overlapping [mint, maxt]
	// starts at or after mint's window.
	it.key = keys.AppendMetricChunkPrefix(it.key[:0], s.id)
	upper := keys.PrefixEnd(it.key)
	lower := keys.AppendMetricChunkFrom(nil, s.id, chunkWindow(mint)*chunkRange)
	if chunkWindow(mint) <= (minInt64/chunkRange)+1 {
		lower = it.key
	}
	pit, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		it.err = fmt.Errorf("tsdb: read series %d: %w", s.id, err)
		return
	}
	for pit.First(); pit.Valid(); pit.Next() {
		_, cmin, cmax, _, err := keys.ParseMetricChunk(pit.Key())
		if err != nil {
			it.err = fmt.Errorf("tsdb: read series %d: %w", s.id, err)
			break
		}
		if cmin > maxt {
			break
		}
		if cmax < mint {
			continue
		}
		if err := it.codec.decode(&it.buf, pit.Value(), mint, maxt); err != nil {
			it.err = fmt.Errorf("tsdb: read series %d: %w", s.id, err)
			break
		}
	}
	if err := pit.Close(); err != nil && it.err == nil {
		it.err = fmt.Errorf("tsdb: read series %d: %w", s.id, err)
	}
	it.buf.normalize()
}

const minInt64 = -1 << 63

func (it *seriesIterator) typ() ValueType {
	if it.i >= len(it.buf.ts) {
		return ValNone
	}
	if it.buf.hi[it.i] >= 0 {
		return ValHistogram
	}
	return ValFloat
}

func (it *seriesIterator) Next() ValueType {
	if it.err != nil || it.i >= len(it.buf.ts) {
		return ValNone
	}
	it.i++
	return it.typ()
}

func (it *seriesIterator) Seek(t int64) ValueType {
	if it.err != nil {
		return ValNone
	}
	if it.i < 0 {
		it.i = 0
	}
	if it.i < len(it.buf.ts) && it.buf.ts[it.i] >= t {
		return it.typ()
	}
	j, _ := slices.BinarySearch(it.buf.ts[it.i:], t)
	it.i += j
	return it.typ()
}

func (it *seriesIterator) At() (int64, float64) { return it.buf.ts[it.i], it.buf.vs[it.i] }

func (it *seriesIterator) AtHistogram(h *Histogram) (int64, *Histogram) {
	src := &it.buf.hs[it.buf.hi[it.i]]
	if h == nil {
		return it.buf.ts[it.i], src.Copy()
	}
	src.CopyTo(h)
	return it.buf.ts[it.i], h
}

func (it *seriesIterator) AtT() int64 { return it.buf.ts[it.i] }
func (it *seriesIterator) Err() error { return it.err }
