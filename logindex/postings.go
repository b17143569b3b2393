package logindex

import (
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/pillar-db/pillar/encoding"
)

// A postings value on disk is one format byte and its data:
//
//	0x01 | uvarint n | n uvarint deltas    small lists: each ordinal minus
//	                                       the previous (the first from 0)
//	0x02 | roaring portable serialization  everything else, run-optimised
//
// Most tokens of real logs (ids, addresses, counters) occur in a handful of
// records; roaring's header alone is ~16 bytes for them, a delta list 2–4.
const (
	postingsList    byte = 1
	postingsRoaring byte = 2
	// smallPostings is the largest cardinality written as a delta list.
	smallPostings = 24
)

// appendPostings appends bm's on-disk form. It does not modify bm, which
// readers may be using: a large one is run-optimised in a copy.
func appendPostings(dst []byte, bm *roaring.Bitmap) ([]byte, error) {
	if n := bm.GetCardinality(); n <= smallPostings {
		dst = append(dst, postingsList)
		dst = encoding.AppendUvarint(dst, n)
		var prev uint32
		it := bm.Iterator()
		for it.HasNext() {
			v := it.Next()
			dst = encoding.AppendUvarint(dst, uint64(v-prev))
			prev = v
		}
		return dst, nil
	}
	bm = bm.Clone()
	bm.RunOptimize()
	b, err := bm.ToBytes()
	if err != nil {
		return dst, fmt.Errorf("logindex: serialise postings: %w", err)
	}
	return append(append(dst, postingsRoaring), b...), nil
}

// decodePostings replaces dst's contents with the postings in v. Bytes that
// do not decode give an error wrapping encoding.ErrCorrupt, never a panic.
func decodePostings(dst *roaring.Bitmap, v []byte) (err error) {
	dst.Clear()
	if len(v) == 0 {
		return corruptf("empty postings value")
	}
	switch v[0] {
	case postingsList:
		d := encoding.NewDecoder(v[1:])
		n := d.Uvarint()
		if d.Err() != nil {
			return d.Err()
		}
		if n > uint64(d.Len()) || n > smallPostings {
			return corruptf("postings list claims %d ordinals in %d bytes", n, d.Len())
		}
		var cur uint64
		for i := uint64(0); i < n; i++ {
			delta := d.Uvarint()
			if i > 0 && delta == 0 {
				return corruptf("postings list repeats ordinal %d", cur)
			}
			cur += delta
			if cur > 1<<32-1 {
				return corruptf("postings ordinal %d overflows 32 bits", cur)
			}
			dst.Add(uint32(cur))
		}
		if d.Err() != nil {
			return d.Err()
		}
		if d.Len() != 0 {
			return corruptf("postings list has %d trailing bytes", d.Len())
		}
		return nil
	case postingsRoaring:
		defer func() {
			// The roaring reader validates its input; this guards the
			// promise that a decoder never panics if a case slips by.
			if r := recover(); r != nil {
				dst.Clear()
				err = corruptf("roaring postings: %v", r)
			}
		}()
		if err := dst.UnmarshalBinary(v[1:]); err != nil {
			dst.Clear()
			return corruptf("roaring postings: %v", err)
		}
		return nil
	}
	return corruptf("unknown postings format %d", v[0])
}

// A token dictionary chunk packs consecutive tokens of one segment, in
// order, with their postings:
//
//	+-----------+-------------------------------------------------------+
//	| uvarint n | n × ( uvarint shared | uvarint len | suffix | postings |
//	|           |       uvarint len | postings value (format above) )   |
//	+-----------+-------------------------------------------------------+
//
// shared is how many leading bytes a token has in common with the one
// before it (0 for the first, whose whole text is also in the key).
const (
	chunkTokens = 64      // tokens per chunk at most
	chunkBytes  = 8 << 10 // a chunk is closed once it passes this size
)

// chunkWriter builds a chunk.
type chunkWriter struct {
	n     int
	body  []byte
	prev  []byte
	first []byte
}

func (w *chunkWriter) reset() { w.n, w.body, w.prev, w.first = 0, w.body[:0], w.prev[:0], w.first[:0] }

// add appends a token (greater than the previous) and its encoded postings.
func (w *chunkWriter) add(tok, postings []byte) {
	if w.n == 0 {
		w.first = append(w.first[:0], tok...)
	}
	shared := 0
	for shared < len(tok) && shared < len(w.prev) && tok[shared] == w.prev[shared] {
		shared++
	}
	w.body = encoding.AppendUvarint(w.body, uint64(shared))
	w.body = encoding.AppendBytesField(w.body, tok[shared:])
	w.body = encoding.AppendBytesField(w.body, postings)
	w.prev = append(w.prev[:0], tok...)
	w.n++
}

func (w *chunkWriter) full() bool { return w.n >= chunkTokens || len(w.body) >= chunkBytes }

// appendTo appends the finished chunk value.
func (w *chunkWriter) appendTo(dst []byte) []byte {
	dst = encoding.AppendUvarint(dst, uint64(w.n))
	return append(dst, w.body...)
}

// chunkReader walks a chunk's tokens in order.
type chunkReader struct {
	d        encoding.Decoder
	left     uint64
	tok      []byte
	postings []byte
	err      error
}

func (r *chunkReader) reset(v []byte) {
	r.d.Reset(v)
	r.left = r.d.Uvarint()
	r.tok = r.tok[:0]
	r.err = r.d.Err()
	if r.err == nil && r.left > uint64(r.d.Len()) {
		r.err = corruptf("token chunk claims %d tokens in %d bytes", r.left, r.d.Len())
	}
}

// next advances to the next token; tok and postings are valid until the
// following call.
func (r *chunkReader) next() bool {
	if r.err != nil || r.left == 0 {
		if r.err == nil && r.d.Len() != 0 {
			r.err = corruptf("token chunk has %d trailing bytes", r.d.Len())
		}
		return false
	}
	r.left--
	shared := r.d.Uvarint()
	suffix := r.d.Bytes()
	r.postings = r.d.Bytes()
	if err := r.d.Err(); err != nil {
		r.err = err
		return false
	}
	if shared > uint64(len(r.tok)) {
		r.err = corruptf("token shares %d bytes with a %d-byte predecessor", shared, len(r.tok))
		return false
	}
	r.tok = append(r.tok[:shared], suffix...)
	return true
}
