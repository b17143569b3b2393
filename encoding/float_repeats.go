package encoding

import (
	"math"
	"math/bits"
)

// Sparse series (a disk's write bytes, a rarely pressed key, a request
// count of zero most minutes) repeat their last value most of the time.
// Every pass that sizes an encoding would branch on each repeat and
// mispredict at each change between repeats and new values; one pass
// marks the repeats in a mask instead, and the sizing passes visit only
// the values the mask leaves, counting the repeats' fixed costs in one
// step.

// repeatProbes is how many values probeRepeats looks at.
const repeatProbes = 16

// probeRepeats counts the repeats among repeatProbes values spread over
// vs: the few steps that keep the mask's pass from the chunks, most, whose
// values change at every sample.
func probeRepeats(vs []float64) int {
	if len(vs) < 2 {
		return 0
	}
	n := 0
	for k := range repeatProbes {
		i := 1 + k*(len(vs)-1)/repeatProbes
		n += int(b2u(math.Float64bits(vs[i]) == math.Float64bits(vs[i-1])))
	}
	return n
}

// repeatMasks marks the values of a chunk of at most bestCached values
// that repeat, bit for bit, the value before them: value i is bit i%64
// of word i/64.
type repeatMasks struct {
	rep  [bestCached / 64]uint64 // repeats
	rep2 [bestCached / 64]uint64 // repeats whose value before is a repeat too
	reps int                     // bits set in rep
}

// fill marks the repeats of vs, of at most bestCached values, and
// returns how many there are.
func (m *repeatMasks) fill(vs []float64) int {
	*m = repeatMasks{}
	if len(vs) == 0 {
		return 0
	}
	vs = vs[:min(len(vs), bestCached)]
	prev := math.Float64bits(vs[0])
	for w := range m.rep {
		// Each word is built in a register: or-ing into memory value by
		// value would chain every value through a store and a load.
		lo := w << 6
		if lo >= len(vs) {
			break
		}
		seg := vs[lo:min(len(vs), lo+64)]
		var word uint64
		for _, v := range seg {
			// In at the top, shifted down to its place by the values
			// after it: a shift by a constant, where one by a count
			// would hold a register and take more steps.
			vb := math.Float64bits(v)
			word = word>>1 | uint64(b2u(vb == prev))<<63
			prev = vb
		}
		m.rep[w] = word >> (64 - len(seg))
	}
	m.rep[0] &^= 1 // value 0, compared with itself above
	carry := uint64(0)
	for w, r := range m.rep {
		m.reps += bits.OnesCount64(r)
		m.rep2[w] = r & (r<<1 | carry)
		carry = r >> 63
	}
	return m.reps
}

// changing returns the bits of word w of m's values, of n, that do not
// repeat, value 0 left out: the first value, which the sizing passes
// count before they visit the others.
func (m *repeatMasks) changing(w, n int) uint64 {
	fresh := ^m.rep[w] &^ uint64(b2u(w == 0))
	if rest := n - w<<6; rest < 64 {
		fresh &= lowBits(uint8(max(rest, 0)))
	}
	return fresh
}

// nextOutside returns the least index ≥ i whose bit in mask is clear,
// or an index past every marked one.
func nextOutside(mask *[bestCached / 64]uint64, i int) int {
	for w := i >> 6; w < len(mask); w++ {
		x := ^mask[w]
		if w == i>>6 {
			x &= ^uint64(0) << (i & 63)
		}
		if x != 0 {
			return w<<6 | bits.TrailingZeros64(x)
		}
	}
	return len(mask) << 6
}

// gorillaValueBitsSparse is gorillaValueBits for vs with its repeats
// marked in m: a repeat is one zero bit and leaves the window as it was,
// so only the other values are visited. The repeats are counted first, so
// the count reaches limit no later than gorillaValueBits' does.
func gorillaValueBitsSparse(vs []float64, m *repeatMasks, limit int) int {
	if len(vs) == 0 {
		return 0
	}
	n := m.reps + firstValueBits(math.Float64bits(vs[0]))
	lead, trail := uint8(noWindow), uint8(noWindow)
	for w := range m.rep {
		for fresh := m.changing(w, len(vs)); fresh != 0; fresh &= fresh - 1 {
			i := w<<6 | bits.TrailingZeros64(fresh)
			var c int
			c, _, lead, trail = xorPlan(math.Float64bits(vs[i])^math.Float64bits(vs[i-1]), lead, trail)
			n += c
			if n >= limit {
				return n
			}
		}
	}
	return n
}

// chimpFloorSparse is chimpFloor for vs with its repeats marked in m: a
// repeat is a reference to the last value, and only the other values are
// compared with the ones before them.
func chimpFloorSparse(vs []float64, m *repeatMasks) int {
	if len(vs) <= chimpRefs {
		return chimpFloor(vs)
	}
	n := chimpFloor(vs[:chimpRefs])
	eq := 0
	for w, r := range m.rep {
		valid := ^uint64(0)
		if rest := len(vs) - w<<6; rest < 64 {
			valid = lowBits(uint8(max(rest, 0)))
		}
		if w == 0 {
			valid &^= lowBits(chimpRefs) // the first chimpRefs are counted above
		}
		eq += bits.OnesCount64(r & valid)
		for fresh := ^r & valid; fresh != 0; fresh &= fresh - 1 {
			i := w<<6 | bits.TrailingZeros64(fresh)
			vb := math.Float64bits(vs[i])
			p := vs[i-chimpRefs : i : i]
			e := b2u(vb == math.Float64bits(p[0])) | b2u(vb == math.Float64bits(p[1])) |
				b2u(vb == math.Float64bits(p[2])) | b2u(vb == math.Float64bits(p[3])) |
				b2u(vb == math.Float64bits(p[4])) | b2u(vb == math.Float64bits(p[5])) |
				b2u(vb == math.Float64bits(p[6])) | b2u(vb == math.Float64bits(p[7]))
			eq += int(e)
		}
	}
	return n + 15*(len(vs)-chimpRefs) - 10*eq
}

// chimpValueBitsSparse is chimpValueBits for vs with its repeats marked in
// m, without the plans: a repeat is a reference to the last value, five
// bits, and leaves the window class as it was, so only the other values
// are planned, each against the chimpRefs values before it, read from vs.
func chimpValueBitsSparse(vs []float64, m *repeatMasks, limit, floor int) int {
	if len(vs) == 0 {
		return 0
	}
	n := 64 + 5*m.reps
	floor -= n // the first value's share of it and the repeats'
	if n+floor >= limit {
		return n + floor
	}
	lead := uint8(noWindow)
	var p chimpPlan
	for w := range m.rep {
		for fresh := m.changing(w, len(vs)); fresh != 0; fresh &= fresh - 1 {
			i := w<<6 | bits.TrailingZeros64(fresh)
			s := chimpState{n: i, lead: lead}
			for j := max(0, i-chimpRefs); j < i; j++ {
				s.ring[j&(chimpRefs-1)] = math.Float64bits(vs[j])
			}
			s.plan(math.Float64bits(vs[i]), &p)
			n += int(p.nbits)
			// floor less this value's share of it, as in chimpValueBits.
			if p.flag == 0b00 {
				floor -= 5
			} else {
				floor -= 15
			}
			if rest := n + floor; rest >= limit {
				return rest
			}
			switch p.flag {
			case 0b01:
				lead = noWindow
			case 0b11:
				lead = p.class
			}
		}
	}
	return n
}
