package encoding

import (
	"math"
	"math/bits"
)

// Bit-level building blocks of the histogram chunk: a bit writer and reader,
// the varbit integer classes, predicted and adaptively Rice-coded integer
// columns, and predicted sums. The reader's sticky failure flag and its
// one-step unary and Rice reads are what the decoder's inner loop needs,
// hence a reader of its own rather than the float chunk's.

// histBitWriter appends bits, most significant first, to a byte slice.
type histBitWriter struct {
	b    []byte
	free uint // unused low bits of the last byte of b
}

// writeBits writes the low n (≤ 64) bits of v.
func (w *histBitWriter) writeBits(v uint64, n uint) {
	for n > 0 {
		if w.free == 0 {
			w.b = append(w.b, 0)
			w.free = 8
		}
		take := min(n, w.free)
		part := (v >> (n - take)) & (1<<take - 1)
		w.b[len(w.b)-1] |= byte(part << (w.free - take))
		w.free -= take
		n -= take
	}
}

// histBitReader reads what histBitWriter wrote. Reading past the end sets a
// sticky failure flag and yields zeros, so a decoder can read a whole sample
// and check once.
type histBitReader struct {
	data  []byte // bytes not yet loaded into cur
	cur   uint64 // loaded bits, left-aligned
	avail uint   // number of valid bits in cur
	bad   bool   // a read ran past the end
}

func (r *histBitReader) reset(b []byte) { *r = histBitReader{data: b} }

// remaining returns the number of unread bits.
func (r *histBitReader) remaining() uint64 { return uint64(r.avail) + 8*uint64(len(r.data)) }

func (r *histBitReader) fill() {
	for r.avail <= 56 && len(r.data) > 0 {
		r.cur |= uint64(r.data[0]) << (56 - r.avail)
		r.avail += 8
		r.data = r.data[1:]
	}
}

// readBits reads n (≤ 64) bits.
func (r *histBitReader) readBits(n uint) uint64 {
	if n > 32 {
		hi := r.readBits(n - 32)
		return hi<<32 | r.readBits(32)
	}
	if r.avail < n {
		r.fill()
		if r.avail < n {
			r.bad = true
			r.avail, r.cur = 0, 0
			return 0
		}
	}
	v := r.cur >> (64 - n) // n == 0 shifts by 64, which is 0 in Go
	r.cur <<= n
	r.avail -= n
	return v
}

func (r *histBitReader) readBit() bool { return r.readBits(1) == 1 }

// readOnes reads a unary prefix: up to limit (≤ 56) one bits and the zero
// that ends them, which is not there when limit ones were read. It returns
// the number of ones.
func (r *histBitReader) readOnes(limit uint) uint {
	if r.avail <= limit {
		r.fill()
	}
	// Bits of cur past avail are zero, so q ≤ avail.
	q := uint(bits.LeadingZeros64(^r.cur))
	used := q + 1
	if q >= limit {
		q, used = limit, limit
	}
	if used > r.avail {
		r.bad = true
		r.avail, r.cur = 0, 0
		return q
	}
	r.cur <<= used
	r.avail -= used
	return q
}

// Varbit integers: a unary class prefix followed by a payload of the class
// width. A class of width n holds −(2^(n−1)−1)…2^(n−1); zero has its own
// one-bit class. Used where values have no history to adapt to (the first
// values of a column, span layouts).
var histVarbitWidths = [...]uint{3, 6, 9, 12, 18, 25, 56}

func putHistVarbit(w *histBitWriter, v int64) {
	if v == 0 {
		w.writeBits(0, 1)
		return
	}
	for i, n := range histVarbitWidths {
		if -(int64(1)<<(n-1))+1 <= v && v <= int64(1)<<(n-1) {
			// i+1 ones and a zero, then n bits of v.
			w.writeBits((1<<(i+2))-2, uint(i+2))
			w.writeBits(uint64(v)&(1<<n-1), n)
			return
		}
	}
	w.writeBits(0xff, 8)
	w.writeBits(uint64(v), 64)
}

func readHistVarbit(r *histBitReader) int64 {
	class := r.readOnes(8)
	switch {
	case class == 0:
		return 0
	case class == 8:
		return int64(r.readBits(64))
	}
	n := histVarbitWidths[class-1]
	v := int64(r.readBits(n))
	if v > int64(1)<<(n-1) {
		v -= int64(1) << n
	}
	return v
}

// putHistVarbitUint writes a non-negative value in the same classes, spending
// each class's range on 1…2^n.
func putHistVarbitUint(w *histBitWriter, v uint64) {
	if v == 0 {
		w.writeBits(0, 1)
		return
	}
	for i, n := range histVarbitWidths {
		if v <= 1<<n {
			w.writeBits((1<<(i+2))-2, uint(i+2))
			w.writeBits(v-1, n)
			return
		}
	}
	w.writeBits(0xff, 8)
	w.writeBits(v, 64)
}

func readHistVarbitUint(r *histBitReader) uint64 {
	class := r.readOnes(8)
	switch {
	case class == 0:
		return 0
	case class == 8:
		return r.readBits(64)
	}
	return r.readBits(histVarbitWidths[class-1]) + 1
}

// readRice reads a Rice-coded value with parameter k, or reports false
// when it is escaped (histRiceEscape ones were read).
func (r *histBitReader) readRice(k uint) (uint64, bool) {
	if r.avail < histRiceEscape+1+k {
		r.fill()
	}
	// Fast path: the whole code is loaded.
	if q := uint(bits.LeadingZeros64(^r.cur)); q < histRiceEscape && q+1+k <= r.avail {
		n := q + 1 + k
		low := r.cur << (q + 1) >> (63 - k) >> 1 // k bits; two shifts so k = 0 gives 0
		r.cur <<= n
		r.avail -= n
		return uint64(q)<<k | low, true
	}
	q := r.readOnes(histRiceEscape)
	if q < histRiceEscape {
		return uint64(q)<<k | r.readBits(k), true
	}
	return 0, false
}

// histColumn codes one integer series of a chunk (the count, the zero
// count, or one bucket's absolute count) as the residual of its delta
// against a prediction. The first three values of a column are
// varbit-coded; after that each residual is zigzagged and Rice-coded with a
// parameter k adapted from the mean of the recent magnitudes (as in
// LOCO-I), so a bucket that moves by a few hundred per sample costs about
// log2 of its jitter, not a fixed class width.
//
// Two predictors compete, and the one with the smaller recent residuals is
// used (writer and reader keep the same statistics, so no bits say which):
// the previous delta (delta of delta, as Prometheus and Gorilla do), and
// the column's usual share of this sample's count increase, which the
// reader already has because the count comes first. The second follows
// the traffic: when a scrape saw 20% more requests, every bucket is
// expected to grow 20% more, and only the noise is left to code.
// Arithmetic wraps, so every uint64 count round-trips.
type histColumn struct {
	prev  int64     // last value
	delta int64     // last delta
	share int64     // recent delta ÷ total delta, in 1/65536ths, within [0, 2^17]
	sum   [2]uint64 // recent zigzagged residuals per predictor (A in LOCO-I)
	n     uint32    // number of residuals in sum (N in LOCO-I)
	age   uint32    // values coded so far, saturating at 3
}

const (
	histRiceEscape   = 16      // unary quotients this long escape to an explicit width
	histRiceHalveAt  = 32      // halve sum and n at this many values, to track drift
	histRiceSumLimit = 1 << 40 // cap on one residual's weight, so sum cannot overflow
	histMaxTotal     = 1 << 40 // total deltas beyond this are not used for prediction
)

// histGuide is what a guided column knows of its sample before it is
// coded: the count's increase, and 2^48 divided by it, so that learning a
// share costs a multiplication, not a division per bucket. The zero guide
// means there is nothing to go by (no increase, or an implausible one).
type histGuide struct {
	total int64 // the count's increase, in (0, histMaxTotal), or 0
	inv   int64 // 2^48 / total
}

func newHistGuide(total int64) histGuide {
	if total <= 0 || total >= histMaxTotal {
		return histGuide{}
	}
	return histGuide{total: total, inv: (1 << 48) / total}
}

// predict returns the predicted delta and which predictor made it.
func (c *histColumn) predict(g histGuide) (int64, int) {
	if g.total > 0 && c.sum[1] < c.sum[0] {
		return shareOf(c.share, g.total), 1
	}
	return c.delta, 0
}

// shareOf scales total by a share in 1/65536ths; share ≤ 2^17 and total <
// 2^40 keep the product within 2^57.
func shareOf(share, total int64) int64 { return (share*total + 1<<15) >> 16 }

// riceK returns the smallest k with n·2^k ≥ sum. With k = len(sum) −
// len(n), n·2^k and sum have the same bit length, so k or k+1 is it.
func riceK(sum uint64, n uint32) uint {
	if sum <= uint64(n) {
		return 0
	}
	k := uint(bits.Len64(sum) - bits.Len32(n))
	if uint64(n)<<k < sum {
		k++
	}
	return k
}

// learn advances the column past value v whose delta is d.
func (c *histColumn) learn(v, d int64, g histGuide) {
	switch {
	case c.age == 0:
		// A first value has no delta worth predicting from: the next one
		// is coded as a plain delta.
		d = 0
	default:
		u0 := Zigzag(d - c.delta)
		u1 := u0
		if g.total > 0 {
			u1 = Zigzag(d - shareOf(c.share, g.total))
			var s int64
			if d > 0 {
				// d·2^16/total; d ≤ 2·total keeps d·inv within 2^49.
				s = (min(d, 2*g.total) * g.inv) >> 32
			}
			if c.age == 1 {
				c.share = s
			} else {
				c.share += (s - c.share) >> 2
			}
		}
		// The second value's residual is its whole delta, no guide to
		// the residuals that follow: statistics start with the third.
		if c.age >= 2 {
			c.sum[0] += min(u0, histRiceSumLimit)
			c.sum[1] += min(u1, histRiceSumLimit)
			c.n++
			if c.n >= histRiceHalveAt {
				c.sum[0] >>= 1
				c.sum[1] >>= 1
				c.n >>= 1
			}
		}
	}
	if c.age < 3 {
		c.age++
	}
	c.prev, c.delta = v, d
}

func (c *histColumn) put(w *histBitWriter, v int64, g histGuide) {
	d := v - c.prev
	pred, which := c.predict(g)
	res := d - pred
	if c.age < 3 {
		putHistVarbit(w, res)
	} else {
		putRice(w, Zigzag(res), riceK(c.sum[which], c.n))
	}
	c.learn(v, d, g)
}

// putRice writes u Rice-coded with parameter k: the quotient u>>k in
// unary (ones ended by a zero) and the k low bits, or, when the quotient
// reaches histRiceEscape, that many ones, a 7-bit width and u itself.
func putRice(w *histBitWriter, u uint64, k uint) {
	if q := u >> k; q < histRiceEscape {
		w.writeBits(1<<(q+1)-2, uint(q+1))
		w.writeBits(u, k)
		return
	}
	w.writeBits(1<<histRiceEscape-1, histRiceEscape)
	n := uint(bits.Len64(u))
	w.writeBits(uint64(n), 7)
	w.writeBits(u, n)
}

// getRice reads what putRice wrote; ok is false for an impossible width.
func getRice(r *histBitReader, k uint) (u uint64, ok bool) {
	if u, ok := r.readRice(k); ok {
		return u, true
	}
	n := uint(r.readBits(7))
	if n > 64 {
		return 0, false
	}
	return r.readBits(n), true
}

// get reads the next value; ok is false when the stream is malformed (the
// reader's own flag covers running out of bits).
func (c *histColumn) get(r *histBitReader, g histGuide) (v int64, ok bool) {
	if c.age < 3 {
		pred, _ := c.predict(g)
		d := pred + readHistVarbit(r)
		v = c.prev + d
		c.learn(v, d, g)
		return v, true
	}
	// A mature column: the decoder's inner loop, so predict, readRice and
	// learn are written out here, computing the share prediction once.
	// put and learn are the reference; the round-trip tests hold the two
	// to the same bits.
	pred, which := c.delta, 0
	var byShare int64
	if g.total > 0 {
		byShare = shareOf(c.share, g.total)
		if c.sum[1] < c.sum[0] {
			pred, which = byShare, 1
		}
	}
	k := riceK(c.sum[which], c.n)
	var u uint64
	if r.avail < histRiceEscape+1+k {
		r.fill()
	}
	if q := uint(bits.LeadingZeros64(^r.cur)); q < histRiceEscape && q+1+k <= r.avail {
		u = uint64(q)<<k | r.cur<<(q+1)>>(63-k)>>1
		r.cur <<= q + 1 + k
		r.avail -= q + 1 + k
	} else if u, ok = getRice(r, k); !ok {
		return 0, false
	}
	d := pred + Unzigzag(u)
	u0 := Zigzag(d - c.delta)
	u1 := u0
	if g.total > 0 {
		u1 = Zigzag(d - byShare)
		var s int64
		if d > 0 {
			s = (min(d, 2*g.total) * g.inv) >> 32
		}
		c.share += (s - c.share) >> 2
	}
	c.sum[0] += min(u0, histRiceSumLimit)
	c.sum[1] += min(u1, histRiceSumLimit)
	c.n++
	if c.n >= histRiceHalveAt {
		c.sum[0] >>= 1
		c.sum[1] >>= 1
		c.n >>= 1
	}
	c.prev += d
	c.delta = d
	return c.prev, true
}

// histSum codes the sums of a chunk as the difference, in units in the
// last place, between each sum and a prediction: float64 bit patterns of
// one sign are ordered like the numbers, so a sum close to its prediction
// differs from it by a small integer, which is zigzagged and Rice-coded
// like a column's residual (the first sum as raw bits, the second as a
// varbit). Unlike a Gorilla XOR, a difference does not blow up when the two
// values straddle a power of two in the mantissa.
//
// The prediction is the previous sum plus, when the count increased, the
// previous increase per observation times this increase: a histogram's sum
// grows with its count, so only the noise of the mean observation is left.
// The arithmetic is plain IEEE-754 with every step rounded (the explicit
// conversions forbid fused multiply-adds), so writer and reader predict the
// same bits on every platform. Differences wrap, so every bit pattern —
// NaN payloads, the stale marker, infinities, −0 — round-trips.
type histSum struct {
	prev uint64  // last sum's bits
	rate float64 // last increase per observation, or 0 when unknown
	sum  uint64  // recent zigzagged residuals
	n    uint32  // number of residuals in sum
	age  uint32  // sums coded so far, saturating at 3
}

// histSumLimit caps one residual's weight in the statistics; residuals of
// sums are routinely 2^40 ulps, and n ≤ 32 keeps the total within 2^62.
const histSumLimit = 1 << 57

func (x *histSum) predict(g histGuide) uint64 {
	if g.total > 0 && x.rate != 0 {
		p := float64(math.Float64frombits(x.prev) + float64(x.rate*float64(g.total)))
		if !math.IsNaN(p) && !math.IsInf(p, 0) {
			return math.Float64bits(p)
		}
	}
	return x.prev
}

func (x *histSum) learn(v, u uint64, g histGuide) {
	if x.age >= 2 {
		x.sum += min(u, histSumLimit)
		x.n++
		if x.n >= histRiceHalveAt {
			x.sum >>= 1
			x.n >>= 1
		}
	}
	if x.age < 3 {
		x.age++
	}
	x.rate = 0
	if g.total > 0 {
		r := float64(float64(math.Float64frombits(v)-math.Float64frombits(x.prev)) / float64(g.total))
		if !math.IsNaN(r) && !math.IsInf(r, 0) {
			x.rate = r
		}
	}
	x.prev = v
}

func (x *histSum) put(w *histBitWriter, v uint64, g histGuide) {
	res := int64(v - x.predict(g))
	u := Zigzag(res)
	switch {
	case x.age == 0:
		w.writeBits(v, 64)
	case x.age < 3:
		putHistVarbit(w, res)
	default:
		putRice(w, u, riceK(x.sum, x.n))
	}
	x.learn(v, u, g)
}

func (x *histSum) get(r *histBitReader, g histGuide) (uint64, bool) {
	pred := x.predict(g)
	var res int64
	switch {
	case x.age == 0:
		res = int64(r.readBits(64) - pred)
	case x.age < 3:
		res = readHistVarbit(r)
	default:
		u, ok := getRice(r, riceK(x.sum, x.n))
		if !ok {
			return 0, false
		}
		res = Unzigzag(u)
	}
	v := pred + uint64(res)
	x.learn(v, Zigzag(res), g)
	return v, true
}
