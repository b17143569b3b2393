package tsdb

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

// Rollups: per series, per five-minute and per one-hour window, the
// aggregates of its float samples (see Rollup), so that long-range queries
// read one record per window instead of every sample.
//
//	m r <res> <id>             rollup mark: every window ending at or before it is rolled up
//	m r <res> <id> <blockEnd>  up to 256 consecutive windows, in columns (see rollup_block.go)
//
// Windows are rolled up only once they are final: Downsample rolls a
// series' window up only when it ends before the oldest timestamp the
// series can still accept, that is before its newest sample minus the
// out-of-order window (at or before the newest sample when that window is
// zero). A later sample into a rolled-up window is therefore rejected as
// out of order rather than left out of the rollup. The mark records the
// out-of-order window it was written under; when the DB is reopened with a
// wider one, readers stop trusting the windows the difference reaches back
// over (they use raw samples there) and the next Downsample recomputes
// them. So a rollup is never silently stale.
//
// Series holding native-histogram samples are not rolled up: their
// windows stay raw-only.

// ErrUnknownResolution: a Resolution that is not Res5m or Res1h.
var ErrUnknownResolution = errors.New("tsdb: unknown rollup resolution")

// rollupBatchBytes bounds one Downsample batch; a series' blocks and mark
// always go into the same batch.
const rollupBatchBytes = 2 << 20

// Downsample writes the rollups of every window that ends at or before
// before (Unix ms) and is not yet rolled up, for every float series, as far
// as the windows are final (see the package's rollup notes). It is
// idempotent, and crash-safe: a series' new blocks and its mark, which says
// how far they go, are committed in one batch, so a crash mid-pass loses or
// duplicates nothing and the next pass carries on from the marks.
// Concurrent passes are safe (each series' batch is consistent on its own)
// but do the same work twice. Items counts windows written; BytesIn is the
// encoded size of the chunks read, BytesOut of the blocks and marks written.
func (db *DB) Downsample(ctx context.Context, before int64) (MaintenanceStats, error) {
	var st MaintenanceStats
	if db.closed.Load() {
		return st, ErrClosed
	}
	db.rollupMu.Lock()
	defer db.rollupMu.Unlock()
	if db.closed.Load() {
		return st, ErrClosed // closed while this pass waited for another
	}
	var list []*memSeries
	db.reg.each(func(s *memSeries) { list = append(list, s) })
	w := &rollupWriter{db: db}
	b := db.p.NewBatch()
	defer func() { _ = b.Close() }()
	for i, s := range list {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			if db.closed.Load() {
				return st, ErrClosed
			}
		}
		if err := w.series(b, s, before, &st); err != nil {
			return st, err
		}
		if b.Len() >= rollupBatchBytes {
			if err := b.Commit(kv.WriteOptions); err != nil {
				return st, fmt.Errorf("tsdb: downsample: %w", err)
			}
			_ = b.Close()
			b = db.p.NewBatch()
		}
	}
	if !b.Empty() {
		if err := b.Commit(kv.WriteOptions); err != nil {
			return st, fmt.Errorf("tsdb: downsample: %w", err)
		}
	}
	return st, nil
}

// rollupWriter holds one Downsample pass's scratch.
type rollupWriter struct {
	db    *DB
	it    seriesIterator
	acc   [len(rollupResolutions)]rollupAcc
	from  [len(rollupResolutions)]int64
	to    [len(rollupResolutions)]int64
	codec rollupCodec
	rows  []Rollup
	key   []byte
	upper []byte
	val   []byte
}

// series rolls up one series' final windows not yet rolled up, adding the
// writes to b.
func (w *rollupWriter) series(b *pebble.Batch, s *memSeries, before int64, st *MaintenanceStats) error {
	db := w.db
	// Bounds first: samples committed after this cannot land in a window
	// the pass considers final.
	lo, hi, ok := db.bounds(s)
	if !ok {
		return nil
	}
	work := false
	minFrom, maxTo := int64(math.MaxInt64), int64(math.MinInt64)
	for ri, res := range rollupResolutions {
		width := res.Millis()
		from := windowEnd(lo, width) - width
		m, found, err := db.readRollupMark(res, s.id)
		if err != nil {
			return err
		}
		if found {
			from = max(from, effectiveThrough(m, db.window, width))
		}
		safe := hi
		if db.window > 0 {
			safe = hi - db.window - 1
		}
		to := min(floorTo(before, width), floorTo(safe, width))
		w.from[ri], w.to[ri] = from, to
		w.acc[ri].reset(width)
		if to > from {
			work = true
			minFrom, maxTo = min(minFrom, from), max(maxTo, to)
		}
	}
	if !work {
		return nil
	}
	w.it.load(db, s, minFrom+1, maxTo)
	st.BytesIn += int64(len(w.it.arena))
	for {
		vt := w.it.Next()
		if vt == ValNone {
			break
		}
		if vt == ValHistogram {
			return nil // a histogram series: not rolled up
		}
		t, v := w.it.At()
		if math.Float64bits(v) == staleNaNBits {
			continue
		}
		for ri := range rollupResolutions {
			if t > w.from[ri] && t <= w.to[ri] {
				w.acc[ri].add(t, v)
			}
		}
	}
	if err := w.it.Err(); err != nil {
		return fmt.Errorf("tsdb: downsample: %w", err)
	}
	for ri, res := range rollupResolutions {
		if w.to[ri] <= w.from[ri] {
			continue
		}
		w.acc[ri].flush()
		if err := w.write(b, res, s.id, w.from[ri], w.to[ri], w.acc[ri].out, st); err != nil {
			return err
		}
	}
	return nil
}

// readRollupMark reads a series' mark at res.
func (db *DB) readRollupMark(res Resolution, id uint32) (rollupMark, bool, error) {
	key := keys.AppendMetricRollupMark(nil, uint8(res), id)
	v, closer, err := db.p.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return rollupMark{}, false, nil
	}
	if err != nil {
		return rollupMark{}, false, fmt.Errorf("tsdb: rollup mark of series %d: %w", id, err)
	}
	m, err := decodeRollupMark(v)
	_ = closer.Close()
	if err != nil {
		return rollupMark{}, false, fmt.Errorf("series %d: %w", id, err)
	}
	return m, true, nil
}

// write replaces the windows of series id at res after from by rows (the
// windows in (from, to], time-ordered) and moves the mark to to, all in b.
// Existing windows after from are dropped: they were beyond an older mark
// (a pass that raced this one, or windows a wider out-of-order window made
// untrusted) and are recomputed in rows.
func (w *rollupWriter) write(b *pebble.Batch, res Resolution, id uint32, from, to int64, rows []Rollup, st *MaintenanceStats) error {
	width := res.Millis()
	w.key = keys.AppendMetricRollupBlock(w.key[:0], uint8(res), id, rollupBlockEnd(from+1, width))
	w.upper = keys.PrefixEnd(keys.AppendMetricRollupPrefix(w.upper[:0], uint8(res), id))
	it, err := w.db.p.NewIter(&pebble.IterOptions{LowerBound: w.key, UpperBound: w.upper})
	if err != nil {
		return fmt.Errorf("tsdb: downsample: %w", err)
	}
	// Existing blocks from the one holding from+1 on: keep their windows
	// up to from, merge in the new ones block by block.
	next := 0
	flushBlock := func(blockEnd int64, kept []Rollup) error {
		w.rows = append(w.rows[:0], kept...)
		for next < len(rows) && rows[next].End <= blockEnd {
			w.rows = append(w.rows, rows[next])
			next++
		}
		w.key = keys.AppendMetricRollupBlock(w.key[:0], uint8(res), id, blockEnd)
		if len(w.rows) == 0 {
			return b.Delete(w.key, nil)
		}
		var err error
		w.val, err = w.codec.encodeRollupBlock(w.val[:0], w.rows, width, blockEnd)
		if err != nil {
			return err
		}
		st.BytesOut += int64(len(w.key) + len(w.val))
		return b.Set(w.key, w.val, nil)
	}
	var kept []Rollup
	for it.First(); it.Valid() && err == nil; it.Next() {
		var blockEnd int64
		var isMark bool
		if _, _, blockEnd, isMark, err = keys.ParseMetricRollup(it.Key()); err != nil || isMark {
			continue
		}
		// New windows that belong to blocks before this one go first.
		for err == nil && next < len(rows) && rollupBlockEnd(rows[next].End, width) < blockEnd {
			err = flushBlock(rollupBlockEnd(rows[next].End, width), nil)
		}
		if err != nil {
			break
		}
		kept, err = w.codec.decodeRollupBlock(kept[:0], it.Value(), width, blockEnd)
		if err != nil {
			err = fmt.Errorf("series %d: %w", id, err)
			break
		}
		n := 0
		for n < len(kept) && kept[n].End <= from {
			n++
		}
		err = flushBlock(blockEnd, kept[:n])
	}
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	for err == nil && next < len(rows) {
		err = flushBlock(rollupBlockEnd(rows[next].End, width), nil)
	}
	if err != nil {
		return fmt.Errorf("tsdb: downsample: %w", err)
	}
	st.Items += len(rows)
	w.key = keys.AppendMetricRollupMark(w.key[:0], uint8(res), id)
	w.val = appendRollupMark(w.val[:0], rollupMark{through: to, ooo: w.db.window})
	st.BytesOut += int64(len(w.key) + len(w.val))
	if err := b.Set(w.key, w.val, nil); err != nil {
		return fmt.Errorf("tsdb: downsample: %w", err)
	}
	return nil
}

// DropRollupsBefore deletes the rollups of windows that end before t, at
// every resolution: whole blocks with range deletes (one per series and
// resolution), the block straddling t rewritten without its older windows;
// then it asks Pebble to compact the dropped ranges. Marks stay, so
// Downsample does not roll the dropped windows up again. Items counts the
// series whose rollups were dropped from.
func (db *DB) DropRollupsBefore(ctx context.Context, t int64) (MaintenanceStats, error) {
	var st MaintenanceStats
	if db.closed.Load() {
		return st, ErrClosed
	}
	db.rollupMu.Lock()
	defer db.rollupMu.Unlock()
	if db.closed.Load() {
		return st, ErrClosed // closed while this pass waited for another
	}
	var list []*memSeries
	db.reg.each(func(s *memSeries) { list = append(list, s) })
	var codec rollupCodec
	var rows []Rollup
	var lo, hi, key, val []byte
	b := db.p.NewBatch()
	defer func() { _ = b.Close() }()
	commit := func() error {
		if b.Empty() {
			return nil
		}
		if err := b.Commit(kv.WriteOptions); err != nil {
			return fmt.Errorf("tsdb: drop rollups: %w", err)
		}
		_ = b.Close()
		b = db.p.NewBatch()
		return nil
	}
	for i, s := range list {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return st, err
			}
		}
		dropped := false
		for _, res := range rollupResolutions {
			width := res.Millis()
			// Windows ending before t are those ending at or before last
			// (t is clamped so that the block holding last has an end).
			last := floorTo(min(t, math.MaxInt64-2*width*rollupBlockWindows)-1, width)
			straddle := rollupBlockEnd(last, width)
			lo = keys.AppendMetricRollupBlock(lo[:0], uint8(res), s.id, math.MinInt64)
			hi = keys.AppendMetricRollupBlock(hi[:0], uint8(res), s.id, straddle)
			it, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(hi)})
			if err != nil {
				return st, fmt.Errorf("tsdb: drop rollups: %w", err)
			}
			older := false
			for it.First(); it.Valid() && err == nil; it.Next() {
				var blockEnd int64
				if _, _, blockEnd, _, err = keys.ParseMetricRollup(it.Key()); err != nil {
					break
				}
				if blockEnd != straddle {
					dropped, older = true, true
					st.BytesIn += int64(len(it.Value()))
					continue
				}
				if rows, err = codec.decodeRollupBlock(rows[:0], it.Value(), width, blockEnd); err != nil {
					err = fmt.Errorf("series %d: %w", s.id, err)
					break
				}
				n := 0
				for n < len(rows) && rows[n].End <= last {
					n++
				}
				if n == 0 {
					continue
				}
				dropped = true
				st.BytesIn += int64(len(it.Value()))
				key = append(key[:0], it.Key()...)
				if n == len(rows) {
					err = b.Delete(key, nil)
					continue
				}
				if val, err = codec.encodeRollupBlock(val[:0], rows[n:], width, blockEnd); err == nil {
					st.BytesOut += int64(len(key) + len(val))
					err = b.Set(key, val, nil)
				}
			}
			if cerr := it.Close(); err == nil {
				err = cerr
			}
			if err == nil && older {
				err = b.DeleteRange(lo, hi, nil)
			}
			if err != nil {
				return st, fmt.Errorf("tsdb: drop rollups: %w", err)
			}
		}
		if dropped {
			st.Items++
		}
		if b.Len() >= rollupBatchBytes {
			if err := commit(); err != nil {
				return st, err
			}
		}
	}
	if err := commit(); err != nil {
		return st, err
	}
	if st.Items > 0 {
		lo = keys.AppendPrefix(lo[:0], keys.StoreMetrics, keys.MetricRollup)
		if err := db.p.Compact(ctx, lo, keys.PrefixEnd(lo), true); err != nil {
			return st, fmt.Errorf("tsdb: drop rollups: compact: %w", err)
		}
	}
	return st, nil
}
