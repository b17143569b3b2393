package tsdb

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

// Chunk compaction. Sealing writes a head's Gorilla chunk as it is, so a
// two-hour window at 15 s ends up in four chunks of 120 samples, each with
// its own key, header and first sample, in an encoding chosen for speed.
// CompactChunks later rewrites each window that no longer changes into one
// chunk in the smallest float encoding for all its values. A compacted
// chunk carries seq 0 in its key; sealing always writes seq >= 1, so a
// window whose chunks all have seq 0 is done, and a chunk sealed into it
// afterwards (a late out-of-order sample) makes it a candidate again.

// maxMergedSamples caps the samples of one compacted chunk, so that SeekTo
// still skips in steps of a bounded size when scrapes are frequent; a
// window with more is split into equal pieces.
const maxMergedSamples = 1024

// compactBatchBytes bounds one compaction batch (see sealBatchBytes).
const compactBatchBytes = 2 << 20

// compactGroupSeries is how many series share one Pebble snapshot.
const compactGroupSeries = 1024

// CompactChunks merges each series' sealed chunks of every 2 h window that
// ends at or before before (Unix ms) and is not yet compacted into one
// chunk, re-encoded with encoding's best float variant, in one Pebble batch
// per group of series; the chunks it replaced are deleted in the same
// batch, so a crash at any instant leaves either the old chunks or the new
// one, never both or neither, and a query sees one or the other.
//
// Windows become immutable only once the out-of-order window has passed,
// so callers pass before = newest sample time - Options.OutOfOrderWindow
// or earlier. A sample that lands in a compacted window later is sealed as
// a further chunk, which the next pass merges. Windows holding native
// histogram chunks are left as they are.
//
// It runs beside appends and queries, holding the commit lock only to take
// a snapshot per group of series (its batches commit without it, so
// appends never wait for a rewrite to reach Pebble), stops at the next
// series when ctx is cancelled, and is idempotent. Flush, Compact and Close run it over every
// window.
func (db *DB) CompactChunks(ctx context.Context, before int64) (MaintenanceStats, error) {
	db.compactMu.Lock()
	defer db.compactMu.Unlock()
	if db.closed.Load() {
		return MaintenanceStats{}, ErrClosed
	}
	return db.compactChunks(ctx, before)
}

// compactor is the scratch of one CompactChunks pass.
type compactor struct {
	db     *DB
	limitW int64 // windows below it are compacted
	from   []int64
	minT   []int64 // each series' earliest sample at the snapshot

	// the chunks of the window being read
	curW   int64
	arena  []byte // their keys and values, back to back
	chunks []rawChunk

	prefix, lower []byte
	key           []byte
	out, tmp      []byte
	enc           encoding.BestFloatEncoder // writes c.out
	buf           sampleBuf
	fit           encoding.FloatIterator
	cols          columnSharer
	tcol          []int64
	changed       bool // the current series got a new chunk
	stats         MaintenanceStats
}

// rawChunk locates one chunk's key and value in compactor.arena.
type rawChunk struct {
	keyLo, valLo, valHi int
	seq                 uint64
	hist                bool
}

// compactChunks runs a pass. Callers hold compactMu.
func (db *DB) compactChunks(ctx context.Context, before int64) (MaintenanceStats, error) {
	c := &compactor{db: db, limitW: chunkWindow(before)}
	var list []*memSeries
	db.commitMu.Lock()
	db.reg.each(func(s *memSeries) {
		if s.compactW < c.limitW {
			list = append(list, s)
		}
	})
	db.commitMu.Unlock()
	for len(list) > 0 {
		if err := ctx.Err(); err != nil {
			return c.stats, err
		}
		group := list[:min(len(list), compactGroupSeries)]
		list = list[len(group):]
		if err := c.group(ctx, group); err != nil {
			return c.stats, err
		}
	}
	return c.stats, nil
}

// group compacts the windows of a group of series, reading one snapshot.
func (c *compactor) group(ctx context.Context, group []*memSeries) (err error) {
	db := c.db
	// Under the commit lock every seal so far is in Pebble: the snapshot
	// holds every chunk below limitW that exists now, and a seal after it
	// lowers compactW again.
	c.from, c.minT = c.from[:0], c.minT[:0]
	db.commitMu.Lock()
	for _, s := range group {
		c.from = append(c.from, s.compactW)
		c.minT = append(c.minT, s.minT.Load())
		s.compactW = max(s.compactW, c.limitW)
	}
	lo := keys.AppendPrefix(nil, keys.StoreMetrics, keys.MetricChunk)
	it, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	db.commitMu.Unlock()
	done := 0 // series whose windows are in a committed batch
	defer func() {
		if err == nil {
			return
		}
		// What was not committed stays to do.
		db.commitMu.Lock()
		for i, s := range group[done:] {
			s.compactW = min(s.compactW, c.from[done+i])
		}
		db.commitMu.Unlock()
	}()
	if err != nil {
		return fmt.Errorf("tsdb: compact chunks: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("tsdb: compact chunks: %w", cerr)
		}
	}()
	b := db.p.NewBatch()
	c.cols.newBatch()
	defer func() { _ = b.Close() }()
	for i, s := range group {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		c.changed = false
		if err := c.series(it, b, s.id, c.from[i]); err != nil {
			return err
		}
		if c.changed {
			c.stats.Items++
		}
		if b.Len() >= compactBatchBytes || i == len(group)-1 {
			if !b.Empty() {
				ok, err := c.commit(b, group, done, i+1)
				if err != nil {
					return err
				}
				if ok {
					c.cols.committed()
				}
				_ = b.Close()
				b = db.p.NewBatch()
				c.cols.newBatch()
			}
			done = i + 1
		}
	}
	return nil
}

// commit commits b, the rewrite of group[lo:hi], without the commit lock,
// unless a series lost chunks since the snapshot (its earliest sample moved
// up): then b could write back a chunk that is gone, so it is dropped and
// those series stay to do. It reports whether b was committed.
//
// Appends never wait for this commit. It needs no commit lock because
// nothing else that runs meanwhile touches the keys b writes or deletes:
// seals only add chunks, under keys with seq >= 1 that b never writes
// (its chunks carry seq 0) and that the snapshot did not hold, so b never
// deletes them; a seal into a window b rewrites lowers that series'
// compactW, so the next pass merges its chunk. The only other writer
// that deletes chunks, DropBefore, holds compactMu as this pass does, so
// it cannot run between the snapshot and the commit; the earliest-sample
// check stays as a guard should that ever change.
func (c *compactor) commit(b *pebble.Batch, group []*memSeries, lo, hi int) (bool, error) {
	for j := lo; j < hi; j++ {
		if group[j].minT.Load() > c.minT[j] {
			c.db.commitMu.Lock()
			for k := lo; k < hi; k++ {
				group[k].compactW = min(group[k].compactW, c.from[k])
			}
			c.db.commitMu.Unlock()
			return false, nil
		}
	}
	if err := b.Commit(kv.WriteOptions); err != nil {
		return false, fmt.Errorf("tsdb: compact chunks: %w", err)
	}
	return true, nil
}

// series adds to b the rewrite of every window of series id from window
// fromW up to limitW that is not compacted yet.
func (c *compactor) series(it *pebble.Iterator, b *pebble.Batch, id uint32, fromW int64) error {
	c.prefix = keys.AppendMetricChunkPrefix(c.prefix[:0], id)
	c.lower = append(c.lower[:0], c.prefix...)
	if fromW > minInt64/chunkRange+1 {
		c.lower = keys.AppendMetricChunkFrom(c.lower[:0], id, fromW*chunkRange)
	}
	c.arena, c.chunks = c.arena[:0], c.chunks[:0]
	for ok := it.SeekGE(c.lower); ok; ok = it.Next() {
		k := it.Key()
		if !bytes.HasPrefix(k, c.prefix) {
			break
		}
		_, cmin, _, seq, err := keys.ParseMetricChunk(k)
		if err != nil {
			return fmt.Errorf("tsdb: compact chunks: series %d: %w", id, err)
		}
		w := chunkWindow(cmin)
		if w >= c.limitW {
			break
		}
		if len(c.chunks) > 0 && w != c.curW {
			if err := c.window(b, id); err != nil {
				return err
			}
		}
		c.curW = w
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("tsdb: compact chunks: series %d: %w", id, err)
		}
		hist := false
		if !isTimesRef(v) {
			enc, err := encoding.EncodingOf(v)
			if err != nil {
				return fmt.Errorf("tsdb: compact chunks: series %d: %w", id, err)
			}
			hist = enc == encoding.EncHistogram
		}
		rc := rawChunk{keyLo: len(c.arena), seq: seq, hist: hist}
		c.arena = append(c.arena, k...)
		rc.valLo = len(c.arena)
		c.arena = append(c.arena, v...)
		rc.valHi = len(c.arena)
		c.chunks = append(c.chunks, rc)
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("tsdb: compact chunks: series %d: %w", id, err)
	}
	if len(c.chunks) > 0 {
		return c.window(b, id)
	}
	return nil
}

// window rewrites the chunks read of one window, unless they are already
// compacted or hold histograms, and clears them.
func (c *compactor) window(b *pebble.Batch, id uint32) error {
	defer func() { c.arena, c.chunks = c.arena[:0], c.chunks[:0] }()
	done := true
	for _, rc := range c.chunks {
		if rc.hist {
			return nil
		}
		if rc.seq != 0 {
			done = false
		}
	}
	if done {
		return nil
	}
	buf := &c.buf
	buf.reset()
	in := 0
	for _, rc := range c.chunks {
		v := c.arena[rc.valLo:rc.valHi]
		in += len(v)
		if isTimesRef(v) {
			if err := c.readShared(buf, c.arena[rc.keyLo:rc.valLo], v); err != nil {
				return fmt.Errorf("tsdb: compact chunks: series %d: %w", id, err)
			}
			continue
		}
		if err := c.fit.Reset(v); err != nil {
			return fmt.Errorf("tsdb: compact chunks: series %d: %w", id, err)
		}
		for c.fit.Next() {
			t, fv := c.fit.At()
			buf.addFloat(t, fv)
		}
		if err := c.fit.Err(); err != nil {
			return fmt.Errorf("tsdb: compact chunks: series %d: %w", id, err)
		}
	}
	// Overlapping chunks (late samples) can repeat a timestamp, always
	// with the same value: a different one is refused at commit.
	buf.normalize()
	// Deletes first: a new chunk's key may equal an old one's.
	for _, rc := range c.chunks {
		if err := b.Delete(c.arena[rc.keyLo:rc.valLo], nil); err != nil {
			return fmt.Errorf("tsdb: compact chunks: %w", err)
		}
	}
	n := len(buf.ts)
	pieces := (n + maxMergedSamples - 1) / maxMergedSamples
	out := 0
	for p := range pieces {
		lo, hi := n*p/pieces, n*(p+1)/pieces
		if err := c.encode(b, buf.ts[lo:hi], buf.vs[lo:hi]); err != nil {
			return fmt.Errorf("tsdb: compact chunks: series %d: %w", id, err)
		}
		c.key = keys.AppendMetricChunk(c.key[:0], id, buf.ts[lo], buf.ts[hi-1], 0)
		if err := b.Set(c.key, c.out, nil); err != nil {
			return fmt.Errorf("tsdb: compact chunks: %w", err)
		}
		out += len(c.out)
	}
	c.stats.BytesIn += int64(in)
	c.stats.BytesOut += int64(out)
	c.changed = true
	return nil
}

// encode sets c.out to the chunk of ts and vs: its values and a reference
// to a shared timestamp column when ts is one that other series have, else
// a chunk of its own.
func (c *compactor) encode(b *pebble.Batch, ts []int64, vs []float64) error {
	hash, shared, err := c.cols.share(c.db, b, ts)
	if err != nil {
		return err
	}
	if !shared {
		c.out, err = c.enc.AppendFloats(c.out[:0], ts, vs)
		return err
	}
	// The values chunk is built in the column codec's scratch, then framed.
	c.tmp, err = c.cols.codec.encodeValues(c.tmp[:0], vs)
	if err != nil {
		return err
	}
	c.out = appendTimesRef(c.out[:0], hash, c.tmp)
	return nil
}

// readShared appends the samples of the shared-timestamp chunk v, under
// key, to buf. Its column cannot be dropped meanwhile: DropBefore holds
// compactMu, as the caller does.
func (c *compactor) readShared(buf *sampleBuf, key, v []byte) error {
	_, cmin, cmax, _, err := keys.ParseMetricChunk(key)
	if err != nil {
		return err
	}
	hash, values, err := parseTimesRef(v)
	if err != nil {
		return err
	}
	n, err := valuesLen(values)
	if err != nil {
		return err
	}
	codec := &c.cols.codec
	if c.tcol, err = codec.getColumn(c.tcol[:0], c.db, hash, n, cmin, cmax); err != nil {
		return err
	}
	return codec.appendShared(buf, values, c.tcol)
}

// compactAll compacts every window, for Flush and Close. Callers hold
// compactMu.
func (db *DB) compactAll(ctx context.Context) error {
	_, err := db.compactChunks(ctx, math.MaxInt64)
	return err
}

// sharedAt returns the sample at t of the shared-timestamp chunk val with
// bounds [cmin, cmax]. Callers hold commitMu, under which DropBefore
// deletes columns, so the column of a chunk seen is there.
func (db *DB) sharedAt(val []byte, t, cmin, cmax int64) (float64, bool, error) {
	hash, values, err := parseTimesRef(val)
	if err != nil {
		return 0, false, err
	}
	n, err := valuesLen(values)
	if err != nil {
		return 0, false, err
	}
	var codec timesCodec
	ts, err := codec.getColumn(nil, db, hash, n, cmin, cmax)
	if err != nil {
		return 0, false, err
	}
	k, ok := slices.BinarySearch(ts, t)
	if !ok {
		return 0, false, nil
	}
	if err := codec.fit.Reset(values); err != nil {
		return 0, false, err
	}
	if codec.fit.SeekTo(int64(k)) {
		if i, v := codec.fit.At(); i == int64(k) {
			return v, true, nil
		}
	}
	return 0, false, codec.fit.Err()
}

// sealedAt returns series id's sealed sample at t, if there is one.
// Callers hold commitMu (it uses the committer's decoders).
func (db *DB) sealedAt(id uint32, t int64) (v float64, h *Histogram, found bool, err error) {
	// A chunk never crosses a window, so one holding t starts in t's
	// window, at or before t.
	lower := keys.AppendMetricChunkPrefix(nil, id)
	if chunkWindow(t) > minInt64/chunkRange+1 {
		lower = keys.AppendMetricChunkFrom(nil, id, chunkWindow(t)*chunkRange)
	}
	upper := keys.PrefixEnd(keys.AppendMetricChunkPrefix(nil, id))
	if t < math.MaxInt64 {
		upper = keys.AppendMetricChunkFrom(nil, id, t+1)
	}
	it, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, nil, false, fmt.Errorf("tsdb: read series %d: %w", id, err)
	}
	c := &db.codec
	for it.First(); it.Valid() && !found && err == nil; it.Next() {
		_, cmin, cmax, _, perr := keys.ParseMetricChunk(it.Key())
		if perr != nil {
			err = perr
			break
		}
		if t < cmin || t > cmax {
			continue
		}
		val := it.Value()
		if isTimesRef(val) {
			v, found, err = db.sharedAt(val, t, cmin, cmax)
			continue
		}
		enc, eerr := encoding.EncodingOf(val)
		if eerr != nil {
			err = eerr
			break
		}
		if enc == encoding.EncHistogram {
			if err = c.hit.Reset(val); err == nil && c.hit.SeekTo(t) && c.hit.AtT() == t {
				_, h = c.hit.AtHistogram(nil)
				found = true
			}
			if err == nil {
				err = c.hit.Err()
			}
			continue
		}
		if err = c.fit.Reset(val); err == nil && c.fit.SeekTo(t) {
			if ct, cv := c.fit.At(); ct == t {
				v, found = cv, true
			}
		}
		if err == nil {
			err = c.fit.Err()
		}
	}
	if cerr := it.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("tsdb: read series %d: %w", id, err)
	}
	return v, h, found, nil
}
