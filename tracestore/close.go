package tracestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

// ClosePartitions finishes every partition whose whole time range ends at
// or before before (Unix ns) and is not closed yet: it merges each term's
// postings segments into one (as Compact does) and stores a filter of the
// partition's terms (`t c <partition>`), so Find skips the partition
// without reading postings when a term it needs is not there. A Write that
// later adds spans to a closed partition reopens it (drops its filter);
// a partition written while it is being closed is left for the next call.
// It returns how many partitions it closed. Background maintenance calls
// it with a time past which no more spans are expected.
func (s *Store) ClosePartitions(ctx context.Context, before int64) (int, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	defer s.end()
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	closed := 0
	for _, p := range s.partitionsIn(0, 0) {
		if (int64(p)+1)*s.partDur > before {
			break
		}
		s.pmu.RLock()
		_, done := s.filters[p]
		s.pmu.RUnlock()
		if done {
			continue
		}
		if err := ctx.Err(); err != nil {
			return closed, err
		}
		s.wmu.Lock()
		gen := s.partGen[p]
		s.wmu.Unlock()
		if _, err := s.compactPartition(ctx, p); err != nil {
			return closed, err
		}
		f, err := s.buildFilter(p)
		if err != nil {
			return closed, err
		}
		ok, err := s.publishFilter(p, gen, f)
		if err != nil {
			return closed, err
		}
		if ok {
			closed++
		}
	}
	return closed, nil
}

// publishFilter stores f as the filter of p unless a Write touched p since
// gen was read.
func (s *Store) publishFilter(p uint32, gen uint64, f *termFilter) (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.partGen[p] != gen {
		return false, nil
	}
	if err := s.db.Set(keys.AppendTraceFilterKey(nil, p), f.appendTo(nil), kv.WriteOptions); err != nil {
		return false, fmt.Errorf("tracestore: close partition %d: %w", p, err)
	}
	s.pmu.Lock()
	s.filters[p] = f
	s.pmu.Unlock()
	// A closed partition rarely gets spans again; its ordinals leave
	// memory and are read back from disk if it does.
	delete(s.parts, p)
	return true, nil
}

// buildFilter reads every term of partition p into a filter.
func (s *Store) buildFilter(p uint32) (*termFilter, error) {
	lo := keys.AppendTracePartitionPrefix(nil, keys.KindTracePostings, p)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	if err != nil {
		return nil, fmt.Errorf("tracestore: close partition %d: %w", p, err)
	}
	var (
		hashes    []uint64
		term, prv []byte
	)
	for it.First(); it.Valid(); it.Next() {
		_, term, _, err = keys.ParseTracePostingsKey(term[:0], it.Key())
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("tracestore: close partition %d: %w", p, err)
		}
		if len(hashes) > 0 && string(term) == string(prv) {
			continue
		}
		prv = append(prv[:0], term...)
		hashes = append(hashes, termHash(term))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("tracestore: close partition %d: %w", p, err)
	}
	f := newTermFilter(len(hashes))
	for _, h := range hashes {
		f.addHash(h)
	}
	return f, nil
}

// loadFilters reads the filters of closed partitions.
func (s *Store) loadFilters() error {
	lo := keys.AppendPrefix(nil, keys.StoreTraces, keys.KindTraceFilter)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("tracestore: load partition filters: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		p, err := keys.ParseTraceFilterKey(it.Key())
		if err != nil {
			it.Close()
			return fmt.Errorf("tracestore: load partition filters: %w", err)
		}
		f, err := decodeTermFilter(it.Value())
		if err != nil {
			it.Close()
			return fmt.Errorf("tracestore: filter of partition %d: %w", p, err)
		}
		s.filters[p] = f
	}
	return errors.Join(it.Error(), it.Close())
}

// reopenClosed returns the closed partitions among parts. wmu must be held.
func (s *Store) reopenClosed(parts []uint32) []uint32 {
	s.pmu.RLock()
	defer s.pmu.RUnlock()
	if len(s.filters) == 0 {
		return nil
	}
	var out []uint32
	for _, p := range parts {
		if _, ok := s.filters[p]; ok {
			out = append(out, p)
		}
	}
	return out
}

// filter returns the filter of p, nil when p is open.
func (s *Store) filter(p uint32) *termFilter {
	s.pmu.RLock()
	defer s.pmu.RUnlock()
	return s.filters[p]
}

// termFilter is a bloom filter over the terms of one partition: about
// 10 bits per term and 7 probes, under 1 % false positives. Its stored
// form is a checksummed raw block of
//
//	version 1 | probes u8 | words uvarint | words × 8 B little-endian
type termFilter struct {
	k     uint8
	words []uint64
}

const (
	filterVersion = 1
	filterProbes  = 7
)

func newTermFilter(n int) *termFilter {
	return &termFilter{k: filterProbes, words: make([]uint64, max(1, (n*10+63)/64))}
}

// termHash is FNV-1a finished by a 64-bit mixer; it must never change,
// since filters are stored.
func termHash(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func (f *termFilter) addHash(h uint64) {
	n := uint64(len(f.words)) * 64
	h1, h2 := h, (h>>32)|(h<<32)|1
	for i := range uint64(f.k) {
		bit := (h1 + i*h2) % n
		f.words[bit/64] |= 1 << (bit % 64)
	}
}

// mayContain reports false only when term is surely not in the partition.
func (f *termFilter) mayContain(term []byte) bool {
	h := termHash(term)
	n := uint64(len(f.words)) * 64
	h1, h2 := h, (h>>32)|(h<<32)|1
	for i := range uint64(f.k) {
		bit := (h1 + i*h2) % n
		if f.words[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

func (f *termFilter) appendTo(dst []byte) []byte {
	payload := []byte{filterVersion, f.k}
	payload = encoding.AppendUvarint(payload, uint64(len(f.words)))
	for _, w := range f.words {
		payload = binary.LittleEndian.AppendUint64(payload, w)
	}
	return encoding.AppendBlock(dst, encoding.BlockRaw, payload)
}

// decodeTermFilter parses a stored filter; damage gives an error wrapping
// encoding.ErrCorrupt.
func decodeTermFilter(block []byte) (*termFilter, error) {
	payload, err := encoding.DecodeBlock(nil, block)
	if err != nil {
		return nil, err
	}
	d := encoding.NewDecoder(payload)
	ver, k, n := d.Byte(), d.Byte(), d.Uvarint()
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: partition filter header: %v", encoding.ErrCorrupt, err)
	}
	rest := d.Rest()
	if ver != filterVersion || k == 0 || k > 32 || n == 0 || n != uint64(len(rest))/8 || len(rest)%8 != 0 {
		return nil, fmt.Errorf("%w: partition filter version %d, %d probes, %d words in %d bytes", encoding.ErrCorrupt, ver, k, n, len(rest))
	}
	f := &termFilter{k: k, words: make([]uint64, n)}
	for i := range f.words {
		f.words[i] = binary.LittleEndian.Uint64(rest[8*i:])
	}
	return f, nil
}
