package tsdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

// dropBatchSeries bounds the series one retention batch covers: the batch
// is committed, and appends wait for it, under commitMu.
const dropBatchSeries = 1024

// DropBefore deletes every sealed chunk whose samples all lie before t
// (Unix ms) and has Pebble compact the dropped key ranges, so their disk
// space is returned now rather than whenever the LSM next rewrites them.
//
// Each series loses a prefix of its chunks (keys are ordered by first
// timestamp) with one range delete, up to the first chunk that holds a
// sample at or after t; a chunk that straddles t is kept whole, as are
// samples still in the in-memory head. The series' seal mark records its
// new earliest sample in the same batch, so queries and a later Open skip a
// series whose samples are all gone. Series records and label postings are
// kept: a series may receive samples again.
//
// It excludes CompactChunks and Close while it runs. Series are processed
// in batches, each planned without the commit lock and committed
// atomically under it, so appends wait only for one batch's commit at a
// time; a crash between
// batches leaves some series trimmed and the others whole, and running
// DropBefore again finishes the work. It returns the chunks dropped
// (Items) and their encoded bytes (BytesIn).
func (db *DB) DropBefore(ctx context.Context, t int64) (MaintenanceStats, error) {
	var st MaintenanceStats
	// CompactChunks reads chunks outside the commit lock and replaces them
	// under it: the two passes must not interleave.
	db.compactMu.Lock()
	defer db.compactMu.Unlock()
	if db.closed.Load() {
		return st, ErrClosed
	}
	var list []*memSeries
	db.reg.each(func(s *memSeries) {
		if s.minT.Load() < t {
			list = append(list, s)
		}
	})
	var lo, hi []byte // the key range to compact: the first and last dropped range
	for len(list) > 0 {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		part := list[:min(len(list), dropBatchSeries)]
		list = list[len(part):]
		n, first, last, err := db.dropSome(part, t)
		st.Add(n)
		if err != nil {
			return st, err
		}
		if first != nil && lo == nil {
			lo = first
		}
		if last != nil {
			hi = last
		}
	}
	if err := db.dropColumns(ctx, t); err != nil {
		return st, err
	}
	if lo == nil {
		return st, nil
	}
	if err := db.p.Compact(ctx, lo, hi, true); err != nil {
		return st, fmt.Errorf("tsdb: retention: compact dropped chunks: %w", err)
	}
	return st, nil
}

// dropColumns deletes the shared timestamp columns of the windows that end
// at or before t. Every chunk of those windows lies before t, so DropBefore,
// having processed every series, has dropped them all: no chunk refers to
// these columns any more. The delete is committed under commitMu, under
// which sealedAt reads columns.
func (db *DB) dropColumns(ctx context.Context, t int64) error {
	w := chunkWindow(t)
	if w <= minInt64/chunkRange+1 {
		return nil
	}
	lo := keys.AppendMetricTimesFrom(nil, math.MinInt64)
	hi := keys.AppendMetricTimesFrom(nil, w*chunkRange)
	it, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("tsdb: retention: %w", err)
	}
	found := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("tsdb: retention: %w", err)
	}
	if !found {
		return nil
	}
	b := db.p.NewBatch()
	defer func() { _ = b.Close() }()
	if err := b.DeleteRange(lo, hi, nil); err != nil {
		return fmt.Errorf("tsdb: retention: %w", err)
	}
	db.commitMu.Lock()
	err = b.Commit(kv.WriteOptions)
	db.commitMu.Unlock()
	// Forgotten even if the delete failed: a column is read again from
	// Pebble whenever it is not cached.
	db.cols.dropBefore(w * chunkRange)
	if err != nil {
		return fmt.Errorf("tsdb: retention: drop timestamp columns: %w", err)
	}
	if err := db.p.Compact(ctx, lo, hi, true); err != nil {
		return fmt.Errorf("tsdb: retention: compact dropped columns: %w", err)
	}
	return nil
}

// dropSome drops the chunks before t of the given series in one batch and
// returns what it dropped with the start of the first and the end of the
// last deleted key range (nil when nothing was dropped).
//
// Appends wait only for the batch's commit, not for the scan that plans
// it: under commitMu it notes each series' seal mark and takes a Pebble
// iterator (every seal so far is in Pebble, so the iterator and the marks
// agree), scans without the lock, and takes the lock again to commit. A
// series' chunks change only by a seal, which moves its mark (a new
// write-ahead seq), or by CompactChunks or another DropBefore, which
// compactMu keeps out; so a series whose mark is unchanged still has the
// chunks the scan saw, and its plan is committed as it is. A series
// sealed meanwhile is planned again with the lock held throughout.
func (db *DB) dropSome(list []*memSeries, t int64) (st MaintenanceStats, first, last []byte, err error) {
	var d dropper
	db.commitMu.Lock()
	if db.closed.Load() {
		db.commitMu.Unlock()
		return st, nil, nil, ErrClosed
	}
	for _, s := range list {
		if s.mark.seq != 0 && s.minT.Load() < t { // something sealed, and something old
			d.plans = append(d.plans, dropPlan{s: s, m: s.mark})
		}
	}
	if len(d.plans) == 0 {
		db.commitMu.Unlock()
		return st, nil, nil, nil
	}
	it, err := db.newChunkIter()
	db.commitMu.Unlock()
	if err != nil {
		return st, nil, nil, err
	}
	for i := range d.plans {
		if err = d.scan(it, &d.plans[i], t); err != nil {
			break
		}
	}
	if cerr := it.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("tsdb: retention: %w", cerr)
	}
	if err != nil {
		return st, nil, nil, err
	}

	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	if db.closed.Load() {
		return st, nil, nil, ErrClosed
	}
	var again []int // plans whose series were sealed since the scan
	for i := range d.plans {
		if d.plans[i].s.mark != d.plans[i].m {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		// Under commitMu from here on, the view stays the truth until
		// the batch commits.
		if it, err = db.newChunkIter(); err != nil {
			return st, nil, nil, err
		}
		for _, i := range again {
			p := &d.plans[i]
			*p = dropPlan{s: p.s, m: p.s.mark}
			if p.s.minT.Load() >= t {
				continue
			}
			if err = d.scan(it, p, t); err != nil {
				break
			}
		}
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("tsdb: retention: %w", cerr)
		}
		if err != nil {
			return st, nil, nil, err
		}
	}
	b := db.p.NewBatch()
	defer b.Close()
	n := 0
	for i := range d.plans {
		p := &d.plans[i]
		if p.dropped == 0 {
			continue
		}
		from, end := d.arena[p.fromLo:p.endLo], d.arena[p.endLo:p.endHi]
		if err := b.DeleteRange(from, end, nil); err != nil {
			return st, first, last, fmt.Errorf("tsdb: retention: %w", err)
		}
		if first == nil {
			first = append([]byte(nil), from...)
		}
		last = append(last[:0], end...)
		// The series' earliest sample is now the first kept chunk's or
		// the head's; with neither, MaxInt64 says it has none in range
		// of any query (the next sample sets it again).
		if lo, _, ok := db.headRangeLocked(p.s); ok && lo < p.newMin {
			p.newMin = lo
		}
		p.m.minT = p.newMin
		if err := db.putMark(b, p.s.id, p.m); err != nil {
			return st, first, last, err
		}
		st.Items += p.dropped
		st.BytesIn += p.size
		n++
	}
	if n == 0 {
		return MaintenanceStats{}, nil, nil, nil
	}
	if err := b.Commit(kv.WriteOptions); err != nil {
		return MaintenanceStats{}, nil, nil, fmt.Errorf("tsdb: retention: %w", err)
	}
	for i := range d.plans {
		if p := &d.plans[i]; p.dropped > 0 {
			p.s.mark = p.m
			p.s.minT.Store(p.newMin)
		}
	}
	return st, first, last, nil
}

// newChunkIter returns an iterator over every sealed chunk.
func (db *DB) newChunkIter() (*pebble.Iterator, error) {
	lower := keys.AppendPrefix(nil, keys.StoreMetrics, keys.MetricChunk)
	it, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: keys.PrefixEnd(lower)})
	if err != nil {
		return nil, fmt.Errorf("tsdb: retention: %w", err)
	}
	return it, nil
}

// dropper is the scratch of one dropSome batch.
type dropper struct {
	plans []dropPlan
	arena []byte // the plans' key ranges, back to back
}

// dropPlan is what dropSome drops of one series: the chunk keys in
// arena[fromLo:endLo] up to arena[endLo:endHi], planned while the series'
// mark was m.
type dropPlan struct {
	s                    *memSeries
	m                    mark
	dropped              int
	size                 int64
	newMin               int64 // the first kept chunk's minT, MaxInt64 when none is kept
	fromLo, endLo, endHi int
}

// scan plans the drop of p's series: the prefix of its chunks that end
// before t. Keys are ordered by first timestamp, so the first chunk with a
// sample at or after t ends the range; that chunk is kept whole.
func (d *dropper) scan(it *pebble.Iterator, p *dropPlan, t int64) error {
	id := p.s.id
	p.newMin = math.MaxInt64
	p.fromLo = len(d.arena)
	d.arena = keys.AppendMetricChunkPrefix(d.arena, id)
	from := d.arena[p.fromLo:]
	valid := it.SeekGE(from)
	for ; valid && bytes.HasPrefix(it.Key(), from); valid = it.Next() {
		_, cmin, cmax, _, err := keys.ParseMetricChunk(it.Key())
		if err != nil {
			return fmt.Errorf("tsdb: retention: series %d: %w", id, err)
		}
		if cmax >= t || cmin >= t {
			p.newMin = cmin
			break
		}
		p.dropped++
		p.size += int64(len(it.Key()) + len(it.Value()))
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("tsdb: retention: series %d: %w", id, err)
	}
	if p.dropped == 0 {
		d.arena = d.arena[:p.fromLo]
		return nil
	}
	// The range ends at the first kept chunk, or after the series' last
	// chunk when none is kept.
	p.endLo = len(d.arena)
	if valid && p.newMin != math.MaxInt64 {
		d.arena = append(d.arena, it.Key()...)
	} else {
		d.arena = append(d.arena, keys.PrefixEnd(keys.AppendMetricChunkPrefix(nil, id))...)
	}
	p.endHi = len(d.arena)
	return nil
}

// headRangeLocked returns a series' head range under its stripe lock.
// Callers hold commitMu.
func (db *DB) headRangeLocked(s *memSeries) (lo, hi int64, ok bool) {
	sp := db.reg.stripeOf(s.id)
	sp.mu.RLock()
	defer sp.mu.RUnlock()
	return s.headRange()
}
