package encoding

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
)

// AppendBestFloats encodes the samples as one float chunk in whichever
// encoding (gorilla, decimal, chimp) is smallest for them and appends it to
// dst. Sizes are computed exactly without writing; chimp, whose gain over
// gorilla is a few bits a value, is not sized where decimal already beats
// gorilla by a quarter with no raw values, nor in a chunk of integers or
// one-decimal figures that mostly repeats where decimal beats gorilla at
// all, nor where the best so far is under chimp's floor of five bits a
// value. Timestamps must be strictly increasing (else the error wraps
// ErrOutOfOrder) and ts and vs of equal length. The writer proves every
// sample decodes bit for bit (see appendFloatChunk); a mismatch, which
// would be a bug, is an error and dst is returned unchanged.
func AppendBestFloats(dst []byte, ts []int64, vs []float64) ([]byte, error) {
	var e BestFloatEncoder
	return e.AppendFloats(dst, ts, vs)
}

// BestFloatEncoder writes float chunks in their smallest encoding, as
// AppendBestFloats and AppendBestFloatValues do, and keeps the scratch
// space they size chunks in (the decisions made for each value, some
// kilobytes) from one chunk to the next: those functions zero it for
// every chunk, a twentieth of the encode of a chunk that mostly repeats.
// Hold one where chunks are written in turn, as a compactor does. Nothing
// of one chunk carries over into the next. The zero value is ready for
// use; an encoder is not safe for concurrent use.
type BestFloatEncoder struct {
	sc bestScratch
}

// AppendFloats is AppendBestFloats with the encoder's scratch space.
func (e *BestFloatEncoder) AppendFloats(dst []byte, ts []int64, vs []float64) ([]byte, error) {
	if len(ts) != len(vs) {
		return dst, fmt.Errorf("encoding: %d timestamps but %d values", len(ts), len(vs))
	}
	for i := 1; i < len(ts); i++ {
		if ts[i] <= ts[i-1] {
			return dst, fmt.Errorf("%w: %d after %d at sample %d", ErrOutOfOrder, ts[i], ts[i-1], i)
		}
	}
	enc, p, g := chooseFloatEncoding(ts, vs, &e.sc)
	return appendFloatChunk(dst, enc, ts, vs, &p, g, &e.sc)
}

// AppendBestFloatChunk re-encodes a finished float chunk of any float
// encoding in the encoding that is smallest for its data and appends it to
// dst. If the chunk is already as small, it is copied. A chunk that does not
// decode is an error wrapping ErrCorrupt.
func AppendBestFloatChunk(dst, chunk []byte) ([]byte, error) {
	n, err := FloatChunkLen(chunk)
	if err != nil {
		return dst, err
	}
	var tsBuf [256]int64
	var vsBuf [256]float64
	ts, vs := tsBuf[:0], vsBuf[:0]
	if n > len(tsBuf) {
		ts, vs = make([]int64, 0, n), make([]float64, 0, n)
	}
	var it FloatIterator
	if err := it.Reset(chunk); err != nil {
		return dst, err
	}
	for it.Next() {
		t, v := it.At()
		ts, vs = append(ts, t), append(vs, v)
	}
	if err := it.Err(); err != nil {
		return dst, err
	}
	start := len(dst)
	dst, err = AppendBestFloats(dst, ts, vs)
	if err != nil {
		return dst, err
	}
	if len(dst)-start >= len(chunk) {
		dst = append(dst[:start], chunk...)
	}
	return dst, nil
}

// chooseFloatEncoding picks the encoding, and for decimal and chimp the
// timestamp coding, whose chunk takes the fewest bits. It computes sizes
// without writing any.
func chooseFloatEncoding(ts []int64, vs []float64, sc *bestScratch) (ChunkEncoding, decParams, tsGrid) {
	dod := dodCost(ts)
	// Every dod after the first interval costs a bit at least, one when 0.
	sc.regular = len(ts) > 2 && dod == 1+uvarintBits(uint64(ts[1]-ts[0]))+len(ts)-2
	g, other := chooseGridBelow(ts, dod) // timestamp bits in decimal and chimp, header bit included
	enc, p := chooseValueEncoding(vs, dod, other, sc)
	return enc, p, g
}

// chooseValueEncoding picks the encoding whose chunk of vs takes the fewest
// bits, given the bits of the timestamps after t₀: dod in gorilla, other in
// decimal and chimp, each with the one-bit header that chooses them.
func chooseValueEncoding(vs []float64, dod, other int, sc *bestScratch) (ChunkEncoding, decParams) {
	// A constant chunk costs one bit a value in gorilla, which nothing
	// beats by more than the first value's few bits; only the timestamps
	// can still gain, or in a chunk of a sample or two, where those bits
	// are most of it, the first value.
	//
	// A chunk whose values repeat often is sized by the values that do
	// not (see repeatMasks).
	var m *repeatMasks
	constant := constantValues(vs)
	defer func() { sc.sparse, sc.masked = m != nil || constant, m != nil }()
	if !constant && len(vs) <= bestCached && probeRepeats(vs)*sparseShare >= repeatProbes {
		m = &sc.reps
		if m.fill(vs)*sparseShare < len(vs) {
			m = nil
		}
	}
	if constant {
		if other < dod || (len(vs) > 0 && len(vs) <= 2) {
			if p, ok := constantDecimal(vs, other, dod, sc); ok {
				return EncDecimal, p
			}
		}
		return EncGorilla, decParams{}
	}
	// Decimal first: where it wins, sizing gorilla stops as soon as gorilla
	// has lost.
	// A chunk of integers all (at scale 0, which the scale chooser would
	// find for each) is sized for decimal in one loop with a floor under
	// gorilla's bits, which mostly settles gorilla.
	var p decParams
	var c, raws, gb int
	ok := false
	if m == nil && len(vs) <= bestCached {
		p, c, gb, ok = decCostExact(vs, 0, sc.dec[:], true)
	}
	integers := ok
	if !integers {
		p, c, raws, gb, ok = decAnalyse(vs, sc.dec[:], m)
	}
	best, bestBits := EncGorilla, math.MaxInt
	limit := math.MaxInt
	// A sparse chunk of integers or one-decimal figures (counts, bytes),
	// sized for decimal without a raw value (see below).
	sparseDecimal := ok && m != nil && raws == 0 && p.e <= 1
	if ok {
		best, bestBits = EncDecimal, c+other
		// Far enough to tell both whether gorilla wins and whether decimal
		// wins by the margin that makes sizing chimp pointless; in a
		// sparse chunk, whether gorilla wins (see below).
		limit = max(bestBits-(dod-1), c*4/3+1)
		if sparseDecimal {
			limit = bestBits - (dod - 1)
		}
	}
	switch {
	case integers:
		if gb+dod-1 < bestBits { // the floor does not rule gorilla out
			gb = gorillaValueBits(vs, limit)
		}
	case m != nil:
		if gb+dod-1 < bestBits { // decAnalyse's floor (or 0) does not rule gorilla out
			gb = gorillaValueBitsSparse(vs, m, limit)
		}
	default:
		gb = gorillaValueBits(vs, limit)
	}
	if gb < limit && gb+dod-1 < bestBits {
		best, bestBits = EncGorilla, gb+dod-1
	}
	// Chimp gains a few bits per value over gorilla on full-precision
	// data; where decimal already wins by far and stores no value raw (a
	// repeated NaN, say, which chimp refers back to) it cannot catch up,
	// so the costlier analysis is skipped.
	//
	// Nor in a sparseDecimal chunk where decimal beats gorilla. There
	// chimp spends five bits on each repeat where gorilla spends one, and
	// repeats are at least half the values: it starts four bits a
	// changing value behind gorilla, and gains on a value only where it
	// equals a recent one or shares its low bits, which decimal at these
	// scales codes as the change of an integer of the value's size. On
	// random sparse chunks (runs of counters, of zeros, of short and long
	// decimals, a few values recurring) no chunk chimp would have won is
	// lost to this rule, and at larger scales some are, as
	// TestSparseDecimalLosesNoChimpChunk shows.
	if best == EncDecimal && raws == 0 && (c*4 < gb*3 || sparseDecimal) { // gb is at least the limit here, or a floor under gorilla's bits
		return best, p
	}
	// Nor where the least it could spend already loses: first the least
	// of all (every value a reference to an equal one), which settles
	// most chunks of repeats without a pass over them, then, for chunks
	// that change at most values, the floor. A sparse chunk has no pass
	// for the floor: its sizing visits only the values that change, in
	// hardly more steps than the floor's pass would take, and the floor
	// settled few of them (6 of the 38 NAB chunks it met).
	if len(vs) > 0 && 64+5*(len(vs)-1)+other >= bestBits {
		return best, p
	}
	if m != nil {
		// Sized by the values that change; the plans, which the writer
		// needs, only where chimp wins.
		if c := chimpValueBitsSparse(vs, m, bestBits-other); c+other < bestBits {
			chimpValueBits(vs, sc.chimp[:], math.MaxInt, chimpFloor(vs, math.MaxInt))
			best = EncChimp
		}
		return best, p
	}
	floor := chimpFloor(vs, bestBits-other)
	if floor+other >= bestBits {
		return best, p
	}
	if c := chimpValueBits(vs, sc.chimp[:], bestBits-other, floor); c+other < bestBits {
		best = EncChimp
	}
	return best, p
}

// chimpFloor is the least the chimp form can spend on vs: 64 bits for the
// first value, 5 for a value equal to one of the chimpRefs before it (00 +
// ref), and 15 for any other (01 + ref + class + centre + at least one
// bit; the XOR forms take at least 2 + 64 − 24). It returns a number at
// least limit as soon as the values seen, at those costs, and five bits
// for each value left reach it: a chunk of values that change is ruled out
// for chimp in a third of a pass or so.
func chimpFloor(vs []float64, limit int) int {
	if len(vs) == 0 {
		return 0
	}
	n := 64
	for i := 1; i < min(len(vs), chimpRefs); i++ {
		c := 15
		for j := range i {
			if math.Float64bits(vs[j]) == math.Float64bits(vs[i]) {
				c = 5
			}
		}
		n += c
	}
	if len(vs) <= chimpRefs {
		return n
	}
	known := n + 5*(len(vs)-chimpRefs)
	if known >= limit {
		return known
	}
	// How many of the values from chimpRefs on, not equal to one before,
	// take the floor to limit: each adds ten bits to known.
	need := (limit-known-1)/10 + 1
	// Past the first chimpRefs values, a byte-wide hash of each of the
	// eight before sits in one word: a value whose hash is none of them
	// equals none of them, settled in a few instructions, as is a repeat of
	// the last; the rest (an older repeat, or one hash in 32 by chance)
	// are compared in full, without branches.
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hash := func(vb uint64) uint64 { return vb * 0x9e3779b97f4a7c15 >> 56 }
	var win uint64
	for j := range chimpRefs {
		win = win<<8 | hash(math.Float64bits(vs[j]))
	}
	eq := 0
	for i := chimpRefs; i < len(vs); i++ {
		vb := math.Float64bits(vs[i])
		h := hash(vb)
		if vb == math.Float64bits(vs[i-1]) { // a run of one value
			eq++
		} else if x := win ^ h*ones; (x-ones)&^x&highs != 0 { // some byte of x is zero
			w := vs[i-chimpRefs : i : i]
			e := b2u(vb == math.Float64bits(w[0])) | b2u(vb == math.Float64bits(w[1])) |
				b2u(vb == math.Float64bits(w[2])) | b2u(vb == math.Float64bits(w[3])) |
				b2u(vb == math.Float64bits(w[4])) | b2u(vb == math.Float64bits(w[5])) |
				b2u(vb == math.Float64bits(w[6])) | b2u(vb == math.Float64bits(w[7]))
			eq += int(e)
		}
		win = win<<8 | h
		if i+1-chimpRefs-eq >= need {
			return known + 10*need
		}
	}
	return n + 15*(len(vs)-chimpRefs) - 10*eq
}

// constantDecimal sizes a constant chunk in decimal (one zero bit a value
// after the first) against gorilla (the same, after a different first
// value) directly, given both chunks' timestamp bits, and fills the
// decimal decisions in when decimal wins.
func constantDecimal(vs []float64, other, dod int, sc *bestScratch) (decParams, bool) {
	vb := math.Float64bits(vs[0])
	gb := firstValueBits(vb) + len(vs) - 1
	e, ok := decMinScale(vs[0])
	if !ok {
		return decParams{}, false
	}
	d, _ := decScale(vs[0], e)
	c := 5 + 28 + 2 + 7 + bits.Len64(Zigzag(d)) + len(vs) - 1
	if c+other >= gb+dod-1 {
		return decParams{}, false
	}
	for i := range min(len(vs), bestCached) {
		sc.dec[i] = decItem{d: d, kind: decExact}
	}
	return decParams{e: e, order: 1}, true
}

// constantValues reports whether every value has the first one's bits.
func constantValues(vs []float64) bool {
	for i := 1; i < len(vs); i++ {
		if math.Float64bits(vs[i]) != math.Float64bits(vs[0]) {
			return false
		}
	}
	return true
}

// gorillaValueBits is the number of bits writeXOR spends on vs, or a
// number at least limit as soon as the count reaches it.
func gorillaValueBits(vs []float64, limit int) int {
	if len(vs) == 0 {
		return 0
	}
	prev := math.Float64bits(vs[0])
	n := firstValueBits(prev)
	lead, trail := uint8(noWindow), uint8(noWindow)
	for _, v := range vs[1:] {
		if n >= limit {
			return n
		}
		vb := math.Float64bits(v)
		var c int
		c, _, lead, trail = xorPlan(vb^prev, lead, trail)
		n += c
		prev = vb
	}
	return n
}

// chimpValueBits is the number of bits the chimp form spends on vs, or a
// number at least limit as soon as the bits so far and the least the
// values left can take reach it; floor is chimpFloor(vs, math.MaxInt). When plans holds
// a place for every value, each value's plan is kept there for writing.
func chimpValueBits(vs []float64, plans []chimpPlan, limit, floor int) int {
	var one [1]chimpPlan
	if len(plans) < len(vs) {
		plans = one[:]
	}
	var s chimpState
	s.reset()
	n := 0
	// The low bytes of the last chimpRefs values, one a byte: a value
	// whose low byte is none of them takes planLast.
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	var lows uint64
	for i, v := range vs {
		vb := math.Float64bits(v)
		p := &plans[min(i, len(plans)-1)]
		lb := vb & 0xff
		if x := lows ^ lb*ones; i >= chimpRefs && (x-ones)&^x&highs == 0 {
			s.planLast(vb, p)
		} else {
			s.plan(vb, p)
		}
		lows = lows<<8 | lb
		n += int(p.nbits)
		// floor less this value's share of it: 64 for the first, 5 for
		// a reference to an equal value, 15 for any other.
		switch {
		case i == 0:
			floor -= 64
		case p.flag == 0b00:
			floor -= 5
		default:
			floor -= 15
		}
		if rest := n + floor; rest >= limit {
			return rest
		}
		switch p.flag {
		case 0b01:
			s.lead = noWindow
		case 0b11:
			s.lead = p.class
		}
		s.push(vb)
	}
	return n
}

// bestCached is how many samples' sizing decisions are kept for writing;
// longer chunks are re-derived while writing.
const bestCached = 128

// bestScratch keeps per-value decisions made while sizing the encodings,
// so the chosen one is written without deciding again.
type bestScratch struct {
	dec   [bestCached]decItem
	chimp [bestCached]chimpPlan
	reps  repeatMasks
	// sparse is whether the chunk sized last is constant or repeats
	// often: its writer takes runs of repeats at once.
	sparse bool
	// masked is whether reps is filled for the chunk sized last, and
	// regular whether its timestamps from the third on are each at the
	// interval before (dod 0).
	masked, regular bool
}

// sparseShare is the least share of repeats, one in sparseShare values,
// for which sizing by the other values (repeatMasks) pays.
const sparseShare = 2

// appendFloatChunk writes a whole chunk in enc.
// sc, when not nil, holds the decisions chooseFloatEncoding made.
// g is the timestamp grid of decimal and chimp chunks (zero: deltas of
// deltas).
//
// The writer checks its own output as it goes: every field is written
// masked to its width, and from those field values each sample is rebuilt
// the way FloatIterator rebuilds it (the same sign extensions, window and
// reference arithmetic, decimal state) and compared bit for bit with the
// input, and every header is checked to be one a reader accepts. A
// mismatch, which would be a bug, is an error and dst is returned
// unchanged. This proves every sample decodes exactly for the cost of a
// few instructions a sample instead of a second pass through a decoder.
func appendFloatChunk(dst []byte, enc ChunkEncoding, ts []int64, vs []float64, p *decParams, g tsGrid, sc *bestScratch) ([]byte, error) {
	if enc == EncGorilla {
		g = tsGrid{}
	}
	if !g.valid() || g.implicit || (enc == EncDecimal && len(ts) > 0 && !p.valid()) {
		return dst, fmt.Errorf("encoding: %s chunk header would not decode", enc)
	}
	var gp int64
	cached := sc != nil && len(vs) <= bestCached
	start := len(dst)
	dst = append(dst, byte(enc))
	dst = binary.AppendUvarint(dst, uint64(len(ts)))
	hdr := len(dst) - start
	w := BitWriter{buf: dst}
	var ds decState
	ds.p = *p
	var cs chimpState
	cs.reset()
	lead, trail := uint8(noWindow), uint8(noWindow)
	var prevT int64
	var delta, prevV uint64
	for i := 0; i < len(ts); i++ {
		if i == 2 && enc == EncDecimal && cached {
			// The rest in a loop of its own, timestamp and value in one
			// write where they fit.
			var reps *repeatMasks
			if sc.masked && sc.regular && g.interval == 0 {
				reps = &sc.reps
			}
			if bad := writeDecimalRun(&w, ts, vs, sc.dec[:], &ds, g, prevT, delta, gp, sc.sparse, reps); bad >= 0 {
				return dst[:start], fmt.Errorf("encoding: %s chunk would decode sample %d differently", enc, bad)
			}
			break
		}
		if i == 2 && enc == EncChimp && cached {
			// The rest in a loop of its own, as for decimal.
			if bad := writeChimpRun(&w, ts, vs, sc.chimp[:], &cs, g, prevT, delta, gp); bad >= 0 {
				return dst[:start], fmt.Errorf("encoding: %s chunk would decode sample %d differently", enc, bad)
			}
			break
		}
		t, vb := ts[i], math.Float64bits(vs[i])
		if enc == EncGorilla && i >= 2 && vb == prevV && uint64(t-prevT) == delta {
			// An unchanged interval and a repeated value, two zero bits,
			// from which a reader takes the last time plus the last
			// interval, t, and the last value, vb; so for the run of
			// them this starts, written at once.
			j := i + 1
			for j < len(ts) && math.Float64bits(vs[j]) == vb && uint64(ts[j]-ts[j-1]) == delta {
				j++
			}
			w.writeZeros(2 * uint(j-i))
			prevT, i = ts[j-1], j-1
			continue
		}
		gotT := t
		switch {
		case i == 0:
			w.WriteUvarint(Zigzag(t))
			if enc != EncGorilla {
				g.write(&w)
				gp = t + g.phase
			}
		case g.interval != 0:
			// On the grid, the usual case, without a call: writeTime's
			// zero bit and offset.
			next := gp + g.interval
			if z := Zigzag(t - next); bits.Len64(z) <= int(g.width) && g.width < 32 {
				w.writeSmall(z, 1+uint(g.width))
				gp, gotT = next, next+Unzigzag(z&lowBits(g.width))
			} else {
				gp, gotT = g.writeTime(&w, t, prevT, gp)
			}
		case i == 1:
			delta = uint64(t - prevT)
			w.WriteUvarint(delta)
		default:
			d := uint64(t - prevT)
			if d == delta {
				w.writeSmall(0, 1) // dod 0, the common case, without a call
			} else {
				gotT = prevT + int64(delta+uint64(writeDod(&w, int64(d-delta))))
			}
			delta = d
		}
		ok := gotT == t
		switch enc {
		case EncGorilla:
			var x uint64
			if i == 0 {
				lead, trail, x = writeFirstValue(&w, vb)
			} else {
				lead, trail, x = writeXOR(&w, vb^prevV, lead, trail)
			}
			ok = ok && prevV^x == vb
		case EncDecimal:
			if cached && i > 0 {
				ok = ok && writeDecimalItem(&w, &ds, vb, &sc.dec[i])
				break
			}
			var c *decItem
			if cached {
				c = &sc.dec[i]
			}
			ok = ok && writeDecimalValue(&w, &ds, i, vb, c)
		case EncChimp:
			var got uint64
			if cached {
				got = cs.write(&w, vb, sc.chimp[i])
			} else {
				var p chimpPlan
				cs.plan(vb, &p)
				got = cs.write(&w, vb, p)
			}
			ok = ok && got == vb
		}
		if !ok {
			return dst[:start], fmt.Errorf("encoding: %s chunk would decode sample %d differently", enc, i)
		}
		prevT, prevV = t, vb
	}
	dst = w.Bytes()
	sum := crcHeader(crc32.Checksum(dst[start+hdr:], castagnoli), dst[start:start+hdr])
	return binary.LittleEndian.AppendUint16(dst, foldCRC(sum)), nil
}

// writeDecimalRun writes samples 2 onwards of a decimal chunk whose
// values' classifications are in items, given the writer's state after
// sample 1, and returns the first sample a reader would not recover (see
// appendFloatChunk), or -1. An exact value's code goes out in one write
// with its timestamp's bits when both are short (writeDecimalExact); the
// loops for grid and delta-of-delta timestamps are apart, each with only
// its own state live. sparse says the chunk is constant or mostly repeats
// (bestScratch.sparse); reps, when not nil, marks its repeats, and its
// timestamps are at one interval (dod 0) from the third on, without a
// grid: writeDecimalSparse writes it.
func writeDecimalRun(w *BitWriter, ts []int64, vs []float64, items []decItem, ds *decState, g tsGrid, prevT int64, delta uint64, gp int64, sparse bool, reps *repeatMasks) int {
	n := len(ts)
	vs, items = vs[:n], items[:n]
	// A value equal to the one a reader holds, with d unchanged since the
	// last (delta 0), is code 0 in the first bucket in either order: the
	// reader's d, and so its value, stay as they are. Those rep bits go
	// out with the timestamp's, whatever the classification.
	rep := 1 + uint(ds.p.w[0]) + uint(ds.p.k)
	// The bucket of every code length a width holds, for
	// writeDecimalSteady to look up in one load: the four widths compared
	// a value would keep them in registers, which its loop has too few of.
	var tab decBucketTable
	tab.fill(&ds.p)
	// A sparse chunk, and any after a few values with a residual, takes
	// the loop that writes those and runs of repeats too.
	mixed, noisy := sparse, 0
	steady := func(i int, delta uint64, gp int64) (int, int64, bool) {
		if mixed {
			return writeDecimalSteadyMixed(w, ts, vs, items, ds, &tab, g, i, delta, gp)
		}
		return writeDecimalSteady(w, ts, vs, items, ds, &tab, g, i, delta, gp)
	}
	if g.interval != 0 {
		for i := 2; i < n; i++ {
			if next, ngp, bad := steady(i, delta, gp); bad {
				return next
			} else if next > i {
				if next >= n {
					break
				}
				i, prevT, gp = next, ts[next-1], ngp
			}
			t := ts[i]
			next := gp + g.interval
			var tb uint64
			var tn uint
			gotT := t
			if z := Zigzag(t - next); bits.Len64(z) <= int(g.width) && g.width < 32 {
				tb, tn = z, 1+uint(g.width)
				gp, gotT = next, next+Unzigzag(z&lowBits(g.width))
			} else {
				gp, gotT = g.writeTime(w, t, prevT, gp)
			}
			prevT = t
			if gotT != t {
				return i
			}
			if vb := math.Float64bits(vs[i]); vb == ds.base && ds.delta == 0 && ds.baseOK {
				if tn+rep <= 64 {
					w.writeSmall(tb<<rep, tn+rep) // a repeat, see above
					continue
				}
				items[i] = decItem{d: ds.d} // decCost may have left it unfilled
			}
			if items[i].kind == decResidual {
				noisy++
				mixed = mixed || noisy >= noisyChunk
			}
			if !writeDecimalExact(w, ds, tb, tn, math.Float64bits(vs[i]), &items[i]) {
				return i
			}
		}
		return -1
	}
	start := 2
	if reps != nil && ds.p.order == 1 {
		next, bad := writeDecimalSparse(w, vs, items, ds, &tab, reps)
		if bad {
			return next
		}
		if next >= n {
			return -1
		}
		start, prevT = next, ts[next-1]
	}
	for i := start; i < n; i++ {
		if next, _, bad := steady(i, delta, gp); bad {
			return next
		} else if next > i {
			if next >= n {
				break
			}
			i, prevT = next, ts[next-1]
		}
		t := ts[i]
		d := uint64(t - prevT)
		var tn uint
		gotT := t
		if d == delta {
			tn = 1 // dod 0
		} else {
			gotT = prevT + int64(delta+uint64(writeDod(w, int64(d-delta))))
		}
		delta, prevT = d, t
		if gotT != t {
			return i
		}
		if vb := math.Float64bits(vs[i]); vb == ds.base && ds.delta == 0 && ds.baseOK {
			if tn+rep <= 64 {
				w.writeSmall(0, tn+rep) // a repeat, see above
				continue
			}
			items[i] = decItem{d: ds.d} // decCost may have left it unfilled
		}
		if items[i].kind == decResidual {
			noisy++
			mixed = mixed || noisy >= noisyChunk
		}
		if !writeDecimalExact(w, ds, 0, tn, math.Float64bits(vs[i]), &items[i]) {
			return i
		}
	}
	return -1
}

// putBits is BitWriter.writeSmall on a writer held in registers (acc,
// nb and buf as a BitWriter's): the steady loops keep theirs out of
// memory, where each write would wait on the last one's store. v holds
// vn ≤ 64 bits, none above them.
func putBits(acc uint64, nb uint, buf []byte, v uint64, vn uint) (uint64, uint, []byte) {
	if nb+vn < 64 {
		return acc<<vn | v, nb + vn, buf
	}
	rest := nb + vn - 64
	buf = binary.BigEndian.AppendUint64(buf, acc<<(64-nb)|v>>rest)
	return v & (1<<rest - 1), rest, buf
}

// putZeros is BitWriter.writeZeros on a writer held in registers, as
// putBits: z zero bits, any number of them (a run of repeats).
func putZeros(acc uint64, nb uint, buf []byte, z uint) (uint64, uint, []byte) {
	for nb+z >= 64 {
		buf = binary.BigEndian.AppendUint64(buf, acc<<(64-nb))
		acc, z, nb = 0, z-(64-nb), 0
	}
	return acc << z, nb + z, buf
}

// writeDecimalSparse writes samples from 2 on of an order-1 decimal chunk
// whose timestamps are at one interval from the third on (a zero bit
// each) and whose repeats reps marks, visiting only the values that
// change: the repeats before each, of an exact value, are its zero time
// bit and code 0 in the first bucket, and the run of them goes out as one
// stretch of zero bits, with no step, and no branch, a sample. Each value
// that changes is written and checked as writeDecimalSteady does. It
// returns the first sample it did not write (at a value that is not
// exact, or whose code it leaves to the general loop) and whether that
// sample would not decode (the chunk is then refused).
func writeDecimalSparse(w *BitWriter, vs []float64, items []decItem, ds *decState, tab *decBucketTable, reps *repeatMasks) (int, bool) {
	n := len(vs)
	if n <= 2 || n > bestCached || !ds.baseOK || math.Float64bits(vs[1]) != ds.base {
		return 2, false // after a residual the repeats are not zeros
	}
	items = items[:n]
	acc, nb, buf := w.acc, w.n, w.buf
	d, dl, base := ds.d, ds.delta, ds.base
	e, top := ds.p.e, uint(ds.p.w[3])
	per := 1 + uint(tab[0]&0xff) // a repeat's bits: time, code 0, field
	pos, stop, bad := 2, n, false
scan:
	for word := range reps.rep {
		fresh := reps.changing(word, n)
		if word == 0 {
			fresh &^= 0b11 // samples 0 and 1 are written
		}
		for ; fresh != 0; fresh &= fresh - 1 {
			i := word<<6 | bits.TrailingZeros64(fresh)
			acc, nb, buf = putZeros(acc, nb, buf, uint(i-pos)*per)
			if i > pos {
				dl = 0
			}
			pos = i
			c := &items[i]
			code := c.d - d
			z := Zigzag(code)
			l := uint(bits.Len64(z))
			if c.kind != decExact || l > top || c.d <= -(1<<53) || c.d >= 1<<53 {
				stop = i // the general loops take it
				break scan
			}
			bk := tab[l]
			wd := uint8(bk >> 8)
			vn := 1 + uint(bk&0xff) // the time's zero bit leads
			if vn > 64 {
				stop = i
				break scan
			}
			f := z & lowBits(wd)
			if d+Unzigzag(f) != c.d {
				stop, bad = i, true
				break scan
			}
			base = decValue(c.d, e)
			if base != math.Float64bits(vs[i]) {
				stop, bad = i, true
				break scan
			}
			d, dl = c.d, c.d-d
			// The code, then the residual field, zeros.
			v := (uint64(bk>>16&0xff)<<wd | f) << (bk >> 24 & 7)
			acc, nb, buf = putBits(acc, nb, buf, v, vn)
			pos = i + 1
		}
	}
	if stop == n {
		acc, nb, buf = putZeros(acc, nb, buf, uint(n-pos)*per)
		if n > pos {
			dl = 0
		}
	}
	w.acc, w.n, w.buf = acc, nb, buf
	ds.d, ds.delta, ds.base = d, dl, base
	return stop, bad
}

// writeChimpRun writes samples 2 onwards of a chimp chunk by their plans,
// given the writer's state after sample 1, and returns the first sample a
// reader would not recover (see appendFloatChunk), or -1. Runs of the
// usual samples go through writeChimpSteady; the rest are written here as
// appendFloatChunk writes them.
func writeChimpRun(w *BitWriter, ts []int64, vs []float64, plans []chimpPlan, cs *chimpState, g tsGrid, prevT int64, delta uint64, gp int64) int {
	n := len(ts)
	vs, plans = vs[:n], plans[:n]
	for i := 2; i < n; i++ {
		if next, ngp, bad := writeChimpSteady(w, ts, vs, plans, cs, g, i, delta, gp); bad {
			return next
		} else if next > i {
			if next >= n {
				break
			}
			i, prevT, gp = next, ts[next-1], ngp
		}
		t, vb := ts[i], math.Float64bits(vs[i])
		gotT := t
		if g.interval != 0 {
			next := gp + g.interval
			if z := Zigzag(t - next); bits.Len64(z) <= int(g.width) && g.width < 32 {
				w.writeSmall(z, 1+uint(g.width))
				gp, gotT = next, next+Unzigzag(z&lowBits(g.width))
			} else {
				gp, gotT = g.writeTime(w, t, prevT, gp)
			}
		} else {
			d := uint64(t - prevT)
			if d == delta {
				w.writeSmall(0, 1)
			} else {
				gotT = prevT + int64(delta+uint64(writeDod(w, int64(d-delta))))
			}
			delta = d
		}
		if gotT != t || cs.write(w, vb, plans[i]) != vb {
			return i
		}
		prevT = t
	}
	return -1
}

// writeChimpSteady writes samples from i ≥ 2 of a chimp chunk while they
// are the usual kind for full-precision values: a timestamp as in
// writeDecimalSteady, and an XOR with the last value (plan 10 or 11). It
// keeps the bit writer's register in locals, writes the timestamp and the
// value's header in one write and its bits in another, and checks each
// value as chimpState.write does. It returns the first sample it did not
// write, the grid point before it, and whether that sample would not
// decode.
func writeChimpSteady(w *BitWriter, ts []int64, vs []float64, plans []chimpPlan, cs *chimpState, g tsGrid, i int, delta uint64, gp int64) (int, int64, bool) {
	acc, nb, buf := w.acc, w.n, w.buf
	onGrid := g.interval != 0 && g.width < 32
	n := len(ts)
	vs, plans = vs[:n], plans[:n]
	put := func(v uint64, vn uint) { acc, nb, buf = putBits(acc, nb, buf, v, vn) }
	for ; i < n; i++ {
		tb, tn, next := uint64(0), uint(1), gp
		if onGrid {
			next += g.interval
			z := Zigzag(ts[i] - next)
			if bits.Len64(z) > int(g.width) {
				break
			}
			tb, tn = z, 1+uint(g.width)
		} else if g.interval != 0 || uint64(ts[i]-ts[i-1]) != delta {
			break
		}
		p := &plans[i]
		cls, hdr, hn := cs.lead, uint64(0b10), uint(2)
		if p.flag == 0b11 {
			cls, hdr, hn = p.class, 0b11<<3|uint64(p.class&7), 5
		}
		if (p.flag != 0b10 && p.flag != 0b11) || cls >= 8 || cs.n == 0 {
			break // the references' forms, or a window not set: the general loop
		}
		sig := uint(64 - chimpLead[cls])
		f := p.xor & lowBits(uint8(sig))
		vb := math.Float64bits(vs[i])
		if cs.ring[(cs.n-1)&(chimpRefs-1)]^f != vb {
			return i, next, true
		}
		gp = next
		put(tb<<hn|hdr, tn+hn)
		put(f, sig)
		cs.lead = cls
		cs.push(vb)
	}
	w.acc, w.n, w.buf = acc, nb, buf
	return i, gp, false
}

// noisyChunk is how many values with a residual make writeDecimalRun take
// writeDecimalSteadyMixed for the rest of a chunk.
const noisyChunk = 4

// decBucketTable holds, for each code length up to the widest bucket,
// how a code of that length is written: the residual field's width k in
// bits 24 up, the bucket's prefix (0, 10, 110 or 1110) in bits 16–23, the
// bucket's width in bits 8–15, and prefix, width and field together in
// the low byte. (k rides along in every entry: the loops that read the
// table have no register to spare for it.)
type decBucketTable [65]uint32

// fill fills the table in for p's widths (ascending) and field.
func (t *decBucketTable) fill(p *decParams) {
	l := 0
	k := uint32(p.k)
	for b, wd := range p.w {
		prefix := uint32(1)<<(b+1) - 2
		for ; l <= int(wd); l++ {
			t[l] = k<<24 | prefix<<16 | uint32(wd)<<8 | uint32(b+1+int(wd)) + k
		}
	}
}

// writeDecimalSteady writes samples from i ≥ 2 of a decimal chunk while
// they are the usual kind: a timestamp on the grid g within its width or,
// without a grid, an unchanged interval (dod 0), and an exact value whose
// code fits one write with the timestamp's bits. It keeps the writer's and
// the decimal state in registers, which the general loop, through
// pointers and a call a value, cannot, and checks each value as
// writeDecimalExact does. gp is the grid point before sample i. It
// returns the first sample it did not write, for the general loop, the
// grid point before it, and whether that sample would not decode (the
// chunk is then refused).
func writeDecimalSteady(w *BitWriter, ts []int64, vs []float64, items []decItem, ds *decState, tab *decBucketTable, g tsGrid, i int, delta uint64, gp int64) (int, int64, bool) {
	onGrid := g.interval != 0 && g.width < 32
	if !ds.baseOK || (g.interval != 0 && !onGrid) {
		// After a raw value, or with grid offsets too wide for one
		// write: the general loop. Checked here, they free a register
		// each in the loop below, which has too few for its state.
		return i, gp, false
	}
	acc, nb, buf := w.acc, w.n, w.buf
	d, dl, base := ds.d, ds.delta, ds.base
	e, order2 := ds.p.e, ds.p.order == 2
	top := uint(ds.p.w[3])
	n := len(ts)
	vs, items = vs[:n], items[:n]
	for ; i < n; i++ {
		// The timestamp: 0 + its offset on the grid, or dod 0.
		tb, tn, next := uint64(0), uint(1), gp
		if onGrid {
			next += g.interval
			z := Zigzag(ts[i] - next)
			if bits.Len64(z) > int(g.width) {
				break
			}
			tb, tn = z, 1+uint(g.width) // a reader takes next + Unzigzag(z): ts[i]
		} else if uint64(ts[i]-ts[i-1]) != delta {
			break
		}
		vb := math.Float64bits(vs[i])
		var v uint64
		var vn uint
		if vb == base && dl == 0 {
			// A repeat (see writeDecimalRun): code 0 in the first
			// bucket, zero bits.
			vn = uint(tab[0] & 0xff)
		} else {
			c := &items[i]
			if c.kind != decExact {
				break
			}
			code := c.d - d
			if order2 {
				code -= dl
			}
			z := Zigzag(code)
			l := uint(bits.Len64(z))
			if l > top {
				break // the general loop refuses it
			}
			bk := tab[l]
			wd := uint8(bk >> 8)
			if vn = uint(bk & 0xff); tn+vn > 64 {
				break
			}
			f := z & lowBits(wd)
			// The code, then the residual field's zeros.
			v = (uint64(bk>>16&0xff)<<wd | f) << (bk >> 24 & 7)
			// What a reader rebuilds from f must be c.d. The state
			// carried to the next value is c.d itself, not this
			// rebuilt copy: the check then stays off the chain from one
			// value to the next, which would otherwise run through
			// every step above.
			dd := Unzigzag(f)
			if order2 {
				dd += dl
			}
			if d+dd != c.d {
				return i, next, true
			}
			if c.d != d {
				if c.d <= -(1<<53) || c.d >= 1<<53 {
					break // nor this one
				}
				base = decValue(c.d, e)
			}
			d, dl = c.d, c.d-d
			if base != vb {
				return i, next, true
			}
		}
		if tn+vn > 64 {
			break // a repeat in a bucket too wide to share the write
		}
		gp = next
		v |= tb << vn
		vn += tn
		acc, nb, buf = putBits(acc, nb, buf, v, vn)
	}
	w.acc, w.n, w.buf = acc, nb, buf
	ds.d, ds.delta, ds.base = d, dl, base
	return i, gp, false
}

// writeDecimalSteadyMixed is writeDecimalSteady for chunks of mixed
// samples: it also writes values a residual off their scaled integer
// (arithmetic's noise), where writeDecimalSteady would return to the
// general loop at each, and writes a run of repeats at an unchanged
// interval, the most of a sparse series, as one stretch of zero bits, or,
// on a grid of offsets, offset by offset without a value's checks. These
// cost the loop registers: writeDecimalSteady, without them, stays the
// faster for chunks of exact values that change, and the two are kept
// apart.
//
// writeDecimalSteady writes samples from i ≥ 2 of a decimal chunk while
// they are the usual kind: a timestamp on the grid g within its width or,
// without a grid, an unchanged interval (dod 0), and an exact value whose
// code fits one write with the timestamp's bits. It keeps the writer's and
// the decimal state in registers, which the general loop, through
// pointers and a call a value, cannot, and checks each value as
// writeDecimalExact does. gp is the grid point before sample i. It
// returns the first sample it did not write, for the general loop, the
// grid point before it, and whether that sample would not decode (the
// chunk is then refused).
func writeDecimalSteadyMixed(w *BitWriter, ts []int64, vs []float64, items []decItem, ds *decState, tab *decBucketTable, g tsGrid, i int, delta uint64, gp int64) (int, int64, bool) {
	onGrid := g.interval != 0 && g.width < 32
	if !ds.baseOK || (g.interval != 0 && !onGrid) {
		// After a raw value, or with grid offsets too wide for one
		// write: the general loop. Checked here, they free a register
		// each in the loop below, which has too few for its state.
		return i, gp, false
	}
	acc, nb, buf := w.acc, w.n, w.buf
	d, dl, base := ds.d, ds.delta, ds.base
	e, order2 := ds.p.e, ds.p.order == 2
	top := uint(ds.p.w[3])
	n := len(ts)
	vs, items = vs[:n], items[:n]
	for ; i < n; i++ {
		// The timestamp: 0 + its offset on the grid, or dod 0.
		tb, tn, next := uint64(0), uint(1), gp
		if onGrid {
			next += g.interval
			z := Zigzag(ts[i] - next)
			if bits.Len64(z) > int(g.width) {
				break
			}
			tb, tn = z, 1+uint(g.width) // a reader takes next + Unzigzag(z): ts[i]
		} else if uint64(ts[i]-ts[i-1]) != delta {
			break
		}
		vb := math.Float64bits(vs[i])
		var v uint64
		var vn uint
		if vb == base && dl == 0 {
			// A repeat (see writeDecimalRun): code 0 in the first
			// bucket, zero bits.
			vn = uint(tab[0] & 0xff)
			if tb == 0 && (!onGrid || g.width == 0) && tn+vn <= 32 {
				// So are the repeats after it at the same interval
				// (on a grid of width 0, on their grid points): the
				// run's bits are zeros, written at once.
				step := int64(delta)
				if onGrid {
					step = g.interval
				}
				j := i + 1
				for j < n && math.Float64bits(vs[j]) == vb && ts[j]-ts[j-1] == step {
					j++
				}
				if onGrid {
					next = ts[j-1]
				}
				acc, nb, buf = putZeros(acc, nb, buf, uint(j-i)*(tn+vn))
				gp = next
				i = j - 1
				continue
			}
			if onGrid && tn+vn <= 64 {
				// On a grid of offsets (jittered scrapes of a value that
				// holds), each repeat is its offset and the same zeros:
				// the run is written without the checks of a value.
				j := i
				for {
					acc, nb, buf = putBits(acc, nb, buf, tb<<vn, tn+vn)
					gp = next
					if j++; j >= n || math.Float64bits(vs[j]) != vb {
						break
					}
					next = gp + g.interval
					z := Zigzag(ts[j] - next)
					if bits.Len64(z) > int(g.width) {
						break
					}
					tb = z
				}
				i = j - 1
				continue
			}
		} else {
			c := &items[i]
			if c.kind > decResidual {
				break // a raw value: the general loop
			}
			code := c.d - d
			if order2 {
				code -= dl
			}
			z := Zigzag(code)
			l := uint(bits.Len64(z))
			if l > top {
				break // the general loop refuses it
			}
			bk := tab[l]
			wd := uint8(bk >> 8)
			if vn = uint(bk & 0xff); tn+vn > 64 {
				break
			}
			f := z & lowBits(wd)
			// The code, then the residual field, zeros so far.
			v = (uint64(bk>>16&0xff)<<wd | f) << (bk >> 24 & 7)
			// What a reader rebuilds from f must be c.d. The state
			// carried to the next value is c.d itself, not this
			// rebuilt copy: the check then stays off the chain from one
			// value to the next, which would otherwise run through
			// every step above.
			dd := Unzigzag(f)
			if order2 {
				dd += dl
			}
			if d+dd != c.d {
				return i, next, true
			}
			if c.d != d {
				if c.d <= -(1<<53) || c.d >= 1<<53 {
					break // nor this one
				}
				base = decValue(c.d, e)
			}
			d, dl = c.d, c.d-d
			if c.kind == decResidual {
				if base+uint64(Unzigzag(c.r)) != vb {
					return i, next, true
				}
				if bits.Len64(c.r) <= int(tab[0]>>24) {
					v |= c.r // in the residual field
				} else {
					// 11110, the residual's length and its bits, after
					// the timestamp's and before the code.
					w.acc, w.n, w.buf = acc, nb, buf
					w.writeSmall(tb, tn)
					w.writeSmall(0b11110, 5)
					writeWide(w, c.r)
					acc, nb, buf = w.acc, w.n, w.buf
					tb, tn = 0, 0
				}
			} else if base != vb {
				return i, next, true
			}
		}
		if tn+vn > 64 {
			break // a repeat in a bucket too wide to share the write
		}
		gp = next
		v |= tb << vn
		vn += tn
		acc, nb, buf = putBits(acc, nb, buf, v, vn)
	}
	w.acc, w.n, w.buf = acc, nb, buf
	ds.d, ds.delta, ds.base = d, dl, base
	return i, gp, false
}

// writeDecimalExact writes the timestamp bits tb (tn of them) and value vb
// by its classification c, in one write when the value is exact and both
// are short, and reports whether a reader recovers vb: it rebuilds d from
// the fields as written and compares decValue(d) with the value, dividing
// only when d changes, as writeDecimalItem (which writes the others) does.
func writeDecimalExact(w *BitWriter, ds *decState, tb uint64, tn uint, vb uint64, c *decItem) bool {
	if c.kind != decExact {
		w.writeSmall(tb, tn)
		return writeDecimalItem(w, ds, vb, c)
	}
	prevD, prevDelta := ds.d, ds.delta
	code := c.d - prevD
	if ds.p.order == 2 {
		code -= prevDelta
	}
	z := Zigzag(code)
	ws := &ds.p.w
	l := uint8(bits.Len64(z))
	b := b2u(l > ws[0]) + b2u(l > ws[1]) + b2u(l > ws[2]) + b2u(l > ws[3])
	if b > 3 {
		return false // no width holds z
	}
	wd := ws[b]
	f := z & lowBits(wd)
	prefix := uint64(1)<<(b+1) - 2
	k := uint(ds.p.k) & 7 // the residual field, zeros
	if vn := b + 1 + uint(wd); tn+vn+k <= 64 {
		w.writeSmall((tb<<vn|prefix<<wd|f)<<k, tn+vn+k)
	} else {
		w.writeSmall(tb, tn)
		w.writeSmall(prefix, b+1)
		w.writeSmall(f, uint(wd))
		w.writeSmall(0, k)
	}
	dd := Unzigzag(f)
	if ds.p.order == 2 {
		dd += prevDelta
	}
	got := prevD + dd
	if got != prevD || !ds.baseOK {
		if got <= -(1<<53) || got >= 1<<53 {
			return false
		}
		ds.base, ds.baseOK = decValue(got, ds.p.e), true
	}
	ds.d, ds.delta = got, dd
	return ds.base == vb
}
