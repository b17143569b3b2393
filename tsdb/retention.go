package tsdb

import (
	"bytes"
	"context"
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
// in batches, each committed atomically under the commit lock, so appends
// wait for one batch at a time; a crash between
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
	if lo == nil {
		return st, nil
	}
	if err := db.p.Compact(ctx, lo, hi, true); err != nil {
		return st, fmt.Errorf("tsdb: retention: compact dropped chunks: %w", err)
	}
	return st, nil
}

// dropSome drops the chunks before t of the given series in one batch and
// returns what it dropped with the start of the first and the end of the
// last deleted key range (nil when nothing was dropped).
func (db *DB) dropSome(list []*memSeries, t int64) (st MaintenanceStats, first, last []byte, err error) {
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	if db.closed.Load() {
		return st, nil, nil, ErrClosed
	}
	// Under commitMu no seal or window merge writes chunks, so this view
	// stays the truth until the batch commits.
	lower := keys.AppendPrefix(nil, keys.StoreMetrics, keys.MetricChunk)
	it, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: keys.PrefixEnd(lower)})
	if err != nil {
		return st, nil, nil, fmt.Errorf("tsdb: retention: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("tsdb: retention: %w", cerr)
		}
	}()
	b := db.p.NewBatch()
	defer b.Close()
	type trimmed struct {
		s    *memSeries
		m    mark
		minT int64
	}
	var done []trimmed
	var from, end []byte
	for _, s := range list {
		if s.mark.seq == 0 || s.minT.Load() >= t {
			continue // nothing sealed, or nothing old
		}
		from = keys.AppendMetricChunkPrefix(from[:0], s.id)
		dropped, size := 0, int64(0)
		newMin := int64(math.MaxInt64) // the first kept chunk's minT
		valid := it.SeekGE(from)
		for ; valid && bytes.HasPrefix(it.Key(), from); valid = it.Next() {
			_, cmin, cmax, _, perr := keys.ParseMetricChunk(it.Key())
			if perr != nil {
				return st, first, last, fmt.Errorf("tsdb: retention: series %d: %w", s.id, perr)
			}
			if cmax >= t || cmin >= t {
				newMin = cmin
				break
			}
			dropped++
			size += int64(len(it.Key()) + len(it.Value()))
		}
		if err := it.Error(); err != nil {
			return st, first, last, fmt.Errorf("tsdb: retention: series %d: %w", s.id, err)
		}
		if dropped == 0 {
			continue
		}
		// The range ends at the first kept chunk, or after the series'
		// last chunk when none is kept.
		if valid && newMin != math.MaxInt64 {
			end = append(end[:0], it.Key()...)
		} else {
			end = keys.PrefixEnd(keys.AppendMetricChunkPrefix(end[:0], s.id))
		}
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
		if lo, _, ok := db.headRangeLocked(s); ok && lo < newMin {
			newMin = lo
		}
		m := s.mark
		m.minT = newMin
		if err := db.putMark(b, s.id, m); err != nil {
			return st, first, last, err
		}
		done = append(done, trimmed{s, m, newMin})
		st.Items += dropped
		st.BytesIn += size
	}
	if len(done) == 0 {
		return st, first, last, nil
	}
	if err := b.Commit(kv.WriteOptions); err != nil {
		return MaintenanceStats{}, nil, nil, fmt.Errorf("tsdb: retention: %w", err)
	}
	for _, d := range done {
		d.s.mark = d.m
		d.s.minT.Store(d.minT)
	}
	return st, first, last, nil
}

// headRangeLocked returns a series' head range under its stripe lock.
// Callers hold commitMu.
func (db *DB) headRangeLocked(s *memSeries) (lo, hi int64, ok bool) {
	sp := db.reg.stripeOf(s.id)
	sp.mu.RLock()
	defer sp.mu.RUnlock()
	return s.headRange()
}
