package tsdb

import (
	"context"
	"math"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/RoaringBitmap/roaring/v2"
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

// bounds returns the earliest and newest timestamp a series has. The
// committer stores them after the samples, so a series whose commit
// returned is never filtered out.
func (db *DB) bounds(s *memSeries) (lo, hi int64, ok bool) {
	hi = s.lastT.Load()
	return s.minT.Load(), hi, hi != math.MinInt64
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
	it.cols = &s.q.db.cols
	it.load(s.q.db, s.s, s.q.mint, s.q.maxt)
	return it
}

const minInt64 = -1 << 63
