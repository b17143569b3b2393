package tsdb

import (
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

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

// sealScratch is one sealing goroutine's reusable buffers: a commit seals
// on two goroutines at once (see ingest.go), each with its own.
type sealScratch struct {
	codec   chunkCodec
	buf     []byte
	scratch []byte
	key     []byte
	samples sampleBuf
	// per-series scratch of one seal batch
	cuts, lowW []int64
	marks      []mark
	put        []bool
}

// grow returns *s resized to n, reusing its storage.
func grow[T any](s *[]T, n int) []T {
	*s = slices.Grow((*s)[:0], n)[:n]
	return *s
}

// seal writes head samples of the given series into chunks and drops them
// from the heads. With all it seals whole heads; otherwise it keeps the
// samples of the newest chunk window unless the head is full. Callers hold
// commitMu.
func (db *DB) seal(list []*memSeries, all bool) error {
	return db.sealWith(&db.sealer, list, all)
}

// sealWith seals with sc's buffers. Callers hold commitMu; two goroutines
// may seal at once when their lists share no series.
func (db *DB) sealWith(sc *sealScratch, list []*memSeries, all bool) error {
	for len(list) > 0 {
		n, err := db.sealSome(sc, list, all)
		if err != nil {
			return err
		}
		list = list[n:]
	}
	return nil
}

// sealBatchBytes bounds one seal batch. A whole scrape's series tend to
// seal in the same commit; one batch for all of them
// would reach tens of megabytes, which Pebble keeps in memory as a
// flushable batch until its next flush. Each series' chunks and mark
// still go into one batch, so every series is sealed atomically.
const sealBatchBytes = 2 << 20

// maxSealSeries bounds the series of one seal batch, and so its scratch.
const maxSealSeries = 4096

// sealSome seals a prefix of list in one batch of about sealBatchBytes
// and returns how many series it took.
func (db *DB) sealSome(sc *sealScratch, list []*memSeries, all bool) (rn int, rerr error) {
	list = list[:min(len(list), maxSealSeries)]
	b := db.p.NewBatch()
	defer b.Close()
	cuts := grow(&sc.cuts, len(list))
	marks := grow(&sc.marks, len(list))
	lowW := grow(&sc.lowW, len(list)) // the oldest window each series got a chunk in
	put := grow(&sc.put, len(list))   // whether the series gets a new mark
	chunks := 0
	for i, s := range list {
		cuts[i] = s.mark.sealT
		marks[i], put[i] = s.mark, false
		lowW[i] = math.MaxInt64
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
		n := s.chunkLen()
		st := db.reg.stripeOf(s.id)
		st.mu.Lock() // Bytes and copyHead may finish the chunk's bytes in place
		if s.sideLen() == 0 && hi <= cut && n <= db.opts.ChunkSamples && chunkWindow(lo) == chunkWindow(hi) {
			// The common case: the whole open chunk as it is. CompactChunks
			// merges the window's chunks and picks the best encoding later,
			// off the commit path.
			sc.key = keys.AppendMetricChunk(sc.key[:0], s.id, lo, hi, db.seq)
			err := b.Set(sc.key, s.chunk.Bytes(), nil)
			st.mu.Unlock()
			if err != nil {
				return 0, fmt.Errorf("tsdb: seal: %w", err)
			}
			chunks++
			lowW[i] = chunkWindow(lo)
			if hi == s.lastT.Load() {
				m.maxT, m.lastV = hi, s.lastV
			} else {
				m.maxT = max(m.maxT, hi)
			}
		} else {
			buf := &sc.samples
			buf.reset()
			s.copyHead(buf, &sc.codec.fit, math.MinInt64, cut)
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
					sc.buf, took, err = sc.codec.encodeHistograms(sc.buf[:0], buf, start, end)
					end = start + took
				} else {
					sc.buf, err = sc.codec.encodeGorilla(sc.buf[:0], buf.ts[start:end], buf.vs[start:end])
				}
				if err != nil {
					return 0, fmt.Errorf("tsdb: seal series %d: %w", s.id, err)
				}
				sc.key = keys.AppendMetricChunk(sc.key[:0], s.id, buf.ts[start], buf.ts[end-1], db.seq)
				if err := b.Set(sc.key, sc.buf, nil); err != nil {
					return 0, fmt.Errorf("tsdb: seal: %w", err)
				}
				chunks++
				lowW[i] = min(lowW[i], w)
				newest(buf.ts[end-1], buf.vs[end-1], isH)
				start = end
			}
		}
		marks[i], put[i] = m, true
		if b.Len() >= sealBatchBytes {
			list = list[:i+1]
			break
		}
	}
	// The marks go after all the chunks: Pebble inserts a batch's keys
	// into its memtable in batch order, and keys in ascending order (the
	// list is in id order) each start where the last one ended, where
	// chunks and marks by turns would jump between two key ranges.
	for i, s := range list {
		if put[i] {
			if err := sc.putMark(b, s.id, marks[i]); err != nil {
				return 0, err
			}
		}
	}
	// The batch need not be in the log before the heads drop what it holds:
	// until it is, the write-ahead entries stay (they are deleted by a
	// later batch, which the log keeps behind this one), and readers see
	// the chunks in Pebble's memtable meanwhile.
	if err := db.p.ApplyNoSyncWait(b, kv.WriteOptions); err != nil {
		_ = b.SyncWait()
		return 0, fmt.Errorf("tsdb: seal: %w", err)
	}
	defer func() {
		if err := b.SyncWait(); err != nil && rerr == nil {
			rn, rerr = 0, fmt.Errorf("tsdb: seal: %w", err)
		}
	}()
	db.sealedChunks.Add(uint64(chunks))
	for i, s := range list {
		st := db.reg.stripeOf(s.id)
		st.mu.Lock()
		s.dropThrough(cuts[i], &sc.samples)
		st.mu.Unlock()
		s.mark = marks[i]
		// A chunk below what CompactChunks has done (a late out-of-order
		// sample) sends its next pass back to that window.
		s.compactW = min(s.compactW, lowW[i])
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

// putMark adds a series' seal mark to b, with the committer's buffers.
func (db *DB) putMark(b *pebble.Batch, id uint32, m mark) error {
	sc := sealScratch{buf: db.buf, scratch: db.scratch, key: db.key}
	err := sc.putMark(b, id, m)
	db.buf, db.scratch, db.key = sc.buf, sc.scratch, sc.key
	return err
}

// putMark adds a series' seal mark to b.
func (sc *sealScratch) putMark(b *pebble.Batch, id uint32, m mark) error {
	sc.key = keys.AppendMetricMark(sc.key[:0], id)
	sc.buf, sc.scratch = appendMark(sc.buf[:0], sc.scratch, m)
	if err := b.Set(sc.key, sc.buf, nil); err != nil {
		return fmt.Errorf("tsdb: seal: %w", err)
	}
	return nil
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
