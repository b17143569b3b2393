package encoding

// A histogram chunk holds up to MaxHistogramChunkSamples native histograms
// of one series that share a schema, a zero threshold and a flavour
// (counter or gauge):
//
//	+------+---------+---------+-------+--------+----------+-----------+------------+--------+
//	| enc  | version | samples | flags | schema | zero thr | [thr f64] | bit stream | CRC32C |
//	| 1 B  | 1 B     | 2 B, BE | 1 B   | int8   | 1 B code | 8 B, LE   | …          | 4 B LE |
//	+------+---------+---------+-------+--------+----------+-----------+------------+--------+
//	 \________ header ________/ \_____________ body (absent when samples = 0) ____/
//
// enc is EncHistogram; version is histogramChunkVersion. Flags bit 0 marks
// a gauge chunk; other bits are zero. The zero-threshold code is 0 for a
// threshold of 0, 1…254 for 2^(code−243) (2^−128, Prometheus' default, is
// 115), and 255 when the threshold follows as raw float64 bits. The CRC32C
// (Castagnoli) covers the body followed by the version and sample-count
// bytes, so a chunk that is truncated, garbled or given a wrong count fails
// before a single histogram is decoded; it is computed incrementally, which
// keeps Bytes cheap on an open chunk.
//
// The bit stream holds the samples one after another, each:
//
//	timestamp   column
//	hint        counter chunks only: 2 bits (first); later '0' = as before, '1' + 2 bits
//	layout      '0' = spans as before, '1' + layout (the first sample has no flag):
//	            varbit-uint #positive spans, each varbit offset, varbit-uint length;
//	            then the same for the negative spans
//	count       column
//	zero count  column, guided by the count's increase
//	buckets     one column per positive bucket, then per negative bucket, in
//	            layout order, each carrying the bucket's absolute count and
//	            guided by the count's increase
//	sum         64 raw bits (first), then the difference in ulps from a
//	            predicted sum: varbit (second, third), Rice-coded (later)
//
// A column codes an integer series as the residual of each delta against
// a prediction: its first three values as varbit integers, later ones
// zigzagged and Rice-coded with a parameter adapted to the column's recent
// residuals (escape: 16 ones, a 7-bit width and the value). The prediction
// is the previous delta (so a steady series costs one bit per value) or,
// for a guided column whose recent residuals say it does better, the
// column's usual share of the count's increase in this sample; writer and
// reader keep the same statistics, so no bits say which. A bucket's column
// belongs to its bucket index, not to its position: when the layout
// changes, buckets present before keep their history and new buckets start
// fresh, so appearing and vanishing buckets cost only the new layout, and
// every sample decodes to exactly the spans and buckets it was appended
// with. Varbit integers use a unary class and a payload of 0, 3, 6, 9, 12,
// 18, 25, 56 or 64 bits.
//
// The stream is zero-padded to a byte; a reader decodes exactly the counted
// samples and rejects leftover bytes or non-zero padding.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"slices"
)

// ErrNeedNewChunk is returned by HistogramChunk.Append when the histogram
// cannot join the chunk (a different schema, zero threshold or flavour, or
// a full chunk). The chunk is left unchanged; the caller starts a new one.
var ErrNeedNewChunk = errors.New("encoding: sample needs a new chunk")

// MaxHistogramChunkSamples is the most samples one histogram chunk holds
// (the count is a 16-bit header field).
const MaxHistogramChunkSamples = math.MaxUint16

const (
	histogramChunkVersion byte = 1
	histogramHeaderLen         = 4 // enc, version, sample count
	histogramFlagGauge    byte = 1
	histZeroThrRaw             = 255
	histZeroThrBias            = 243
)

// histSide is the layout and column state of one side (positive or
// negative) of the histograms in a chunk, shared by writer and reader.
type histSide struct {
	spans   []BucketSpan
	idx     []int64 // absolute bucket index of each column
	cols    []histColumn
	tmpIdx  []int64
	tmpCols []histColumn
}

func (s *histSide) reset() {
	s.spans, s.idx, s.cols = s.spans[:0], s.idx[:0], s.cols[:0]
}

// setLayout switches to spans, carrying each bucket's column over when its
// index was in the old layout and starting a fresh one otherwise. Bucket
// indexes of a valid layout strictly increase, so a merge pass suffices.
func (s *histSide) setLayout(spans []BucketSpan) {
	s.tmpIdx = s.tmpIdx[:0]
	var ix int64
	for i, sp := range spans {
		if i == 0 {
			ix = int64(sp.Offset)
		} else {
			ix += int64(sp.Offset)
		}
		for range sp.Length {
			s.tmpIdx = append(s.tmpIdx, ix)
			ix++
		}
	}
	s.tmpCols = s.tmpCols[:0]
	j := 0
	for _, ix := range s.tmpIdx {
		for j < len(s.idx) && s.idx[j] < ix {
			j++
		}
		if j < len(s.idx) && s.idx[j] == ix {
			s.tmpCols = append(s.tmpCols, s.cols[j])
		} else {
			s.tmpCols = append(s.tmpCols, histColumn{})
		}
	}
	s.idx, s.tmpIdx = s.tmpIdx, s.idx
	s.cols, s.tmpCols = s.tmpCols, s.cols
	s.spans = append(s.spans[:0], spans...)
}

func putHistLayout(w *histBitWriter, spans []BucketSpan) {
	putHistVarbitUint(w, uint64(len(spans)))
	for _, sp := range spans {
		putHistVarbit(w, int64(sp.Offset))
		putHistVarbitUint(w, uint64(sp.Length))
	}
}

// HistogramChunk is an open chunk of native histograms being appended to.
// It is not safe for concurrent use.
type HistogramChunk struct {
	w       histBitWriter
	n       int
	minT    int64
	maxT    int64
	ts      histColumn
	gauge   bool
	schema  int32
	zeroThr uint64 // float64 bits
	hint    CounterResetHint
	pos     histSide
	neg     histSide
	count   histColumn
	zero    histColumn
	sum     histSum
	crc     uint32 // CRC32C of body bytes [histogramHeaderLen, crcDone)
	crcDone int
}

// NewHistogramChunk returns an empty chunk.
func NewHistogramChunk() *HistogramChunk {
	c := &HistogramChunk{}
	c.Reset()
	return c
}

// Reset empties the chunk, keeping its buffers.
func (c *HistogramChunk) Reset() {
	b := append(c.w.b[:0], byte(EncHistogram), histogramChunkVersion, 0, 0)
	pos, neg := c.pos, c.neg
	pos.reset()
	neg.reset()
	*c = HistogramChunk{w: histBitWriter{b: b}, pos: pos, neg: neg, crcDone: histogramHeaderLen}
}

// NumSamples returns the number of histograms in the chunk.
func (c *HistogramChunk) NumSamples() int { return c.n }

// MinTime returns the first timestamp, or 0 for an empty chunk.
func (c *HistogramChunk) MinTime() int64 { return c.minT }

// MaxTime returns the last timestamp, or 0 for an empty chunk.
func (c *HistogramChunk) MaxTime() int64 { return c.maxT }

// Append adds histogram h at time t. t must be greater than the chunk's
// last timestamp (else an error wrapping ErrOutOfOrder) and h must pass
// Validate (else its *HistogramError). A histogram whose schema, zero
// threshold or flavour (gauge or counter) differs from the chunk's, or
// that would exceed MaxHistogramChunkSamples, gives an error wrapping
// ErrNeedNewChunk. On any error the chunk is unchanged. Changes of bucket
// layout are absorbed by the chunk. Append does not keep h.
func (c *HistogramChunk) Append(t int64, h *Histogram) error {
	if h == nil {
		return &HistogramError{Field: "Histogram", Reason: "nil"}
	}
	if c.n > 0 && t <= c.maxT {
		return fmt.Errorf("%w: histogram at %d after %d", ErrOutOfOrder, t, c.maxT)
	}
	if err := h.Validate(); err != nil {
		return err
	}
	gauge := h.CounterResetHint == GaugeType
	thr := math.Float64bits(h.ZeroThreshold)
	if c.n > 0 {
		switch {
		case c.n >= MaxHistogramChunkSamples:
			return fmt.Errorf("%w: chunk holds the maximum of %d samples", ErrNeedNewChunk, MaxHistogramChunkSamples)
		case h.Schema != c.schema:
			return fmt.Errorf("%w: schema %d, chunk has %d", ErrNeedNewChunk, h.Schema, c.schema)
		case thr != c.zeroThr:
			return fmt.Errorf("%w: zero threshold %v, chunk has %v", ErrNeedNewChunk, h.ZeroThreshold, math.Float64frombits(c.zeroThr))
		case gauge != c.gauge:
			return fmt.Errorf("%w: gauge %v, chunk has gauge %v", ErrNeedNewChunk, gauge, c.gauge)
		}
	}
	w := &c.w
	if c.n == 0 {
		c.writeBodyHeader(h, gauge)
		c.minT = t
	}
	c.ts.put(w, t, histGuide{})
	c.maxT = t

	if !gauge {
		switch {
		case c.n == 0:
			w.writeBits(uint64(h.CounterResetHint), 2)
		case h.CounterResetHint == c.hint:
			w.writeBits(0, 1)
		default:
			w.writeBits(0b100|uint64(h.CounterResetHint), 3)
		}
		c.hint = h.CounterResetHint
	}

	if c.n == 0 || !slices.Equal(h.PositiveSpans, c.pos.spans) || !slices.Equal(h.NegativeSpans, c.neg.spans) {
		if c.n > 0 {
			w.writeBits(1, 1)
		}
		putHistLayout(w, h.PositiveSpans)
		putHistLayout(w, h.NegativeSpans)
		c.pos.setLayout(h.PositiveSpans)
		c.neg.setLayout(h.NegativeSpans)
	} else {
		w.writeBits(0, 1)
	}

	c.count.put(w, int64(h.Count), histGuide{})
	inc := newHistGuide(c.count.delta) // the count's increase guides the buckets
	c.zero.put(w, int64(h.ZeroCount), inc)
	putHistBuckets(w, c.pos.cols, h.PositiveBuckets, inc)
	putHistBuckets(w, c.neg.cols, h.NegativeBuckets, inc)
	c.sum.put(w, math.Float64bits(h.Sum), inc)

	c.n++
	binary.BigEndian.PutUint16(c.w.b[2:4], uint16(c.n))
	return nil
}

func (c *HistogramChunk) writeBodyHeader(h *Histogram, gauge bool) {
	var flags byte
	if gauge {
		flags |= histogramFlagGauge
	}
	c.gauge, c.schema = gauge, h.Schema
	c.zeroThr = math.Float64bits(h.ZeroThreshold)
	b := append(c.w.b, flags, byte(int8(h.Schema)))
	b = appendHistZeroThr(b, h.ZeroThreshold)
	c.w.b, c.w.free = b, 0
}

func appendHistZeroThr(b []byte, thr float64) []byte {
	if math.Float64bits(thr) == 0 {
		return append(b, 0)
	}
	if frac, exp := math.Frexp(thr); frac == 0.5 {
		if code := exp - 1 + histZeroThrBias; code >= 1 && code < histZeroThrRaw {
			return append(b, byte(code))
		}
	}
	b = append(b, histZeroThrRaw)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(thr))
}

// putHistBuckets writes the absolute count of every bucket, resolving the
// delta coding of the model.
func putHistBuckets(w *histBitWriter, cols []histColumn, deltas []int64, g histGuide) {
	var abs int64
	for i, d := range deltas {
		abs += d
		cols[i].put(w, abs, g)
	}
}

// Bytes returns the encoded chunk: EncHistogram first, self-describing and
// checksummed. It costs O(1) amortised on an open chunk; the slice is valid
// until the next Append or Reset and must not be modified.
func (c *HistogramChunk) Bytes() []byte {
	b := c.w.b
	var sum uint32
	if c.n > 0 {
		// Every body byte but the last is final: fold it in once.
		if last := len(b) - 1; last > c.crcDone {
			c.crc = crc32.Update(c.crc, castagnoli, b[c.crcDone:last])
			c.crcDone = last
		}
		sum = crc32.Update(c.crc, castagnoli, b[c.crcDone:])
	}
	sum = crc32.Update(sum, castagnoli, b[1:histogramHeaderLen])
	if cap(b)-len(b) < 4 {
		c.w.b = slices.Grow(b, 4)
		b = c.w.b
	}
	return binary.LittleEndian.AppendUint32(b, sum)
}

// HistogramIterator decodes a histogram chunk. It reads the bytes it was
// given in place: they must not change while it is in use. Reuse one with
// Reset to decode many chunks without allocating.
type HistogramIterator struct {
	r        histBitReader
	total    int
	i        int
	done     bool
	gauge    bool
	schema   int32
	zeroThr  float64
	t        int64
	ts       histColumn
	hint     CounterResetHint
	pos      histSide
	neg      histSide
	spansTmp []BucketSpan
	pBuckets []int64
	nBuckets []int64
	count    histColumn
	zero     histColumn
	countV   uint64
	zeroV    uint64
	sum      histSum
	err      error
}

// NewHistogramIterator checks the chunk's header and checksum and returns
// an iterator positioned before its first sample, or an error wrapping
// ErrCorrupt.
func NewHistogramIterator(b []byte) (*HistogramIterator, error) {
	it := &HistogramIterator{}
	if err := it.Reset(b); err != nil {
		return nil, err
	}
	return it, nil
}

// Reset points the iterator at chunk b, as NewHistogramIterator does. On
// error the iterator yields nothing and Err returns the error.
func (it *HistogramIterator) Reset(b []byte) error {
	pos, neg := it.pos, it.neg
	pos.reset()
	neg.reset()
	*it = HistogramIterator{
		pos: pos, neg: neg,
		spansTmp: it.spansTmp[:0], pBuckets: it.pBuckets[:0], nBuckets: it.nBuckets[:0],
	}
	it.err = it.init(b)
	return it.err
}

func (it *HistogramIterator) init(b []byte) error {
	if len(b) < histogramHeaderLen+4 {
		return corruptf("histogram chunk of %d bytes is shorter than its header", len(b))
	}
	if ChunkEncoding(b[0]) != EncHistogram {
		return corruptf("chunk encoding %d is not a histogram chunk", b[0])
	}
	if b[1] != histogramChunkVersion {
		return corruptf("histogram chunk version %d, want %d", b[1], histogramChunkVersion)
	}
	body, stored := b[histogramHeaderLen:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	sum := crc32.Update(crc32.Update(0, castagnoli, body), castagnoli, b[1:histogramHeaderLen])
	if sum != stored {
		return corruptf("histogram chunk checksum mismatch: stored %08x, computed %08x", stored, sum)
	}
	it.total = int(binary.BigEndian.Uint16(b[2:4]))
	if it.total == 0 {
		if len(body) != 0 {
			return corruptf("empty histogram chunk has a %d-byte body", len(body))
		}
		return nil
	}
	if len(body) < 3 {
		return corruptf("histogram chunk body of %d bytes is shorter than its header", len(body))
	}
	flags := body[0]
	if flags&^histogramFlagGauge != 0 {
		return corruptf("histogram chunk has unknown flags %#x", flags)
	}
	it.gauge = flags&histogramFlagGauge != 0
	it.schema = int32(int8(body[1]))
	if it.schema < MinHistogramSchema || it.schema > MaxHistogramSchema {
		return corruptf("histogram chunk schema %d out of range", it.schema)
	}
	switch code := body[2]; code {
	case 0:
		it.zeroThr, body = 0, body[3:]
	case histZeroThrRaw:
		if len(body) < 3+8 {
			return corruptf("histogram chunk zero threshold truncated")
		}
		it.zeroThr = math.Float64frombits(binary.LittleEndian.Uint64(body[3:]))
		if !(it.zeroThr >= 0) || math.IsInf(it.zeroThr, 1) {
			return corruptf("histogram chunk zero threshold %v is invalid", it.zeroThr)
		}
		body = body[3+8:]
	default:
		it.zeroThr, body = math.Ldexp(1, int(code)-histZeroThrBias), body[3:]
	}
	it.r.reset(body)
	return nil
}

// Next advances to the next histogram and reports whether there is one.
// At the end, or on corrupt data (see Err), it returns false.
func (it *HistogramIterator) Next() bool {
	if it.err != nil {
		return false
	}
	if it.i >= it.total {
		if !it.done {
			it.done = true
			// Only zero padding to the byte boundary may be left.
			r := &it.r
			if n := r.remaining(); n >= 8 || r.readBits(uint(n)) != 0 {
				it.err = corruptf("histogram chunk has %d bits after its %d samples", n, it.total)
			}
		}
		return false
	}
	if err := it.decode(); err != nil {
		it.err = fmt.Errorf("histogram sample %d of %d: %w", it.i, it.total, err)
		return false
	}
	it.i++
	return true
}

func (it *HistogramIterator) decode() error {
	r := &it.r
	prev := it.t
	it.t, _ = it.ts.get(r, histGuide{}) // wraps as the writer's subtraction did
	if it.i > 0 && it.t <= prev && !r.bad {
		return corruptf("timestamp %d not after %d", it.t, prev)
	}

	if it.gauge {
		it.hint = GaugeType
	} else if it.i == 0 || r.readBit() {
		it.hint = CounterResetHint(r.readBits(2))
		if it.hint == GaugeType {
			return corruptf("gauge hint in a counter chunk")
		}
	}

	if it.i == 0 || r.readBit() {
		if err := it.readLayout(&it.pos); err != nil {
			return err
		}
		if err := it.readLayout(&it.neg); err != nil {
			return err
		}
		if uint64(len(it.pos.cols)+len(it.neg.cols)) > r.remaining() {
			return corruptf("layout of %d buckets exceeds the rest of the chunk", len(it.pos.cols)+len(it.neg.cols))
		}
	}

	count, ok1 := it.count.get(r, histGuide{})
	inc := newHistGuide(it.count.delta)
	zero, ok2 := it.zero.get(r, inc)
	var ok3, ok4 bool
	var pSum, nSum uint64
	it.pBuckets, pSum, ok3 = getHistBuckets(r, it.pos.cols, it.pBuckets, inc)
	it.nBuckets, nSum, ok4 = getHistBuckets(r, it.neg.cols, it.nBuckets, inc)
	sumBits, ok5 := it.sum.get(r, inc)
	if r.bad {
		return corruptf("truncated")
	}
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return corruptf("malformed value")
	}
	it.countV, it.zeroV = uint64(count), uint64(zero)
	total, c1 := bits.Add64(pSum, nSum, 0)
	total, c2 := bits.Add64(total, it.zeroV, 0)
	if c1|c2 != 0 {
		return corruptf("bucket counts overflow")
	}
	if math.IsNaN(math.Float64frombits(sumBits)) {
		if total > it.countV {
			return corruptf("%d observations in buckets, more than count %d", total, it.countV)
		}
	} else if total != it.countV {
		return corruptf("%d observations in buckets, but count is %d", total, it.countV)
	}
	return nil
}

// readLayout reads one side's spans, checking what Validate checks, and
// bounding every length by the bits left so corrupt input cannot make it
// allocate without limit.
func (it *HistogramIterator) readLayout(s *histSide) error {
	r := &it.r
	n := readHistVarbitUint(r)
	if n > r.remaining()/2 {
		return corruptf("%d spans exceed the rest of the chunk", n)
	}
	spans := it.spansTmp[:0]
	var buckets uint64
	for i := range int(n) {
		off := readHistVarbit(r)
		length := readHistVarbitUint(r)
		if off < math.MinInt32 || off > math.MaxInt32 || (i > 0 && off < 0) {
			return corruptf("span offset %d", off)
		}
		if length > math.MaxUint32 {
			return corruptf("span length %d", length)
		}
		buckets += length
		if buckets > r.remaining() {
			return corruptf("spans of %d buckets exceed the rest of the chunk", buckets)
		}
		spans = append(spans, BucketSpan{Offset: int32(off), Length: uint32(length)})
	}
	it.spansTmp = spans
	if r.bad {
		return corruptf("truncated layout")
	}
	s.setLayout(spans)
	return nil
}

// getHistBuckets reads a side's absolute counts into the model's delta coding
// and returns their sum. ok is false for a malformed or negative count.
func getHistBuckets(r *histBitReader, cols []histColumn, dst []int64, g histGuide) (out []int64, sum uint64, ok bool) {
	dst = slices.Grow(dst[:0], len(cols))[:len(cols)]
	var prev int64
	for i := range cols {
		v, vok := cols[i].get(r, g)
		if !vok || v < 0 {
			return dst, 0, false
		}
		dst[i] = v - prev
		prev = v
		var carry uint64
		sum, carry = bits.Add64(sum, uint64(v), 0)
		if carry != 0 {
			return dst, 0, false
		}
	}
	return dst, sum, true
}

// SeekTo advances to the first histogram at or after t and reports whether
// there is one. It never moves backwards: if the current histogram is
// already at or after t, it stays.
func (it *HistogramIterator) SeekTo(t int64) bool {
	if it.err != nil || it.done {
		return false
	}
	if it.i > 0 && it.t >= t {
		return true
	}
	for it.Next() {
		if it.t >= t {
			return true
		}
	}
	return false
}

// AtT returns the timestamp of the current histogram.
func (it *HistogramIterator) AtT() int64 { return it.t }

// AtHistogram returns the current histogram and its timestamp. With a
// non-nil h it decodes into h, reusing h's slices, and allocates nothing
// once they are large enough; with nil it allocates a new Histogram.
func (it *HistogramIterator) AtHistogram(h *Histogram) (int64, *Histogram) {
	if h == nil {
		h = &Histogram{}
	}
	h.CounterResetHint = it.hint
	h.Schema = it.schema
	h.ZeroThreshold = it.zeroThr
	h.ZeroCount = it.zeroV
	h.Count = it.countV
	h.Sum = math.Float64frombits(it.sum.prev)
	h.PositiveSpans = append(h.PositiveSpans[:0], it.pos.spans...)
	h.NegativeSpans = append(h.NegativeSpans[:0], it.neg.spans...)
	h.PositiveBuckets = append(h.PositiveBuckets[:0], it.pBuckets...)
	h.NegativeBuckets = append(h.NegativeBuckets[:0], it.nBuckets...)
	return it.t, h
}

// Err returns the error that stopped the iterator, or nil. Corrupt data
// gives an error wrapping ErrCorrupt.
func (it *HistogramIterator) Err() error { return it.err }
