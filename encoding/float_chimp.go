package encoding

import "math/bits"

// The chimp encoding (EncChimp) codes each value's XOR, as Gorilla does,
// but the way Chimp128 (Liakos et al., VLDB 2022) refines it: leading zeros
// are rounded down to one of eight classes (3 bits instead of 5), an XOR
// with many trailing zeros is taken against whichever of the last
// chimpRefs values shares the most low bits with it, and a run of equal
// leading-zero classes costs no header at all.
//
//	00 + ref 3 bits                                  equal to a recent value
//	01 + ref 3 bits + lead class 3 + centre 6 + bits XOR with a recent value, trailing zeros > 9
//	10 + (64 - lead) bits                            XOR with the last value, lead class unchanged
//	11 + lead class 3 + (64 - lead) bits             XOR with the last value, new lead class
//
// The first value is stored as 64 raw bits.

// chimpRefs is how many earlier values an XOR may refer to, a power of
// two so that a slot is a mask away.
const chimpRefs = 8

// chimpTrailThreshold is the trailing-zero count above which the centre
// form pays for its longer header.
const chimpTrailThreshold = 6 + 3

// chimpLeadClass maps a leading-zero count to its class; chimpLead maps a
// class back to the count it stands for.
var (
	chimpLead      = [8]uint8{0, 8, 12, 16, 18, 20, 22, 24}
	chimpLeadClass = func() (c [65]uint8) {
		for l := range c {
			for k := 7; k >= 0; k-- {
				if uint8(l) >= chimpLead[k] {
					c[l] = uint8(k)
					break
				}
			}
		}
		return c
	}()
)

// chimpState is the encoder's and decoder's memory of recent values.
type chimpState struct {
	ring [chimpRefs]uint64 // ring[i%chimpRefs] is value i
	n    int               // values seen
	lead uint8             // lead class of the last "10"/"11" XOR; 0xff none
}

func (s *chimpState) reset() { *s = chimpState{lead: noWindow} }

func (s *chimpState) push(vb uint64) {
	s.ring[s.n&(chimpRefs-1)] = vb
	s.n++
}

// chimpPlan is how one value will be written.
type chimpPlan struct {
	xor    uint64
	nbits  int32 // total bits
	flag   uint8
	ref    uint8
	class  uint8
	trail  uint8
	center uint8
}

// plan chooses the form for vb given the state, without changing it, and
// stores it in *p (filled in place: returning the struct by value costs
// more than choosing).
func (s *chimpState) plan(vb uint64, p *chimpPlan) {
	if s.n == 0 {
		*p = chimpPlan{flag: 0xff, nbits: 64}
		return
	}
	last := s.ring[(s.n-1)&(chimpRefs-1)]
	// The reference with the most trailing zeros in common: each of the
	// eight is scored trailing zeros × 8 + slot and the largest score
	// wins, every one scored rather than searched. (The compiler turns
	// the max into compares and jumps; a version without them, by masks,
	// measured no faster.)
	best := 0
	if s.n >= chimpRefs {
		r := &s.ring
		best = max(
			bits.TrailingZeros64(vb^r[0])<<3|0, bits.TrailingZeros64(vb^r[1])<<3|1,
			bits.TrailingZeros64(vb^r[2])<<3|2, bits.TrailingZeros64(vb^r[3])<<3|3,
			bits.TrailingZeros64(vb^r[4])<<3|4, bits.TrailingZeros64(vb^r[5])<<3|5,
			bits.TrailingZeros64(vb^r[6])<<3|6, bits.TrailingZeros64(vb^r[7])<<3|7)
	} else {
		for k := range s.n {
			best = max(best, bits.TrailingZeros64(vb^s.ring[k])<<3|k)
		}
	}
	bestRef, bestTrail := best&7, best>>3
	p.ref = uint8(bestRef)
	if bestTrail == 64 {
		p.flag, p.nbits = 0b00, 2+3
		return
	}
	x := vb ^ last
	cls := chimpLeadClass[bits.LeadingZeros64(x)]
	n := 2 + 64 - int32(chimpLead[cls])
	flag := uint8(0b10)
	if cls != s.lead {
		flag, n = 0b11, n+3
	}
	if bestTrail > chimpTrailThreshold {
		xr := vb ^ s.ring[bestRef]
		c := chimpLeadClass[bits.LeadingZeros64(xr)]
		center := 64 - chimpLead[c] - uint8(bestTrail)
		if nc := int32(2 + 3 + 3 + 6 + int(center)); nc < n {
			p.flag, p.class, p.trail, p.xor, p.center, p.nbits = 0b01, c, uint8(bestTrail), xr, center, nc
			return
		}
	}
	p.flag, p.class, p.xor, p.nbits = flag, cls, x, n
}

// planLast is plan for a value that shares its low byte with none of the
// values it may refer to: it equals none of them and has fewer than nine
// trailing zeros in common with each, so it takes an XOR form with the
// last value, whatever the references, and their search is skipped (most
// full-precision values). p.ref is left as it was; the XOR forms do not
// write it.
func (s *chimpState) planLast(vb uint64, p *chimpPlan) {
	x := vb ^ s.ring[(s.n-1)&(chimpRefs-1)]
	cls := chimpLeadClass[bits.LeadingZeros64(x)]
	n := 2 + 64 - int32(chimpLead[cls])
	flag := uint8(0b10)
	if cls != s.lead {
		flag, n = 0b11, n+3
	}
	p.flag, p.class, p.xor, p.nbits = flag, cls, x, n
}

// write writes vb by plan p, updates the state, and returns the value a
// reader recovers from the bits written (the writer's own check).
func (s *chimpState) write(w *BitWriter, vb uint64, p chimpPlan) uint64 {
	got := ^vb // what a reader would reject or get wrong
	switch p.flag {
	case 0xff:
		w.WriteBits(vb, 64)
		if s.n == 0 {
			got = vb
		}
	case 0b00:
		w.writeSmall(uint64(p.ref), 5)
		if int(p.ref) < min(s.n, chimpRefs) {
			got = s.ring[p.ref]
		}
	case 0b01:
		lead := chimpLead[p.class&7]
		w.writeSmall(0b01<<12|uint64(p.ref)<<9|uint64(p.class)<<6|uint64(p.center), 14)
		f := p.xor >> p.trail & lowBits(p.center)
		w.WriteBits(f, int(p.center))
		if int(p.ref) < min(s.n, chimpRefs) && p.class < 8 && p.center != 0 && p.center < 64 && lead+p.center <= 64 {
			got = s.ring[p.ref] ^ f<<(64-lead-p.center)
		}
		s.lead = noWindow
	case 0b10, 0b11:
		if p.flag == 0b10 {
			w.writeSmall(0b10, 2)
		} else {
			w.writeSmall(0b11<<3|uint64(p.class), 5)
			s.lead = p.class
		}
		// A reader takes the class from its state: the one just written
		// or, for 10, the last one.
		if s.n > 0 && s.lead < 8 {
			sig := 64 - chimpLead[s.lead]
			f := p.xor & lowBits(sig)
			w.WriteBits(f, int(sig))
			got = s.ring[(s.n-1)&(chimpRefs-1)] ^ f
		}
	}
	s.push(vb)
	return got
}

// read decodes the next value.
func (s *chimpState) read(r *BitReader) (uint64, error) {
	var vb uint64
	if s.n == 0 {
		x, err := r.ReadBits(64)
		if err != nil {
			return 0, err
		}
		s.push(x)
		return x, nil
	}
	f, err := r.ReadBits(2)
	if err != nil {
		return 0, err
	}
	switch f {
	case 0b00, 0b01:
		ref, err := r.ReadBits(3)
		if err != nil {
			return 0, err
		}
		if int(ref) >= s.n {
			return 0, corruptf("chimp reference to value %d of %d", ref, s.n)
		}
		vb = s.ring[ref]
		if f == 0b01 {
			h, err := r.ReadBits(9)
			if err != nil {
				return 0, err
			}
			lead, center := chimpLead[h>>6], uint8(h&63)
			if center == 0 || lead+center > 64 {
				return 0, corruptf("chimp centre of %d bits after %d leading zeros", center, lead)
			}
			x, err := r.ReadBits(int(center))
			if err != nil {
				return 0, err
			}
			vb ^= x << (64 - lead - center)
			s.lead = noWindow
		}
	default:
		if f == 0b11 {
			c, err := r.ReadBits(3)
			if err != nil {
				return 0, err
			}
			s.lead = uint8(c)
		} else if s.lead == noWindow {
			return 0, corruptf("chimp lead class reused before one was set")
		}
		x, err := r.ReadBits(64 - int(chimpLead[s.lead]))
		if err != nil {
			return 0, err
		}
		vb = s.ring[(s.n-1)&(chimpRefs-1)] ^ x
	}
	s.push(vb)
	return vb, nil
}
