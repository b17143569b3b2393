package encoding

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
)

// FloatIterator decodes a float chunk of any float encoding (gorilla,
// decimal, chimp). It checks the chunk's checksum when it is pointed at it
// and its length as it goes: a truncated or damaged chunk ends iteration
// with an error wrapping ErrCorrupt, never with made-up samples. It
// allocates nothing, on Reset or per sample; reuse one with Reset.
type FloatIterator struct {
	r     BitReader
	enc   ChunkEncoding
	n, i  int
	t     int64
	delta uint64
	v     uint64 // bits of the current value
	lead  uint8  // gorilla XOR window
	trail uint8
	dec   decState
	chimp chimpState
	grid  tsGrid // decimal and chimp: timestamps on a grid when interval > 0
	rep   uint   // decimal: bits of an unchanged interval and code 0 in the first bucket; 0 on a grid of offsets
	gp    int64  // the grid point of the current sample
	err   error
	// Samples decoded ahead, step apart: vbuf[vk:vn] the values of an
	// implicit decimal chunk's batch (see valuesBatch), one apart, after
	// the current one; or reps repeats of the current value, an interval
	// apart (see repeatsAhead), a count alone, which keeps Next small
	// enough to be inlined into the caller's loop, so that a run of
	// repeats costs no call a sample. Repeats are counted in i when they
	// are read.
	vbuf   [valuesAhead]uint64
	vk, vn uint8
	step   int64
	reps   int
}

// valuesAhead is how many values of an implicit decimal chunk Next decodes
// in one loop: enough to keep the decoder's state in registers for a run,
// few enough that a short read wastes little.
const valuesAhead = 8

// NewFloatIterator returns an iterator over chunk b, which it does not copy.
// A bad header or checksum is an error wrapping ErrCorrupt.
func NewFloatIterator(b []byte) (*FloatIterator, error) {
	it := &FloatIterator{}
	return it, it.Reset(b)
}

// Reset points it at chunk b, as NewFloatIterator does, without allocating.
// On error the iterator yields nothing and Err returns the error.
func (it *FloatIterator) Reset(b []byte) error {
	*it = FloatIterator{}
	enc, n, hdr, err := parseFloatHeader(b)
	if err == nil && len(b) < hdr+floatCheckLen {
		err = corruptf("float chunk of %d bytes has no checksum", len(b))
	}
	if err != nil {
		it.err = err
		return err
	}
	body := b[hdr : len(b)-floatCheckLen]
	sum := crcHeader(crc32.Checksum(body, castagnoli), b[:hdr])
	if got, want := foldCRC(sum), binary.LittleEndian.Uint16(b[len(b)-floatCheckLen:]); got != want {
		it.err = corruptf("float chunk checksum mismatch: stored %04x, computed %04x", want, got)
		return it.err
	}
	it.enc, it.n = enc, n
	it.r.Reset(body)
	it.lead, it.trail = noWindow, noWindow
	it.chimp.reset()
	return nil
}

// Next advances to the next sample and reports whether there is one. It
// returns false at the end of the chunk or on an error (see Err).
func (it *FloatIterator) Next() bool {
	if it.reps > 0 {
		it.reps--
		it.t += it.step
		return true
	}
	return it.next()
}

// next is Next past the repeats read ahead.
func (it *FloatIterator) next() bool {
	if it.r.n < 57 {
		// Topping up the register changes no state, and lets the paths
		// below take long fields.
		it.r.acc, it.r.n, it.r.b = refillBits(it.r.acc, it.r.n, it.r.b)
	}
	// In a gorilla chunk after the second sample, a zero bit for an
	// unchanged interval and then a repeated value (a zero bit: the whole
	// of a constant series' chunk), an XOR in the current window or one
	// in a new window: regular scrapes are mostly this, decoded here
	// without the general path. (One test of the encoding for all three:
	// the other encodings' samples pass them with no more.)
	if it.enc == EncGorilla {
		if it.r.acc>>62 == 0 && it.r.n >= 2 && it.i >= 2 && it.i < it.n {
			// The repeat first and on its own: a constant series is
			// nothing else.
			if t := it.t + int64(it.delta); t > it.t {
				it.r.acc <<= 2
				it.r.n -= 2
				it.t = t
				it.i++
				if it.r.acc>>60 == 0 && it.r.n >= 4 && it.i+1 < it.n {
					// Two repeats more at least: worth the call.
					it.repeatsAhead(2, int64(it.delta))
				}
				return true
			}
		}
		{
			acc, n := it.r.acc, it.r.n
			if acc>>63 != 0 {
				goto gorillaDod
			}
			if n < 3 || it.i < 2 || it.i >= it.n {
				goto slow
			}
			t := it.t + int64(it.delta)
			if t <= it.t {
				goto slow
			}
			var used uint
			switch acc >> 61 {
			case 0b000, 0b001: // a repeat, taken above unless suspicious
				goto slow
			case 0b010: // XOR in the current window
				if it.lead == noWindow {
					goto slow
				}
				sig := uint(64 - it.lead - it.trail)
				used = 3 + sig
				if n < used {
					goto slow
				}
				it.v ^= acc << 3 >> (64 - sig) << it.trail
			default: // 0b011: a new window
				a := acc << 3
				lead, hdr := uint8(a>>59), uint(3+5+1+2)
				trail := trailBase(it.trail) + uint8(a>>56)&3
				if a&(1<<58) != 0 {
					trail, hdr = uint8(a>>52)&63, 3+5+1+6
				}
				if lead+trail > 63 {
					goto slow
				}
				sig := uint(64 - lead - trail)
				used = hdr + sig
				if n < used {
					goto slow
				}
				it.v ^= acc << hdr >> (64 - sig) << trail
				it.lead, it.trail = lead, trail
			}
			return it.advance(used, t)
		}
	gorillaDod:
		{
			// After the second sample, a delta of deltas in a bucket up to
			// 20 bits (jitter, a missed scrape), then a repeat, an XOR in
			// the current window or one in a new window: the same, after a
			// timestamp of its own.
			acc, n := it.r.acc, it.r.n
			if n < 3 || it.i < 2 || it.i >= it.n {
				goto slow
			}
			delta, tu := it.delta, uint(1)
			if acc>>63 != 0 {
				ones := uint(bits.LeadingZeros64(^acc))
				if ones >= 5 {
					goto slow
				}
				w := uint(dodWidth[ones])
				tu = ones + 1 + w
				delta += uint64(int64(acc<<(ones+1)) >> (64 - w))
			}
			t := it.t + int64(delta)
			if delta == 0 || t <= it.t || tu >= n {
				goto slow
			}
			// The value's header, then its XOR's sig bits, after a refill
			// when they are more than the register has left.
			a := acc << tu
			lead, trail := it.lead, it.trail
			hdr, sig := uint(1), uint(0) // a repeated value
			switch a >> 62 {
			case 0b00, 0b01:
			case 0b10: // XOR in the current window
				if lead == noWindow {
					goto slow
				}
				hdr, sig = 2, uint(64-lead-trail)
			default: // a new window
				b := a << 2
				hdr = 2 + 5 + 1 + 2
				lead, trail = uint8(b>>59), trailBase(trail)+uint8(b>>56)&3
				if b&(1<<58) != 0 {
					trail, hdr = uint8(b>>52)&63, 2+5+1+6
				}
				if lead+trail > 63 {
					goto slow
				}
				sig = uint(64 - lead - trail)
			}
			if tu+hdr > n {
				goto slow
			}
			acc, n, rest := acc<<(tu+hdr), n-(tu+hdr), it.r.b
			v := it.v
			if sig > 0 {
				if sig > n {
					acc, n, rest = refillBits(acc, n, rest)
					if sig > n {
						goto slow
					}
				}
				v ^= acc >> (64 - sig) << trail
				acc <<= sig
				n -= sig
			}
			it.r.acc, it.r.n, it.r.b = acc, n, rest
			it.t, it.delta, it.v = t, delta, v
			it.lead, it.trail = lead, trail
			it.i++
			return true
		}
	}
	if it.vk < it.vn {
		// A value of an implicit decimal chunk decoded ahead (never in a
		// gorilla chunk, so tested after it), its time checked not to
		// overflow then.
		it.v = it.vbuf[it.vk]
		it.vk++
		it.t += it.step
		it.i++
		return true
	}
	// So, in a decimal chunk, is a zero bit and code 0 in the first
	// bucket, when the last value had neither a change of d nor a
	// residual.
	if rep := it.rep; rep != 0 && it.r.acc>>(64-rep) == 0 && it.r.n >= rep && it.i >= 2 && it.i < it.n &&
		it.dec.delta == 0 && it.dec.baseOK && it.v == it.dec.base {
		step := it.delta
		if it.grid.interval != 0 {
			// A grid of width 0, on which every sample after the first
			// sits on its grid point (an escape restarts the grid at
			// the sample): the next is the last plus the interval.
			step = uint64(it.grid.interval)
		}
		if t := it.t + int64(step); t > it.t {
			it.r.acc <<= rep
			it.r.n -= rep
			it.t, it.gp = t, t
			it.i++
			if it.r.acc>>(64-rep) == 0 && it.r.n >= rep && it.i < it.n {
				it.repeatsAhead(rep, int64(step))
			}
			return true
		}
	}
	// On a timestamp grid, a zero bit and an offset, then a decimal code
	// in any bucket, after a residual or not, are decoded here without the
	// general path.
	if it.grid.interval != 0 && it.enc == EncDecimal && it.i >= 1 && it.i < it.n {
		acc := it.r.acc
		var t, gp int64
		var tn uint // the timestamp's bits; 0: the careful path
		if gw := uint(it.grid.width); acc>>63 == 0 {
			if it.r.n >= 1+gw {
				gp = it.gp + it.grid.interval
				t, tn = gp+Unzigzag(acc<<1>>(64-gw)), 1+gw
			}
		} else if d, k := peekUvarint(acc<<1, it.r.n-1); k > 0 {
			// Off the grid (a missed scrape): the interval as a varint,
			// and the grid restarts there.
			t = it.t + int64(d)
			gp, tn = t, 1+k
		}
		if tn > 0 && t > it.t {
			if used, ok := it.decFast(acc<<tn, it.r.n-tn); ok {
				it.r.acc <<= tn + used
				it.r.n -= tn + used
				it.t, it.gp = t, gp
				it.i++
				return true
			}
		}
	}
	// After the second sample, a zero bit for an unchanged interval and
	// then a decimal code in any bucket or a chimp value: regular scrapes
	// are mostly this, and it is decoded here without the general path.
	if it.r.n >= 2 && it.r.acc>>63 == 0 && it.i >= 2 && it.i < it.n && it.grid.interval == 0 {
		if t := it.t + int64(it.delta); t > it.t {
			var used uint
			switch it.enc {
			case EncDecimal:
				u, ok := it.decFast(it.r.acc<<1, it.r.n-1)
				if !ok {
					goto slow
				}
				used = 1 + u
			case EncChimp:
				u, ok := it.chimpFast(it.r.acc<<1, it.r.n-1)
				if !ok {
					goto slow
				}
				used = 1 + u
			default:
				goto slow
			}
			return it.advance(used, t)
		}
	}
slow:
	if it.i >= 2 && it.i < it.n && it.fastNext() {
		it.i++
		return true
	}
	if it.i >= it.n || it.err != nil {
		if it.err == nil && it.i == it.n {
			it.finish()
		}
		return false
	}
	var err error
	switch it.i {
	case 0:
		var u uint64
		u, err = it.r.ReadUvarint()
		it.t = Unzigzag(u)
		if err == nil && it.enc != EncGorilla {
			err = it.grid.read(&it.r)
			it.gp = it.t + it.grid.phase
		}
	case 1:
		if it.grid.interval != 0 || it.grid.implicit {
			err = it.readGridTime()
			break
		}
		it.delta, err = it.r.ReadUvarint()
		if err == nil && (it.delta == 0 || it.t+int64(it.delta) <= it.t) {
			err = corruptf("float chunk: timestamp delta %d does not advance", it.delta)
		}
		it.t += int64(it.delta)
	default:
		if it.grid.interval != 0 || it.grid.implicit {
			err = it.readGridTime()
			break
		}
		var dod int64
		dod, err = readDod(&it.r)
		d := it.delta + uint64(dod)
		if err == nil && (d == 0 || it.t+int64(d) <= it.t) {
			err = corruptf("float chunk: timestamp delta %d does not advance", int64(d))
		}
		it.delta = d
		it.t += int64(d)
	}
	if err == nil {
		switch it.enc {
		case EncGorilla:
			err = it.readXOR()
		case EncDecimal:
			if it.i > 0 {
				// The second sample's value, or one after an escape
				// in the timestamps, as later ones where it can be.
				if it.r.n < 57 {
					it.r.refill()
				}
				if u, ok := it.decFast(it.r.acc, it.r.n); ok {
					it.r.acc <<= u
					it.r.n -= u
					break
				}
			}
			it.v, err = it.dec.read(&it.r, it.i)
			if p := &it.dec.p; it.i == 0 && (it.grid.interval == 0 || it.grid.width == 0) && !it.grid.implicit && p.w[0]+p.k < 62 {
				it.rep = 2 + uint(p.w[0]) + uint(p.k)
			}
		case EncChimp:
			it.v, err = it.chimp.read(&it.r)
		}
	}
	if err != nil {
		it.fail(err)
		return false
	}
	it.i++
	return true
}

// advance moves past a sample the fast paths decoded from the register's
// first used bits, its time t.
func (it *FloatIterator) advance(used uint, t int64) bool {
	it.r.acc <<= used
	it.r.n -= used
	it.t = t
	it.i++
	return true
}

// decFast decodes a decimal value after the first straight from acc, the
// register's bits from the value's first on, avail of which are stream
// bits: a code in any bucket (its prefix is the ones before a zero), after
// a residual (11110 + 7-bit length + bits) or not. It returns the bits
// used, or false, changing nothing, for what the careful path takes: raw
// values, an escape after a residual, a value out of range, and fields
// past avail.
func (it *FloatIterator) decFast(acc uint64, avail uint) (uint, bool) {
	pos := uint(0)
	var res uint64
	ones := uint(bits.LeadingZeros64(^acc))
	if ones >= 4 {
		l := uint(acc>>52) & 127
		if acc&(1<<59) != 0 || l > 48 {
			return 0, false
		}
		acc <<= 12
		res = acc >> (64 - l)
		acc <<= l
		pos = 12 + l
		if ones = uint(bits.LeadingZeros64(^acc)); ones >= 4 {
			return 0, false
		}
	}
	ds := &it.dec
	w, k := uint(ds.p.w[ones]), uint(ds.p.k)
	used := pos + ones + 1 + w + k
	if used > avail {
		return 0, false
	}
	if k != 0 { // the residual field; a branch the chunk decides, cheaper than the shifts
		res += acc << (ones + 1 + w) >> (64 - k)
	}
	// apply, in line: a changed d is the usual case here.
	dd := Unzigzag(acc << (ones + 1) >> (64 - w))
	if ds.p.order == 2 {
		dd += ds.delta
	}
	if d := ds.d + dd; d != ds.d || !ds.baseOK {
		if d <= -(1<<53) || d >= 1<<53 {
			return 0, false
		}
		ds.base, ds.baseOK = decValue(d, ds.p.e), true
	}
	ds.d += dd
	ds.delta = dd
	it.v = ds.base + uint64(Unzigzag(res))
	return used, true
}

// chimpFast decodes a chimp value after the first straight from acc, the
// register's bits from the value's first on, avail of which are stream
// bits. It returns the bits used, or false, changing nothing, for what the
// careful path takes: a value longer than avail, a reference or window not
// yet set, a bad centre.
func (it *FloatIterator) chimpFast(acc uint64, avail uint) (uint, bool) {
	cs := &it.chimp
	if avail < 5 {
		return 0, false
	}
	var v uint64
	var used uint
	switch acc >> 62 {
	case 0b00: // equal to a recent value
		ref := int(acc>>59) & 7
		if ref >= cs.n {
			return 0, false
		}
		v, used = cs.ring[ref], 5
	case 0b01: // XOR with a recent value, centre bits only
		ref := int(acc>>59) & 7
		lead, center := uint(chimpLead[(acc>>56)&7]), uint(acc>>50)&63
		used = 14 + center
		if ref >= cs.n || center == 0 || lead+center > 64 || used > avail {
			return 0, false
		}
		v = cs.ring[ref] ^ acc<<14>>(64-center)<<(64-lead-center)
		cs.lead = noWindow
	default: // XOR with the last value, in the last or a new lead class
		cls, hdr := cs.lead, uint(2)
		if acc>>62 == 0b11 {
			cls, hdr = uint8(acc>>59)&7, 5
		} else if cls == noWindow {
			return 0, false
		}
		sig := uint(64 - chimpLead[cls])
		used = hdr + sig
		if used > avail {
			return 0, false
		}
		v = it.v ^ acc<<hdr>>(64-sig)
		cs.lead = cls
	}
	cs.push(v)
	it.v = v
	return used, true
}

// refillBits tops up a bit register (acc holding n valid bits, left-aligned)
// from b: eight bytes at once while there are eight, else byte by byte.
func refillBits(acc uint64, n uint, b []byte) (uint64, uint, []byte) {
	if len(b) >= 8 {
		acc |= binary.BigEndian.Uint64(b) >> n
		k := (64 - n) >> 3
		return acc, n + k*8, b[k:]
	}
	for n <= 56 && len(b) > 0 {
		acc |= uint64(b[0]) << (56 - n)
		b = b[1:]
		n += 8
	}
	return acc, n, b
}

// fastNext decodes a sample after the second straight from the bit
// register. It reports false, changing nothing, when the sample needs the
// careful path: for 64-bit fields and escapes, at the end of the stream, or
// on anything suspicious, which the careful path then reports.
func (it *FloatIterator) fastNext() bool {
	if it.grid.implicit {
		// No timestamp bits: what follows would read a value's bits
		// as one.
		return it.valuesNext()
	}
	acc, n, b := refillBits(it.r.acc, it.r.n, it.r.b)
	delta := it.delta
	if n == 0 {
		return false
	}
	gp := it.gp
	if it.grid.interval != 0 {
		// On the grid: 0 + offset; escapes take the careful path.
		w := uint(it.grid.width)
		if acc>>63 != 0 || 1+w > n {
			return false
		}
		acc <<= 1
		z := acc >> (64 - w)
		if w == 0 {
			z = 0
		}
		acc <<= w
		n -= 1 + w
		gp += it.grid.interval
		delta = uint64(gp + Unzigzag(z) - it.t)
	} else if acc>>63 != 0 {
		ones := uint(bits.LeadingZeros64(^acc))
		if ones >= 5 {
			return false
		}
		w := uint(dodWidth[ones])
		if ones+1+w > n {
			return false
		}
		acc <<= ones + 1
		delta += uint64(int64(acc) >> (64 - w))
		acc <<= w
		n -= ones + 1 + w
	} else {
		acc <<= 1
		n--
	}
	if delta == 0 || it.t+int64(delta) <= it.t {
		return false // the careful path reports it
	}
	if n < 32 {
		acc, n, b = refillBits(acc, n, b)
	}

	v := it.v
	switch it.enc {
	case EncGorilla:
		if n == 0 {
			return false
		}
		if acc>>63 == 0 {
			acc <<= 1
			n--
			break
		}
		lead, trail := it.lead, it.trail
		if n < 14 {
			return false
		}
		if acc>>62 == 0b11 {
			lead = uint8(acc>>57) & 31
			if acc&(1<<56) == 0 {
				trail = trailBase(trail) + uint8(acc>>54)&3
				acc <<= 10
				n -= 10
			} else {
				trail = uint8(acc>>50) & 63
				acc <<= 14
				n -= 14
			}
			if lead+trail > 63 {
				return false
			}
		} else {
			if lead == noWindow {
				return false
			}
			acc <<= 2
			n -= 2
		}
		sig := uint(64 - lead - trail)
		if sig > n {
			acc, n, b = refillBits(acc, n, b)
		}
		var x uint64
		if sig <= n {
			x = acc >> (64 - sig)
			acc <<= sig
			n -= sig
		} else {
			// Wider than the register holds after the header (a jump
			// between zero and a full-precision value): in two parts.
			if n < 32 {
				return false
			}
			hi := acc >> 32
			acc, n, b = refillBits(acc<<32, n-32, b)
			r := sig - 32
			if r > n {
				return false
			}
			x = hi<<r | acc>>(64-r)
			acc <<= r
			n -= r
		}
		v ^= x << trail
		it.lead, it.trail = lead, trail

	case EncDecimal:
		// Bucket prefix, or the residual escape 11110 + 7-bit length + r
		// before it, or a raw value: 11111 + 64 bits.
		var res uint64
		ones := uint(bits.LeadingZeros64(^acc))
		if ones >= 5 && n >= 5 {
			acc <<= 5
			n -= 5
			var raw uint64
			for range 2 { // two halves: the register holds 57 bits at least
				if n < 32 {
					acc, n, b = refillBits(acc, n, b)
					if n < 32 {
						return false
					}
				}
				raw = raw<<32 | acc>>32
				acc <<= 32
				n -= 32
			}
			v = raw
			it.dec.skip(raw) // the state a raw value leaves, as the careful path does
			break
		}
		if ones >= 4 {
			if n < 12 || acc&(1<<59) != 0 {
				return false
			}
			l := uint(acc>>52) & 127
			acc <<= 12
			n -= 12
			if l > 56 {
				return false
			}
			if l > n {
				acc, n, b = refillBits(acc, n, b)
				if l > n {
					return false
				}
			}
			if l > 0 {
				res = acc >> (64 - l)
				acc <<= l
				n -= l
			}
			if n < 4 {
				acc, n, b = refillBits(acc, n, b)
			}
			ones = uint(bits.LeadingZeros64(^acc))
			if ones >= 4 {
				return false
			}
		}
		w, k := uint(it.dec.p.w[ones]), uint(it.dec.p.k)
		if ones+1+w+k > n {
			acc, n, b = refillBits(acc, n, b)
			if ones+1+w+k > n {
				return false
			}
		}
		acc <<= ones + 1
		z := acc >> (64 - w)
		if w == 0 {
			z = 0
		}
		acc <<= w
		if k != 0 { // the residual field
			res += acc >> (64 - k)
			acc <<= k
		}
		n -= ones + 1 + w + k
		dd := Unzigzag(z)
		if it.dec.p.order == 2 {
			dd += it.dec.delta
		}
		d := it.dec.d + dd
		if d != it.dec.d || !it.dec.baseOK {
			if d <= -(1<<53) || d >= 1<<53 {
				return false
			}
			it.dec.base, it.dec.baseOK = decValue(d, it.dec.p.e), true
		}
		it.dec.d, it.dec.delta = d, dd
		v = it.dec.base + uint64(Unzigzag(res))

	case EncChimp:
		cs := &it.chimp
		if n < 14 {
			return false
		}
		switch acc >> 62 {
		case 0b00, 0b01:
			ref := int(acc>>59) & 7
			if ref >= cs.n {
				return false
			}
			v = cs.ring[ref]
			if acc>>62 == 0b00 {
				acc <<= 5
				n -= 5
				break
			}
			lead, center := uint(chimpLead[(acc>>56)&7]), uint(acc>>50)&63
			acc <<= 14
			n -= 14
			if center == 0 || lead+center > 64 {
				return false
			}
			if center > n {
				acc, n, b = refillBits(acc, n, b)
				if center > n {
					return false
				}
			}
			v ^= acc >> (64 - center) << (64 - lead - center)
			acc <<= center
			n -= center
			cs.lead = noWindow
		default:
			cls := cs.lead
			if acc>>62 == 0b11 {
				cls = uint8(acc>>59) & 7
				acc <<= 5
				n -= 5
			} else {
				if cls == noWindow {
					return false
				}
				acc <<= 2
				n -= 2
			}
			sig := uint(64 - chimpLead[cls])
			if sig > n {
				acc, n, b = refillBits(acc, n, b)
				if sig > n {
					return false
				}
			}
			v ^= acc >> (64 - sig)
			acc <<= sig
			n -= sig
			cs.lead = cls
		}
		cs.push(v)
	default:
		return false
	}
	it.r.b, it.r.acc, it.r.n = b, acc, n
	it.delta = delta
	it.t += int64(delta)
	it.gp = gp
	it.v = v
	return true
}

// valuesNext is fastNext for an implicit chunk: it decodes a value after
// the second (no timestamp bits: the time is the last plus one) straight
// from the bit register, which Next has topped up, and leaves counting the
// sample to Next. It reports false, changing nothing, for what the careful
// path takes: raw decimal values, values longer than the register holds,
// anything suspicious.
//
// An implicit chunk's delta stays 0, so the fast paths of Next, which
// take an unchanged interval's zero bit, never advance a sample of one.
func (it *FloatIterator) valuesNext() bool {
	if it.t+1 <= it.t {
		return false // the careful path reports it
	}
	if it.enc == EncDecimal && it.valuesBatch() {
		return true
	}
	var used uint
	var ok bool
	switch it.enc {
	case EncDecimal:
		used, ok = it.decFast(it.r.acc, it.r.n)
	case EncChimp:
		used, ok = it.chimpFast(it.r.acc, it.r.n)
	}
	if !ok {
		return false
	}
	it.r.acc <<= used
	it.r.n -= used
	it.t++
	return true
}

// repeatsAhead reads the run of repeats after the current sample, itself
// a repeat, at once: each is rep zero bits, step after the last (in a
// gorilla chunk two bits, a zero pair at a sample's start being nothing
// else; in a decimal one the repeat Next takes, its d and delta
// unchanged), as many as the register holds, the chunk has left and keep
// the times from overflowing. Next serves them. On a grid the
// grid point moves to the last, as Next would move it.
func (it *FloatIterator) repeatsAhead(rep uint, step int64) {
	k := min(uint(bits.LeadingZeros64(it.r.acc)), it.r.n) / rep
	k = min(k, uint(it.n-it.i))
	end := it.t + int64(k)*step
	if step > 1<<32 || end < it.t {
		return
	}
	it.r.acc <<= rep * k
	it.r.n -= rep * k
	it.reps, it.step = int(k), step
	it.i += int(k)
	if it.enc == EncDecimal {
		it.gp = end
	}
}

// valuesBatch decodes up to valuesAhead values of an implicit decimal chunk
// after the second in one loop, with the reader's and the decoder's state
// in locals, moves to the first of them and keeps the rest in vbuf, from
// which Next serves them; as valuesNext, it leaves counting the first to
// Next. It takes what decFast takes and stops before anything else, which
// Next then decodes on its careful path; it reports false, changing
// nothing, when it decodes no value.
func (it *FloatIterator) valuesBatch() bool {
	k := min(it.n-it.i, valuesAhead)
	if it.i < 2 || k <= 0 || it.t > math.MaxInt64-int64(k) {
		return false
	}
	acc, n, b := it.r.acc, it.r.n, it.r.b
	ds := &it.dec
	d, delta, base, baseOK := ds.d, ds.delta, ds.base, ds.baseOK
	e, order2, ws, fk := ds.p.e, ds.p.order == 2, &ds.p.w, uint(ds.p.k)
	got := 0
	for got < k {
		if n < 57 {
			acc, n, b = refillBits(acc, n, b)
		}
		// As decFast: a bucket code, after a residual or not. The parse
		// is written out here, in valuesSkip and in decFast: as a function
		// it is past the inlining budget, and the call cost timed chunks
		// 13-60 % more per sample.
		a, pos := acc, uint(0)
		var res uint64
		ones := uint(bits.LeadingZeros64(^a))
		if ones >= 4 {
			l := uint(a>>52) & 127
			if a&(1<<59) != 0 || l > 48 {
				break
			}
			a <<= 12
			res = a >> (64 - l)
			a <<= l
			pos = 12 + l
			if ones = uint(bits.LeadingZeros64(^a)); ones >= 4 {
				break
			}
		}
		w := uint(ws[ones])
		used := pos + ones + 1 + w + fk
		if used > n {
			break
		}
		if fk != 0 { // the residual field
			res += a << (ones + 1 + w) >> (64 - fk)
		}
		dd := Unzigzag(a << (ones + 1) >> (64 - w))
		if order2 {
			dd += delta
		}
		if nd := d + dd; nd != d || !baseOK {
			if nd <= -(1<<53) || nd >= 1<<53 {
				break
			}
			base, baseOK = decValue(nd, e), true
		}
		d += dd
		delta = dd
		it.vbuf[got] = base + uint64(Unzigzag(res))
		acc <<= used
		n -= used
		got++
	}
	if got == 0 {
		return false
	}
	it.r.acc, it.r.n, it.r.b = acc, n, b
	ds.d, ds.delta, ds.base, ds.baseOK = d, delta, base, baseOK
	it.v = it.vbuf[0]
	it.vk, it.vn, it.step = 1, uint8(got), 1
	it.t++
	return true
}

// valuesSkip moves an implicit decimal chunk's iterator to the sample just
// before time t, or as near it as it can: first over the values decoded
// ahead, then over codes summed into d without the division that rebuilds
// each value, which it does once, for the sample it stops at. It stops
// before anything decFast does not take, leaving it to Next, and never
// moves past t's sample or the chunk's last, so the state it leaves is the
// one Next would have left there.
func (it *FloatIterator) valuesSkip(t int64) {
	if it.i < 1 || it.i >= it.n || t <= it.t || it.reps > 0 {
		return // repeats read ahead (none in an implicit chunk) are Next's
	}
	// Samples to pass: those before t's, as many as the chunk has left
	// after the current one. t > it.t, so the difference fits a uint64.
	m := min(uint64(t)-uint64(it.t)-1, uint64(it.n-it.i))
	if m == 0 {
		return
	}
	if k := min(uint64(it.vn-it.vk), m); k > 0 {
		it.vk += uint8(k)
		it.v = it.vbuf[it.vk-1]
		it.t += int64(k)
		it.i += int(k)
		m -= k
		if it.vk < it.vn || m == 0 {
			return
		}
	}
	acc, n, b := it.r.acc, it.r.n, it.r.b
	ds := &it.dec
	d, delta := ds.d, ds.delta
	ws, order2, k := &ds.p.w, ds.p.order == 2, uint(ds.p.k)
	var res uint64
	var done uint64
	for done < m {
		if n < 57 {
			acc, n, b = refillBits(acc, n, b)
		}
		// As valuesBatch, keeping only the last value's residual.
		a, pos := acc, uint(0)
		var r uint64
		ones := uint(bits.LeadingZeros64(^a))
		if ones >= 4 {
			l := uint(a>>52) & 127
			if a&(1<<59) != 0 || l > 48 {
				break
			}
			a <<= 12
			r = a >> (64 - l)
			a <<= l
			pos = 12 + l
			if ones = uint(bits.LeadingZeros64(^a)); ones >= 4 {
				break
			}
		}
		w := uint(ws[ones])
		used := pos + ones + 1 + w + k
		if used > n {
			break
		}
		if k != 0 { // the residual field
			r += a << (ones + 1 + w) >> (64 - k)
		}
		dd := Unzigzag(a << (ones + 1) >> (64 - w))
		if order2 {
			dd += delta
		}
		nd := d + dd
		if nd <= -(1<<53) || nd >= 1<<53 {
			break
		}
		d, delta, res = nd, dd, r
		acc <<= used
		n -= used
		done++
	}
	if done == 0 {
		return
	}
	if d != ds.d || !ds.baseOK {
		ds.base, ds.baseOK = decValue(d, ds.p.e), true
	}
	ds.d, ds.delta = d, delta
	it.r.acc, it.r.n, it.r.b = acc, n, b
	it.v = ds.base + uint64(Unzigzag(res))
	it.t += int64(done)
	it.i += int(done)
}

// readGridTime reads a timestamp on the grid, or takes the next of an
// implicit chunk, and checks it advances.
func (it *FloatIterator) readGridTime() error {
	if it.grid.implicit {
		if it.t+1 <= it.t {
			return corruptf("float chunk: implicit timestamp overflows after %d", it.t)
		}
		it.t++
		return nil
	}
	t, gp, err := it.grid.readTime(&it.r, it.t, it.gp)
	if err != nil {
		return err
	}
	if t <= it.t {
		return corruptf("float chunk: timestamp %d after %d", t, it.t)
	}
	it.t, it.gp = t, gp
	return nil
}

// fail records err, marking the chunk corrupt at the current sample.
func (it *FloatIterator) fail(err error) {
	it.err = fmt.Errorf("float chunk (%s) sample %d of %d: %w", it.enc, it.i, it.n, err)
	it.i = it.n + 1
}

// finish checks that the stream ends with the last sample: at most seven
// zero padding bits may follow it.
func (it *FloatIterator) finish() {
	it.i = it.n + 1
	rem := it.r.Remaining()
	if rem >= 8 {
		it.err = corruptf("float chunk (%s): %d bits left after %d samples", it.enc, rem, it.n)
		return
	}
	if pad, _ := it.r.ReadBits(rem); pad != 0 {
		it.err = corruptf("float chunk (%s): non-zero padding after %d samples", it.enc, it.n)
	}
}

// readXOR decodes a gorilla value written by writeXOR.
func (it *FloatIterator) readXOR() error {
	p, avail := it.r.PeekBits(2)
	if avail < 1 {
		return errBitsTruncated
	}
	if p < 0b10 {
		it.r.Skip(1)
		return nil
	}
	if avail < 2 {
		return errBitsTruncated
	}
	it.r.Skip(2)
	if p == 0b11 {
		h, err := it.r.ReadBits(6)
		if err != nil {
			return err
		}
		lead, tw := uint8(h>>1), 2
		if h&1 != 0 {
			tw = 6
		}
		tr, err := it.r.ReadBits(tw)
		if err != nil {
			return err
		}
		if tw == 2 {
			tr += uint64(trailBase(it.trail))
		}
		if lead+uint8(tr) > 63 {
			return corruptf("xor window of %d leading and %d trailing zeros", lead, tr)
		}
		it.lead, it.trail = lead, uint8(tr)
	} else if it.lead == noWindow {
		if it.i > 0 {
			return corruptf("xor window reused before one was set")
		}
		x, err := it.r.ReadBits(64)
		it.v = x
		return err
	}
	x, err := it.r.ReadBits(int(64 - it.lead - it.trail))
	if err != nil {
		return err
	}
	it.v ^= x << it.trail
	if it.i == 0 {
		it.lead, it.trail = noWindow, noWindow
	}
	return nil
}

// SeekTo moves forward to the first sample with timestamp ≥ t and reports
// whether there is one. It never moves backwards: if the current sample is
// already at or past t it stays there.
func (it *FloatIterator) SeekTo(t int64) bool {
	if it.err != nil || it.i > it.n {
		return false
	}
	if it.i > 0 && it.t >= t {
		return true
	}
	if it.i == 0 && it.enc == EncDecimal {
		// The first sample, whose header says whether the chunk's
		// times are implicit.
		if !it.Next() {
			return false
		}
		if it.t >= t {
			return true
		}
	}
	if it.grid.implicit && it.enc == EncDecimal {
		// The time is the index: pass the samples before t's without
		// rebuilding their values, and let Next decode the one there.
		it.valuesSkip(t)
	}
	for it.Next() {
		if it.t >= t {
			return true
		}
	}
	return false
}

// At returns the current sample. It is valid after Next or SeekTo returned
// true.
func (it *FloatIterator) At() (int64, float64) { return it.t, math.Float64frombits(it.v) }

// Err returns the error that ended iteration, or nil at a clean end.
func (it *FloatIterator) Err() error { return it.err }
