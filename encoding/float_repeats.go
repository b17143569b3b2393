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
			c, lead, trail = xorCost(math.Float64bits(vs[i])^math.Float64bits(vs[i-1]), lead, trail)
			n += c
			if n >= limit {
				return n
			}
		}
	}
	return n
}

// chimpValueBitsSparse is chimpValueBits for vs with its repeats marked in
// m, without the plans: a repeat is a reference to the last value, five
// bits, and leaves the window class as it was, so only the other values
// are planned, each against the chimpRefs values before it, read from vs.
// It stops once the bits so far and five for each value still to plan
// reach limit, and returns that count then.
func chimpValueBitsSparse(vs []float64, m *repeatMasks, limit int) int {
	if len(vs) == 0 {
		return 0
	}
	n := 64 + 5*m.reps
	// The least the values not yet planned can take: five bits each.
	rest := 5 * (len(vs) - 1 - m.reps)
	if n+rest >= limit {
		return n + rest
	}
	lead := uint8(noWindow)
	var p chimpPlan
	for w := range m.rep {
		for fresh := m.changing(w, len(vs)); fresh != 0; fresh &= fresh - 1 {
			i := w<<6 | bits.TrailingZeros64(fresh)
			if i >= chimpRefs {
				p.nbits, p.flag, p.class = chimpBitsAt(vs, i, lead)
			} else {
				s := chimpState{n: i, lead: lead}
				for j := range i {
					s.ring[j] = math.Float64bits(vs[j])
				}
				s.plan(math.Float64bits(vs[i]), &p)
			}
			n += int(p.nbits)
			rest -= 5
			if n+rest >= limit {
				return n + rest
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

// chimpBitsAt is (*chimpState).plan's size, form and lead class for value
// i ≥ chimpRefs of vs, its references read from vs in place: the sparse
// sizing pass visits values far apart, where filling a ring for each
// would cost more than planning it.
func chimpBitsAt(vs []float64, i int, lead uint8) (int32, uint8, uint8) {
	vb := math.Float64bits(vs[i])
	w := vs[i-chimpRefs : i : i]
	// Value i−chimpRefs+k sits in ring slot (i+k)%chimpRefs; ties go to
	// the higher slot, as in plan.
	b := uint(i)
	best := max(
		bits.TrailingZeros64(vb^math.Float64bits(w[0]))<<3|int(b&7),
		bits.TrailingZeros64(vb^math.Float64bits(w[1]))<<3|int((b+1)&7),
		bits.TrailingZeros64(vb^math.Float64bits(w[2]))<<3|int((b+2)&7),
		bits.TrailingZeros64(vb^math.Float64bits(w[3]))<<3|int((b+3)&7),
		bits.TrailingZeros64(vb^math.Float64bits(w[4]))<<3|int((b+4)&7),
		bits.TrailingZeros64(vb^math.Float64bits(w[5]))<<3|int((b+5)&7),
		bits.TrailingZeros64(vb^math.Float64bits(w[6]))<<3|int((b+6)&7),
		bits.TrailingZeros64(vb^math.Float64bits(w[7]))<<3|int((b+7)&7))
	bestTrail := best >> 3
	if bestTrail == 64 {
		return 2 + 3, 0b00, 0
	}
	x := vb ^ math.Float64bits(w[chimpRefs-1])
	cls := chimpLeadClass[bits.LeadingZeros64(x)]
	n := 2 + 64 - int32(chimpLead[cls])
	flag := uint8(0b10)
	if cls != lead {
		flag, n = 0b11, n+3
	}
	if bestTrail > chimpTrailThreshold {
		// The slot back to the value: (i+k)%8 = slot gives k.
		k := (best - int(b)) & 7
		xr := vb ^ math.Float64bits(w[k])
		c := chimpLeadClass[bits.LeadingZeros64(xr)]
		center := 64 - int32(chimpLead[c]) - int32(bestTrail)
		if nc := 2 + 3 + 3 + 6 + center; nc < n {
			return nc, 0b01, c
		}
	}
	return n, flag, cls
}

// decCostSparse is decCost for vs with its repeats marked in m: a repeat
// leaves d as it was, so its code is 0 in order 1, and in order 2 the
// negated change before it for the first of a run and 0 for the rest. Only
// the values that change are visited, each with a glance at the next
// value's mark; the codes of the runs of repeats are counted from the
// masks at once, and so, from a run's length, are the residuals of the
// repeats of a value that has one. ok is false for a chunk with a value
// stored raw, whose repeats move d: decCost sizes it.
//
// The cache is filled as decCost fills it: every value but the repeats
// after the first of an exact value's run. gorilla is a floor under
// gorillaValueBitsSparse, gorillaFloor's over the values visited, which
// mostly settles gorilla without its pass.
func decCostSparse(vs []float64, e uint8, cache []decItem, m *repeatMasks) (_ decParams, cost, gorilla int, ok bool) {
	n := len(vs)
	if n == 0 || n > bestCached || len(cache) < n {
		return decParams{}, 0, 0, false
	}
	cache = cache[:n]
	var lens1, lens2 [65]int
	sum1, sum2 := 0, 0
	// The first value, and what each of its repeats costs beyond its
	// code: a residual's escape, length and bits again.
	kind, d0, r := decClassify(math.Float64bits(vs[0]), e)
	if kind == decRaw {
		return decParams{}, 0, 0, false
	}
	// gorillaFloor's count, in the same steps: a repeat leaves the
	// window as it was, so the XOR before a value's is that of the last
	// value that changed.
	gorilla = m.reps + firstValueBits(math.Float64bits(vs[0]))
	var lastX uint64
	cache[0] = decItem{d: d0, r: r, kind: uint8(kind)}
	fixed := 2 + 7 + bits.Len64(Zigzag(d0))
	extra := 0 // a repeat's cost beyond its code, of the last value visited
	// The residuals' lengths, of the values after the first, for the
	// residual field (decUlpWidth); a repeat has its value's, and so
	// does an exact value at 0, which decUlpWidth does not read.
	var resLens residualLens
	lastL := 0
	if kind == decResidual {
		lastL = bits.Len64(r)
		fixed += 7 + lastL
		extra = 5 + 7 + lastL
	}
	// The writer takes the second value from the cache whatever it is,
	// and the repeats of a value with a residual too.
	for k := 1; k < n && m.rep[k>>6]>>(k&63)&1 != 0 && (k == 1 || kind != decExact); k++ {
		cache[k] = cache[0]
	}
	// Every repeat's order-1 code is 0, and so is its order-2 code but
	// for the first of a run after a change, counted at the change.
	firsts := 0
	last := 0 // the last value visited
	var delta int64
	for w := range m.rep {
		for fresh := m.changing(w, n); fresh != 0; fresh &= fresh - 1 {
			i := w<<6 | bits.TrailingZeros64(fresh)
			vb := math.Float64bits(vs[i])
			// The run of repeats since the last value visited: each
			// costs that value's extra, and leaves delta 0.
			run := i - last - 1
			fixed += run * extra
			if extra != 0 { // a residual, repeated: not a chain of stores to resLens[0]
				resLens[lastL] += run
			}
			if run > 0 {
				delta = 0
			}
			kind, d, r := decExact, int64(vs[i]), uint64(0)
			if e != 0 || !(vs[i] > -(1<<53) && vs[i] < 1<<53) || math.Float64bits(float64(d)) != vb {
				kind, d, r = decClassify(vb, e)
			}
			if kind == decRaw {
				return decParams{}, 0, 0, false
			}
			x := vb ^ math.Float64bits(vs[i-1])
			gorilla += gorillaFloor(x, lastX)
			lastX = x
			it := decItem{d: d, r: r, kind: uint8(kind)}
			cache[i] = it
			extra, lastL = 0, 0
			if kind == decResidual {
				lastL = bits.Len64(r)
				extra = 5 + 7 + lastL
				fixed += extra
				resLens[lastL]++
			}
			dl := d - d0
			l1, l2 := countCode(&lens1, &lens2, dl, delta)
			sum1 += l1
			sum2 += l2
			d0, delta, last = d, dl, i
			// The first repeat after it, if the next value is one: code
			// −dl in order 2. (Its cache place is the writer's when
			// dl ≠ 0 or this value has a residual.)
			if j := i + 1; j < n && m.rep[j>>6]>>(j&63)&1 != 0 {
				l := bits.Len64(Zigzag(-dl))
				lens2[l]++
				sum2 += l
				firsts++
				cache[j] = it
				if kind != decExact {
					for k := j + 1; k < n && m.rep[k>>6]>>(k&63)&1 != 0; k++ {
						cache[k] = it
					}
				}
			}
		}
	}
	fixed += (n - 1 - last) * extra
	resLens[lastL] += n - 1 - last
	lens1[0] += m.reps
	lens2[0] += m.reps - firsts
	p, c := decFit(e, &lens1, &lens2, sum1, sum2, fixed)
	p.k, c = decUlpWidth(&resLens, n-1, c)
	return p, c, gorilla, true
}
