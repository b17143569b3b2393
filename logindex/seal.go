package logindex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

// SealStats says what SealPartitions did.
type SealStats struct {
	// Partitions counts the partitions rewritten.
	Partitions int
	// Segments counts the postings segments merged away.
	Segments int
	// Blocks counts the record blocks merged away.
	Blocks int
	// BytesIn is the encoded size of the postings and blocks read.
	BytesIn int64
	// BytesOut is the encoded size of the postings and blocks written.
	BytesOut int64
}

func (s *SealStats) add(o SealStats) {
	s.Partitions += o.Partitions
	s.Segments += o.Segments
	s.Blocks += o.Blocks
	s.BytesIn += o.BytesIn
	s.BytesOut += o.BytesOut
}

// sealBlockBatch bounds the bytes of merged blocks committed in one batch.
const sealBlockBatch = 4 << 20

// SealPartitions puts every partition that ends at or before t (Unix ns),
// a partition no longer written to in the normal course, into its final
// form:
//
//   - its pending postings are flushed and all its postings segments are
//     merged into one, so a term costs one seek instead of one per flush,
//     and the terms' postings are re-encoded whole (a delta list or
//     roaring, whichever is smaller for the merged list);
//   - the merged segment carries a filter of its terms, so a query for a
//     term the partition lacks skips it without reading postings;
//   - runs of small record blocks of one stream (records of one service and
//     severity that arrived in many small writes) are merged into blocks of
//     up to 256 records, which compress better and cost one read.
//
// Records that arrive for a sealed partition later are indexed as usual, in
// segments after the sealed one; sealing again merges them in. Writers and
// readers run meanwhile: the work is done on a snapshot and each change
// commits in one atomic batch (the postings of a partition in one, its
// blocks in batches of a few megabytes), so a reader or a crash sees the
// old form or the new, never a mix; writers wait only for the commits.
func (ix *Index) SealPartitions(ctx context.Context, t int64) (SealStats, error) {
	var st SealStats
	if err := ctx.Err(); err != nil {
		return st, err
	}
	end := ix.partitionOf(t)
	ix.mu.RLock()
	if ix.closed {
		ix.mu.RUnlock()
		return st, ErrClosed
	}
	var ids []uint32
	for id := range ix.parts {
		if id < end {
			ids = append(ids, id)
		}
	}
	ix.mu.RUnlock()
	slices.Sort(ids)
	ix.sealMu.Lock()
	defer ix.sealMu.Unlock()
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		one, err := ix.sealPartition(ctx, id)
		st.add(one)
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// sealPartition seals one partition. The caller holds sealMu.
func (ix *Index) sealPartition(ctx context.Context, id uint32) (SealStats, error) {
	var st SealStats
	// Flush the partition's pending postings, so its segments cover every
	// record written so far.
	ix.writeMu.Lock()
	ix.mu.RLock()
	p, closed := ix.parts[id], ix.closed
	ix.mu.RUnlock()
	if closed {
		ix.writeMu.Unlock()
		return st, ErrClosed
	}
	if p == nil {
		ix.writeMu.Unlock()
		return st, nil
	}
	if p.next > p.indexed {
		if err := ix.flushPartition(p); err != nil {
			ix.writeMu.Unlock()
			return st, err
		}
	}
	ix.writeMu.Unlock()

	ix.mu.RLock()
	first, next, indexed, sealed := p.firstSeg, p.nextSeg, p.indexed, p.filter != nil
	ts := p.ts[:indexed:indexed]
	snap := ix.db.NewSnapshot()
	ix.mu.RUnlock()
	defer snap.Close()

	if next > first && (next-first > 1 || !sealed) {
		merged, err := ix.mergeSegments(ctx, snap, p, first, next, ts)
		st.add(merged)
		if err != nil {
			return st, err
		}
	}
	blocks, err := ix.mergeBlocks(ctx, snap, p, indexed)
	st.add(blocks)
	if err != nil {
		return st, err
	}
	if st.Segments > 0 || st.Blocks > 0 || (next > first && !sealed) {
		st.Partitions = 1
	}
	return st, nil
}

// commitIfCurrent commits b, under writeMu and mu, if partition p is still
// the one in the index (retention has not dropped it), then calls apply
// under the same locks. It reports whether it committed.
func (ix *Index) commitIfCurrent(b *pebble.Batch, p *partition, apply func()) (bool, error) {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed || ix.parts[p.id] != p {
		return false, nil
	}
	if err := b.Commit(kv.WriteOptions); err != nil {
		return false, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
	}
	apply()
	return true, nil
}

// segCursor walks the tokens of one segment's dictionary chunks in order.
type segCursor struct {
	it  *pebble.Iterator
	val []byte // the current chunk
	cr  chunkReader
	ok  bool
	err error
}

func (c *segCursor) advance() {
	for {
		if c.cr.next() {
			c.ok = true
			return
		}
		if c.cr.err != nil {
			c.err, c.ok = c.cr.err, false
			return
		}
		if !c.it.Valid() {
			c.ok, c.err = false, c.it.Error()
			return
		}
		v, err := c.it.ValueAndErr()
		if err != nil {
			c.ok, c.err = false, err
			return
		}
		// The chunk is read token by token while the iterator moves on:
		// keep a copy, as the iterator's value is valid until it moves.
		c.val = append(c.val[:0], v...)
		c.cr.reset(c.val)
		c.it.Next()
	}
}

// mergeSegments replaces segments [first, next) of p by one numbered
// next-1 that holds the union of their postings, with a term filter.
func (ix *Index) mergeSegments(ctx context.Context, snap *pebble.Snapshot, p *partition, first, next uint32, ts []int64) (SealStats, error) {
	var st SealStats
	b := ix.db.NewBatch()
	defer b.Close()
	seg := next - 1
	// Old token chunks and metas go with range deletes added first, so
	// the merged segment's keys (some equal to old ones) written after
	// them in the batch survive.
	if err := errors.Join(
		b.DeleteRange(keys.AppendLogTokenSegment(nil, p.id, first), keys.AppendLogTokenSegment(nil, p.id, next), nil),
		b.DeleteRange(keys.AppendLogSegment(nil, p.id, first), keys.AppendLogSegment(nil, p.id, next), nil),
	); err != nil {
		return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
	}
	var hashes []uint64
	var (
		enc          postingsEncoder
		sc           postingsScratch
		acc, tmp     = roaring.New(), roaring.New()
		key, val, pv []byte
		cw           chunkWriter
		fkey         []byte
	)
	flushChunk := func() error {
		if cw.n == 0 {
			return nil
		}
		key = keys.AppendLogTokenChunk(key[:0], p.id, seg, cw.first)
		val = cw.appendTo(val[:0])
		st.BytesOut += int64(len(key) + len(val))
		cw.reset()
		return b.Set(key, val, nil)
	}

	// Tokens: a merge of the segments' sorted dictionaries.
	curs := make([]*segCursor, 0, next-first)
	defer func() {
		for _, c := range curs {
			_ = c.it.Close()
		}
	}()
	for s := first; s < next; s++ {
		lo := keys.AppendLogTokenSegment(nil, p.id, s)
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
		if err != nil {
			return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
		}
		c := &segCursor{it: it}
		curs = append(curs, c)
		it.First()
		c.advance()
		if c.err != nil {
			return st, fmt.Errorf("logindex: seal partition %d segment %d: %w", p.id, s, c.err)
		}
	}
	var tok []byte
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return st, err
			}
		}
		var least []byte
		for _, c := range curs {
			if c.ok && (least == nil || bytes.Compare(c.cr.tok, least) < 0) {
				least = c.cr.tok
			}
		}
		if least == nil {
			break
		}
		tok = append(tok[:0], least...)
		acc.Clear()
		for _, c := range curs {
			if !c.ok || !bytes.Equal(c.cr.tok, tok) {
				continue
			}
			st.BytesIn += int64(len(c.cr.postings) + len(tok))
			if err := decodePostings(tmp, c.cr.postings, &sc); err != nil {
				return st, fmt.Errorf("logindex: seal partition %d: token %q: %w", p.id, tok, err)
			}
			acc.Or(tmp)
			c.advance()
			if c.err != nil {
				return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, c.err)
			}
		}
		var err error
		if pv, err = enc.appendPostings(pv[:0], acc, longPostings); err != nil {
			return st, err
		}
		cw.add(tok, pv)
		fkey = append(append(fkey[:0], 't'), tok...)
		hashes = append(hashes, bloomHash(fkey))
		if cw.full() {
			if err := flushChunk(); err != nil {
				return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
			}
		}
	}
	if err := flushChunk(); err != nil {
		return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
	}

	// Field values: each value's segments are adjacent keys.
	flo := keys.AppendLogPartition(nil, keys.LogField, p.id)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: flo, UpperBound: keys.PrefixEnd(flo)})
	if err != nil {
		return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
	}
	defer it.Close()
	var (
		field, value []byte
		group        [][]byte // the value's keys of segments in [first, next)
		groupSeg     uint32   // the segment of group[0]
	)
	flushGroup := func() error {
		if len(group) == 0 {
			return nil
		}
		fkey = append(append(append(append(fkey[:0], 'f'), field...), 0), value...)
		hashes = append(hashes, bloomHash(fkey))
		if len(group) == 1 && groupSeg == seg {
			group = group[:0]
			return nil // already whole, under the merged segment's number
		}
		for _, k := range group {
			if err := b.Delete(k, nil); err != nil {
				return err
			}
		}
		if pv, err = enc.appendPostings(pv[:0], acc, smallPostings); err != nil {
			return err
		}
		key = keys.AppendLogField(key[:0], p.id, field, value, seg)
		st.BytesOut += int64(len(key) + len(pv))
		group = group[:0]
		return b.Set(key, pv, nil)
	}
	for valid := it.First(); valid; valid = it.Next() {
		_, f, v, s, err := keys.ParseLogField(nil, it.Key())
		if err != nil {
			return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
		}
		if s < first || s >= next {
			continue // a segment flushed after the snapshot's
		}
		if len(group) == 0 || !bytes.Equal(f, field) || !bytes.Equal(v, value) {
			if err := flushGroup(); err != nil {
				return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
			}
			field = append(field[:0], f...)
			value = append(value[:0], v...)
			groupSeg = s
			acc.Clear()
		}
		pvIn, err := it.ValueAndErr()
		if err != nil {
			return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
		}
		st.BytesIn += int64(len(it.Key()) + len(pvIn))
		if err := decodePostings(tmp, pvIn, &sc); err != nil {
			return st, fmt.Errorf("logindex: seal partition %d: field %q: %w", p.id, it.Key(), err)
		}
		acc.Or(tmp)
		group = append(group, append([]byte(nil), it.Key()...))
	}
	if err := errors.Join(it.Error(), flushGroup()); err != nil {
		return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
	}

	// The merged segment's meta: every timestamp from ordinal 0, then
	// the filter.
	val = encoding.AppendUvarint(val[:0], 0)
	val = encoding.AppendUvarint(val, uint64(len(ts)))
	var prev, delta int64
	for _, t := range ts {
		val = encoding.AppendVarint(val, t-prev-delta)
		delta, prev = t-prev, t
	}
	f := newBloom(hashes)
	val = f.appendTo(val)
	key = keys.AppendLogSegment(key[:0], p.id, seg)
	st.BytesOut += int64(len(key) + len(val))
	if err := b.Set(key, val, nil); err != nil {
		return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
	}
	ok, err := ix.commitIfCurrent(b, p, func() {
		p.firstSeg = seg
		p.filter = f
	})
	if err != nil || !ok {
		return SealStats{}, err
	}
	st.Segments = int(next - first - 1)
	return st, nil
}

// mergeBlocks merges runs of consecutive small blocks of one stream among
// the blocks of p holding ordinals below end, into blocks of up to
// maxBlockRecords records keyed by the run's first ordinal, so ordinals and
// postings stay as they are.
func (ix *Index) mergeBlocks(ctx context.Context, snap *pebble.Snapshot, p *partition, end uint32) (SealStats, error) {
	var st SealStats
	lo := keys.AppendLogPartition(nil, keys.LogBlock, p.id)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.AppendLogBlock(nil, p.id, end)})
	if err != nil {
		return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
	}
	defer it.Close()
	b := ix.db.NewBatch()
	defer func() { b.Close() }()
	var (
		run      []Record // the current run's records
		runKeys  [][]byte // its blocks' keys
		runBytes int64
		runSev   []byte
		runRes   []byte
		payload  []byte
		scratch  []byte
		out      []byte
		br       blockReader
		pending  SealStats
	)
	commit := func() error {
		if b.Empty() {
			return nil
		}
		ok, err := ix.commitIfCurrent(b, p, func() { ix.blocks.dropPartition(p.id) })
		if err != nil {
			return err
		}
		if ok {
			st.add(pending)
		}
		pending = SealStats{}
		b.Close()
		b = ix.db.NewBatch()
		return nil
	}
	endRun := func() error {
		if len(runKeys) > 1 {
			for _, k := range runKeys[1:] {
				if err := b.Delete(k, nil); err != nil {
					return err
				}
			}
			scratch = appendBlockPayload(scratch[:0], run, nil)
			out = encoding.AppendBlock(out[:0], encoding.BlockSnappy, scratch)
			if err := b.Set(runKeys[0], out, nil); err != nil {
				return err
			}
			pending.Blocks += len(runKeys) - 1
			pending.BytesIn += runBytes
			pending.BytesOut += int64(len(runKeys[0]) + len(out))
		}
		clear(run)
		run, runKeys, runBytes = run[:0], runKeys[:0], 0
		if b.Len() >= sealBlockBatch {
			return commit()
		}
		return nil
	}
	for valid, n := it.First(), 0; valid; valid, n = it.Next(), n+1 {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return st, err
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
		}
		if payload, err = encoding.DecodeBlock(payload[:0], v); err == nil {
			err = br.reset(payload)
		}
		if err != nil {
			return st, fmt.Errorf("logindex: seal partition %d: block %x: %w", p.id, it.Key(), err)
		}
		same := len(runKeys) > 0 && bytes.Equal(br.sevText, runSev) && bytes.Equal(br.resource, runRes)
		if !same || len(run)+br.len() > maxBlockRecords {
			if err := endRun(); err != nil {
				return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
			}
			runSev = append(runSev[:0], br.sevText...)
			runRes = append(runRes[:0], br.resource...)
		}
		if br.len() >= maxBlockRecords/2 && len(runKeys) == 0 {
			continue // large enough as it is
		}
		for i := range br.len() {
			r, err := br.record(i)
			if err != nil {
				return st, fmt.Errorf("logindex: seal partition %d: block %x: %w", p.id, it.Key(), err)
			}
			run = append(run, r)
		}
		runKeys = append(runKeys, append([]byte(nil), it.Key()...))
		runBytes += int64(len(it.Key()) + len(v))
	}
	if err := it.Error(); err != nil {
		return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
	}
	if err := endRun(); err != nil {
		return st, fmt.Errorf("logindex: seal partition %d: %w", p.id, err)
	}
	if err := commit(); err != nil {
		return st, err
	}
	return st, nil
}
