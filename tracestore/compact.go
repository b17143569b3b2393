package tracestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

// Compact merges, in every partition, the postings segments that each Write
// added for a term into one segment per term, so Find reads one value per
// term and the index takes less space. Writers and readers may run
// meanwhile: a reader sees either the old segments or the merged one (each
// term is replaced in one atomic batch), and segments written during the
// merge are left for the next call. It returns how many segments it removed.
func (s *Store) Compact(ctx context.Context) (int, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	defer s.end()
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	removed := 0
	for _, p := range s.partitionsIn(0, 0) {
		n, err := s.compactPartition(ctx, p)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func (s *Store) compactPartition(ctx context.Context, p uint32) (int, error) {
	lo := keys.AppendTracePartitionPrefix(nil, keys.KindTracePostings, p)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	if err != nil {
		return 0, fmt.Errorf("tracestore: compact partition %d: %w", p, err)
	}
	var (
		b        = s.db.NewBatch()
		removed  int
		term     []byte
		curTerm  []byte
		curKeys  [][]byte
		acc      = roaring.New()
		lastSeq  uint64
		pending  int
		valueBuf bytes.Buffer
	)
	defer func() { b.Close() }()
	flushTerm := func() error {
		if len(curKeys) > 1 {
			for _, k := range curKeys {
				if err := b.Delete(k, nil); err != nil {
					return err
				}
			}
			acc.RunOptimize()
			valueBuf.Reset()
			if _, err := acc.WriteTo(&valueBuf); err != nil {
				return err
			}
			if err := b.Set(keys.AppendTracePostingsKey(nil, p, curTerm, lastSeq), valueBuf.Bytes(), nil); err != nil {
				return err
			}
			removed += len(curKeys) - 1
			pending++
		}
		curKeys = curKeys[:0]
		acc.Clear()
		if pending >= 256 {
			if err := b.Commit(kv.WriteOptions); err != nil {
				return err
			}
			b.Close()
			b = s.db.NewBatch()
			pending = 0
		}
		return nil
	}
	for it.First(); it.Valid(); it.Next() {
		var seq uint64
		_, term, seq, err = keys.ParseTracePostingsKey(term[:0], it.Key())
		if err != nil {
			it.Close()
			return removed, fmt.Errorf("tracestore: compact partition %d: %w", p, err)
		}
		if !bytes.Equal(term, curTerm) {
			if err := flushTerm(); err != nil {
				it.Close()
				return removed, fmt.Errorf("tracestore: compact partition %d: %w", p, err)
			}
			if err := ctx.Err(); err != nil {
				it.Close()
				return removed, err
			}
			curTerm = append(curTerm[:0], term...)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return removed, fmt.Errorf("tracestore: compact partition %d: %w", p, err)
		}
		seg := roaring.New()
		if err := seg.UnmarshalBinary(v); err != nil {
			it.Close()
			return removed, corruptf("postings segment %x: %v", it.Key(), err)
		}
		acc.Or(seg)
		curKeys = append(curKeys, append([]byte(nil), it.Key()...))
		lastSeq = seq
	}
	if err := errors.Join(it.Error(), flushTerm(), it.Close()); err != nil {
		return removed, fmt.Errorf("tracestore: compact partition %d: %w", p, err)
	}
	if err := b.Commit(kv.WriteOptions); err != nil {
		return removed, fmt.Errorf("tracestore: compact partition %d: %w", p, err)
	}
	return removed, nil
}
