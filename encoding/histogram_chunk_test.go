package encoding

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// staleNaN is Prometheus' stale marker, a NaN with a fixed payload.
var staleNaN = math.Float64frombits(0x7ff0000000000002)

// histFromAbs builds a valid histogram from absolute bucket counts keyed by
// bucket index (sorted ascending per side). split makes it cut a span in
// two with a zero offset now and then, which Validate allows and a chunk
// must reproduce exactly.
func histFromAbs(rng *rand.Rand, schema int32, posIdx []int64, pos []int64, negIdx []int64, neg []int64, zero uint64, sum float64, hint CounterResetHint) *Histogram {
	h := &Histogram{CounterResetHint: hint, Schema: schema, ZeroThreshold: 0x1p-128, ZeroCount: zero, Sum: sum}
	h.PositiveSpans, h.PositiveBuckets = spansFromAbs(rng, posIdx, pos)
	h.NegativeSpans, h.NegativeBuckets = spansFromAbs(rng, negIdx, neg)
	h.Count = zero
	for _, v := range pos {
		h.Count += uint64(v)
	}
	for _, v := range neg {
		h.Count += uint64(v)
	}
	if math.IsNaN(sum) && rng != nil && rng.IntN(2) == 0 {
		h.Count += uint64(rng.IntN(5)) // NaN observations count but fill no bucket
	}
	return h
}

func spansFromAbs(rng *rand.Rand, idx []int64, abs []int64) ([]BucketSpan, []int64) {
	var spans []BucketSpan
	var deltas []int64
	var prevAbs int64
	var next int64 // index after the last bucket of the last span
	for i, ix := range idx {
		switch {
		case i == 0:
			spans = append(spans, BucketSpan{Offset: int32(ix), Length: 1})
		case ix == next && (rng == nil || rng.IntN(8) != 0):
			spans[len(spans)-1].Length++
		default:
			spans = append(spans, BucketSpan{Offset: int32(ix - next), Length: 1})
		}
		next = ix + 1
		deltas = append(deltas, abs[i]-prevAbs)
		prevAbs = abs[i]
	}
	return spans, deltas
}

// histSeries generates a series of histograms as a scraped native
// histogram evolves: counts grow, buckets appear and vanish, the counter
// resets now and then, sums are NaN or stale at times.
type histSeries struct {
	rng    *rand.Rand
	schema int32
	gauge  bool
	pos    map[int64]int64
	neg    map[int64]int64
	zero   uint64
	sum    float64
}

func newHistSeries(seed uint64, schema int32, gauge bool) *histSeries {
	return &histSeries{rng: rand.New(rand.NewPCG(seed, 7)), schema: schema, gauge: gauge,
		pos: map[int64]int64{}, neg: map[int64]int64{}}
}

func (s *histSeries) next() *Histogram {
	rng := s.rng
	hint := UnknownCounterReset
	if s.gauge {
		hint = GaugeType
	} else if rng.IntN(3) == 0 {
		hint = NotCounterReset
	}
	switch r := rng.IntN(40); {
	case r == 0 && !s.gauge: // counter reset
		clear(s.pos)
		clear(s.neg)
		s.zero, s.sum = 0, 0
		hint = CounterReset
	case r == 1: // a bucket vanishes
		for k := range s.pos {
			delete(s.pos, k)
			break
		}
	case r == 2: // a negative bucket vanishes
		for k := range s.neg {
			delete(s.neg, k)
			break
		}
	}
	for range rng.IntN(4) {
		ix := int64(rng.IntN(30) - 10)
		if rng.IntN(4) == 0 {
			ix = int64(rng.IntN(2000) - 1000)
		}
		if rng.IntN(3) == 0 {
			s.neg[ix] += int64(rng.IntN(20))
		} else {
			s.pos[ix] += int64(rng.IntN(50))
		}
	}
	for k := range s.pos {
		if s.gauge {
			s.pos[k] = max(0, s.pos[k]+int64(rng.IntN(21)-10))
		} else {
			s.pos[k] += int64(rng.IntN(100))
		}
	}
	s.zero += uint64(rng.IntN(3))
	s.sum += rng.Float64() * 100
	sum := s.sum
	switch rng.IntN(30) {
	case 0:
		sum = math.NaN()
	case 1:
		sum = staleNaN
	case 2:
		sum = math.Float64frombits(0x7ff8dead0000beef) // a NaN with a payload
	}
	posIdx, pos := sortedAbs(s.pos)
	negIdx, neg := sortedAbs(s.neg)
	return histFromAbs(rng, s.schema, posIdx, pos, negIdx, neg, s.zero, sum, hint)
}

func sortedAbs(m map[int64]int64) ([]int64, []int64) {
	idx := make([]int64, 0, len(m))
	for k := range m {
		idx = append(idx, k)
	}
	slices.Sort(idx)
	abs := make([]int64, len(idx))
	for i, k := range idx {
		abs[i] = m[k]
	}
	return idx, abs
}

type histSample struct {
	t int64
	h *Histogram
}

func requireHistsEqual(t *testing.T, want []histSample, b []byte) {
	t.Helper()
	it, err := NewHistogramIterator(b)
	require.NoError(t, err)
	var reuse Histogram
	for i, w := range want {
		require.True(t, it.Next(), "sample %d: %v", i, it.Err())
		ts, h := it.AtHistogram(&reuse)
		require.Equal(t, w.t, ts, "sample %d", i)
		require.Same(t, &reuse, h)
		require.True(t, w.h.Equal(h), "sample %d:\nwant %+v\ngot  %+v", i, w.h, h)
		_, fresh := it.AtHistogram(nil)
		require.True(t, w.h.Equal(fresh), "sample %d (fresh)", i)
	}
	require.False(t, it.Next())
	require.NoError(t, it.Err())
}

func fillChunk(t testing.TB, c *HistogramChunk, s *histSeries, n int) []histSample {
	var out []histSample
	ts := int64(1_700_000_000_000)
	for range n {
		ts += 15_000 + int64(s.rng.IntN(3)) - 1
		h := s.next()
		require.NoError(t, c.Append(ts, h))
		out = append(out, histSample{ts, h.Copy()})
	}
	return out
}

func TestHistogramChunkRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		schema int32
		gauge  bool
		n      int
	}{
		{"counter/schema3", 3, false, 120},
		{"counter/schema-4", -4, false, 300},
		{"counter/schema8", 8, false, 50},
		{"gauge/schema0", 0, true, 200},
		{"single", 2, false, 1},
		{"two", 2, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(5) {
				c := NewHistogramChunk()
				want := fillChunk(t, c, newHistSeries(seed, tc.schema, tc.gauge), tc.n)
				require.Equal(t, tc.n, c.NumSamples())
				require.Equal(t, want[0].t, c.MinTime())
				require.Equal(t, want[len(want)-1].t, c.MaxTime())
				b := c.Bytes()
				require.Equal(t, byte(EncHistogram), b[0])
				enc, err := EncodingOf(b)
				require.NoError(t, err)
				require.Equal(t, EncHistogram, enc)
				requireHistsEqual(t, want, b)
			}
		})
	}
}

// TestHistogramChunkOpenBytes reads the chunk after every append: Bytes on
// an open chunk must always be a complete chunk.
func TestHistogramChunkOpenBytes(t *testing.T) {
	c := NewHistogramChunk()
	s := newHistSeries(42, 1, false)
	var want []histSample
	for i := range 100 {
		ts := int64(i) * 1000
		h := s.next()
		require.NoError(t, c.Append(ts, h))
		want = append(want, histSample{ts, h.Copy()})
		requireHistsEqual(t, want, c.Bytes())
		if i%7 == 0 { // calling Bytes twice in a row gives the same chunk
			requireHistsEqual(t, want, c.Bytes())
		}
	}
}

func TestHistogramChunkEdgeCases(t *testing.T) {
	empty := &Histogram{Schema: 0}
	negOnly := &Histogram{Schema: 1, Count: 3, NegativeSpans: []BucketSpan{{Offset: -5, Length: 2}}, NegativeBuckets: []int64{1, 1}, Sum: -7}
	zeroOnly := &Histogram{Schema: 1, ZeroThreshold: 0.001, ZeroCount: 9, Count: 9, Sum: 0}
	big := &Histogram{Schema: -4, Count: math.MaxInt64, Sum: math.Inf(1),
		PositiveSpans: []BucketSpan{{Offset: math.MinInt32, Length: 1}, {Offset: math.MaxInt32, Length: 1}}, PositiveBuckets: []int64{math.MaxInt64 - 5, -(math.MaxInt64 - 5) + 5}}
	zeroLen := &Histogram{Schema: 1, Count: 2, PositiveSpans: []BucketSpan{{Offset: 3, Length: 0}, {Offset: 0, Length: 2}, {Offset: 0, Length: 0}}, PositiveBuckets: []int64{2, -2}, Sum: 1}
	stale := &Histogram{Schema: 3, Sum: staleNaN}
	nanCount := &Histogram{Schema: 3, Sum: math.NaN(), Count: 10, ZeroCount: 1}
	negZero := &Histogram{Schema: 3, Sum: math.Copysign(0, -1)}
	cases := map[string][]*Histogram{
		"empty":         {empty, empty, empty},
		"negative only": {negOnly, zeroOnly.Copy()},
		"zero only":     {zeroOnly, zeroOnly},
		"extremes":      {big, big, &Histogram{Schema: -4, Sum: math.Inf(-1)}, big},
		"zero length":   {zeroLen, {Schema: 1}, zeroLen},
		"stale":         {stale, stale, nanCount, stale, negZero},
	}
	cases["negative only"][1].Schema = 1
	cases["negative only"][1].ZeroThreshold = 0
	cases["zero only"][1] = zeroOnly.Copy()
	for i := range cases["zero only"] {
		cases["zero only"][i].Schema = 1
	}
	cases["stale"][4].Schema = 3
	for name, hs := range cases {
		t.Run(name, func(t *testing.T) {
			for _, ts0 := range []int64{math.MinInt64, -1, 0, math.MaxInt64 - 10} {
				c := NewHistogramChunk()
				var want []histSample
				for i, h := range hs {
					ts := ts0 + int64(i)
					if i == 1 && ts0 == math.MinInt64 {
						ts = math.MaxInt64 - 5 // a delta that overflows int64
					} else if i > 1 && ts0 == math.MinInt64 {
						ts = math.MaxInt64 - 5 + int64(i)
					}
					require.NoError(t, c.Append(ts, h), "sample %d", i)
					want = append(want, histSample{ts, h})
				}
				requireHistsEqual(t, want, c.Bytes())
			}
		})
	}
}

func TestHistogramChunkZeroThresholds(t *testing.T) {
	for _, thr := range []float64{0, 0x1p-128, 1, 0x1p-242, 0x1p11, 0x1p12, 0x1p-300, 0.001, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		c := NewHistogramChunk()
		h := &Histogram{Schema: 2, ZeroThreshold: thr, ZeroCount: 1, Count: 1, Sum: 0.5}
		require.NoError(t, c.Append(1, h))
		require.NoError(t, c.Append(2, h))
		requireHistsEqual(t, []histSample{{1, h}, {2, h}}, c.Bytes())
	}
}

func TestHistogramChunkHints(t *testing.T) {
	c := NewHistogramChunk()
	var want []histSample
	for i, hint := range []CounterResetHint{NotCounterReset, NotCounterReset, CounterReset, UnknownCounterReset, UnknownCounterReset, CounterReset, NotCounterReset} {
		h := &Histogram{CounterResetHint: hint, Schema: 0, Count: uint64(i), ZeroCount: uint64(i), Sum: float64(i)}
		require.NoError(t, c.Append(int64(i), h))
		want = append(want, histSample{int64(i), h})
	}
	requireHistsEqual(t, want, c.Bytes())
}

func TestHistogramChunkNeedNewChunk(t *testing.T) {
	base := &Histogram{Schema: 3, ZeroThreshold: 0x1p-128, Count: 2, ZeroCount: 2, Sum: 1}
	for name, mod := range map[string]func(h *Histogram){
		"schema":         func(h *Histogram) { h.Schema = 2 },
		"zero threshold": func(h *Histogram) { h.ZeroThreshold = 0.5 },
		"threshold sign": func(h *Histogram) { h.ZeroThreshold = 0 },
		"gauge":          func(h *Histogram) { h.CounterResetHint = GaugeType },
	} {
		t.Run(name, func(t *testing.T) {
			c := NewHistogramChunk()
			require.NoError(t, c.Append(10, base))
			before := slices.Clone(c.Bytes())
			h := base.Copy()
			mod(h)
			err := c.Append(20, h)
			require.ErrorIs(t, err, ErrNeedNewChunk)
			require.Equal(t, before, c.Bytes(), "a refused append must leave the chunk unchanged")
			require.Equal(t, 1, c.NumSamples())
			require.Equal(t, int64(10), c.MaxTime())
			// The chunk goes on taking compatible samples.
			require.NoError(t, c.Append(20, base))
			requireHistsEqual(t, []histSample{{10, base}, {20, base}}, c.Bytes())
			// A fresh chunk takes the refused histogram.
			c2 := NewHistogramChunk()
			require.NoError(t, c2.Append(20, h))
		})
	}
	t.Run("gauge to counter", func(t *testing.T) {
		c := NewHistogramChunk()
		g := base.Copy()
		g.CounterResetHint = GaugeType
		require.NoError(t, c.Append(1, g))
		require.ErrorIs(t, c.Append(2, base), ErrNeedNewChunk)
	})
}

func TestHistogramChunkFull(t *testing.T) {
	c := NewHistogramChunk()
	h := &Histogram{Schema: 0}
	for i := range MaxHistogramChunkSamples {
		require.NoError(t, c.Append(int64(i), h))
	}
	require.ErrorIs(t, c.Append(math.MaxInt64, h), ErrNeedNewChunk)
	it, err := NewHistogramIterator(c.Bytes())
	require.NoError(t, err)
	n := 0
	for it.Next() {
		n++
	}
	require.NoError(t, it.Err())
	require.Equal(t, MaxHistogramChunkSamples, n)
}

func TestHistogramChunkOutOfOrderAndInvalid(t *testing.T) {
	c := NewHistogramChunk()
	h := &Histogram{Schema: 0, Count: 1, ZeroCount: 1}
	require.NoError(t, c.Append(100, h))
	before := slices.Clone(c.Bytes())
	require.ErrorIs(t, c.Append(100, h), ErrOutOfOrder)
	require.ErrorIs(t, c.Append(99, h), ErrOutOfOrder)

	bad := h.Copy()
	bad.Count = 5
	err := c.Append(200, bad)
	require.ErrorIs(t, err, ErrInvalidHistogram)
	var he *HistogramError
	require.True(t, errors.As(err, &he))
	require.Equal(t, "Count", he.Field)
	require.Error(t, c.Append(200, nil))
	require.Equal(t, before, c.Bytes())
	require.Equal(t, 1, c.NumSamples())
}

func TestHistogramChunkReset(t *testing.T) {
	c := NewHistogramChunk()
	fillChunk(t, c, newHistSeries(1, 3, false), 50)
	c.Reset()
	require.Equal(t, 0, c.NumSamples())
	it, err := NewHistogramIterator(c.Bytes())
	require.NoError(t, err)
	require.False(t, it.Next())
	require.NoError(t, it.Err())
	// After Reset the chunk is like new, gauge or not.
	want := fillChunk(t, c, newHistSeries(2, 0, true), 40)
	requireHistsEqual(t, want, c.Bytes())
}

func TestHistogramIteratorSeek(t *testing.T) {
	c := NewHistogramChunk()
	want := fillChunk(t, c, newHistSeries(3, 3, false), 100)
	it, err := NewHistogramIterator(c.Bytes())
	require.NoError(t, err)
	require.True(t, it.SeekTo(want[10].t-1))
	require.Equal(t, want[10].t, it.AtT())
	require.True(t, it.SeekTo(want[5].t), "SeekTo never moves back")
	require.Equal(t, want[10].t, it.AtT())
	require.True(t, it.SeekTo(want[50].t))
	_, h := it.AtHistogram(nil)
	require.True(t, want[50].h.Equal(h))
	require.True(t, it.Next())
	require.Equal(t, want[51].t, it.AtT())
	require.False(t, it.SeekTo(want[99].t+1))
	require.NoError(t, it.Err())
	require.False(t, it.SeekTo(want[0].t), "an exhausted iterator stays exhausted")

	// Reset reuses the iterator.
	require.NoError(t, it.Reset(c.Bytes()))
	require.True(t, it.SeekTo(math.MinInt64))
	require.Equal(t, want[0].t, it.AtT())
}

// TestHistogramChunkTruncation cuts the chunk at every length: each prefix
// must fail, at NewHistogramIterator or before the last sample, and never
// yield a wrong histogram.
func TestHistogramChunkTruncation(t *testing.T) {
	c := NewHistogramChunk()
	want := fillChunk(t, c, newHistSeries(4, 3, false), 60)
	b := slices.Clone(c.Bytes())
	for n := range len(b) {
		requireCorruptChunk(t, want, b[:n], "truncated to %d of %d bytes", n, len(b))
	}
	// Extra bytes after the chunk are corrupt too.
	requireCorruptChunk(t, want, append(slices.Clone(b), 0), "extra byte")
}

// TestHistogramChunkBitFlips flips every bit of a chunk, one at a time.
func TestHistogramChunkBitFlips(t *testing.T) {
	c := NewHistogramChunk()
	want := fillChunk(t, c, newHistSeries(5, 2, false), 30)
	b := slices.Clone(c.Bytes())
	for i := range len(b) * 8 {
		g := slices.Clone(b)
		g[i/8] ^= 1 << (i % 8)
		requireCorruptChunk(t, want, g, "bit %d flipped", i)
	}
}

// requireCorruptChunk decodes b and requires an ErrCorrupt error, with
// every histogram decoded before it matching want.
func requireCorruptChunk(t *testing.T, want []histSample, b []byte, msg string, args ...any) {
	t.Helper()
	it, err := NewHistogramIterator(b)
	if err != nil {
		require.ErrorIs(t, err, ErrCorrupt, append([]any{msg}, args...)...)
		return
	}
	i := 0
	for it.Next() {
		ts, h := it.AtHistogram(nil)
		require.Less(t, i, len(want), append([]any{msg}, args...)...)
		require.Equal(t, want[i].t, ts, append([]any{msg}, args...)...)
		require.True(t, want[i].h.Equal(h), append([]any{msg}, args...)...)
		i++
	}
	require.ErrorIs(t, it.Err(), ErrCorrupt, append([]any{msg}, args...)...)
}

func TestHistogramIteratorRejects(t *testing.T) {
	c := NewHistogramChunk()
	require.NoError(t, c.Append(1, &Histogram{Schema: 1}))
	good := slices.Clone(c.Bytes())
	for name, b := range map[string][]byte{
		"nil":          nil,
		"float chunk":  append([]byte{byte(EncGorilla)}, good[1:]...),
		"version":      withCRC(append([]byte{good[0], 9}, good[2:len(good)-4]...)),
		"flags":        withCRC(patch(good, 4, 0x80)),
		"schema":       withCRC(patch(good, 5, 9)),
		"schema low":   withCRC(patch(good, 5, 0xfb)),
		"empty body":   withCRC([]byte{byte(EncHistogram), histogramChunkVersion, 0, 0, 1}),
		"short body":   withCRC([]byte{byte(EncHistogram), histogramChunkVersion, 0, 1, 0, 0}),
		"raw thr cut":  withCRC([]byte{byte(EncHistogram), histogramChunkVersion, 0, 1, 0, 0, 255, 1, 2}),
		"more samples": withCRC(patch(good, 3, 2)),
		"no samples":   withCRC(patch(good, 3, 0)),
	} {
		t.Run(name, func(t *testing.T) {
			it, err := NewHistogramIterator(b)
			if err == nil {
				for it.Next() {
				}
				err = it.Err()
			}
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
	t.Run("negative raw threshold", func(t *testing.T) {
		b := []byte{byte(EncHistogram), histogramChunkVersion, 0, 1, 0, 0, 255}
		b = append(b, 0, 0, 0, 0, 0, 0, 0xf0, 0xbf) // -1.0
		b = append(b, good[7:len(good)-4]...)
		_, err := NewHistogramIterator(withCRC(b))
		require.ErrorIs(t, err, ErrCorrupt)
	})
}

func patch(b []byte, i int, v byte) []byte {
	b = slices.Clone(b[:len(b)-4])
	b[i] = v
	return b
}

// withCRC appends a valid checksum, so a test reaches the checks behind it.
func withCRC(b []byte) []byte {
	sum := crc32.Update(crc32.Update(0, castagnoli, b[histogramHeaderLen:]), castagnoli, b[1:histogramHeaderLen])
	return binary.LittleEndian.AppendUint32(slices.Clone(b), sum)
}

func TestHistogramIteratorAllocs(t *testing.T) {
	c := NewHistogramChunk()
	fillChunk(t, c, newHistSeries(6, 3, false), 120)
	b := c.Bytes()
	it, err := NewHistogramIterator(b)
	require.NoError(t, err)
	var h Histogram
	allocs := testing.AllocsPerRun(20, func() {
		require.NoError(t, it.Reset(b))
		for it.Next() {
			it.AtHistogram(&h)
		}
		require.NoError(t, it.Err())
	})
	require.Zero(t, allocs)
}

func TestHistogramChunkAppendAllocs(t *testing.T) {
	s := newHistSeries(8, 3, false)
	var hs []*Histogram
	for range 120 {
		hs = append(hs, s.next())
	}
	c := NewHistogramChunk()
	for i, h := range hs {
		require.NoError(t, c.Append(int64(i), h))
	}
	allocs := testing.AllocsPerRun(20, func() {
		c.Reset()
		for i, h := range hs {
			if err := c.Append(int64(i), h); err != nil {
				t.Fatal(err)
			}
		}
		_ = c.Bytes()
	})
	require.Zero(t, allocs)
}

func TestHistRiceK(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		n := uint32(rng.IntN(histRiceHalveAt) + 1)
		sum := rng.Uint64N(uint64(n) << rng.IntN(58))
		k := riceK(sum, n)
		if uint64(n)<<k < sum || (k > 0 && uint64(n)<<(k-1) >= sum) {
			t.Fatalf("riceK(%d, %d) = %d, not the smallest k with n·2^k ≥ sum", sum, n, k)
		}
	}
}

func TestHistVarbitRoundTrip(t *testing.T) {
	vals := []int64{0, 1, -1, 3, 4, -3, -4, 5, 31, 32, -31, -32, 33, 255, 256, 1 << 24, -(1 << 24), 1<<55 - 1, 1 << 55, math.MaxInt64, math.MinInt64}
	var w histBitWriter
	for _, v := range vals {
		putHistVarbit(&w, v)
		putHistVarbitUint(&w, uint64(v))
	}
	var r histBitReader
	r.reset(w.b)
	for _, v := range vals {
		require.Equal(t, v, readHistVarbit(&r))
		require.Equal(t, uint64(v), readHistVarbitUint(&r))
	}
	require.False(t, r.bad)
	require.Less(t, r.remaining(), uint64(8))
	for range 8 { // zero padding reads as zeros, then the end is flagged
		readHistVarbit(&r)
	}
	require.True(t, r.bad, "reading past the end is flagged")
}

// TestHistogramChunkSums round-trips sums the prediction cannot help with
// or that push it out of range: sign changes, infinities, NaNs with
// payloads, subnormals, the largest floats, a sum that stops growing.
func TestHistogramChunkSums(t *testing.T) {
	sums := []float64{
		0, 1, 2, 3, -3, math.Copysign(0, -1), 0, math.SmallestNonzeroFloat64, 5e-324 * 7,
		math.MaxFloat64 / 2, math.MaxFloat64, math.MaxFloat64, math.Inf(1), math.Inf(-1), staleNaN,
		math.Float64frombits(0xfff8000000000001), 10, 20, 30, 40, 40, 40, 1e300, -1e300, 1e-300,
		0.1, 0.2, 0.30000000000000004, 0.4, 0.5,
	}
	c := NewHistogramChunk()
	var want []histSample
	for i, sum := range sums {
		h := &Histogram{Schema: 0, ZeroCount: uint64(i * i), Count: uint64(i * i), Sum: sum}
		require.NoError(t, c.Append(int64(i), h))
		want = append(want, histSample{int64(i), h})
	}
	requireHistsEqual(t, want, c.Bytes())
}
