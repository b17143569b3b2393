package tsdb

import (
	"fmt"
	"math"

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
	n := len(s.ts)
	if n == 0 {
		return false
	}
	return n >= db.opts.ChunkSamples ||
		chunkWindow(s.ts[0]) != chunkWindow(s.ts[n-1]) ||
		(s.mark.seq != 0 && s.ts[0] <= s.mark.sealT)
}

// seal writes head samples of the given series into chunks and drops them
// from the heads. With all it seals whole heads; otherwise it keeps the
// samples of the newest chunk window unless the head is full. Callers hold
// commitMu.
func (db *DB) seal(list []*memSeries, all bool) error {
	if len(list) == 0 {
		return nil
	}
	b := db.p.NewBatch()
	defer b.Close()
	cuts := make([]int64, len(list))
	marks := make([]mark, len(list))
	var key []byte
	chunks := 0
	for i, s := range list {
		n := len(s.ts)
		cuts[i] = s.mark.sealT
		if n == 0 {
			continue
		}
		cut := s.ts[n-1]
		if !all && n < db.opts.ChunkSamples {
			cut = chunkWindow(s.ts[n-1])*chunkRange - 1
		}
		if s.mark.seq != 0 {
			cut = max(cut, s.mark.sealT)
		}
		cuts[i] = cut
		// Group the samples through cut into chunks: one kind, one window,
		// at most ChunkSamples samples each.
		start := 0
		for start < n && s.ts[start] <= cut {
			end := start + 1
			isH := s.histAt(start) != nil
			w := chunkWindow(s.ts[start])
			for end < n && s.ts[end] <= cut && end-start < db.opts.ChunkSamples &&
				(s.histAt(end) != nil) == isH && chunkWindow(s.ts[end]) == w {
				end++
			}
			var err error
			if isH {
				var took int
				db.buf, took, err = db.codec.encodeHistograms(db.buf[:0], s.ts[start:end], s.hs[start:end])
				end = start + took
			} else {
				db.buf, err = db.codec.encodeFloats(db.buf[:0], s.ts[start:end], s.vs[start:end])
			}
			if err != nil {
				return fmt.Errorf("tsdb: seal series %d: %w", s.id, err)
			}
			key = keys.AppendMetricChunk(key[:0], s.id, s.ts[start], s.ts[end-1], db.seq)
			if err := b.Set(key, db.buf, nil); err != nil {
				return fmt.Errorf("tsdb: seal: %w", err)
			}
			chunks++
			start = end
		}
		m := mark{seq: db.seq, sealT: cut, minT: s.minT, maxT: s.mark.maxT, lastV: s.mark.lastV}
		if start > 0 && (s.mark.seq == 0 || s.ts[start-1] >= s.mark.maxT) {
			m.maxT = s.ts[start-1]
			if s.histAt(start-1) == nil {
				m.lastV = math.Float64bits(s.vs[start-1])
			}
		}
		marks[i] = m
		key = keys.AppendMetricMark(key[:0], s.id)
		db.buf, db.scratch = appendMark(db.buf[:0], db.scratch, m)
		if err := b.Set(key, db.buf, nil); err != nil {
			return fmt.Errorf("tsdb: seal: %w", err)
		}
	}
	if err := b.Commit(kv.WriteOptions); err != nil {
		return fmt.Errorf("tsdb: seal: %w", err)
	}
	db.sealedChunks.Add(uint64(chunks))
	for i, s := range list {
		if len(s.ts) == 0 {
			continue
		}
		st := db.reg.stripeOf(s.id)
		st.mu.Lock()
		s.dropThrough(cuts[i])
		st.mu.Unlock()
		s.mark = marks[i]
		switch n := len(s.ts); {
		case n == 0:
			s.walFirst = 0
		case chunkWindow(s.ts[0]) == chunkWindow(s.ts[n-1]):
			// What is left arrived no earlier than the first sample of the
			// newest window.
			s.walFirst = max(s.walFirst, s.winSeq)
		}
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
