package tsdb

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/encoding"
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
// A block's windows lie in one block span (256 windows, aligned; see
// rollupBlockEnd) and its key is at or after its last window's end, within
// the span, so keys order blocks in time. A span may be split into a few
// blocks, as passes append to it (see maxTailBlocks).
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
// always go into the same batch. Small enough that Pebble keeps the
// batch's buffer for reuse (it drops those over a megabyte), and that
// applying it to the memtable holds up the commits queued behind it
// (ingestion's) only briefly.
const rollupBatchBytes = 512 << 10

// Downsample writes the rollups of every window that ends at or before
// before (Unix ms) and is not yet rolled up, for every float series, as far
// as the windows are final (see the package's rollup notes). It is
// idempotent, and crash-safe: a series' new blocks and its mark, which says
// how far they go, are committed in one batch, so a crash mid-pass loses or
// duplicates nothing and the next pass carries on from the marks.
// Concurrent passes are safe (each series' batch is consistent on its own)
// but do the same work twice. Items counts windows written; BytesIn is the
// encoded size of the chunks read, BytesOut of the blocks and marks written.
//
// A pass costs little for a series with no new final window: its marks
// are read through one Pebble iterator per resolution for the whole pass,
// and its samples are not read at all.
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
	defer w.closeIters()
	if err := w.openIters(); err != nil {
		return st, err
	}
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
			b.Reset()
			// A fresh view, so the pass does not pin what Pebble has
			// flushed since; the series still to come have not changed
			// (rollupMu keeps other passes out).
			w.closeIters()
			if err := w.openIters(); err != nil {
				return st, err
			}
		}
	}
	if !b.Empty() {
		if err := b.Commit(kv.WriteOptions); err != nil {
			return st, fmt.Errorf("tsdb: downsample: %w", err)
		}
	}
	return st, nil
}

// maxTailBlocks bounds the blocks a block span of a series may be split
// into. A pass does not rewrite the windows already rolled up: it writes
// its new windows as a block of their own, keyed by the last one's end (a
// tail). When a span reaches this many blocks, or once it is complete, the
// next pass merges them into one, so re-encoding costs each window a few
// times over the span's life rather than once per pass, and a reader meets
// at most this many blocks per span.
const maxTailBlocks = 8

// maxQuickWindows bounds the blocks written with encodeOpenBlock, whose
// columns are larger than the smallest encoding's: a tail of a few windows
// that a later pass merges. A block of more windows, such as a first pass
// writes, or a merged one, may stay as it is for the rest of its span's
// life (days, for hourly windows), so it gets the smallest encoding.
const maxQuickWindows = 16

// rollupWriter holds one Downsample pass's scratch.
type rollupWriter struct {
	db *DB
	it seriesIterator
	// pits read every series' marks and blocks at each resolution, in id
	// order; a seek per series rather than an iterator per series.
	pits   [len(rollupResolutions)]*pebble.Iterator
	acc    [len(rollupResolutions)]rollupAcc
	from   [len(rollupResolutions)]int64
	to     [len(rollupResolutions)]int64
	codec  rollupCodec
	rows   []Rollup // the windows of the block being written
	old    []Rollup // windows of existing blocks that are rewritten
	merged []Rollup // scratch for merging tails into old
	dels   []byte   // keys of existing blocks that are replaced, each length-prefixed
	tails  []byte   // the tail blocks of the first span, key and value length-prefixed
	key    []byte
	val    []byte
	mark   []byte
}

// openIters opens the pass's iterators, one per resolution.
func (w *rollupWriter) openIters() error {
	for ri, res := range rollupResolutions {
		lower := keys.AppendMetricRollupResPrefix(nil, uint8(res))
		pit, err := w.db.p.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: keys.PrefixEnd(append([]byte(nil), lower...))})
		if err != nil {
			return fmt.Errorf("tsdb: downsample: %w", err)
		}
		w.pits[ri] = pit
	}
	return nil
}

func (w *rollupWriter) closeIters() {
	for ri, pit := range w.pits {
		if pit != nil {
			_ = pit.Close() // read-only: nothing to lose
			w.pits[ri] = nil
		}
	}
}

// readMark reads series id's mark at resolution ri through the pass's
// iterator.
func (w *rollupWriter) readMark(ri int, id uint32) (rollupMark, bool, error) {
	w.mark = keys.AppendMetricRollupMark(w.mark[:0], uint8(rollupResolutions[ri]), id)
	pit := w.pits[ri]
	if !pit.SeekGE(w.mark) || !bytes.Equal(pit.Key(), w.mark) {
		if err := pit.Error(); err != nil {
			return rollupMark{}, false, fmt.Errorf("tsdb: rollup mark of series %d: %w", id, err)
		}
		return rollupMark{}, false, nil
	}
	m, err := decodeRollupMark(pit.Value())
	if err != nil {
		return rollupMark{}, false, fmt.Errorf("series %d: %w", id, err)
	}
	return m, true, nil
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
		m, found, err := w.readMark(ri, s.id)
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
	w.it.cols = &db.cols // series scraped together share timestamp columns
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
	for ri := range rollupResolutions {
		if w.to[ri] <= w.from[ri] {
			continue
		}
		w.acc[ri].flush()
		if err := w.write(b, ri, s.id, w.from[ri], w.to[ri], w.acc[ri].out, st); err != nil {
			return fmt.Errorf("tsdb: downsample: %w", err)
		}
	}
	return nil
}

// write adds rows, the windows of series id at resolution ri in
// (from, to], time-ordered, to b and moves the mark to to.
//
// Blocks hold windows of one block span each (see rollupBlockEnd) and are
// keyed by an end at or after their last window's, within the span; their
// keys order them in time. Existing blocks keyed after from are rewritten
// with their windows up to from only: they were beyond an older mark (a
// pass that raced this one, windows a wider out-of-order window made
// untrusted, or a whole-span block of an older layout) and their later
// windows are recomputed in rows. The blocks keyed at or before from in
// the span where rows begin (tails) are left as they are, unless there
// are maxTailBlocks of them or this pass completes the span: then they are
// merged with the new windows into one block.
func (w *rollupWriter) write(b *pebble.Batch, ri int, id uint32, from, to int64, rows []Rollup, st *MaintenanceStats) error {
	res := rollupResolutions[ri]
	width := res.Millis()
	span := width * rollupBlockWindows
	first := rollupBlockEnd(from+width, width) // the span where new windows begin
	w.old, w.dels, w.tails = w.old[:0], w.dels[:0], w.tails[:0]
	tails := 0
	pit := w.pits[ri]
	w.key = keys.AppendMetricRollupBlock(w.key[:0], uint8(res), id, first-span+width)
	var err error
	for ok := pit.SeekGE(w.key); ok && err == nil; ok = pit.Next() {
		var kid uint32
		var k int64
		var isMark bool
		if _, kid, k, isMark, err = keys.ParseMetricRollup(pit.Key()); err != nil {
			break
		}
		if kid != id || isMark {
			break // the next series
		}
		if k <= from {
			tails++
			w.tails = appendLenPrefixed(appendLenPrefixed(w.tails, pit.Key()), pit.Value())
			continue
		}
		if w.old, err = w.codec.decodeRollupBlock(w.old, pit.Value(), width, k); err != nil {
			err = fmt.Errorf("series %d: %w", id, err)
			break
		}
		w.dels = appendLenPrefixed(w.dels, pit.Key())
	}
	if err == nil {
		err = pit.Error()
	}
	if err != nil {
		return err
	}
	// Of the rewritten blocks' windows, those up to from stay.
	n := 0
	for _, r := range w.old {
		if r.End <= from {
			w.old[n] = r
			n++
		}
	}
	w.old = w.old[:n]
	// Rewritten windows go into the span's merged block, so the tails
	// merge too whenever there are any.
	if tails > 0 && (tails >= maxTailBlocks-1 || to >= first || len(w.dels) > 0) {
		w.merged = w.merged[:0]
		for p := w.tails; len(p) > 0; {
			var key, val []byte
			key, p = cutLenPrefixed(p)
			val, p = cutLenPrefixed(p)
			_, _, k, _, _ := keys.ParseMetricRollup(key) // parsed above
			if w.merged, err = w.codec.decodeRollupBlock(w.merged, val, width, k); err != nil {
				return fmt.Errorf("series %d: %w", id, err)
			}
			w.dels = appendLenPrefixed(w.dels, key)
		}
		w.merged = append(w.merged, w.old...)
		w.old, w.merged = w.merged, w.old
	}
	if len(w.old) > 0 {
		// Ordered by key, tails before rewritten blocks; sort in case an
		// older layout's block shares a span with tails.
		slices.SortStableFunc(w.old, func(a, b Rollup) int { return cmp.Compare(a.End, b.End) })
		w.old = slices.CompactFunc(w.old, func(a, b Rollup) bool { return a.End == b.End })
	}
	for p := w.dels; len(p) > 0; {
		var key []byte
		key, p = cutLenPrefixed(p)
		if err := b.Delete(key, nil); err != nil {
			return err
		}
	}
	// The windows to write, old then new, one block per span.
	i, j := 0, 0
	for i < len(w.old) || j < len(rows) {
		var end int64
		if i < len(w.old) {
			end = w.old[i].End
		} else {
			end = rows[j].End
		}
		blockEnd := rollupBlockEnd(end, width)
		w.rows = w.rows[:0]
		for ; i < len(w.old) && w.old[i].End <= blockEnd; i++ {
			w.rows = append(w.rows, w.old[i])
		}
		for ; j < len(rows) && rows[j].End <= blockEnd; j++ {
			w.rows = append(w.rows, rows[j])
		}
		key := w.rows[len(w.rows)-1].End
		w.key = keys.AppendMetricRollupBlock(w.key[:0], uint8(res), id, key)
		if to < blockEnd && len(w.rows) <= maxQuickWindows {
			// A few windows of an open span: a later pass merges them.
			w.val, err = w.codec.encodeOpenBlock(w.val[:0], w.rows, width, key)
		} else {
			w.val, err = w.codec.encodeRollupBlock(w.val[:0], w.rows, width, key)
		}
		if err != nil {
			return err
		}
		st.BytesOut += int64(len(w.key) + len(w.val))
		if err := b.Set(w.key, w.val, nil); err != nil {
			return err
		}
	}
	st.Items += len(rows)
	w.key = keys.AppendMetricRollupMark(w.key[:0], uint8(res), id)
	w.val = appendRollupMark(w.val[:0], rollupMark{through: to, ooo: w.db.window})
	st.BytesOut += int64(len(w.key) + len(w.val))
	return b.Set(w.key, w.val, nil)
}

// appendLenPrefixed appends p with its length before it.
func appendLenPrefixed(dst, p []byte) []byte {
	return append(encoding.AppendUvarint(dst, uint64(len(p))), p...)
}

// cutLenPrefixed splits what appendLenPrefixed wrote off the front of p.
// p is the pass's own scratch, so it is well formed.
func cutLenPrefixed(p []byte) (field, rest []byte) {
	n, k := binary.Uvarint(p)
	return p[k : k+int(n)], p[k+int(n):]
}

// DropRollupsBefore deletes the rollups of windows that end before t, at
// every resolution: whole blocks with range deletes (one per series and
// resolution), the blocks straddling t rewritten without their older
// windows; then it asks Pebble to compact the dropped ranges. A block that
// starts after t already (one an earlier call trimmed) is not rewritten
// again: its window columns are not even decoded. Marks stay, so
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
	// One iterator per resolution reads every series' blocks, in id order.
	w := &rollupWriter{db: db}
	defer w.closeIters()
	if err := w.openIters(); err != nil {
		return st, err
	}
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
		b.Reset()
		w.closeIters()
		return w.openIters()
	}
	for i, s := range list {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return st, err
			}
		}
		dropped := false
		for ri, res := range rollupResolutions {
			width := res.Millis()
			span := width * rollupBlockWindows
			// Windows ending before t are those ending at or before last
			// (t is clamped so that last+span does not overflow).
			last := floorTo(min(t, math.MaxInt64-2*span)-1, width)
			lo = keys.AppendMetricRollupBlock(lo[:0], uint8(res), s.id, math.MinInt64)
			hi = keys.AppendMetricRollupBlock(hi[:0], uint8(res), s.id, last+1)
			pit := w.pits[ri]
			older := false
			var err error
			for ok := pit.SeekGE(lo); ok && err == nil; ok = pit.Next() {
				var kid uint32
				var blockEnd int64
				var isMark bool
				if _, kid, blockEnd, isMark, err = keys.ParseMetricRollup(pit.Key()); err != nil {
					break
				}
				if kid != s.id || isMark || blockEnd >= last+span {
					break // the next series, or blocks wholly after last
				}
				if blockEnd <= last {
					dropped, older = true, true
					st.BytesIn += int64(len(pit.Value()))
					continue
				}
				// The block may start at or before last: its windows' ends
				// (no value column) say.
				if rows, err = codec.decodeRollupFields(rows[:0], pit.Value(), width, blockEnd, 0); err != nil {
					err = fmt.Errorf("series %d: %w", s.id, err)
					break
				}
				if rows[0].End > last {
					continue
				}
				if rows, err = codec.decodeRollupBlock(rows[:0], pit.Value(), width, blockEnd); err != nil {
					err = fmt.Errorf("series %d: %w", s.id, err)
					break
				}
				n := 0
				for n < len(rows) && rows[n].End <= last {
					n++
				}
				dropped = true
				st.BytesIn += int64(len(pit.Value()))
				key = append(key[:0], pit.Key()...)
				if n == len(rows) {
					err = b.Delete(key, nil)
					continue
				}
				if val, err = codec.encodeRollupBlock(val[:0], rows[n:], width, blockEnd); err == nil {
					st.BytesOut += int64(len(key) + len(val))
					err = b.Set(key, val, nil)
				}
			}
			if err == nil {
				err = pit.Error()
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
