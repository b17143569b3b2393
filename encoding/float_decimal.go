package encoding

import (
	"math"
	"math/bits"
)

// The decimal encoding (EncDecimal) stores values as integers d scaled by
// 10^e, one e per chunk, as M3TSZ, VictoriaMetrics and ALP do: 0.134 is
// d = 134 at e = 3, a counter is itself at e = 0. A value decodes as
// float64(d) / 10^e, which is the correctly rounded decimal. Values that
// are one or two ULPs off a short decimal (51.846000000000004, the result
// of arithmetic) keep d and add their bit-pattern difference from it; the
// rest (NaN, ±Inf, -0, huge values) are stored raw. d is coded as a delta
// (gauges) or delta of deltas (counters), chosen per chunk, in four bucket
// widths also chosen per chunk to fit its data.

// maxDecimalScale is the largest e; 10^e and all d < 2^53 are exact.
const maxDecimalScale = 15

// pow10 holds the exact powers of ten up to 10^maxDecimalScale.
var pow10 = [maxDecimalScale + 1]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// decParams are a decimal chunk's parameters, written after the first
// timestamp.
type decParams struct {
	e     uint8    // scale exponent
	order uint8    // 1: d deltas; 2: deltas of deltas
	w     [4]uint8 // bucket widths of the zigzagged (delta of) delta
	// k is the width of the residual field after every code, 0 for none
	// (see decUlpWidth): where many values are an ulp or two off a short
	// decimal, each carries its residual there, without the escape.
	k uint8
}

// maxUlpWidth is the widest residual field a chunk may have.
const maxUlpWidth = 4

// maxResidualBits is the longest residual a value keeps; one further off
// its decimal is stored raw.
const maxResidualBits = 40

// residualLens counts the residuals of a chunk by length.
type residualLens [maxResidualBits + 1]int

// decScale returns round(v·10^e) when that is an integer below 2^53 in
// magnitude. Encoder and decoder both call it on exact values, so they
// agree on the result.
func decScale(v float64, e uint8) (int64, bool) {
	x := v * pow10[e]
	if !(x > -(1<<53) && x < 1<<53) {
		return 0, false
	}
	return int64(roundHalfAway(x)), true
}

// roundHalfAway is math.Round, which compiles to a branch on the
// exponent (a zero and a large value, alternating in a sparse series,
// mispredict it), by way of math.RoundToEven, one instruction: only a
// tie, exactly half-way, is rounded the other way. (A NaN may come back
// quieted; its callers rule NaN out first.)
func roundHalfAway(x float64) float64 {
	r := math.RoundToEven(x)
	if math.Abs(x-r) == 0.5 {
		r = x + math.Copysign(0.5, x)
	}
	return r
}

// decValue is the float a scaled integer stands for.
// Integers (e = 0, counters) skip the division by one, which costs as
// much as any other. Zero takes the division too: a sparse series
// alternates zeros and other values, and a branch on d would mispredict
// at each change, costing more than the division, which no later step
// waits on.
func decValue(d int64, e uint8) uint64 {
	if e == 0 {
		return math.Float64bits(float64(d))
	}
	return math.Float64bits(float64(d) / pow10[e])
}

// decItem is one value's classification, kept between sizing and writing.
type decItem struct {
	d    int64
	r    uint64
	kind uint8
}

// decState is the decoder's (and encoder's) running state.
type decState struct {
	p      decParams
	d      int64  // last scaled value
	delta  int64  // last difference of d
	base   uint64 // decValue(d), when baseOK: repeated d skip the division
	baseOK bool
}

// Value kinds of a decimal sample.
const (
	decExact    = iota // v = d / 10^e
	decResidual        // v = bits(d / 10^e) + r
	decRaw             // v stored as 64 bits
)

// decClassify decides how v is stored at scale e: its d and the residual r.
func decClassify(vb uint64, e uint8) (kind int, d int64, r uint64) {
	v := math.Float64frombits(vb)
	if e == 0 && v > -(1<<53) && v < 1<<53 {
		// An integer (a counter) is its own d, without the rounding
		// (which, for any v here, int64 truncation then matches).
		if d = int64(v); math.Float64bits(float64(d)) == vb {
			return decExact, d, 0
		}
	}
	d, ok := decScale(v, e)
	if !ok || math.IsNaN(v) {
		return decRaw, 0, 0
	}
	base := decValue(d, e)
	if base == vb {
		return decExact, d, 0
	}
	r = Zigzag(int64(vb - base))
	if bits.Len64(r) > maxResidualBits {
		return decRaw, 0, 0
	}
	return decResidual, d, r
}

// next returns the value to code for d under the chunk's order, and the
// state after it.
func (s *decState) next(d int64) (code int64) {
	delta := d - s.d
	code = delta
	if s.p.order == 2 {
		code = delta - s.delta
	}
	s.d, s.delta = d, delta
	return code
}

// apply advances the state by a zigzagged code from a bucket and
// leaves the value's bits in base. It reports false, changing nothing, if
// the code takes d out of range.
func (s *decState) apply(z uint64) bool {
	if z|uint64(s.delta) == 0 && s.baseOK {
		return true // a repeat of a repeat, inlined into the readers' fast paths
	}
	return s.applyCode(z)
}

// applyCode is apply for a code that may change d.
func (s *decState) applyCode(z uint64) bool {
	dd := Unzigzag(z)
	if s.p.order == 2 {
		dd += s.delta
	}
	d := s.d + dd
	if d != s.d || !s.baseOK {
		if d <= -(1<<53) || d >= 1<<53 {
			return false
		}
		s.base, s.baseOK = decValue(d, s.p.e), true
	}
	s.d, s.delta = d, dd
	return true
}

// skip updates the state for a raw value that has no code.
func (s *decState) skip(vb uint64) {
	if d, ok := decScale(math.Float64frombits(vb), s.p.e); ok && !math.IsNaN(math.Float64frombits(vb)) {
		s.delta, s.d, s.baseOK = d-s.d, d, false
	}
}

// b2u is 1 for true and 0 for false.
func b2u(b bool) uint {
	var u uint
	if b {
		u = 1
	}
	return u
}

// readBucket reads a bucket code written by writeDecimalValue; esc
// reports the 1111 escape instead.
func readBucket(r *BitReader, ws *[4]uint8) (z uint64, esc bool, err error) {
	p, avail := r.PeekBits(4)
	ones := bits.LeadingZeros64(^(p << 60))
	if ones >= 4 {
		if avail < 4 {
			return 0, false, errBitsTruncated
		}
		r.Skip(4)
		return 0, true, nil
	}
	if ones+1 > avail {
		return 0, false, errBitsTruncated
	}
	r.Skip(ones + 1)
	z, err = r.ReadBits(int(ws[ones]))
	return z, false, err
}

// writeWide writes a zigzagged integer with a 7-bit length prefix.
func writeWide(w *BitWriter, z uint64) {
	l := bits.Len64(z)
	w.writeSmall(uint64(l), 7)
	w.WriteBits(z, l)
}

func readWide(r *BitReader) (uint64, error) {
	l, err := r.ReadBits(7)
	if err != nil {
		return 0, err
	}
	if l > 64 {
		return 0, corruptf("wide integer of %d bits", l)
	}
	return r.ReadBits(int(l))
}

// valid reports whether a reader accepts p (see read).
func (p *decParams) valid() bool {
	ok := p.e <= maxDecimalScale && (p.order == 1 || p.order == 2) && p.k <= maxUlpWidth
	for i, wd := range p.w {
		ok = ok && wd <= 64 && (i == 0 || wd >= p.w[i-1])
	}
	return ok
}

// writeParams writes the chunk parameters: e 4 bits, order 1 bit, four
// widths 7 bits each.
func (p *decParams) write(w *BitWriter) {
	w.writeSmall(uint64(p.e)<<1|uint64(p.order-1), 5)
	for _, wd := range p.w {
		w.writeSmall(uint64(wd), 7)
	}
}

func (p *decParams) read(r *BitReader) error {
	x, err := r.ReadBits(5 + 4*7) // in one read: a chunk's first value waits on them
	if err != nil {
		return err
	}
	p.e, p.order = uint8(x>>29), uint8(x>>28&1)+1
	if p.e > maxDecimalScale {
		return corruptf("decimal scale %d", p.e)
	}
	prev := uint8(0)
	for i := range p.w {
		wd := uint8(x>>(21-7*i)) & 127
		if wd > 64 || wd < prev {
			return corruptf("decimal bucket widths out of order")
		}
		p.w[i], prev = wd, wd
	}
	return nil
}

// writeDecimalValue writes sample i's value. c, when not nil, is the
// value's classification from sizing. It reports whether a reader recovers
// vb: from the fields as written it rebuilds d and r the way read does and
// compares decValue(d) + r with vb (dividing only when d changes, as the
// reader's fast path does).
func writeDecimalValue(w *BitWriter, s *decState, i int, vb uint64, c *decItem) bool {
	var kind int
	var d int64
	var r uint64
	if c != nil {
		kind, d, r = int(c.kind), c.d, c.r
	} else {
		kind, d, r = decClassify(vb, s.p.e)
	}
	if i == 0 {
		s.p.write(w)
		if s.p.k > 0 {
			// Kind 3, which no value has, announces the residual
			// field's width, before the first value's own kind.
			w.writeSmall(3<<2|uint64(s.p.k-1), 4)
		}
		w.writeSmall(uint64(kind), 2)
		switch kind {
		case decRaw:
			w.WriteBits(vb, 64)
			s.skip(vb)
			return true
		case decResidual:
			writeWide(w, r)
		}
		writeWide(w, Zigzag(d))
		s.d = d
		if d <= -(1<<53) || d >= 1<<53 {
			return false
		}
		s.base, s.baseOK = decValue(d, s.p.e), true
		return s.base+uint64(Unzigzag(r)) == vb
	}
	if kind == decRaw {
		w.writeSmall(0b11111, 5)
		w.WriteBits(vb, 64)
		s.skip(vb)
		return true
	}
	if s.baseOK && s.base == vb && d == s.d && s.delta == 0 && s.p.w[0] < 32 {
		// A repeated value: code 0 in the first bucket, in either order,
		// leaves a reader's d and value as they are, and that value is vb;
		// its residual field, if any, is zero.
		w.writeSmall(0, 1+uint(s.p.w[0])+uint(s.p.k))
		return true
	}
	prevD, prevDelta := s.d, s.delta
	z := Zigzag(s.next(d))
	kf := s.residual(kind, r, w)
	// z goes in the smallest of the chunk's bucket widths that holds it,
	// after the prefix 0, 10, 110 or 1110 (1111 is the escape to residual
	// and raw values). The widths ascend, so the bucket is the number of
	// widths shorter than z: counted without branches, which a per-value
	// bucket defeats. f is the code a reader recovers.
	ws := &s.p.w
	l := uint8(bits.Len64(z))
	b := b2u(l > ws[0]) + b2u(l > ws[1]) + b2u(l > ws[2]) + b2u(l > ws[3])
	if b > 3 {
		return false // no width holds z
	}
	wd := ws[b]
	f := z & lowBits(wd)
	prefix := uint64(1)<<(b+1) - 2
	if n := b + 1 + uint(wd); n <= 64 {
		w.writeSmall(prefix<<wd|f, n)
	} else {
		w.writeSmall(prefix, b+1)
		w.writeSmall(f, uint(wd))
	}
	w.writeSmall(kf, uint(s.p.k))
	dd := Unzigzag(f)
	if s.p.order == 2 {
		dd += prevDelta
	}
	got := prevD + dd
	if got <= -(1<<53) || got >= 1<<53 {
		return false
	}
	if got != prevD || !s.baseOK {
		s.base, s.baseOK = decValue(got, s.p.e), true
	}
	s.d = got // what a reader holds, whatever the classification said
	return s.base+uint64(Unzigzag(r)) == vb
}

// writeDecimalItem writes value i ≥ 1 from its classification c (see
// decItem) and reports whether a reader recovers vb: from the fields as
// written it rebuilds d the way read does and compares decValue(d) + r
// with vb, dividing only when d changes, as the reader's fast path does.
// It is writeDecimalValue for a value after the first whose classification
// is at hand, without the repeat shortcut (a repeat's code is 0 in the
// first bucket either way).
func writeDecimalItem(w *BitWriter, s *decState, vb uint64, c *decItem) bool {
	if c.kind == decRaw {
		w.writeSmall(0b11111, 5)
		w.WriteBits(vb, 64)
		s.skip(vb)
		return true
	}
	prevD, prevDelta := s.d, s.delta
	z := Zigzag(s.next(c.d))
	r := c.r
	if c.kind != decResidual {
		r = 0
	}
	kf := s.residual(int(c.kind), r, w)
	// As in writeDecimalValue: the bucket is the number of widths
	// shorter than z, counted without branches.
	ws := &s.p.w
	l := uint8(bits.Len64(z))
	b := b2u(l > ws[0]) + b2u(l > ws[1]) + b2u(l > ws[2]) + b2u(l > ws[3])
	if b > 3 {
		return false // no width holds z
	}
	wd := ws[b]
	f := z & lowBits(wd)
	prefix := uint64(1)<<(b+1) - 2
	if n := b + 1 + uint(wd); n <= 64 {
		w.writeSmall(prefix<<wd|f, n)
	} else {
		w.writeSmall(prefix, b+1)
		w.writeSmall(f, uint(wd))
	}
	w.writeSmall(kf, uint(s.p.k))
	dd := Unzigzag(f)
	if s.p.order == 2 {
		dd += prevDelta
	}
	got := prevD + dd
	if got != prevD || !s.baseOK {
		if got <= -(1<<53) || got >= 1<<53 {
			return false
		}
		s.base, s.baseOK = decValue(got, s.p.e), true
	}
	s.d, s.delta = got, dd // what a reader holds
	return s.base+uint64(Unzigzag(r)) == vb
}

// residual writes what goes before the code of a value of kind with
// residual r after the first: for a residual too wide for the chunk's
// residual field, the escape 11110 and r. It returns what goes in the
// field after the code: r when it fits, else 0.
func (s *decState) residual(kind int, r uint64, w *BitWriter) uint64 {
	if kind != decResidual {
		return 0
	}
	if bits.Len64(r) <= int(s.p.k) {
		return r
	}
	w.writeSmall(0b11110, 5)
	writeWide(w, r)
	return 0
}

// read decodes sample i's value.
func (s *decState) read(r *BitReader, i int) (uint64, error) {
	if i == 0 {
		if err := s.p.read(r); err != nil {
			return 0, err
		}
		kind, err := r.ReadBits(2)
		if err != nil {
			return 0, err
		}
		if kind == 3 { // the residual field's width, then the kind
			x, err := r.ReadBits(4)
			if err != nil {
				return 0, err
			}
			s.p.k, kind = uint8(x>>2)+1, x&3
		}
		var res uint64
		switch kind {
		case decRaw:
			vb, err := r.ReadBits(64)
			s.skip(vb)
			return vb, err
		case decResidual:
			if res, err = readWide(r); err != nil {
				return 0, err
			}
		case decExact:
		default:
			return 0, corruptf("decimal value kind %d", kind)
		}
		z, err := readWide(r)
		if err != nil {
			return 0, err
		}
		s.d, s.baseOK = Unzigzag(z), false
		if s.d <= -(1<<53) || s.d >= 1<<53 {
			return 0, corruptf("decimal value %d out of range", s.d)
		}
		return decValue(s.d, s.p.e) + uint64(Unzigzag(res)), nil
	}
	z, esc, err := readBucket(r, &s.p.w)
	if err != nil {
		return 0, err
	}
	var res uint64
	if esc {
		raw, err := r.ReadBit()
		if err != nil {
			return 0, err
		}
		if raw {
			vb, err := r.ReadBits(64)
			s.skip(vb)
			return vb, err
		}
		if res, err = readWide(r); err != nil {
			return 0, err
		}
		if z, esc, err = readBucket(r, &s.p.w); err != nil {
			return 0, err
		}
		if esc {
			return 0, corruptf("decimal escape after escape")
		}
	}
	kf, err := r.ReadBits(int(s.p.k))
	if err != nil {
		return 0, err
	}
	code := Unzigzag(z)
	delta := code
	if s.p.order == 2 {
		delta += s.delta
	}
	d := s.d + delta
	if d <= -(1<<53) || d >= 1<<53 {
		return 0, corruptf("decimal value %d out of range", d)
	}
	s.d, s.delta, s.baseOK = d, delta, false
	// One of the escape's residual and the field's is 0 as written; any
	// bits read are summed alike by every reader.
	return decValue(d, s.p.e) + uint64(Unzigzag(res+kf)), nil
}

// decChooseScale picks the chunk's scale from at most 32 values spread
// over it; ok is false when none has an exact scale, or more than half
// have none and are not noise near a short decimal. Zeros, exact at every
// scale, are left out. Two scales are in the running: the smallest at
// which nine in ten of the other values that have an exact scale at all
// are exact, and the smallest at which half are.
// They differ where arithmetic left some values an ulp or two off short
// decimals (51.846000000000004 among 44.508 and 41.244): the first then
// scales every value up to fifteen digits, the second stores the few off
// ones as a small residual. Whichever costs fewer bits on the sampled
// values is taken.
//
// clean reports whether every sampled value is exact at the scale
// chosen: the chunk's values then likely all are (see decCostExact).
func decChooseScale(vs []float64) (e uint8, ok, clean bool) {
	var hist [maxDecimalScale + 1]int
	// The sampled values and their smallest exact scales (none: above
	// maxDecimalScale), for the estimates below.
	var sample [64]float64 // len(vs)/max(1, len(vs)/32) < 64
	var scales [64]uint8
	ns, nz := 0, 0 // sampled, of them not zero
	all, none := 0, 0
	var last uint64
	lastE, lastOK := uint8(0), false
	e, ok = lastE, lastOK
	stride := max(1, len(vs)/32)
	sampled := (len(vs) + stride - 1) / stride
	// +0 is exact at every scale: it votes for none, costs the same bits
	// at each, and leaves the scale the next value is tried at first to
	// the values around it (a sparse series' values between its zeros
	// would otherwise each take a search). The other values are gathered
	// first, without a branch: in a sparse series a branch on zero would
	// mispredict at every change.
	for i := 0; i < len(vs); i += stride {
		sample[nz] = vs[i]
		nz += int(b2u(math.Float64bits(vs[i]) != 0))
		ns++
	}
	zeros := ns - nz
	for k, v := range sample[:nz] {
		vb := math.Float64bits(v)
		if vb != last {
			last = vb
			if e, ok = decScaleAfter(v, lastE, lastOK); ok {
				lastE, lastOK = e, true
			}
		}
		scales[k] = maxDecimalScale + 1
		if ok {
			hist[e]++
			all++
			scales[k] = e
		} else if e != decNoise {
			if none++; none*2 > sampled {
				return 0, false, false // the test below fails whatever the rest
			}
		}
	}
	// Most values with no scale (full precision, as a ratio's or an
	// average's) would each be stored with a residual or raw, at least 13
	// bits more than its change: an XOR form wins there, and sizing
	// decimal, a division a value, is not worth it.
	if none*2 > ns || all+zeros == 0 {
		return 0, false, false
	}
	if all == 0 {
		return 0, true, none == 0
	}
	needHalf, need := (all+1)/2, (all*9+9)/10
	cum := 0
	half, nine := uint8(maxDecimalScale), uint8(maxDecimalScale)
	for e := range hist {
		if cum < needHalf && cum+hist[e] >= needHalf {
			half = uint8(e)
		}
		cum += hist[e]
		if cum >= need {
			nine = uint8(e)
			break
		}
	}
	top := uint8(0) // the largest scale sampled
	for e := range hist {
		if hist[e] > 0 {
			top = uint8(e)
		}
	}
	if half == nine || decSampleCost(sample[:nz], scales[:nz], half) > decSampleCost(sample[:nz], scales[:nz], nine) {
		return nine, true, all+zeros == ns && top <= nine
	}
	return half, true, all+zeros == ns && top <= half
}

// decNoise is decScaleAfter's scale for arithmetic's noise.
const decNoise = maxDecimalScale + 1

// decScaleAfter returns v's smallest exact scale, as decMinScale does,
// when the value sampled before had scale lastE (lastOK): values of a
// series mostly share their scale, or are a digit longer or shorter, and
// those are tried before searching. ok is false for a value within a few
// ulps of a short decimal at lastE or lastE+1 but not equal to it:
// arithmetic's noise, exact, if at all, only at the largest scales, and a
// residual at this one, found with no search, and e is then decNoise.
// (Short: the scaled value is below 2^40, so that the ulps are
// thousandths; near 2^53 every value is within a few.) For a value with no
// exact scale at all e is 0.
func decScaleAfter(v float64, lastE uint8, lastOK bool) (e uint8, ok bool) {
	if !lastOK {
		return decMinScale(v)
	}
	switch d, near, exact := decNearAt(v, lastE); {
	case !near:
		// Not exact at lastE, nor so at any scale below it. One digit
		// more is the usual case (46.476 after 42.58).
		if lastE == maxDecimalScale {
			return decMinScale(v)
		}
		switch _, near, exact := decNearAt(v, lastE+1); {
		case exact:
			return lastE + 1, true
		case near && math.Abs(v*pow10[lastE+1]) < 1<<40:
			return decNoise, false
		}
		return decMinScale(v)
	case !exact && math.Abs(v*pow10[lastE]) >= 1<<40:
		return decMinScale(v)
	case !exact:
		return decNoise, false
	case lastE == 0 || (d%10 != 0 && d > -(1<<50) && d < 1<<50) || !decExactAt(v, lastE-1):
		// Exact at lastE−1 would make d a multiple of ten: v·10^lastE is
		// then within |d|·2⁻⁵² of 10·d′, which for |d| < 2⁵⁰ rounds to
		// it. Most values are settled so, without the division.
		return lastE, true
	case (d/10)%10 != 0 && d > -(1<<50) && d < 1<<50:
		// Exact at lastE−1 as d/10, so, by the same argument, at no
		// scale below.
		return lastE - 1, true
	}
	return decMinScale(v)
}

// decSampleCost estimates the bits of the sampled values at scale e,
// given each one's smallest exact scale: the length of each scaled
// integer's change from the sample before, and for a value not exact at
// e what its residual adds (escape, length and the residual, whose length
// the distance from the scaled integer tells) or, when that is over
// maxResidualBits, a raw value's 64. No division is needed. Samples are
// further apart than neighbours, which lengthens every change alike at
// both scales compared.
func decSampleCost(sample []float64, scales []uint8, e uint8) int {
	n := 0
	var prev int64
	for i, v := range sample {
		x := v * pow10[e]
		if !(x > -(1<<53) && x < 1<<53) || v != v {
			n += 5 + 64
			continue
		}
		r := roundHalfAway(x)
		if scales[i] > e {
			// The residual is about |x−r|/|x|·2^52 ulps: its length is
			// the exponents' difference plus 53.
			k := int(math.Float64bits(math.Abs(x-r))>>52) - int(math.Float64bits(math.Abs(x))>>52) + 53
			if k > maxResidualBits {
				n += 5 + 64
				continue
			}
			n += 5 + 7 + max(k, 1)
		}
		d := int64(r)
		if i > 0 {
			n += bits.Len64(Zigzag(d - prev))
		}
		prev = d
	}
	return n
}

// decMinScale returns the smallest e at which v is exactly d/10^e. If v is
// exact at e with |10d| < 2^50, it is exact at e+1 too: v·10^(e+1) is then
// within a quarter of 10d, so rounds to it, and 10d/10^(e+1) is d/10^e.
// One test at the largest e with |v·10^e| < 2^50 therefore settles whether
// there is one up to it, and a binary search below finds the smallest.
// Above it at most one scale (10 > 2^53/2^50) keeps d below 2^53, and is
// tried on its own. (Near 2^53, rounding can miss d by one: a test at
// the largest scale below 2^53 alone would find no scale for 44.03097.)
func decMinScale(v float64) (uint8, bool) {
	a := math.Abs(v)
	hi := uint8(maxDecimalScale)
	for hi > 0 && !(a*pow10[hi] < 1<<50) {
		hi--
	}
	// Most values are short decimals: probing the small scales upwards
	// finds theirs with one division, the misses before it settled by
	// decExactAt's filter.
	lo := uint8(0)
	for ; lo <= min(hi, 3); lo++ {
		if decExactAt(v, lo) {
			return lo, true
		}
	}
	if lo <= hi && decExactAt(v, hi) {
		for lo < hi {
			mid := (lo + hi) / 2
			if decExactAt(v, mid) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		return lo, true
	}
	if up := hi + 1; up <= maxDecimalScale && a*pow10[up] < 1<<53 && decExactAt(v, up) {
		return up, true
	}
	return 0, false
}

// decNearAt reports whether v·10^e is within a few ulps of an integer d
// (decExactAt's filter) and, if so, d and whether v is exactly
// float64(d)/10^e.
func decNearAt(v float64, e uint8) (d int64, near, exact bool) {
	x := v * pow10[e]
	if !(x > -(1<<53) && x < 1<<53) {
		return 0, false, false
	}
	r := roundHalfAway(x)
	if math.Abs(x-r) > math.Abs(x)*0x1p-50 {
		return 0, false, false
	}
	d = int64(r)
	return d, true, decValue(d, e) == math.Float64bits(v)
}

// decExactAt reports whether v is exactly float64(d)/10^e for an integer d.
//
// Most probes of a search for the smallest scale fail, and most of those
// are settled without the division: if v = float64(d)/10^e, rounded
// correctly, then x = v·10^e, rounded, is d·(1+δ₁)(1+δ₂) with |δ| ≤ 2⁻⁵³,
// within |x|·2⁻⁵¹ of the integer d; an x further than twice that from
// its nearest integer cannot come from any d. (x − round(x), a fraction
// of x, is exact.)
func decExactAt(v float64, e uint8) bool {
	_, _, exact := decNearAt(v, e)
	return exact
}

// decAnalyse chooses a chunk's decimal parameters from its values and
// returns the bits the values will take; ok is false when no scale fits.
// m, when not nil, marks the repeats of vs (see repeatMasks); gorilla is
// then a floor under gorillaValueBits of the values, counted alongside
// (see decCostSparse), and else 0.
func decAnalyse(vs []float64, cache []decItem, m *repeatMasks) (p decParams, cost, raws, gorilla int, ok bool) {
	e, ok, clean := decChooseScale(vs)
	if !ok {
		return p, 0, 0, 0, false
	}
	if m != nil {
		if p, cost, gorilla, ok := decCostSparse(vs, e, cache, m); ok {
			return p, cost, 0, gorilla, true
		}
		p, cost, raws = decCost(vs, e, cache, &m.rep2)
		return p, cost, raws, 0, true
	}
	if clean {
		if p, cost, _, ok := decCostExact(vs, e, cache, false); ok {
			return p, cost, 0, 0, true
		}
	}
	p, cost, raws = decCost(vs, e, cache, nil)
	return p, cost, raws, 0, true
}

// decCost chooses the order and bucket widths for vs at scale e and
// returns the bits the values then take and how many are stored raw. Both orders are tried in one
// pass; widths are fitted for the one whose codes are shorter in total.
// When cache holds a place for every value, each value's classification
// is kept there for writing.
//
// skip, when not nil, marks values that repeat a repeat (repeatMasks'
// rep2); with a cache, those are not visited, nor their places in the
// cache filled: such a value's code is 0 in either order and a writer
// takes it as a repeat without reading the cache (see writeDecimalRun).
func decCost(vs []float64, e uint8, cache []decItem, skip *[bestCached / 64]uint64) (_ decParams, cost, raws int) {
	if len(cache) < len(vs) {
		cache, skip = nil, nil
	}
	// Both orders see the same d and delta (decState.next and skip move
	// them alike); only the code differs: delta in order 1, its change in
	// order 2. One state serves both.
	var d0, delta int64
	var lens1, lens2 [65]int
	sum1, sum2 := 0, 0
	fixed := 2 // first value's kind
	// zeros counts the values whose code is 0 in both orders, a repeat
	// after a repeat: most of a sparse series' values. Counted in a
	// register and added to both histograms at the end, they are not a
	// chain of increments of one memory word.
	zeros := 0
	var marked [bestCached / 64]uint64
	if skip != nil {
		marked = *skip
		for _, m := range marked {
			zeros += bits.OnesCount64(m)
		}
	}
	var lastVB uint64
	var last decItem         // lastVB's classification
	var resLens residualLens // of the values after the first
	for i := 0; i < len(vs); i++ {
		if skip != nil {
			if i = nextOutside(&marked, i); i >= len(vs) {
				break
			}
		}
		v := vs[i]
		vb := math.Float64bits(v)
		// A repeated value classifies as the last one did (the
		// classification depends on the value and e alone), saving its
		// division.
		if i == 0 || vb != lastVB {
			kind, d, r := decExact, int64(v), uint64(0)
			// An integer at scale 0 (a counter) as decClassify has it,
			// without the call.
			if e != 0 || !(v > -(1<<53) && v < 1<<53) || math.Float64bits(float64(d)) != vb {
				kind, d, r = decClassify(vb, e)
			}
			lastVB, last = vb, decItem{d: d, r: r, kind: uint8(kind)}
		} else if delta == 0 && last.kind == decExact {
			if cache != nil {
				cache[i] = last
			}
			zeros++
			continue
		}
		if cache != nil {
			cache[i] = last
		}
		if skip != nil && last.kind != decExact {
			// Repeats of a value that is not exact each cost what it
			// does: they are visited after all.
			for j := i + 1; j < len(vs) && marked[j>>6]>>(j&63)&1 != 0; j++ {
				marked[j>>6] &^= 1 << (j & 63)
				zeros--
			}
		}
		if last.kind == decRaw {
			// skip: d and delta move to the value's scaled integer
			// when it has one.
			if sd, ok := decScale(v, e); ok && !math.IsNaN(v) {
				d0, delta = sd, sd-d0
			}
			if i == 0 {
				fixed += 64
			} else {
				fixed += 5 + 64
				raws++
			}
			continue
		}
		d := last.d
		if i == 0 {
			if last.kind == decResidual {
				fixed += 7 + bits.Len64(last.r)
			}
			fixed += 7 + bits.Len64(Zigzag(d))
			d0 = d
			continue
		}
		if last.kind == decResidual {
			l := bits.Len64(last.r)
			fixed += 5 + 7 + l
			resLens[l]++
		}
		dl := d - d0
		l1, l2 := countCode(&lens1, &lens2, dl, delta)
		d0, delta = d, dl
		sum1 += l1
		sum2 += l2
	}
	lens1[0] += zeros
	lens2[0] += zeros
	p, c := decFit(e, &lens1, &lens2, sum1, sum2, fixed)
	p.k, c = decUlpWidth(&resLens, len(vs)-1-raws, c)
	return p, c, raws
}

// decUlpWidth picks the width of the residual field (decParams.k) for a
// chunk that takes c bits without one: coded values after the first
// (those not raw) each take the field's k bits, and a residual of up to k
// bits goes there instead of after an escape (5 bits), a length (7) and
// itself; lens counts the residuals by length. It returns the width and
// the chunk's bits with it, the field's announcement (4 bits) included.
func decUlpWidth(lens *residualLens, coded, c int) (uint8, int) {
	best, bestC := uint8(0), c
	saved := 0
	for k := 1; k <= maxUlpWidth; k++ {
		saved += lens[k] * (5 + 7 + k)
		if ck := c + 4 + k*coded - saved; ck < bestC {
			best, bestC = uint8(k), ck
		}
	}
	return best, bestC
}

// countCode counts the code of a d that changed by dl after a change of
// delta in both orders' histograms of code lengths, and returns the two
// lengths. (The sums stay with the caller, in registers.)
func countCode(lens1, lens2 *[65]int, dl, delta int64) (int, int) {
	l1 := bits.Len64(Zigzag(dl))
	l2 := bits.Len64(Zigzag(dl - delta))
	lens1[l1]++
	lens2[l2]++
	return l1, l2
}

// decFit takes the order whose codes, of lengths lens1 and lens2 summing
// to sum1 and sum2, are shorter in total, fits the widths to them, and
// returns the parameters and the bits of the values, header included,
// fixed being the bits outside the codes.
func decFit(e uint8, lens1, lens2 *[65]int, sum1, sum2, fixed int) (decParams, int) {
	p, lens := decParams{e: e, order: 1}, lens1
	if sum2 < sum1 {
		p, lens = decParams{e: e, order: 2}, lens2
	}
	var c int
	p.w, c = chooseWidths(lens, fixed)
	return p, c + 5 + 28
}

// decCostExact is decCost for values that are all exact at scale e
// (counters and counts at 0, figures of a fixed number of decimals), each
// then its d: a loop with none of the other kinds' cases, which a chunk
// changing at every sample would otherwise step through for each value.
// With withGorilla it also returns a floor under gorillaValueBits of the
// values, the sum of gorillaFloor's, counted in the same loop: for most
// chunks of integers (counts, a counter's) it is enough to rule gorilla
// out, where the exact count would take a pass of its own, each step
// waiting on the window the last one left. ok is false, the cache then
// partly filled, for a chunk with any other value.
func decCostExact(vs []float64, e uint8, cache []decItem, withGorilla bool) (_ decParams, cost, gorilla int, ok bool) {
	if len(vs) == 0 || len(cache) < len(vs) {
		return decParams{}, 0, 0, false
	}
	cache = cache[:len(vs)]
	exact := func(v float64) (int64, bool) {
		if e == 0 {
			// An integer is its own d, without the rounding.
			d := int64(v)
			return d, v > -(1<<53) && v < 1<<53 && math.Float64bits(float64(d)) == math.Float64bits(v)
		}
		d, ok := decScale(v, e)
		return d, ok && decValue(d, e) == math.Float64bits(v) // NaN scales to no d
	}
	d0, ok := exact(vs[0])
	if !ok {
		return decParams{}, 0, 0, false
	}
	cache[0] = decItem{d: d0}
	prev := math.Float64bits(vs[0])
	// firstValueBits, written out: the call made this loop 6 % slower
	// (the loop's state no longer stays in registers across it).
	g := 66
	if !firstValueRaw(prev) {
		g, _, _, _ = xorPlan(prev, noWindow, noWindow)
	}
	var lastX uint64 // the XOR before, for gorillaFloor
	var lens1, lens2 [65]int
	sum1, sum2 := 0, 0
	var delta int64
	for i := 1; i < len(vs); i++ {
		vb := math.Float64bits(vs[i])
		d := d0
		if vb != prev {
			if d, ok = exact(vs[i]); !ok {
				return decParams{}, 0, 0, false
			}
		}
		cache[i] = decItem{d: d}
		dl := d - d0
		l1, l2 := countCode(&lens1, &lens2, dl, delta)
		d0, delta = d, dl
		sum1 += l1
		sum2 += l2
		if withGorilla {
			x := vb ^ prev
			g += gorillaFloor(x, lastX)
			lastX = x
		}
		prev = vb
	}
	p, c := decFit(e, &lens1, &lens2, sum1, sum2, 2+7+bits.Len64(Zigzag(cache[0].d)))
	return p, c, g, true
}

// chooseWidths picks the four bucket widths minimising the bits for a
// histogram of bit lengths, returning them and fixed plus that cost.
//
// Candidate widths are the lengths present; with many of them (noisy
// data) only every stride-th one and the top, keeping the search to a few
// hundred steps. The top length is always the last width. Every choice of
// up to three lower widths among the candidates is tried, in ascending
// order, the first of equal cost kept.
//
// The sizing of every decimal chunk ends here, so the histogram is read
// once, without a branch a length: a mask of the lengths present, then
// the counts at the candidates, cumulated over the lengths present.
func chooseWidths(lens *[65]int, fixed int) ([4]uint8, int) {
	var mask uint64 // lengths 0–63 present
	for l := 0; l < 64; l += 8 {
		x := (*[8]int)(lens[l : l+8])
		// In a tree, not a chain of eight.
		b := ((b2u(x[0] != 0) | b2u(x[1] != 0)<<1) | (b2u(x[2] != 0)<<2 | b2u(x[3] != 0)<<3)) |
			((b2u(x[4] != 0)<<4 | b2u(x[5] != 0)<<5) | (b2u(x[6] != 0)<<6 | b2u(x[7] != 0)<<7))
		mask |= uint64(b) << l
	}
	present := bits.OnesCount64(mask) + int(b2u(lens[64] != 0))
	if present == 0 {
		return [4]uint8{0, 0, 0, 0}, fixed
	}
	stride := 1 + present/8
	// cand[j] is the j-th candidate, and below[j] how many values have a
	// length up to it. There are at most nine: present/stride < 8, and
	// the top.
	var cand [16]uint8
	var below [16]int
	k, sum, seen, skip := 0, 0, 0, 0
	take := func(l int) {
		sum += lens[l]
		// Every stride-th length present, and the last: k moves on
		// past a candidate only.
		cand[k], below[k] = uint8(l), sum
		k += int(b2u(skip == 0 || seen == present-1))
		if skip == 0 {
			skip = stride
		}
		skip--
		seen++
	}
	for m := mask; m != 0; m &= m - 1 {
		take(bits.TrailingZeros64(m))
	}
	if lens[64] != 0 {
		take(64)
	}
	top, all := cand[k-1], below[k-1]
	best := -1
	var bw [4]uint8
	for a := 0; a < k; a++ {
		w0 := cand[a]
		c0 := below[a] * (1 + int(w0))
		if a == k-1 {
			if best < 0 || c0 < best {
				best, bw = c0, [4]uint8{w0, w0, w0, w0}
			}
			continue
		}
		// The values above w0 cost at least 2+cand[a+1] bits each, in
		// whichever bucket: a w0 that cannot beat the best so far is
		// passed over (for a sparse chunk's zeros, every one but 0).
		if best >= 0 && c0+(all-below[a])*(2+int(cand[a+1])) >= best {
			continue
		}
		for b := a + 1; b < k; b++ {
			w1 := cand[b]
			c1 := c0 + (below[b]-below[a])*(2+int(w1))
			if b == k-1 {
				if best < 0 || c1 < best {
					best, bw = c1, [4]uint8{w0, w1, w1, w1}
				}
				continue
			}
			for c := b + 1; c < k; c++ {
				w2 := cand[c]
				c2 := c1 + (below[c]-below[b])*(3+int(w2)) + (all-below[c])*(4+int(top))
				if best < 0 || c2 < best {
					best, bw = c2, [4]uint8{w0, w1, w2, top}
				}
			}
		}
	}
	return bw, fixed + best
}
