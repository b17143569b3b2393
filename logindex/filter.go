package logindex

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"

	"github.com/pillar-db/pillar/encoding"
)

// bloom is a sealed partition's filter of the terms its merged segment
// holds: token keys ('t' + token) and field keys ('f' + field + 0x00 +
// value), as the postings builder spells them. A query looking up a term
// the filter rules out skips the partition's postings without a seek. It
// has about 10 bits per term and 7 probes: about 1 % false positives.
//
// On disk it follows the timestamps in the sealed segment's meta value:
//
//	+---------+-----------+----------------+---------------------+
//	| tag 'B' | uvarint k | uvarint nwords | nwords × 8 B (LE)   |
//	+---------+-----------+----------------+---------------------+
type bloom struct {
	k     uint32
	words []uint64
}

const (
	bloomTag         byte = 'B'
	bloomBitsPerKey       = 10
	bloomProbes           = 7
	maxBloomProbes        = 30
	maxBloomWords         = 1 << 26 // 512 MiB: past any real partition
	bloomMinimumWord      = 1
)

// newBloom builds a filter of the given key hashes.
func newBloom(hashes []uint64) *bloom {
	n := (len(hashes)*bloomBitsPerKey + 63) / 64
	f := &bloom{k: bloomProbes, words: make([]uint64, max(n, bloomMinimumWord))}
	for _, h := range hashes {
		f.add(h)
	}
	return f
}

func bloomHash(key []byte) uint64 { return xxhash.Sum64(key) }

// add sets the probes of a key hash: double hashing, each probe the
// previous plus a rotation of the hash.
func (f *bloom) add(h uint64) {
	m := uint64(len(f.words)) * 64
	delta := h>>33 | h<<31
	for range f.k {
		b := h % m
		f.words[b/64] |= 1 << (b % 64)
		h += delta
	}
}

// mayContain reports whether the key hashed to h may be in the filter;
// false is certain.
func (f *bloom) mayContain(h uint64) bool {
	m := uint64(len(f.words)) * 64
	delta := h>>33 | h<<31
	for range f.k {
		b := h % m
		if f.words[b/64]&(1<<(b%64)) == 0 {
			return false
		}
		h += delta
	}
	return true
}

func (f *bloom) appendTo(dst []byte) []byte {
	dst = append(dst, bloomTag)
	dst = encoding.AppendUvarint(dst, uint64(f.k))
	dst = encoding.AppendUvarint(dst, uint64(len(f.words)))
	for _, w := range f.words {
		dst = binary.LittleEndian.AppendUint64(dst, w)
	}
	return dst
}

// decodeBloom reads a filter written by appendTo (after its tag) from d.
func decodeBloom(d *encoding.Decoder) (*bloom, error) {
	k, n := d.Uvarint(), d.Uvarint()
	if err := d.Err(); err != nil {
		return nil, err
	}
	if k == 0 || k > maxBloomProbes || n == 0 || n > maxBloomWords || n*8 > uint64(d.Len()) {
		return nil, corruptf("segment filter of %d probes and %d words in %d bytes", k, n, d.Len())
	}
	f := &bloom{k: uint32(k), words: make([]uint64, n)}
	for i := range f.words {
		f.words[i] = d.Uint64()
	}
	return f, d.Err()
}
