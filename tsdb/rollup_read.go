package tsdb

import (
	"bytes"
	"context"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/internal/keys"
)

// SelectRollups returns the series matching every matcher that have
// samples in the querier's range, sorted by labels, each with its rollups at
// res: the windows lying wholly inside the range, (End-width, End] ⊆
// [mint, maxt]. Windows after a series' RollupIterator.Complete are not
// rolled up (yet, or not trustworthy); read them from RollupSeries.Raw.
// Only the float fields in fields are decoded; the others read as zero.
//
// The set reads every series' rollups through one Pebble iterator, opened
// by the first Iterator call and closed when Next reports the end; a
// caller that stops before then must call Close.
func (q *Querier) SelectRollups(ctx context.Context, res Resolution, fields RollupFields, ms ...*Matcher) *RollupSet {
	if res.Millis() == 0 {
		return &RollupSet{err: fmt.Errorf("%w: %d", ErrUnknownResolution, uint8(res))}
	}
	return &RollupSet{ss: q.Select(ctx, true, ms...), res: res, fields: fields}
}

// RollupSet is a cursor over the series of SelectRollups.
type RollupSet struct {
	ss     SeriesSet
	res    Resolution
	fields RollupFields
	cur    RollupSeries
	err    error
	// pit reads the rollups of every series at res: one iterator per set
	// rather than one per series, which costs more to open and position
	// than reading an hourly series' few blocks.
	pit    *pebble.Iterator
	closed bool
}

// Next advances to the next series. At the end it closes the set.
func (rs *RollupSet) Next() bool {
	if rs.err != nil || rs.closed || !rs.ss.Next() {
		rs.closeIter()
		return false
	}
	s := rs.ss.At().(*series)
	rs.cur = RollupSeries{raw: *s, res: rs.res, fields: rs.fields, set: rs}
	return true
}

// Close releases the set's Pebble iterator. It is idempotent; Next calls
// it at the end, and a caller that stops earlier must. Series of a closed
// set still read their rollups, each through an iterator of its own.
func (rs *RollupSet) Close() error {
	rs.closeIter()
	return rs.err
}

func (rs *RollupSet) closeIter() {
	rs.closed = true
	if rs.pit == nil {
		return
	}
	if err := rs.pit.Close(); err != nil && rs.err == nil {
		rs.err = fmt.Errorf("tsdb: close rollup iterator: %w", err)
	}
	rs.pit = nil
}

// iter returns the set's Pebble iterator over every rollup key at its
// resolution, opening it on first use; nil once the set is closed.
func (rs *RollupSet) iter(db *DB) (*pebble.Iterator, error) {
	if rs.pit != nil || rs.closed {
		return rs.pit, nil
	}
	lower := keys.AppendMetricRollupResPrefix(nil, uint8(rs.res))
	pit, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: keys.PrefixEnd(lower)})
	if err != nil {
		return nil, err
	}
	rs.pit = pit
	return pit, nil
}

// At returns the current series, valid until the next call to Next.
func (rs *RollupSet) At() *RollupSeries { return &rs.cur }

// Err returns the first error met, if any.
func (rs *RollupSet) Err() error {
	if rs.err != nil {
		return rs.err
	}
	return rs.ss.Err()
}

// RollupSeries is one series of SelectRollups.
type RollupSeries struct {
	raw    series
	res    Resolution
	fields RollupFields
	set    *RollupSet // lends its iterator while open
}

// Labels returns the series' labels. The caller must not modify them.
func (r *RollupSeries) Labels() Labels { return r.raw.s.lset }

// Resolution returns the width of the series' rollup windows.
func (r *RollupSeries) Resolution() Resolution { return r.res }

// Raw returns the series' raw samples over the querier's range, for the
// windows its rollups do not cover.
func (r *RollupSeries) Raw() Series {
	s := r.raw
	return &s
}

// Iterator returns an iterator over the series' rollup windows, reusing
// reuse when non-nil. It reads the series' mark and blocks from one
// consistent view of the store: while the set is open, the view its
// iterator opened with, the same for every series of the set.
func (r *RollupSeries) Iterator(reuse *RollupIterator) *RollupIterator {
	it := reuse
	if it == nil {
		it = &RollupIterator{}
	}
	var pit *pebble.Iterator
	if r.set != nil {
		var err error
		if pit, err = r.set.iter(r.raw.q.db); err != nil {
			it.rows, it.i, it.complete = it.rows[:0], -1, math.MinInt64
			it.err = fmt.Errorf("tsdb: read rollups of series %d: %w", r.raw.s.id, err)
			return it
		}
	}
	it.load(r.raw.q.db, pit, r.raw.s.id, r.res, r.fields, r.raw.q.mint, r.raw.q.maxt)
	return it
}

// RollupIterator walks one series' rollup windows in time order. It
// allocates nothing per window and is not safe for concurrent use.
type RollupIterator struct {
	rows     []Rollup
	i        int
	complete int64
	err      error
	codec    rollupCodec
	key      []byte
	upper    []byte
}

// Complete returns the end of the last window that is rolled up and final:
// every window ending at or before it that has samples is in the
// iterator (within the querier's range), and windows after it must be read
// raw. It is math.MinInt64 when the series has no rollups.
func (it *RollupIterator) Complete() int64 { return it.complete }

// Next advances to the next window and reports whether there is one.
func (it *RollupIterator) Next() bool {
	if it.i < len(it.rows) {
		it.i++
	}
	return it.i < len(it.rows)
}

// SeekTo advances to the first window ending at or after end, and reports
// whether there is one. It only moves forward.
func (it *RollupIterator) SeekTo(end int64) bool {
	if it.i < 0 {
		it.i = 0
	}
	for it.i < len(it.rows) && it.rows[it.i].End < end {
		it.i++
	}
	return it.i < len(it.rows)
}

// Windows returns every window the iterator holds, in time order, without
// moving it: a batch read for callers that look at several windows at once.
// The slice is overwritten when the iterator is reloaded; the caller must
// not modify it.
func (it *RollupIterator) Windows() []Rollup { return it.rows }

// At returns the current window. It is overwritten by the next load of the
// iterator; the caller must not modify it.
func (it *RollupIterator) At() *Rollup { return &it.rows[it.i] }

// Err returns the first error met, if any.
func (it *RollupIterator) Err() error { return it.err }

func (it *RollupIterator) load(db *DB, pit *pebble.Iterator, id uint32, res Resolution, fields RollupFields, mint, maxt int64) {
	it.rows, it.i, it.complete, it.err = it.rows[:0], -1, math.MinInt64, nil
	if err := it.read(db, pit, id, res, fields, mint, maxt); err != nil {
		it.rows = it.rows[:0]
		it.err = fmt.Errorf("tsdb: read rollups of series %d: %w", id, err)
	}
}

// read reads the series' rollups through pit, which may hold other
// series' keys too, or through an iterator of its own when pit is nil.
func (it *RollupIterator) read(db *DB, pit *pebble.Iterator, id uint32, res Resolution, fields RollupFields, mint, maxt int64) error {
	width := res.Millis()
	it.key = keys.AppendMetricRollupPrefix(it.key[:0], uint8(res), id)
	if pit == nil {
		it.upper = append(it.upper[:0], it.key...)
		it.upper = keys.PrefixEnd(it.upper)
		own, err := db.p.NewIter(&pebble.IterOptions{LowerBound: it.key, UpperBound: it.upper})
		if err != nil {
			return err
		}
		defer func() {
			if cerr := own.Close(); cerr != nil && it.err == nil {
				it.err = cerr
			}
		}()
		pit = own
	}
	if !pit.SeekGE(it.key) || !bytes.Equal(pit.Key(), it.key) {
		return pit.Error()
	}
	m, err := decodeRollupMark(pit.Value())
	if err != nil {
		return err
	}
	it.complete = effectiveThrough(m, db.window, width)
	lowEnd := mint + width - 1
	if mint < math.MinInt64+width {
		lowEnd = math.MinInt64 + width
	}
	hiEnd := min(maxt, it.complete)
	if hiEnd < lowEnd {
		return nil
	}
	// A block is keyed at or after its last window's end, so the first
	// one that may hold a wanted window is the first keyed at or after the
	// first wanted window's end.
	it.key = keys.AppendMetricRollupBlock(it.key[:0], uint8(res), id, windowEnd(lowEnd, width))
	for ok := pit.SeekGE(it.key); ok; ok = pit.Next() {
		_, kid, blockEnd, isMark, err := keys.ParseMetricRollup(pit.Key())
		if err != nil {
			return err
		}
		if kid != id || isMark {
			break // the next series
		}
		if blockEnd-width*rollupBlockWindows >= hiEnd {
			break
		}
		start := len(it.rows)
		if it.rows, err = it.codec.decodeRollupFields(it.rows, pit.Value(), width, blockEnd, fields); err != nil {
			return err
		}
		w := start
		for i := start; i < len(it.rows); i++ {
			if e := it.rows[i].End; e >= lowEnd && e <= hiEnd {
				if w != i {
					it.rows[w] = it.rows[i]
				}
				w++
			}
		}
		it.rows = it.rows[:w]
	}
	return pit.Error()
}
