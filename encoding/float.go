package encoding

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
)

// Every float chunk (gorilla, decimal, chimp) shares one frame; see the
// package documentation for the byte diagrams.
//
//	encoding 1 B | sample count uvarint | bit stream, zero-padded | check 2 B LE
//
// The check is CRC32C of the bit stream followed by the header bytes,
// folded to 16 bits (low half XOR high half).

// floatCheckLen is the size of the checksum that ends every float chunk.
const floatCheckLen = 2

// noWindow marks an XOR state with no leading/trailing-zero window yet.
const noWindow = 0xff

// FloatChunk is an open Gorilla chunk: samples are appended one at a time
// and Bytes returns the encoded chunk at any point without re-encoding.
// Timestamps are stored as delta-of-delta in buckets sized for millisecond
// timestamps, values as the XOR with the previous value inside a reused
// leading/trailing-zero window. The zero value is an empty chunk. A
// FloatChunk is not safe for concurrent use.
type FloatChunk struct {
	w     BitWriter // w.buf holds the header followed by the bit stream
	hdr   int       // header length: encoding byte and count uvarint
	num   int
	t0    int64
	t     int64
	delta uint64
	v     uint64 // bits of the last value
	lead  uint8  // current XOR window, noWindow before the first
	trail uint8
	crc   uint32 // CRC32C of the first crcN flushed stream bytes
	crcN  int
}

// NewFloatChunk returns an empty Gorilla chunk.
func NewFloatChunk() *FloatChunk {
	c := &FloatChunk{}
	c.Reset()
	return c
}

// Reset empties c for a new chunk, keeping its buffer.
func (c *FloatChunk) Reset() {
	c.w.Reset(append(c.w.buf[:0], byte(EncGorilla), 0))
	*c = FloatChunk{w: c.w, hdr: 2, lead: noWindow}
}

// NumSamples returns the number of samples appended.
func (c *FloatChunk) NumSamples() int { return c.num }

// MinTime returns the first sample's timestamp, or 0 for an empty chunk.
func (c *FloatChunk) MinTime() int64 { return c.t0 }

// MaxTime returns the last sample's timestamp, or 0 for an empty chunk.
func (c *FloatChunk) MaxTime() int64 { return c.t }

// Append adds a sample. t must be greater than the previous sample's
// timestamp, else the error wraps ErrOutOfOrder and c is unchanged. Every
// float64 bit pattern is kept exactly, NaN payloads included.
func (c *FloatChunk) Append(t int64, v float64) error {
	vb := math.Float64bits(v)
	if c.num >= 2 && vb == c.v && uint64(t-c.t) == c.delta && t > c.t {
		// An unchanged interval and a repeated value, the whole of a
		// constant series: two zero bits (dod 0, XOR 0).
		c.w.writeSmall(0, 2)
		c.t = t
		c.num++
		return nil
	}
	return c.append(t, vb)
}

// append is Append for every sample but a repeat.
func (c *FloatChunk) append(t int64, vb uint64) error {
	if c.hdr == 0 {
		c.Reset() // a zero FloatChunk
	}
	switch c.num {
	case 0:
		c.t0 = t
		c.w.WriteUvarint(Zigzag(t))
	case 1:
		if t <= c.t {
			return fmt.Errorf("%w: %d after %d", ErrOutOfOrder, t, c.t)
		}
		c.delta = uint64(t - c.t)
		c.w.WriteUvarint(c.delta)
	default:
		if t <= c.t {
			return fmt.Errorf("%w: %d after %d", ErrOutOfOrder, t, c.t)
		}
		d := uint64(t - c.t)
		writeDod(&c.w, int64(d-c.delta))
		c.delta = d
	}
	if c.num == 0 {
		c.lead, c.trail, _ = writeFirstValue(&c.w, vb)
	} else {
		c.lead, c.trail, _ = writeXOR(&c.w, vb^c.v, c.lead, c.trail)
	}
	c.t, c.v = t, vb
	c.num++
	return nil
}

// setCount writes the count into the header, widening it in place when the
// uvarint has grown a byte (at 128 and 16384 samples). Bytes calls it, so
// Append never touches the header.
func (c *FloatChunk) setCount() {
	var tmp [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(tmp[:], uint64(c.num))
	if n != c.hdr-1 {
		grow := n - (c.hdr - 1)
		old := len(c.w.buf)
		for range grow {
			c.w.buf = append(c.w.buf, 0)
		}
		copy(c.w.buf[c.hdr+grow:], c.w.buf[c.hdr:old])
		c.hdr += grow
	}
	copy(c.w.buf[1:c.hdr], tmp[:n])
}

// Bytes returns the encoded chunk, header to checksum. It costs the checksum
// of the bytes written since the last call, not a re-encode. The slice is
// valid until the next Append or Reset.
func (c *FloatChunk) Bytes() []byte {
	if c.hdr == 0 {
		c.Reset()
	}
	c.setCount()
	body := c.w.buf[c.hdr:]
	if len(body) > c.crcN {
		c.crc = crc32.Update(c.crc, castagnoli, body[c.crcN:])
		c.crcN = len(body)
	}
	full := len(c.w.buf)
	out := c.w.AppendTo()
	sum := crc32.Update(c.crc, castagnoli, out[full:])
	sum = crcHeader(sum, out[:c.hdr])
	out = binary.LittleEndian.AppendUint16(out, foldCRC(sum))
	c.w.buf = out[:full] // keep any capacity the append gained
	return out
}

// foldCRC folds a CRC32C to the 16 bits a float chunk stores.
func foldCRC(c uint32) uint16 { return uint16(c) ^ uint16(c>>16) }

// crcHeader is crc32.Update(crc, castagnoli, hdr) for a float chunk's
// header of a few bytes, a byte at a time from the table: a second call
// into the hardware path, once per chunk read, costs more than they do.
func crcHeader(crc uint32, hdr []byte) uint32 {
	crc = ^crc
	for _, b := range hdr {
		crc = castagnoli[byte(crc)^b] ^ crc>>8
	}
	return ^crc
}

// Timestamp delta-of-delta buckets. Prometheus' smallest non-zero bucket
// takes 16 bits; scrape jitter of a few tens of milliseconds makes nearly
// every dod non-zero, so the small buckets here are much narrower.
//
//	0                      dod = 0
//	10     + 7 bits        [-64, 63]            jitter
//	110    + 9 bits        [-256, 255]          wider jitter
//	1110   + 16 bits       [-32768, 32767]      a missed 15 s scrape
//	11110  + 20 bits       [-524288, 524287]    a missed 5 min scrape
//	11111  + 64 bits       anything else
//
// It returns the dod a reader recovers from the bits written, the payload
// sign-extended from its width, for the writer's own check.
func writeDod(w *BitWriter, dod int64) int64 {
	switch {
	case dod == 0:
		w.writeSmall(0, 1)
		return 0
	case -64 <= dod && dod < 64:
		f := uint64(dod) & (1<<7 - 1)
		w.writeSmall(0b10<<7|f, 9)
		return int64(f<<57) >> 57
	case -256 <= dod && dod < 256:
		f := uint64(dod) & (1<<9 - 1)
		w.writeSmall(0b110<<9|f, 12)
		return int64(f<<55) >> 55
	case -32768 <= dod && dod < 32768:
		f := uint64(dod) & (1<<16 - 1)
		w.writeSmall(0b1110<<16|f, 20)
		return int64(f<<48) >> 48
	case -1<<19 <= dod && dod < 1<<19:
		f := uint64(dod) & (1<<20 - 1)
		w.writeSmall(0b11110<<20|f, 25)
		return int64(f<<44) >> 44
	default:
		w.writeSmall(0b11111, 5)
		w.WriteBits(uint64(dod), 64)
		return dod
	}
}

// dodWidth maps the number of leading one bits of a dod prefix to its
// payload width.
var dodWidth = [6]uint8{0, 7, 9, 16, 20, 64}

// readDod reads a value written by writeDod.
func readDod(r *BitReader) (int64, error) {
	p, avail := r.PeekBits(5)
	ones := bits.LeadingZeros64(^(p << 59))
	if ones > 5 {
		ones = 5
	}
	plen := ones + 1
	if ones == 5 {
		plen = 5
	}
	if plen > avail {
		return 0, errBitsTruncated
	}
	r.Skip(plen)
	w := int(dodWidth[ones])
	if w == 0 {
		return 0, nil
	}
	x, err := r.ReadBits(w)
	if err != nil {
		return 0, err
	}
	if w == 64 {
		return int64(x), nil
	}
	s := uint(64 - w)
	return int64(x<<s) >> s, nil
}

// writeXOR writes the XOR x of a value with its predecessor, Gorilla style,
// and returns the window to use next and the XOR a reader recovers from
// the bits written (the writer's own check compares it with x):
//
//	0                                         x = 0 (value repeated)
//	10 + window bits                          x fits the current window
//	11 + lead 5 + 0 + trail-base 2 + bits     new window, trailing zeros near the last
//	11 + lead 5 + 1 + trail 6 + bits          new window, any trailing zeros
//
// The window holds the 64 - lead - trail bits between the leading zeros
// (capped at 31) and the trailing zeros. The short trailing-zero form
// counts from trailBase of the current window. Unlike Prometheus, a fitting
// window is reused only when that costs at most xorHysteresis bits more
// than opening a tight one, so one wide XOR does not bloat the rest of the
// chunk.
func writeXOR(w *BitWriter, x uint64, lead, trail uint8) (uint8, uint8, uint64) {
	if x == 0 {
		w.writeSmall(0, 1)
		return lead, trail, 0
	}
	_, reuse, l, tr := xorPlan(x, lead, trail)
	if reuse {
		f := x >> trail & lowBits(64-lead-trail)
		w.writeSmall(0b10, 2)
		w.WriteBits(f, int(64-lead-trail))
		return lead, trail, f << trail
	}
	if base := trailBase(trail); tr >= base && tr < base+4 {
		w.writeSmall(0b11<<8|uint64(l)<<3|uint64(tr-base), 10)
	} else {
		w.writeSmall(0b11<<12|uint64(l)<<7|1<<6|uint64(tr), 14)
	}
	f := x >> tr & lowBits(64-l-tr)
	w.WriteBits(f, int(64-l-tr))
	return l, tr, f << tr
}

// lowBits is a mask of the low n ≤ 64 bits.
func lowBits(n uint8) uint64 { return uint64(1)<<n - 1 }

// xorHysteresis is how many bits more than a new window the current one
// may cost and still be reused: a little hysteresis keeps one odd value
// from costing two window changes.
const xorHysteresis = 3

// trailBase is the smallest trailing-zero count the short form of a new
// window can give, from the current window's: full-precision values have
// few trailing zeros, integers and short decimals many, and a new window's
// count tends to stay near the last one.
func trailBase(trail uint8) uint8 {
	if trail == noWindow || trail < 4 {
		return 0
	}
	return trail - 1
}

// xorPlan decides how writeXOR codes x: the bits it takes, whether the
// current window is reused, and the window afterwards.
func xorPlan(x uint64, lead, trail uint8) (cost int, reuse bool, l, tr uint8) {
	if x == 0 {
		return 1, true, lead, trail
	}
	l = uint8(bits.LeadingZeros64(x))
	tr = uint8(bits.TrailingZeros64(x))
	if l > 31 {
		l = 31
	}
	cost = 2 + 5 + 3 + int(64-l-tr)
	if base := trailBase(trail); tr < base || tr >= base+4 {
		cost += 4
	}
	if lead != noWindow && l >= lead && tr >= trail {
		if win := 2 + int(64-lead-trail); win <= cost+xorHysteresis {
			return win, true, lead, trail
		}
	}
	return cost, false, l, tr
}

// xorCost is xorPlan's bits and window afterwards, computed without a
// branch: the sparse pass (gorillaValueBitsSparse) takes it for every
// value that changes, and which of xorPlan's cases a value falls in (a
// new window, its short form, the old one) follows no pattern a branch
// predictor learns in a sparse series, whose values jump between zero
// and counts. The pass over every value keeps xorPlan: there the window
// is mostly reused, a branch predicted, and cheaper than the selects.
func xorCost(x uint64, lead, trail uint8) (int, uint8, uint8) {
	l := min(uint(bits.LeadingZeros64(x)), 31)
	tr := uint(bits.TrailingZeros64(x))
	// trailBase, by a mask: below it tr−base wraps, and is not < 4.
	base := (uint(trail) - 1) & -(b2u(trail >= 4) & b2u(trail != noWindow))
	cost := 2 + 5 + 3 + 64 - int(l) - int(tr) + 4*int(b2u(tr-base >= 4))
	win := 2 + 64 - int(lead) - int(trail)
	// No window (noWindow) is never reused: l and tr stay below it.
	if b2u(l >= uint(lead))&b2u(tr >= uint(trail))&b2u(win <= cost+xorHysteresis) != 0 {
		cost, l, tr = win, uint(lead), uint(trail)
	}
	if x == 0 {
		cost, l, tr = 1, uint(lead), uint(trail)
	}
	return cost, uint8(l), uint8(tr)
}

// gorillaFloor is at most the bits writeXOR spends on x, given the XOR
// before it, last (0 for a repeat or none): a new window takes its
// header (at least 10 bits with the control bits) and x's meaningful
// bits; the old window, 2 bits and its width, and a window x reuses
// holds last's meaningful bits as well, last having been written in it.
// Unlike xorPlan's count it needs no window from the step before, so
// the steps of a pass overlap.
func gorillaFloor(x, last uint64) int {
	u := x | last
	fresh := 2 + 5 + 3 + 64 - min(bits.LeadingZeros64(x), 31) - bits.TrailingZeros64(x)
	reuse := 2 + 64 - min(bits.LeadingZeros64(u), 31) - bits.TrailingZeros64(u)
	c := min(fresh, reuse)
	if x == 0 {
		c = 1
	}
	return c
}

// writeFirstValue writes a chunk's first value as an XOR with zero: in a
// tight window when that is shorter, else as the code 10 (which needs a
// window, so cannot otherwise start a chunk) and the 64 raw bits. The
// third result is the value a reader recovers.
func writeFirstValue(w *BitWriter, vb uint64) (uint8, uint8, uint64) {
	if firstValueRaw(vb) {
		w.writeSmall(0b10, 2)
		w.WriteBits(vb, 64)
		return noWindow, noWindow, vb
	}
	_, _, got := writeXOR(w, vb, noWindow, noWindow)
	return noWindow, noWindow, got // zero's window says nothing about the XORs to come
}

// firstValueBits is what writeFirstValue spends on vb: 66 bits raw, or an
// XOR with zero in a window of its own.
func firstValueBits(vb uint64) int {
	if firstValueRaw(vb) {
		return 66
	}
	c, _, _, _ := xorPlan(vb, noWindow, noWindow)
	return c
}

// firstValueRaw reports whether a first value is shorter raw than in a
// window of its own.
func firstValueRaw(vb uint64) bool {
	return vb != 0 && bits.LeadingZeros64(vb)+bits.TrailingZeros64(vb) < 12
}

// FloatChunkLen returns the number of samples a float chunk's header
// records, without decoding or verifying the chunk.
func FloatChunkLen(b []byte) (int, error) {
	_, n, _, err := parseFloatHeader(b)
	return n, err
}

// parseFloatHeader checks the encoding byte and reads the sample count,
// returning the header length.
func parseFloatHeader(b []byte) (ChunkEncoding, int, int, error) {
	if len(b) == 0 {
		return 0, 0, 0, corruptf("empty float chunk")
	}
	enc := ChunkEncoding(b[0])
	switch enc {
	case EncGorilla, EncDecimal, EncChimp:
	default:
		return 0, 0, 0, corruptf("chunk encoding %d is not a float encoding", b[0])
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 {
		return 0, 0, 0, corruptf("float chunk header: bad sample count")
	}
	if n > uint64(8*len(b)) {
		return 0, 0, 0, corruptf("float chunk of %d bytes claims %d samples", len(b), n)
	}
	return enc, int(n), 1 + k, nil
}
