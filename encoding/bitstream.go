package encoding

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errBitsTruncated is the error a BitReader returns when a read needs more
// bits than are left: the stream was cut short or a length in it is wrong.
var errBitsTruncated = fmt.Errorf("%w: bit stream ends early", ErrCorrupt)

// errVarintTooLong reports a bit-stream varint of more than ten groups.
var errVarintTooLong = fmt.Errorf("%w: varint in bit stream overflows 64 bits", ErrCorrupt)

// BitWriter appends bits, most significant first, to a byte slice. It keeps
// up to 63 pending bits in a register and moves whole 64-bit words to the
// slice, so writing a field of up to 64 bits costs a few instructions,
// inlined, and no allocation beyond the slice's amortised growth. The zero
// value is ready to use.
type BitWriter struct {
	buf []byte
	acc uint64 // pending bits, right-aligned; the low n bits are valid
	n   uint   // number of pending bits, always < 64 between calls
}

// NewBitWriter returns a writer that appends to dst[:len(dst)].
func NewBitWriter(dst []byte) *BitWriter { return &BitWriter{buf: dst} }

// Reset makes w append to dst, dropping pending bits.
func (w *BitWriter) Reset(dst []byte) { w.buf, w.acc, w.n = dst, 0, 0 }

// WriteBits writes the low n bits of v (0 ≤ n ≤ 64), most significant
// first. Bits of v above n are ignored.
func (w *BitWriter) WriteBits(v uint64, n int) { w.writeSmall(v, uint(n)) }

// WriteBit writes one bit: 1 if b, else 0.
func (w *BitWriter) WriteBit(b bool) {
	var v uint64
	if b {
		v = 1
	}
	w.writeSmall(v, 1)
}

// writeSmall writes the low n ≤ 64 bits of v. The common case, room in
// the register, is inlined; a full word goes out in flush.
func (w *BitWriter) writeSmall(v uint64, n uint) {
	v &= 1<<n - 1 // all ones for n = 64
	if w.n+n < 64 {
		w.acc = w.acc<<n | v
		w.n += n
		return
	}
	w.flush(v, n)
}

// writeZeros writes n zero bits, any number of them: a run of repeats.
func (w *BitWriter) writeZeros(n uint) {
	for ; n >= 64; n -= 64 {
		w.writeSmall(0, 64)
	}
	w.writeSmall(0, n)
}

// flush appends the pending bits and the top bits of v's n that complete
// a 64-bit word, and keeps the rest of v pending.
func (w *BitWriter) flush(v uint64, n uint) {
	rest := w.n + n - 64 // bits of v left over, 0 ≤ rest ≤ n
	// acc<<64 is 0 in Go, so an empty register needs no case of its own.
	w.buf = binary.BigEndian.AppendUint64(w.buf, w.acc<<(64-w.n)|v>>rest)
	w.acc = v & (1<<rest - 1)
	w.n = rest
}

// WriteUvarint writes v in 8-bit groups of seven value bits and a
// continuation bit, the bit-stream twin of a LEB128 varint.
func (w *BitWriter) WriteUvarint(v uint64) {
	for v >= 0x80 {
		w.writeSmall(v&0x7f|0x80, 8)
		v >>= 7
	}
	w.writeSmall(v, 8)
}

// BitLen returns the number of bits written so far beyond the bytes the
// writer was given.
func (w *BitWriter) BitLen() int { return len(w.buf)*8 + int(w.n) }

// Len returns the number of bytes the written bits occupy, the last one
// padded with zero bits.
func (w *BitWriter) Len() int { return len(w.buf) + int(w.n+7)/8 }

// AppendTo returns w's bytes (complete and pending, zero-padded to a byte
// boundary) without disturbing w; the result shares w's storage when it has
// room, so it is valid only until the next write.
func (w *BitWriter) AppendTo() []byte {
	out := w.buf
	if w.n > 0 {
		tail := w.acc << (64 - w.n)
		for k := uint(0); k < (w.n+7)/8; k++ {
			out = append(out, byte(tail>>(56-8*k)))
		}
	}
	return out
}

// Bytes pads the stream to a byte boundary with zero bits and returns all of
// it. The writer stays usable, continuing after the padding.
func (w *BitWriter) Bytes() []byte {
	w.buf = w.AppendTo()
	w.acc, w.n = 0, 0
	return w.buf
}

// BitReader reads bits, most significant first, from a byte slice. It loads
// eight bytes at a time into a register, so reading a field costs a shift
// and a mask. Reads past the end fail with an error wrapping ErrCorrupt;
// they never panic and never invent bits.
type BitReader struct {
	b   []byte // bytes not yet loaded into acc
	acc uint64 // left-aligned; the top n bits are unread stream bits
	n   uint   // valid bits in acc
}

// NewBitReader returns a reader over b. It does not copy b.
func NewBitReader(b []byte) BitReader { return BitReader{b: b} }

// Reset points r at b.
func (r *BitReader) Reset(b []byte) { r.b, r.acc, r.n = b, 0, 0 }

// Remaining returns the number of unread bits.
func (r *BitReader) Remaining() int { return int(r.n) + 8*len(r.b) }

// refill loads whole bytes until acc holds at least 57 bits or the input is
// exhausted.
func (r *BitReader) refill() {
	if len(r.b) >= 8 {
		// Bits past the k whole bytes counted are the true next bits of the
		// stream, so reloading them later ORs identical values in place.
		r.acc |= binary.BigEndian.Uint64(r.b) >> r.n
		k := (64 - r.n) >> 3
		r.b = r.b[k:]
		r.n += k * 8
		return
	}
	for r.n <= 56 && len(r.b) > 0 {
		r.acc |= uint64(r.b[0]) << (56 - r.n)
		r.b = r.b[1:]
		r.n += 8
	}
}

// ReadBits reads n bits (0 ≤ n ≤ 64) and returns them right-aligned.
func (r *BitReader) ReadBits(n int) (uint64, error) {
	if n > 56 {
		hi, err := r.ReadBits(n - 32)
		if err != nil {
			return 0, err
		}
		lo, err := r.ReadBits(32)
		return hi<<32 | lo, err
	}
	u := uint(n)
	if u > r.n {
		r.refill()
		if u > r.n {
			return 0, errBitsTruncated
		}
	}
	if u == 0 {
		return 0, nil
	}
	v := r.acc >> (64 - u)
	r.acc <<= u
	r.n -= u
	return v, nil
}

// ReadBit reads one bit.
func (r *BitReader) ReadBit() (bool, error) {
	if r.n == 0 {
		r.refill()
		if r.n == 0 {
			return false, errBitsTruncated
		}
	}
	b := r.acc>>63 == 1
	r.acc <<= 1
	r.n--
	return b, nil
}

// PeekBits returns the next n ≤ 56 bits without consuming them, padded with
// zero bits past the end of the stream, and how many of them are real.
func (r *BitReader) PeekBits(n int) (v uint64, avail int) {
	u := uint(n)
	if u > r.n {
		r.refill()
	}
	return r.acc >> (64 - u), int(min(u, r.n))
}

// Skip consumes n bits already seen through PeekBits; n must not exceed the
// avail PeekBits reported.
func (r *BitReader) Skip(n int) {
	r.acc <<= uint(n)
	r.n -= uint(n)
}

// ReadUvarint reads a value written by BitWriter.WriteUvarint.
func (r *BitReader) ReadUvarint() (uint64, error) {
	if r.n < 57 {
		r.refill()
	}
	if v, k := peekUvarint(r.acc, r.n); k > 0 {
		r.acc <<= k
		r.n -= k
		return v, nil
	}
	var v uint64
	for shift := uint(0); shift < 70; shift += 7 {
		g, err := r.ReadBits(8)
		if err != nil {
			return 0, err
		}
		if shift == 63 && g > 1 {
			return 0, errVarintTooLong
		}
		v |= (g & 0x7f) << shift
		if g < 0x80 {
			return v, nil
		}
	}
	return 0, errVarintTooLong
}

// peekUvarint reads a bit-stream varint (see BitWriter.WriteUvarint) of
// up to seven groups from acc, left-aligned, of which avail bits are
// stream bits, and returns it and its length in bits, or a length of 0
// when it is longer or runs past avail.
func peekUvarint(acc uint64, avail uint) (uint64, uint) {
	var v uint64
	for k := uint(0); k < 7 && 8*(k+1) <= avail; k++ {
		g := acc >> 56
		v |= (g & 0x7f) << (7 * k)
		if g < 0x80 {
			return v, 8 * (k + 1)
		}
		acc <<= 8
	}
	return 0, 0
}

// IsTruncated reports whether err says a bit stream ended early.
func IsTruncated(err error) bool { return errors.Is(err, errBitsTruncated) }
