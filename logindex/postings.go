package logindex

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/pillar-db/pillar/encoding"
)

// A postings value on disk is a uvarint header and the bytes it announces,
// so it delimits itself inside a dictionary chunk:
//
//	+--------------------------+------------------------------------------+
//	| uvarint len<<1 | format  | len bytes                                |
//	+--------------------------+------------------------------------------+
//	format 0: delta list   uvarint deltas, each ordinal minus the previous
//	                       (the first from 0); the count is what fits in len
//	format 1: roaring      portable serialization, run-optimised
//
// The writer keeps whichever form is smaller (a long list must be a third
// smaller, as it is slower to decode; see longPostings). Most tokens of real logs (ids,
// addresses, counters) occur in a handful of records, where the list takes
// 2–4 bytes and roaring's header alone ~16. Mid-sized lists (a word of one
// service) take one or two bytes per ordinal as deltas, since a stream's
// records have consecutive ordinals, against two in a roaring array; dense
// and run-shaped ones stay roaring.
const (
	postingsList    = 0
	postingsRoaring = 1
	// smallPostings is the largest cardinality written as a delta list
	// without comparing it with roaring, which cannot be smaller.
	smallPostings = 24
	// longPostings is the cardinality past which a token's delta list
	// must be a third smaller than roaring to be chosen. A field value's
	// list must be from smallPostings on: field postings are a small part
	// of the index, and top values decode every value of a field.
	longPostings = 1024
)

// postingsEncoder encodes postings values, reusing its buffers.
type postingsEncoder struct {
	list []byte
	rb   *roaring.Bitmap
	it   roaring.IntIterator
}

// appendPostings appends bm's on-disk form. A list of more than long
// ordinals must be a third smaller than roaring to be chosen. It does not
// modify bm, which readers may be using: roaring is run-optimised in a copy.
func (e *postingsEncoder) appendPostings(dst []byte, bm *roaring.Bitmap, long uint64) ([]byte, error) {
	limit := -1 // the list's size to beat, or -1
	if n := bm.GetCardinality(); n > smallPostings {
		if e.rb == nil {
			e.rb = roaring.New()
		}
		e.rb.Clear()
		e.rb.Or(bm)
		e.rb.RunOptimize()
		limit = int(e.rb.GetSerializedSizeInBytes())
		if n > long {
			// A long list decodes several times slower per ordinal than
			// a roaring container is copied: it must save a third.
			limit = limit * 2 / 3
		}
	}
	e.list = e.list[:0]
	var prev uint32
	e.it.Initialize(bm)
	for e.it.HasNext() && (limit < 0 || len(e.list) < limit) {
		v := e.it.Next()
		e.list = binary.AppendUvarint(e.list, uint64(v-prev))
		prev = v
	}
	if limit < 0 || len(e.list) < limit {
		dst = encoding.AppendUvarint(dst, uint64(len(e.list))<<1|postingsList)
		return append(dst, e.list...), nil
	}
	start := len(dst)
	b, err := e.rb.ToBytes()
	if err != nil {
		return dst[:start], fmt.Errorf("logindex: serialise postings: %w", err)
	}
	dst = encoding.AppendUvarint(dst, uint64(len(b))<<1|postingsRoaring)
	return append(dst, b...), nil
}

// appendPostings appends bm's on-disk form with a one-off encoder.
func appendPostings(dst []byte, bm *roaring.Bitmap) ([]byte, error) {
	var e postingsEncoder
	return e.appendPostings(dst, bm, longPostings)
}

// splitPostings returns the postings value at the start of v and the bytes
// after it.
func splitPostings(v []byte) (postings, rest []byte, err error) {
	h, n := binary.Uvarint(v)
	if n <= 0 {
		return nil, nil, corruptf("postings header does not decode")
	}
	if h>>1 > uint64(len(v)-n) {
		return nil, nil, corruptf("postings claim %d bytes, %d left", h>>1, len(v)-n)
	}
	end := n + int(h>>1)
	return v[:end], v[end:], nil
}

// postingsScratch holds decodePostings' reusable buffers.
type postingsScratch struct {
	ords  []uint32
	words []uint64
}

// denseFrom is the list length from which decodePostings builds a dense
// bitset and converts it whole, which costs a pass over the words instead
// of a container lookup and insertion per ordinal.
const denseFrom = 64

// decodePostings replaces dst's contents with the postings value v (all of
// it). sc holds scratch buffers and may be nil. Bytes that do not decode
// give an error wrapping encoding.ErrCorrupt, never a panic.
func decodePostings(dst *roaring.Bitmap, v []byte, sc *postingsScratch) (err error) {
	dst.Clear()
	p, rest, err := splitPostings(v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return corruptf("postings have %d trailing bytes", len(rest))
	}
	h, n := binary.Uvarint(p)
	data := p[n:]
	switch h & 1 {
	case postingsList:
		if sc == nil {
			sc = &postingsScratch{}
		}
		ords := sc.ords[:0]
		var cur uint64
		for i := 0; len(data) > 0; i++ {
			// Most gaps take one or two bytes; binary.Uvarint takes the rest.
			var delta uint64
			if c := data[0]; c < 0x80 {
				delta, data = uint64(c), data[1:]
			} else if len(data) > 1 && data[1] < 0x80 {
				delta, data = uint64(c&0x7f)|uint64(data[1])<<7, data[2:]
			} else {
				d, n := binary.Uvarint(data)
				if n <= 0 {
					return corruptf("postings delta does not decode")
				}
				delta, data = d, data[n:]
			}
			if i > 0 && delta == 0 {
				return corruptf("postings list repeats ordinal %d", cur)
			}
			if cur += delta; delta > 1<<32-1 || cur > 1<<32-1 {
				return corruptf("postings ordinal past %d overflows 32 bits", cur-delta)
			}
			ords = append(ords, uint32(cur))
		}
		sc.ords = ords
		// A long list whose ordinals are not too sparse goes through a
		// bitset no larger than 8 words per ordinal.
		if len(ords) >= denseFrom && cur < uint64(len(ords))*8*64 {
			nw := int(cur/64) + 1
			words := slices.Grow(sc.words[:0], nw)[:nw]
			clear(words)
			for _, o := range ords {
				words[o>>6] |= 1 << (o & 63)
			}
			sc.words = words
			dst.FromDense(words, true)
			return nil
		}
		dst.AddMany(ords)
		return nil
	default:
		defer func() {
			// The roaring reader validates its input; this guards the
			// promise that a decoder never panics if a case slips by.
			if r := recover(); r != nil {
				dst.Clear()
				err = corruptf("roaring postings: %v", r)
			}
		}()
		if err := dst.UnmarshalBinary(data); err != nil {
			dst.Clear()
			return corruptf("roaring postings: %v", err)
		}
		return nil
	}
}

// A token dictionary chunk packs consecutive tokens of one segment, in
// order, with their postings:
//
//	+---------+-----------+-------------------------------------------------+
//	| version | uvarint n | n × ( uvarint shared | uvarint len | suffix |     |
//	| 1 B     |           |       postings value (format above) )           |
//	+---------+-----------+-------------------------------------------------+
//
// shared is how many leading bytes a token has in common with the one
// before it (0 for the first, whose whole text is also in the key).
const (
	chunkVersion byte = 2
	chunkTokens       = 64      // tokens per chunk at most
	chunkBytes        = 8 << 10 // a chunk is closed once it passes this size
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
	w.body = append(w.body, postings...)
	w.prev = append(w.prev[:0], tok...)
	w.n++
}

func (w *chunkWriter) full() bool { return w.n >= chunkTokens || len(w.body) >= chunkBytes }

// appendTo appends the finished chunk value.
func (w *chunkWriter) appendTo(dst []byte) []byte {
	dst = encoding.AppendUvarint(append(dst, chunkVersion), uint64(w.n))
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
	ver := r.d.Byte()
	r.left = r.d.Uvarint()
	r.tok = r.tok[:0]
	r.err = r.d.Err()
	switch {
	case r.err != nil:
	case ver != chunkVersion:
		r.err = corruptf("token chunk version %d, want %d", ver, chunkVersion)
	case r.left > uint64(r.d.Len()):
		r.err = corruptf("token chunk claims %d tokens in %d bytes", r.left, r.d.Len())
	}
}

// next advances to the next token; tok and postings (a whole postings
// value) are valid until the following call.
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
	if err := r.d.Err(); err != nil {
		r.err = err
		return false
	}
	if shared > uint64(len(r.tok)) {
		r.err = corruptf("token shares %d bytes with a %d-byte predecessor", shared, len(r.tok))
		return false
	}
	p, rest, err := splitPostings(r.d.Rest())
	if err != nil {
		r.err = err
		return false
	}
	r.postings = p
	r.d.Reset(rest)
	r.tok = append(r.tok[:shared], suffix...)
	return true
}
