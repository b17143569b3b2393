package tsdb

import (
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

// chunkWindow numbers the chunkRange-aligned window holding t.
func chunkWindow(t int64) int64 {
	w := t / chunkRange
	if t < 0 && t%chunkRange != 0 {
		w--
	}
	return w
}

// needsSeal says whether a head should be sealed now: it is full, it
// crosses into a new chunk window, or it holds an out-of-order sample at or
// below what is already sealed (the seal mark must keep covering a prefix
// of time).
func (db *DB) needsSeal(s *memSeries) bool {
	lo, hi, ok := s.headRange()
	if !ok {
		return false
	}
	return s.headLen() >= db.opts.ChunkSamples ||
		chunkWindow(lo) != chunkWindow(hi) ||
		(s.mark.seq != 0 && lo <= s.mark.sealT)
}

// seal writes head samples of the given series into chunks and drops them
// from the heads. With all it seals whole heads; otherwise it keeps the
// samples of the newest chunk window unless the head is full. Callers hold
// commitMu.
func (db *DB) seal(list []*memSeries, all bool) error {
	for len(list) > 0 {
		n, err := db.sealSome(list, all)
		if err != nil {
			return err
		}
		list = list[n:]
	}
	return nil
}

// sealBatchBytes bounds one seal batch. A whole scrape's series tend to
// seal (and merge windows) in the same commit; one batch for all of them
// would reach tens of megabytes, which Pebble keeps in memory as a
// flushable batch until its next flush. Each series' chunks and mark
// still go into one batch, so every series is sealed atomically.
const sealBatchBytes = 2 << 20

// maxSealSeries bounds the series of one seal batch, and so its scratch.
const maxSealSeries = 4096

// sealSome seals a prefix of list in one batch of about sealBatchBytes
// and returns how many series it took.
func (db *DB) sealSome(list []*memSeries, all bool) (int, error) {
	list = list[:min(len(list), maxSealSeries)]
	b := db.p.NewBatch()
	defer b.Close()
	cuts := make([]int64, len(list))
	marks := make([]mark, len(list))
	var key []byte
	chunks := 0
	for i, s := range list {
		cuts[i] = s.mark.sealT
		marks[i] = s.mark
		lo, hi, ok := s.headRange()
		if !ok {
			continue
		}
		cut := hi
		if !all && s.headLen() < db.opts.ChunkSamples {
			cut = chunkWindow(hi)*chunkRange - 1
		}
		if s.mark.seq != 0 {
			cut = max(cut, s.mark.sealT)
		}
		cuts[i] = cut
		m := mark{seq: db.seq, sealT: cut, minT: s.minT.Load(), maxT: s.mark.maxT, lastV: s.mark.lastV}
		if s.mark.seq == 0 {
			m.maxT = math.MinInt64
		}
		newest := func(t int64, v float64, isH bool) {
			if t >= m.maxT {
				m.maxT = t
				if !isH {
					m.lastV = math.Float64bits(v)
				}
			}
		}
		if wp := chunkWindow(s.mark.sealT); s.mark.seq != 0 && wp < chunkWindow(lo) {
			// Every sample of the window the mark ends in is sealed and the
			// head has moved past it: the window is closed.
			merged, err := db.mergeWindow(b, s.id, wp)
			if err != nil {
				return 0, err
			}
			if merged {
				chunks++
			}
		}
		n := s.chunkLen()
		st := db.reg.stripeOf(s.id)
		st.mu.Lock() // Bytes and copyHead may finish the chunk's bytes in place
		if s.sideLen() == 0 && hi <= cut && n <= db.opts.ChunkSamples && chunkWindow(lo) == chunkWindow(hi) {
			// The common case: the whole open chunk, re-encoded in the
			// smallest float encoding for its values, unless its window
			// will be merged (and so re-encoded) when it closes.
			key = keys.AppendMetricChunk(key[:0], s.id, lo, hi, db.seq)
			var err error
			if !all && willMerge(n, lo, hi) {
				db.buf = append(db.buf[:0], s.chunk.Bytes()...)
			} else {
				db.buf, err = encoding.AppendBestFloatChunk(db.buf[:0], s.chunk.Bytes())
			}
			st.mu.Unlock()
			if err != nil {
				return 0, fmt.Errorf("tsdb: seal series %d: %w", s.id, err)
			}
			if err := b.Set(key, db.buf, nil); err != nil {
				return 0, fmt.Errorf("tsdb: seal: %w", err)
			}
			chunks++
			if hi == s.lastT.Load() {
				m.maxT, m.lastV = hi, s.lastV
			} else {
				m.maxT = max(m.maxT, hi)
			}
		} else {
			buf := &db.sealBuf
			buf.reset()
			s.copyHead(buf, &db.codec.fit, math.MinInt64, cut)
			st.mu.Unlock()
			buf.normalize()
			for start := 0; start < len(buf.ts); {
				end := start + 1
				isH := buf.hi[start] >= 0
				w := chunkWindow(buf.ts[start])
				for end < len(buf.ts) && end-start < db.opts.ChunkSamples &&
					(buf.hi[end] >= 0) == isH && chunkWindow(buf.ts[end]) == w {
					end++
				}
				var err error
				if isH {
					var took int
					db.buf, took, err = db.codec.encodeHistograms(db.buf[:0], buf, start, end)
					end = start + took
				} else {
					db.buf, err = db.codec.encodeFloats(db.buf[:0], buf.ts[start:end], buf.vs[start:end])
				}
				if err != nil {
					return 0, fmt.Errorf("tsdb: seal series %d: %w", s.id, err)
				}
				key = keys.AppendMetricChunk(key[:0], s.id, buf.ts[start], buf.ts[end-1], db.seq)
				if err := b.Set(key, db.buf, nil); err != nil {
					return 0, fmt.Errorf("tsdb: seal: %w", err)
				}
				chunks++
				newest(buf.ts[end-1], buf.vs[end-1], isH)
				start = end
			}
		}
		marks[i] = m
		if err := db.putMark(b, s.id, m); err != nil {
			return 0, err
		}
		if b.Len() >= sealBatchBytes {
			list = list[:i+1]
			break
		}
	}
	if err := b.Commit(kv.WriteOptions); err != nil {
		return 0, fmt.Errorf("tsdb: seal: %w", err)
	}
	db.sealedChunks.Add(uint64(chunks))
	for i, s := range list {
		st := db.reg.stripeOf(s.id)
		st.mu.Lock()
		s.dropThrough(cuts[i], &db.sealBuf)
		st.mu.Unlock()
		s.mark = marks[i]
		lo, hi, ok := s.headRange()
		switch {
		case !ok:
			s.walFirst = 0
		case chunkWindow(lo) == chunkWindow(hi):
			// What is left arrived no earlier than the first sample of the
			// newest window.
			s.walFirst = max(s.walFirst, s.winSeq)
		}
	}
	return len(list), nil
}

// putMark adds a series' seal mark to b.
func (db *DB) putMark(b *pebble.Batch, id uint32, m mark) error {
	db.key = keys.AppendMetricMark(db.key[:0], id)
	db.buf, db.scratch = appendMark(db.buf[:0], db.scratch, m)
	if err := b.Set(db.key, db.buf, nil); err != nil {
		return fmt.Errorf("tsdb: seal: %w", err)
	}
	return nil
}

// maxMergedSamples caps the chunk mergeWindow writes, so that SeekTo still
// skips in steps of a bounded size when scrapes are frequent.
const maxMergedSamples = 1024

// willMerge says whether a chunk of n samples over [lo, hi] is spaced so
// that its whole window fits in maxMergedSamples, so that mergeWindow will
// replace it when the window closes.
func willMerge(n int, lo, hi int64) bool {
	return n >= 2 && hi > lo && chunkRange*int64(n-1)/(hi-lo) < maxMergedSamples
}

// mergeOpen merges the chunks of the window each series' seal mark ends
// in, as if it had closed, so that a flush leaves no window in pieces;
// samples added to the window later are merged again when it closes.
// Callers hold commitMu.
func (db *DB) mergeOpen(list []*memSeries) error {
	// Batches of a bounded number of series: a merged chunk is up to a few
	// kilobytes, and a flush covers every series.
	const perBatch = 1024
	for len(list) > 0 {
		part := list[:min(len(list), perBatch)]
		list = list[len(part):]
		b := db.p.NewBatch()
		merged := 0
		for _, s := range part {
			if s.mark.seq == 0 {
				continue
			}
			ok, err := db.mergeWindow(b, s.id, chunkWindow(s.mark.sealT))
			if err != nil {
				_ = b.Close()
				return err
			}
			if ok {
				merged++
			}
		}
		if merged > 0 {
			if err := b.Commit(kv.WriteOptions); err != nil {
				_ = b.Close()
				return fmt.Errorf("tsdb: seal: %w", err)
			}
		}
		if err := b.Close(); err != nil {
			return fmt.Errorf("tsdb: seal: %w", err)
		}
	}
	return nil
}

// mergeWindow replaces the sealed chunks of series id in window w, a
// window no head sample is in any more, by one chunk. A window at 15 s
// holds four 120-sample chunks; as one it stores one key, one header and
// one first sample instead of four, and its encoding is chosen over all
// its values. It reports false, changing nothing, when the window has
// fewer than two chunks, a histogram chunk, or more than maxMergedSamples
// samples. The old chunks are deleted in the same batch, so a reader sees
// either them or the merged chunk.
func (db *DB) mergeWindow(b *pebble.Batch, id uint32, w int64) (bool, error) {
	buf := &db.sealBuf
	buf.reset()
	db.key = keys.AppendMetricChunkFrom(db.key[:0], id, w*chunkRange)
	db.upper = keys.AppendMetricChunkFrom(db.upper[:0], id, (w+1)*chunkRange)
	it, err := db.p.NewIter(&pebble.IterOptions{LowerBound: db.key, UpperBound: db.upper})
	if err != nil {
		return false, fmt.Errorf("tsdb: seal series %d: %w", id, err)
	}
	db.delKeys, db.delOffs = db.delKeys[:0], db.delOffs[:0]
	ok := true
	for it.First(); it.Valid(); it.Next() {
		v := it.Value()
		if enc, err := encoding.EncodingOf(v); err != nil || enc == encoding.EncHistogram {
			ok = false
			break
		}
		if err := db.codec.fit.Reset(v); err != nil {
			ok = false
			break
		}
		for db.codec.fit.Next() {
			t, fv := db.codec.fit.At()
			buf.addFloat(t, fv)
		}
		if db.codec.fit.Err() != nil || len(buf.ts) > maxMergedSamples {
			ok = false
			break
		}
		db.delKeys = append(db.delKeys, it.Key()...)
		db.delOffs = append(db.delOffs, len(db.delKeys))
	}
	if err := it.Close(); err != nil {
		return false, fmt.Errorf("tsdb: seal series %d: %w", id, err)
	}
	if !ok || len(db.delOffs) < 2 {
		return false, nil
	}
	buf.normalize()
	db.buf, err = db.codec.encodeFloats(db.buf[:0], buf.ts, buf.vs)
	if err != nil {
		return false, fmt.Errorf("tsdb: seal series %d: %w", id, err)
	}
	// Deletes first: the merged chunk's key may equal an old one's.
	prev := 0
	for _, off := range db.delOffs {
		if err := b.Delete(db.delKeys[prev:off], nil); err != nil {
			return false, fmt.Errorf("tsdb: seal: %w", err)
		}
		prev = off
	}
	n := len(buf.ts)
	db.key = keys.AppendMetricChunk(db.key[:0], id, buf.ts[0], buf.ts[n-1], db.seq)
	if err := b.Set(db.key, db.buf, nil); err != nil {
		return false, fmt.Errorf("tsdb: seal: %w", err)
	}
	return true, nil
}

// trim seals series that pin old write-ahead entries and deletes the
// entries no head needs any more. Callers hold commitMu.
func (db *DB) trim() error {
	var lagging []*memSeries
	lag := uint64(db.opts.MaxWALLag)
	db.reg.each(func(s *memSeries) {
		if s.walFirst != 0 && db.seq-s.walFirst >= lag {
			lagging = append(lagging, s)
		}
	})
	if err := db.seal(lagging, true); err != nil {
		return err
	}
	return db.truncateWAL()
}

// truncateWAL range-deletes the write-ahead entries older than every
// head's oldest needed entry. Callers hold commitMu.
func (db *DB) truncateWAL() error {
	floor := db.seq + 1
	db.reg.each(func(s *memSeries) {
		if s.walFirst != 0 && s.walFirst < floor {
			floor = s.walFirst
		}
	})
	if floor <= db.walFloor {
		return nil
	}
	lo := keys.AppendMetricWAL(nil, 0)
	hi := keys.AppendMetricWAL(nil, floor)
	b := db.p.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(lo, hi, nil); err != nil {
		return fmt.Errorf("tsdb: truncate write-ahead log: %w", err)
	}
	if err := b.Commit(kv.WriteOptions); err != nil {
		return fmt.Errorf("tsdb: truncate write-ahead log: %w", err)
	}
	db.walFloor = floor
	return nil
}
