package encoding

import (
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// staleNaN is Prometheus' stale marker, a NaN with a payload that must
// survive bit-exactly.
var staleNaNBits uint64 = 0x7ff0000000000002

// trickyValues are float64 bit patterns a float codec must keep exactly.
func trickyValues() []float64 {
	return []float64{
		0, math.Copysign(0, -1), 1, -1, 0.1, 0.13, 42.5, 1e-300,
		math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64,
		math.Float64frombits(0x000fffffffffffff), // largest subnormal
		math.MaxFloat64, -math.MaxFloat64, math.Inf(1), math.Inf(-1),
		math.NaN(), math.Float64frombits(staleNaNBits),
		math.Float64frombits(0xfff8000000000001), // negative quiet NaN with payload
		math.Float64frombits(0x7ff0000000000001), // signalling NaN
		math.Pi, 1 << 53, 1<<53 + 2, -(1 << 62), 51.846000000000004, 94.79799999999999,
	}
}

type sample struct {
	t int64
	v float64
}

// timestampPatterns returns named timestamp sequences of length n.
func timestampPatterns(n int, rng *rand.Rand) map[string][]int64 {
	p := map[string][]int64{}
	add := func(name string, f func(i int, prev int64) int64) {
		ts := make([]int64, n)
		for i := range ts {
			var prev int64
			if i > 0 {
				prev = ts[i-1]
			}
			ts[i] = f(i, prev)
		}
		p[name] = ts
	}
	const base = 1_700_000_000_000
	add("regular-15s", func(i int, _ int64) int64 { return base + int64(i)*15000 })
	add("jitter-25ms", func(i int, _ int64) int64 { return base + int64(i)*15000 + rng.Int64N(51) - 25 })
	add("negative", func(i int, _ int64) int64 { return -5_000_000 + int64(i)*1000 })
	add("jitter-missed-scrapes", func(i int, _ int64) int64 {
		return base + int64(i+i/7)*15000 + rng.Int64N(41) - 20 // a scrape lost every seventh
	})
	add("grid-then-restart", func(i int, _ int64) int64 {
		if i < n/2 {
			return base + int64(i)*10000 + rng.Int64N(5)
		}
		return base + 1<<35 + int64(i)*10000 + rng.Int64N(5)
	})
	add("huge-gaps", func(i int, prev int64) int64 {
		if i == 0 {
			return math.MinInt64 / 2
		}
		return prev + 1 + rng.Int64N(1<<40)
	})
	add("extremes", func(i int, prev int64) int64 {
		switch {
		case i == 0:
			return math.MinInt64
		case i == n-1:
			return math.MaxInt64
		}
		return prev + 1 + rng.Int64N(1<<20)
	})
	add("step-1ms", func(i int, _ int64) int64 { return int64(i) })
	add("irregular", func(i int, prev int64) int64 {
		if i == 0 {
			return base
		}
		return prev + []int64{1, 15000, 15001, 300000, 1 << 33, 7}[rng.IntN(6)]
	})
	return p
}

// valuePatterns returns named value sequences of length n.
func valuePatterns(n int, rng *rand.Rand) map[string][]float64 {
	p := map[string][]float64{}
	tricky := trickyValues()
	gen := func(name string, f func(i int) float64) {
		vs := make([]float64, n)
		for i := range vs {
			vs[i] = f(i)
		}
		p[name] = vs
	}
	gen("tricky", func(i int) float64 { return tricky[i%len(tricky)] })
	gen("tricky-shuffled", func(int) float64 { return tricky[rng.IntN(len(tricky))] })
	gen("constant", func(int) float64 { return 3.7 })
	c := 0.0
	gen("counter", func(int) float64 { c += float64(rng.IntN(100)); return c })
	gen("gauge-2dp", func(int) float64 { return math.Round(rng.Float64()*10000) / 100 })
	w := 100.0
	gen("random-walk", func(int) float64 { w += rng.NormFloat64(); return w })
	gen("random-bits", func(int) float64 { return math.Float64frombits(rng.Uint64()) })
	gen("small-ints", func(int) float64 { return float64(rng.IntN(5)) })
	return p
}

// decodeAll reads every sample of chunk b, failing the test on an error.
func decodeAll(t testing.TB, b []byte) []sample {
	t.Helper()
	it, err := NewFloatIterator(b)
	require.NoError(t, err)
	var got []sample
	for it.Next() {
		ts, v := it.At()
		got = append(got, sample{ts, v})
	}
	require.NoError(t, it.Err())
	return got
}

// requireSameSamples compares timestamps and value bit patterns.
func requireSameSamples(t testing.TB, ts []int64, vs []float64, got []sample) {
	t.Helper()
	require.Len(t, got, len(ts))
	for i := range ts {
		require.Equal(t, ts[i], got[i].t, "timestamp %d", i)
		require.Equal(t, math.Float64bits(vs[i]), math.Float64bits(got[i].v), "value %d: want %v got %v", i, vs[i], got[i].v)
	}
}

// gorillaChunk encodes samples with FloatChunk.
func gorillaChunk(t testing.TB, ts []int64, vs []float64) []byte {
	t.Helper()
	c := NewFloatChunk()
	for i := range ts {
		require.NoError(t, c.Append(ts[i], vs[i]))
	}
	return append([]byte(nil), c.Bytes()...)
}

func TestFloatChunkRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 120, 200} {
		for tn, ts := range timestampPatterns(n, rng) {
			for vn, vs := range valuePatterns(n, rng) {
				for enc, b := range encodings(t, ts, vs) {
					require.Equal(t, byte(enc), b[0])
					requireSameSamples(t, ts, vs, decodeAll(t, b))
					m, err := FloatChunkLen(b)
					require.NoError(t, err)
					require.Equal(t, n, m, "%s/%s", tn, vn)

					best, err := AppendBestFloatChunk([]byte("prefix"), b)
					require.NoError(t, err)
					require.Equal(t, "prefix", string(best[:6]))
					require.LessOrEqual(t, len(best)-6, len(b), "%s/%s: best is never larger", tn, vn)
					requireSameSamples(t, ts, vs, decodeAll(t, best[6:]))
				}
				best, err := AppendBestFloats(nil, ts, vs)
				require.NoError(t, err)
				requireSameSamples(t, ts, vs, decodeAll(t, best))
			}
		}
	}
}

func TestFloatChunkEmpty(t *testing.T) {
	c := NewFloatChunk()
	b := c.Bytes()
	require.Equal(t, byte(EncGorilla), b[0])
	n, err := FloatChunkLen(b)
	require.NoError(t, err)
	require.Zero(t, n)
	it, err := NewFloatIterator(b)
	require.NoError(t, err)
	require.False(t, it.Next())
	require.NoError(t, it.Err())
}

func TestFloatChunkBytesWhileOpen(t *testing.T) {
	// Bytes in the middle of appending must give a complete chunk each time,
	// and appending after Bytes must not be disturbed by it.
	rng := rand.New(rand.NewPCG(3, 4))
	c := NewFloatChunk()
	var ts []int64
	var vs []float64
	for i := range 300 {
		ts = append(ts, int64(i)*15000+rng.Int64N(40))
		vs = append(vs, math.Round(rng.NormFloat64()*1000)/10)
		require.NoError(t, c.Append(ts[i], vs[i]))
		if i%7 == 0 || i == 126 || i == 127 || i == 128 {
			requireSameSamples(t, ts, vs, decodeAll(t, c.Bytes()))
		}
		require.Equal(t, i+1, c.NumSamples())
		require.Equal(t, ts[0], c.MinTime())
		require.Equal(t, ts[i], c.MaxTime())
	}
	requireSameSamples(t, ts, vs, decodeAll(t, c.Bytes()))
	requireSameSamples(t, ts, vs, decodeAll(t, c.Bytes()))
}

func TestFloatChunkZeroValue(t *testing.T) {
	var c FloatChunk
	requireSameSamples(t, nil, nil, decodeAll(t, c.Bytes()))
	var d FloatChunk
	require.NoError(t, d.Append(5, 2.5))
	requireSameSamples(t, []int64{5}, []float64{2.5}, decodeAll(t, d.Bytes()))
}

func TestFloatChunkReset(t *testing.T) {
	c := NewFloatChunk()
	for i := range 50 {
		require.NoError(t, c.Append(int64(i), float64(i)))
	}
	c.Reset()
	require.Zero(t, c.NumSamples())
	require.NoError(t, c.Append(-10, 1.5))
	requireSameSamples(t, []int64{-10}, []float64{1.5}, decodeAll(t, c.Bytes()))
	allocs := testing.AllocsPerRun(20, func() {
		c.Reset()
		for i := range 100 {
			_ = c.Append(int64(i)*15000, float64(i%7))
		}
		_ = c.Bytes()
	})
	require.Zero(t, allocs, "Reset and Append must reuse the chunk's buffer")
}

func TestFloatChunkOutOfOrder(t *testing.T) {
	c := NewFloatChunk()
	require.NoError(t, c.Append(100, 1))
	err := c.Append(100, 2)
	require.ErrorIs(t, err, ErrOutOfOrder)
	require.ErrorIs(t, c.Append(99, 2), ErrOutOfOrder)
	require.NoError(t, c.Append(200, 2))
	require.ErrorIs(t, c.Append(150, 3), ErrOutOfOrder)
	require.ErrorIs(t, c.Append(200, 3), ErrOutOfOrder)
	require.NoError(t, c.Append(300, 3))
	requireSameSamples(t, []int64{100, 200, 300}, []float64{1, 2, 3}, decodeAll(t, c.Bytes()))
}

// encodings returns chunks of the same samples in every float encoding:
// the open chunk's gorilla and each variant forced.
func encodings(t testing.TB, ts []int64, vs []float64) map[ChunkEncoding][]byte {
	t.Helper()
	g := gorillaChunk(t, ts, vs)
	require.Equal(t, g, chunkAs(EncGorilla, ts, vs), "open and sealed gorilla chunks must be identical")
	return map[ChunkEncoding][]byte{
		EncGorilla: g,
		EncDecimal: chunkAs(EncDecimal, ts, vs),
		EncChimp:   chunkAs(EncChimp, ts, vs),
	}
}

// chunkAs encodes samples in enc whether or not it is the smallest.
func chunkAs(enc ChunkEncoding, ts []int64, vs []float64) []byte {
	p, _, _, _, ok := decAnalyse(vs, nil, nil)
	if !ok {
		p, _, _ = decCost(vs, 0, nil, nil)
	}
	b, err := appendFloatChunk(nil, enc, ts, vs, &p, chooseGrid(ts), nil)
	if err != nil {
		panic(err)
	}
	return b
}

// mixedSamples is a chunk's worth of samples exercising many code paths.
func mixedSamples(n int) ([]int64, []float64) {
	rng := rand.New(rand.NewPCG(5, 6))
	ts := make([]int64, n)
	vs := make([]float64, n)
	tricky := trickyValues()
	t0 := int64(1_700_000_000_000)
	for i := range ts {
		t0 += 15000 + rng.Int64N(51) - 25
		if i%17 == 5 {
			t0 += 1 << 34
		}
		ts[i] = t0
		switch i % 4 {
		case 0:
			vs[i] = tricky[rng.IntN(len(tricky))]
		case 1:
			vs[i] = math.Round(rng.Float64()*1000) / 100
		default:
			vs[i] = float64(i)
		}
	}
	return ts, vs
}

func TestFloatChunkTruncationDetected(t *testing.T) {
	ts, vs := mixedSamples(60)
	for enc, b := range encodings(t, ts, vs) {
		for n := range len(b) {
			requireCorrupt(t, b[:n], "%s truncated to %d of %d bytes", enc, n, len(b))
		}
		// Without a checksum to lean on, the count still catches every cut:
		// strip the check, cut the stream, and re-seal.
		hdr := headerLen(t, b)
		for n := hdr; n < len(b)-floatCheckLen; n++ {
			requireCorrupt(t, reseal(b[:n]), "%s resealed at %d of %d bytes", enc, n, len(b))
		}
	}
}

func TestFloatChunkBitFlipsDetected(t *testing.T) {
	ts, vs := mixedSamples(60)
	for enc, b := range encodings(t, ts, vs) {
		for i := range len(b) * 8 {
			d := append([]byte(nil), b...)
			d[i/8] ^= 1 << (i % 8)
			requireCorrupt(t, d, "%s bit %d flipped", enc, i)
		}
	}
}

func TestFoldedChecksumCatchesSingleBitErrors(t *testing.T) {
	// CRC32C detects every single-bit error; folding it to 16 bits keeps
	// that only if no error syndrome folds to zero. Check every bit position
	// of a 16 KiB message, far beyond the longest chunk.
	msg := make([]byte, 16<<10)
	base := foldCRCOf(msg)
	for i := range len(msg) * 8 {
		msg[i/8] ^= 1 << (i % 8)
		require.NotEqual(t, base, foldCRCOf(msg), "bit %d", i)
		msg[i/8] ^= 1 << (i % 8)
	}
}

func foldCRCOf(b []byte) uint16 {
	return foldCRC(crc32Checksum(b))
}

// requireCorrupt asserts that b fails to decode with ErrCorrupt, either
// when opened or while iterating, and never yields a wrong sample count.
func requireCorrupt(t *testing.T, b []byte, msg string, args ...any) {
	t.Helper()
	it, err := NewFloatIterator(b)
	if err != nil {
		require.ErrorIs(t, err, ErrCorrupt, append([]any{msg}, args...)...)
		return
	}
	for it.Next() {
	}
	require.Error(t, it.Err(), append([]any{msg}, args...)...)
	require.ErrorIs(t, it.Err(), ErrCorrupt)
}

func headerLen(t *testing.T, b []byte) int {
	_, _, hdr, err := parseFloatHeader(b)
	require.NoError(t, err)
	return hdr
}

// reseal appends a valid checksum to a chunk without one.
func reseal(b []byte) []byte {
	_, _, hdr, _ := parseFloatHeader(b)
	d := append([]byte(nil), b...)
	sum := crc32Update(crc32Checksum(d[hdr:]), d[:hdr])
	return append(d, byte(foldCRC(sum)), byte(foldCRC(sum)>>8))
}

func TestFloatIteratorSeek(t *testing.T) {
	ts := []int64{10, 20, 30, 40, 50}
	vs := []float64{1, 2, 3, 4, 5}
	for enc, b := range encodings(t, ts, vs) {
		it, err := NewFloatIterator(b)
		require.NoError(t, err)
		require.True(t, it.SeekTo(5), enc) // before the first: lands on it
		tt, v := it.At()
		require.Equal(t, int64(10), tt)
		require.Equal(t, 1.0, v)
		require.True(t, it.SeekTo(25))
		tt, _ = it.At()
		require.Equal(t, int64(30), tt)
		require.True(t, it.SeekTo(30)) // already there: no move
		tt, _ = it.At()
		require.Equal(t, int64(30), tt)
		require.True(t, it.SeekTo(11)) // backwards: stays
		tt, _ = it.At()
		require.Equal(t, int64(30), tt)
		require.True(t, it.Next())
		tt, _ = it.At()
		require.Equal(t, int64(40), tt)
		require.True(t, it.SeekTo(50))
		tt, v = it.At()
		require.Equal(t, int64(50), tt)
		require.Equal(t, 5.0, v)
		require.False(t, it.SeekTo(51))
		require.False(t, it.Next())
		require.NoError(t, it.Err())

		require.NoError(t, it.Reset(b))
		require.False(t, it.SeekTo(1000))
		require.NoError(t, it.Err())
	}
}

func TestFloatIteratorAllocs(t *testing.T) {
	ts, vs := mixedSamples(120)
	for enc, b := range encodings(t, ts, vs) {
		it, err := NewFloatIterator(b)
		require.NoError(t, err)
		var sum float64
		allocs := testing.AllocsPerRun(50, func() {
			if err := it.Reset(b); err != nil {
				panic(err)
			}
			for it.Next() {
				_, v := it.At()
				sum += v
			}
		})
		require.Zero(t, allocs, "%s: iterating must not allocate", enc)
		require.NoError(t, it.Err())
	}
}

func TestFloatChunkLenRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {0}, {byte(EncHistogram), 1}, {byte(EncGorilla)}, {byte(EncGorilla), 0x80}} {
		_, err := FloatChunkLen(b)
		require.ErrorIs(t, err, ErrCorrupt, "%x", b)
		_, err = NewFloatIterator(b)
		require.ErrorIs(t, err, ErrCorrupt, "%x", b)
	}
	_, err := NewFloatIterator([]byte{byte(EncGorilla), 0})
	require.True(t, errors.Is(err, ErrCorrupt), "a chunk without its checksum is corrupt")
}

func TestGridTimestamps(t *testing.T) {
	// A chunk whose timestamps sit on a 15 s schedule with ±25 ms jitter
	// is coded on a grid by the best encoding, for far fewer bits than
	// deltas of deltas take.
	rng := rand.New(rand.NewPCG(17, 18))
	const n = 120
	ts := make([]int64, n)
	vs := make([]float64, n)
	for i := range ts {
		ts[i] = 1_700_000_000_000 + int64(i)*15000 + rng.Int64N(51) - 25
		vs[i] = float64(i)
	}
	g := chooseGrid(ts)
	require.Equal(t, int64(15000), g.interval)
	require.Less(t, gridCost(ts, g)*100, dodCost(ts)*85, "the grid saves 15% of the timestamp bits or more")
	best, err := AppendBestFloats(nil, ts, vs)
	require.NoError(t, err)
	require.NotEqual(t, byte(EncGorilla), best[0])
	requireSameSamples(t, ts, vs, decodeAll(t, best))

	// Regular timestamps need no grid.
	for i := range ts {
		ts[i] = int64(i) * 60000
	}
	require.Zero(t, chooseGrid(ts).interval)
}

func TestJitterIsCheap(t *testing.T) {
	// Scrape jitter of ±25 ms on a 15 s interval must cost well under the
	// 16 bits per sample Prometheus' smallest non-zero bucket takes.
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 120
	ts := make([]int64, n)
	vs := make([]float64, n)
	for i := range ts {
		ts[i] = 1_700_000_000_000 + int64(i)*15000 + rng.Int64N(51) - 25
	}
	jit := len(gorillaChunk(t, ts, vs))
	for i := range ts {
		ts[i] = 1_700_000_000_000 + int64(i)*15000
	}
	reg := len(gorillaChunk(t, ts, vs))
	perSample := float64(jit-reg) * 8 / n
	require.Less(t, perSample, 11.0, "jitter costs %.1f bits per sample", perSample)
}

func crc32Checksum(b []byte) uint32         { return crc32.Checksum(b, castagnoli) }
func crc32Update(c uint32, b []byte) uint32 { return crc32.Update(c, castagnoli, b) }

// TestBestFloatEncoderCarriesNothingOver writes chunks of every kind of
// timestamps and values, of every length, through one encoder in random
// order, and each must come out byte for byte as a fresh
// AppendBestFloats or AppendBestFloatValues writes it: the scratch space
// an encoder keeps holds the last chunk's decisions, which the next chunk
// must not read.
func TestBestFloatEncoderCarriesNothingOver(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	type chunk struct {
		ts []int64
		vs []float64
	}
	var chunks []chunk
	for _, n := range []int{1, 2, 3, 17, 64, 65, 119, 120, 128, 129, 300} {
		tps, vps := timestampPatterns(n, rng), valuePatterns(n, rng)
		for _, ts := range tps {
			for _, vs := range vps {
				chunks = append(chunks, chunk{ts, vs})
			}
		}
		for range 8 {
			chunks = append(chunks, chunk{tps["regular-15s"], repeatingValues(rng, n)})
			ts, vs := noisyDecimals(rng, n, 5)
			chunks = append(chunks, chunk{ts, vs})
		}
	}
	var e BestFloatEncoder
	var got []byte
	for k := range 3 * len(chunks) {
		c := chunks[rng.IntN(len(chunks))]
		want, err := AppendBestFloats(nil, c.ts, c.vs)
		require.NoError(t, err)
		got, err = e.AppendFloats(got[:0], c.ts, c.vs)
		require.NoError(t, err)
		require.Equal(t, want, got, "chunk %d of %d samples", k, len(c.vs))
		want, err = AppendBestFloatValues(nil, c.vs)
		require.NoError(t, err)
		got, err = e.AppendValues(got[:0], c.vs)
		require.NoError(t, err)
		require.Equal(t, want, got, "values chunk %d of %d samples", k, len(c.vs))
	}
}

func TestAppendBestAllocs(t *testing.T) {
	ts, vs := mixedSamples(120)
	dst := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(20, func() {
		var err error
		dst, err = AppendBestFloats(dst[:0], ts, vs)
		if err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs, "AppendBestFloats into a large enough dst must not allocate")
	var e BestFloatEncoder
	allocs = testing.AllocsPerRun(20, func() {
		var err error
		if dst, err = e.AppendFloats(dst[:0], ts, vs); err == nil {
			dst, err = e.AppendValues(dst[:0], vs)
		}
		if err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs, "BestFloatEncoder into a large enough dst must not allocate")
	chunk := gorillaChunk(t, ts, vs)
	allocs = testing.AllocsPerRun(20, func() {
		var err error
		dst, err = AppendBestFloatChunk(dst[:0], chunk)
		if err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs, "AppendBestFloatChunk of a chunk of up to 256 samples must not allocate")
	requireSameSamples(t, ts, vs, decodeAll(t, dst))
}

func TestAppendBestFloatsRejectsBadInput(t *testing.T) {
	_, err := AppendBestFloats(nil, []int64{1, 2}, []float64{1})
	require.Error(t, err)
	dst, err := AppendBestFloats([]byte("x"), []int64{1, 3, 2}, []float64{1, 2, 3})
	require.ErrorIs(t, err, ErrOutOfOrder)
	require.Equal(t, "x", string(dst))
	_, err = AppendBestFloatChunk(nil, []byte{byte(EncGorilla), 3, 0, 0})
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestBestPicksTheSmallest(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const n = 120
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = int64(i) * 15000
	}
	cases := map[string]func(i int) float64{
		"cpu-3dp":    func(int) float64 { return float64(rng.IntN(100000)) / 1000 },
		"counter":    func(i int) float64 { return float64(i * 7) },
		"full":       func(int) float64 { return rng.NormFloat64() * 1000 },
		"ulp-off":    func(i int) float64 { return float64(i%50)*0.1 + 0.2 }, // arithmetic results like 0.30000000000000004
		"stale-mark": func(i int) float64 { return []float64{1.5, math.Float64frombits(staleNaNBits)}[i%2] },
	}
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		f := cases[name]
		vs := make([]float64, n)
		for i := range vs {
			vs[i] = f(i)
		}
		best, err := AppendBestFloats(nil, ts, vs)
		require.NoError(t, err)
		requireSameSamples(t, ts, vs, decodeAll(t, best))
		for enc, c := range encodings(t, ts, vs) {
			require.LessOrEqual(t, len(best), len(c), "%s: best (%s, %d B) vs %s (%d B)", name, ChunkEncoding(best[0]), len(best), enc, len(c))
		}
	}
	// Full-precision values, many seeds: whichever encoding wins must be
	// the one chosen.
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 10))
		vs := make([]float64, n)
		for i := range vs {
			vs[i] = rng.NormFloat64() * 1000
		}
		best, err := AppendBestFloats(nil, ts, vs)
		require.NoError(t, err)
		for enc, c := range encodings(t, ts, vs) {
			require.LessOrEqual(t, len(best), len(c), "seed %d: best (%s, %d B) vs %s (%d B)", seed, ChunkEncoding(best[0]), len(best), enc, len(c))
		}
	}
}

// verifyFloatChunk decodes chunk and compares it with the samples: the
// slow, independent check the tests hold appendFloatChunk's own to.
func verifyFloatChunk(chunk []byte, ts []int64, vs []float64) error {
	var it FloatIterator
	if err := it.Reset(chunk); err != nil {
		return fmt.Errorf("encoding: new chunk does not open: %w", err)
	}
	i := 0
	for it.Next() {
		t, v := it.At()
		if i >= len(ts) || t != ts[i] || math.Float64bits(v) != math.Float64bits(vs[i]) {
			return fmt.Errorf("encoding: %s chunk decodes sample %d differently", it.enc, i)
		}
		i++
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("encoding: new %s chunk does not decode: %w", it.enc, err)
	}
	if i != len(ts) {
		return fmt.Errorf("encoding: %s chunk decodes %d of %d samples", it.enc, i, len(ts))
	}
	return nil
}

// TestWriterCheckCatchesBadDecisions hands the writer sizing decisions
// that do not describe the samples: its own check must refuse the chunk
// rather than write one that decodes to other values.
func TestWriterCheckCatchesBadDecisions(t *testing.T) {
	ts, vs := make([]int64, 120), make([]float64, 120)
	rng := rand.New(rand.NewPCG(3, 4))
	x := 500.0
	for i := range ts {
		ts[i] = 1_700_000_000_000 + int64(i)*15000 + rng.Int64N(51) - 25
		x += rng.NormFloat64()
		vs[i] = math.Round(x*100) / 100
	}
	var sc bestScratch
	p, _, _, _, ok := decAnalyse(vs, sc.dec[:], nil)
	require.True(t, ok)
	g := chooseGrid(ts)
	good, err := appendFloatChunk(nil, EncDecimal, ts, vs, &p, g, &sc)
	require.NoError(t, err)
	require.NoError(t, verifyFloatChunk(good, ts, vs))

	sc.dec[7].d++ // a scaled integer that is not the value's
	dst, err := appendFloatChunk([]byte("x"), EncDecimal, ts, vs, &p, g, &sc)
	require.Error(t, err)
	require.Equal(t, "x", string(dst), "a refused chunk leaves dst unchanged")

	_, _, _, _, _ = decAnalyse(vs, sc.dec[:], nil)
	narrow := p
	narrow.w = [4]uint8{1, 1, 1, 1} // codes that fit no bucket
	_, err = appendFloatChunk(nil, EncDecimal, ts, vs, &narrow, g, &sc)
	require.Error(t, err)

	chimpValueBits(vs, sc.chimp[:], math.MaxInt, chimpFloor(vs, math.MaxInt))
	sc.chimp[9].xor ^= 1 << 3 // an XOR that is not the value's
	_, err = appendFloatChunk(nil, EncChimp, ts, vs, &p, g, &sc)
	require.Error(t, err)
	chimpValueBits(vs, sc.chimp[:], math.MaxInt, chimpFloor(vs, math.MaxInt))
	sc.chimp[20] = chimpPlan{flag: 0b00, ref: 7, nbits: 5} // a reference to another value
	_, err = appendFloatChunk(nil, EncChimp, ts, vs, &p, g, &sc)
	require.Error(t, err)

	bad := g
	bad.interval = 1 << 62 // a grid no reader accepts
	_, err = appendFloatChunk(nil, EncChimp, ts, vs, &p, bad, nil)
	require.Error(t, err)
}

// TestWriterCheckCatchesBadResidual gives the writer, in a chunk whose
// values are often an ulp off (written by writeDecimalSteadyNoisy once a
// few have been), a residual that is not a value's: it must refuse the
// chunk, on a grid and with deltas of deltas.
func TestWriterCheckCatchesBadResidual(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	ts, vs := make([]int64, 120), make([]float64, 120)
	x := 45.0
	for i := range vs {
		ts[i] = 1_700_000_000_000 + int64(i)*15000 + rng.Int64N(51) - 25
		x += float64(rng.IntN(2001)-1000) / 1000
		vs[i] = math.Round(x*1000) / 1000
		if i%3 == 0 {
			vs[i] = math.Nextafter(vs[i], math.Inf(1))
		}
	}
	for _, g := range []tsGrid{chooseGrid(ts), {}} {
		var sc bestScratch
		p, _, _, _, ok := decAnalyse(vs, sc.dec[:], nil)
		require.True(t, ok)
		good, err := appendFloatChunk(nil, EncDecimal, ts, vs, &p, g, &sc)
		require.NoError(t, err)
		require.NoError(t, verifyFloatChunk(good, ts, vs))
		require.Equal(t, uint8(decResidual), sc.dec[99].kind)
		sc.dec[99].r += 2 // another ulp
		_, err = appendFloatChunk(nil, EncDecimal, ts, vs, &p, g, &sc)
		require.Error(t, err, "grid %+v", g)
	}
}

// TestDecCostIntegersAsGeneral holds the integer chunk's sizing to the
// general one's at the scale the chooser picks, 0: the same order, widths
// and bits, and gorilla's bits to gorillaValueBits', on counters with
// repeats, large and negative values; a value
// that is not an integer below 2^53 (-0, NaN, a fraction, 2^53)
// somewhere sends the chunk back to the general path.
func TestDecCostIntegersAsGeneral(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	odd := []float64{math.Copysign(0, -1), math.NaN(), 0.5, 1 << 53, -(1 << 53), math.Inf(1)}
	var cache [bestCached]decItem
	for trial := range 3000 {
		vs := make([]float64, 1+rng.IntN(bestCached))
		c := float64(rng.Int64N(1<<52) - 1<<51)
		if trial%2 == 0 {
			c = float64(rng.IntN(1000))
		}
		for i := range vs {
			if rng.IntN(3) > 0 {
				c += float64(rng.IntN(1 << uint(rng.IntN(20))))
			}
			vs[i] = c
		}
		if trial%5 == 0 {
			vs[rng.IntN(len(vs))] = odd[rng.IntN(len(odd))]
		}
		p2, c2, r2 := decCost(vs, 0, nil, nil)
		p1, c1, g1, ok := decCostExact(vs, 0, cache[:], true)
		if !ok {
			e, ok, _ := decChooseScale(vs)
			require.True(t, trial%5 == 0 || !ok || e != 0, "trial %d: integers refused", trial)
			continue
		}
		e, scaled, _ := decChooseScale(vs)
		require.True(t, scaled && e == 0, "trial %d: integers at scale %d %v", trial, e, scaled)
		require.True(t, p1 == p2 && c1 == c2 && r2 == 0, "trial %d: %+v %d, general %+v %d %d", trial, p1, c1, p2, c2, r2)
		require.LessOrEqual(t, g1, gorillaValueBits(vs, math.MaxInt), "trial %d: gorilla's floor", trial)
		for i, v := range vs {
			require.Equal(t, decItem{d: int64(v)}, cache[i], "trial %d value %d", trial, i)
		}
	}
}

// TestDecCostExactAsGeneral holds the sizing of chunks exact at a scale
// above 0 to the general one's, on two-decimal gauges with repeats and,
// in some, a value an ulp off or NaN, which sends the chunk back.
func TestDecCostExactAsGeneral(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	var cache [bestCached]decItem
	for trial := range 3000 {
		vs := make([]float64, 1+rng.IntN(bestCached))
		x := rng.Float64() * 1000
		for i := range vs {
			if rng.IntN(3) > 0 {
				x += rng.NormFloat64()
			}
			vs[i] = math.Round(x*100) / 100
		}
		if trial%4 == 0 {
			i := rng.IntN(len(vs))
			vs[i] = []float64{math.Nextafter(vs[i], 0), math.NaN()}[trial%8/4]
		}
		p2, c2, r2 := decCost(vs, 2, nil, nil)
		p1, c1, _, ok := decCostExact(vs, 2, cache[:], false)
		if !ok {
			require.True(t, trial%4 == 0, "trial %d: exact values refused", trial)
			continue
		}
		require.True(t, p1 == p2 && c1 == c2 && r2 == 0, "trial %d: %+v %d, general %+v %d %d", trial, p1, c1, p2, c2, r2)
		for i, v := range vs {
			d, _ := decScale(v, 2)
			require.Equal(t, decItem{d: d}, cache[i], "trial %d value %d", trial, i)
		}
	}
}

// TestDecExactAtFilter holds decExactAt's shortcut to the plain test it
// stands for, on decimals of every scale, their neighbours an ULP away,
// full-precision values and specials.
func TestDecExactAtFilter(t *testing.T) {
	plain := func(v float64, e uint8) bool {
		d, ok := decScale(v, e)
		return ok && decValue(d, e) == math.Float64bits(v)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	vals := trickyValues()
	for range 20000 {
		e := uint8(rng.IntN(maxDecimalScale + 1))
		d := rng.Int64N(1<<(1+rng.IntN(53))) - 1<<rng.IntN(20)
		v := float64(d) / pow10[e]
		vals = append(vals, v, math.Nextafter(v, math.Inf(1)), math.Nextafter(v, math.Inf(-1)),
			rng.NormFloat64()*math.Pow(10, float64(rng.IntN(30)-15)))
	}
	for _, v := range vals {
		for e := range uint8(maxDecimalScale + 1) {
			require.Equal(t, plain(v, e), decExactAt(v, e), "%v at scale %d", v, e)
		}
	}
}

// TestXorCostAsPlan holds xorCost to xorPlan, which the writer follows,
// for XORs of every leading and trailing count (and zero) against every
// window, none among them.
func TestXorCostAsPlan(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	xs := []uint64{0, 1, 1 << 63, math.MaxUint64}
	for l := range 64 {
		for tr := 0; l+tr < 64; tr++ {
			// The bits from 63−l down to tr, both ends set.
			x := (uint64(1)<<(63-l) | 1<<tr) | rng.Uint64()&(math.MaxUint64>>l)>>tr<<tr
			xs = append(xs, x)
		}
	}
	windows := [][2]uint8{{noWindow, noWindow}}
	for lead := range uint8(32) {
		for trail := uint8(0); lead+trail < 64; trail++ {
			windows = append(windows, [2]uint8{lead, trail})
		}
	}
	for _, x := range xs {
		for _, w := range windows {
			cost, _, l, tr := xorPlan(x, w[0], w[1])
			gc, gl, gtr := xorCost(x, w[0], w[1])
			if gc != cost || gl != l || gtr != tr {
				t.Fatalf("x %#x window %v: xorCost (%d, %d, %d), xorPlan (%d, %d, %d)", x, w, gc, gl, gtr, cost, l, tr)
			}
		}
	}
}

// TestGorillaFloor holds gorillaFloor under what writeXOR spends on each
// value, on chunks of counts, of full-precision values, of short decimals
// and of repeats, and close enough to it on counts to settle gorilla.
func TestGorillaFloor(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for trial := range 2000 {
		vs := make([]float64, 2+rng.IntN(bestCached))
		x := float64(rng.IntN(5000))
		for i := range vs {
			switch trial % 4 {
			case 0:
				x = float64(rng.IntN(1 << (1 + rng.IntN(20))))
			case 1:
				x += rng.NormFloat64()
			case 2:
				x = math.Round(x+rng.NormFloat64()*10) / 100
			default:
				if rng.IntN(3) == 0 {
					x = float64(rng.IntN(50))
				}
			}
			vs[i] = x
		}
		floor, exact := firstValueBits(math.Float64bits(vs[0])), firstValueBits(math.Float64bits(vs[0]))
		lead, trail := uint8(noWindow), uint8(noWindow)
		var last uint64
		for i := 1; i < len(vs); i++ {
			x := math.Float64bits(vs[i]) ^ math.Float64bits(vs[i-1])
			var c int
			c, _, lead, trail = xorPlan(x, lead, trail)
			f := gorillaFloor(x, last)
			if f > c {
				t.Fatalf("trial %d value %d: floor %d over %d bits", trial, i, f, c)
			}
			floor, exact, last = floor+f, exact+c, x
		}
		require.Equal(t, gorillaValueBits(vs, math.MaxInt), exact)
		if trial%4 == 0 && len(vs) > 60 {
			// Counts jumping over every size, the hardest case: the
			// floor above seven tenths. (Request counts: above four
			// fifths.)
			require.Greater(t, floor*10, exact*7, "trial %d: floor %d of %d bits", trial, floor, exact)
		}
	}
}

// TestRoundHalfAway holds roundHalfAway to math.Round, which the decimal
// format is defined by (a raw value's d is its rounding), on ties of
// every size, their neighbours, and values of every magnitude.
func TestRoundHalfAway(t *testing.T) {
	vals := append(trickyValues(), 0.5, -0.5, 1.5, -1.5, 2.5, -2.5,
		0.49999999999999994, -0.49999999999999994, 1<<52+0.5, 1<<52, 1<<53+1, -(1<<52 - 0.5))
	rng := rand.New(rand.NewPCG(9, 10))
	for range 20000 {
		tie := float64(rng.Int64N(1<<(1+rng.IntN(52)))-1<<rng.IntN(30)) + 0.5
		vals = append(vals, tie, math.Nextafter(tie, 0), math.Nextafter(tie, math.Inf(1)), math.Nextafter(tie, math.Inf(-1)),
			rng.NormFloat64()*math.Pow(2, float64(rng.IntN(120)-60)))
	}
	for _, v := range vals {
		want, got := math.Round(v), roundHalfAway(v)
		if math.IsNaN(v) {
			require.True(t, math.IsNaN(got), "round(%v) = %v", v, got) // its payload may be quieted
			continue
		}
		require.Equal(t, math.Float64bits(want), math.Float64bits(got), "round(%v)", v)
	}
}

// TestGridForCost holds the cost gridFor returns, when it returns one, to
// gridCost's walk, and its lower bound below it.
func TestGridForCost(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	known := 0
	for range 50 {
		for name, ts := range timestampPatterns(120, rng) {
			var buf [gridProbe]int64
			for _, iv := range []int64{1000, 15000, 60000} {
				g, c, floor := gridFor(ts, iv, &buf, math.MaxInt)
				if c >= 0 {
					known++
					require.Equal(t, gridCost(ts, g), c, "%s at interval %d", name, iv)
				}
				require.LessOrEqual(t, floor, gridCost(ts, g), "%s at interval %d", name, iv)
				// Stopped early, it returns a bound at least the limit.
				if limit := floor - 1; limit > 0 {
					_, c, early := gridFor(ts, iv, &buf, limit)
					if c < 0 {
						require.GreaterOrEqual(t, early, limit)
						require.LessOrEqual(t, early, gridCost(ts, g))
					}
				}
			}
		}
	}
	require.Positive(t, known)
}

// TestDodBits holds the sizing table to what writeDod writes, at every
// bucket edge and in between.
func TestDodBits(t *testing.T) {
	var dods []int64
	for _, e := range []int64{0, 64, 256, 32768, 1 << 19, 1 << 40, math.MaxInt64} {
		for k := int64(-2); k <= 2; k++ {
			dods = append(dods, e+k, -e+k)
		}
	}
	dods = append(dods, math.MinInt64, math.MinInt64+1)
	for _, dod := range dods {
		var w BitWriter
		writeDod(&w, dod)
		require.Equal(t, w.BitLen(), dodBits(dod), "dod %d", dod)
	}
}

// TestFloatChunkBytesAsItGrows reads an open chunk at every point its
// count's uvarint widens (128 and 16384 samples) and around them, and
// only at the end: the count is written by Bytes, widening the header in
// place, and every read must decode to the samples so far.
func TestFloatChunkBytesAsItGrows(t *testing.T) {
	n := 16500
	ts, vs := make([]int64, n), make([]float64, n)
	for i := range ts {
		ts[i] = 1_700_000_000_000 + int64(i)*15000
		vs[i] = float64(i % 3)
	}
	reads := map[int]bool{1: true, 2: true, 3: true, 127: true, 128: true, 129: true, 200: true, 16383: true, 16384: true, 16385: true}
	c := NewFloatChunk()
	once := NewFloatChunk()
	for i := range ts {
		require.NoError(t, c.Append(ts[i], vs[i]))
		require.NoError(t, once.Append(ts[i], vs[i]))
		if reads[i+1] {
			requireSameSamples(t, ts[:i+1], vs[:i+1], decodeAll(t, c.Bytes()))
		}
	}
	requireSameSamples(t, ts, vs, decodeAll(t, c.Bytes()))
	require.Equal(t, c.Bytes(), once.Bytes(), "reading as it grows must not change the chunk")
}

// TestChimpFloor holds chimpFloor's shortcut to the plain count it stands
// for: 64 for the first value, 5 for one equal to any of the eight before
// it, 15 for the rest, on values with few and many repeats, and its early
// answer to a limit the floor reaches.
func TestChimpFloor(t *testing.T) {
	plain := func(vs []float64) int {
		if len(vs) == 0 {
			return 0
		}
		n := 64
		for i := 1; i < len(vs); i++ {
			c := 15
			for j := max(0, i-chimpRefs); j < i; j++ {
				if math.Float64bits(vs[j]) == math.Float64bits(vs[i]) {
					c = 5
				}
			}
			n += c
		}
		return n
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, distinct := range []int{1, 2, 5, 9, 40, 1 << 30} {
		for _, n := range []int{0, 1, 7, 8, 9, 120, 500} {
			vs := make([]float64, n)
			for i := range vs {
				vs[i] = float64(rng.IntN(distinct))
			}
			require.Equal(t, plain(vs), chimpFloor(vs, math.MaxInt), "%d values of %d distinct", n, distinct)
			_, full := mixedSamples(n)
			require.Equal(t, plain(full), chimpFloor(full, math.MaxInt))
			// Below a limit the floor is exact; at or past it, what is
			// returned is at least the limit and no more than the floor.
			for _, x := range [][]float64{vs, full} {
				floor := plain(x)
				for _, limit := range []int{0, 64, floor - 11, floor - 10, floor - 1, floor, floor + 1, 5 * n, 10 * n} {
					got := chimpFloor(x, limit)
					if floor < limit {
						require.Equal(t, floor, got, "%d values of %d distinct, limit %d", n, distinct, limit)
					} else {
						require.True(t, got >= limit && got <= floor, "%d values of %d distinct, limit %d: %d, floor %d", n, distinct, limit, got, floor)
					}
				}
			}
		}
	}
}

// TestChimpPlanLast holds planLast to plan on every value whose low byte
// none of the references shares, and chimpValueBits, which takes it for
// them, to the count and plans of plan alone.
func TestChimpPlanLast(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 8, 9, 120} {
		for name, vs := range valuePatterns(n, rng) {
			var s chimpState
			s.reset()
			plain := make([]chimpPlan, n)
			total := 0
			for i, v := range vs {
				vb := math.Float64bits(v)
				s.plan(vb, &plain[i])
				total += int(plain[i].nbits)
				shared := false
				for k := range min(s.n, chimpRefs) {
					shared = shared || uint8(s.ring[k]) == uint8(vb)
				}
				if s.n > 0 && !shared {
					var p chimpPlan
					s.planLast(vb, &p)
					require.Equal(t, plain[i].flag, p.flag, "%s value %d", name, i)
					require.Equal(t, plain[i].nbits, p.nbits)
					require.Equal(t, plain[i].class, p.class)
					require.Equal(t, plain[i].xor, p.xor)
				}
				switch plain[i].flag {
				case 0b01:
					s.lead = noWindow
				case 0b11:
					s.lead = plain[i].class
				}
				s.push(vb)
			}
			plans := make([]chimpPlan, n)
			require.Equal(t, total, chimpValueBits(vs, plans, math.MaxInt, chimpFloor(vs, math.MaxInt)), name)
			for i := range plans {
				require.Equal(t, plain[i].nbits, plans[i].nbits, "%s value %d", name, i)
				require.Equal(t, plain[i].flag, plans[i].flag)
				require.Equal(t, plain[i].xor, plans[i].xor)
			}
		}
	}
}

// TestDecimalScaleToleratesArithmeticNoise: three-decimal values some of
// which arithmetic left an ulp off (51.846000000000004) keep scale 3, the
// off ones stored as residuals, instead of scaling every value to fifteen
// digits.
func TestDecimalScaleToleratesArithmeticNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const n = 120
	ts, vs := make([]int64, n), make([]float64, n)
	x := 45.0
	for i := range vs {
		ts[i] = int64(i) * 300_000
		x += float64(rng.IntN(2001)-1000) / 1000
		vs[i] = math.Round(x*1000) / 1000
		if rng.IntN(3) == 0 { // a third of them an ulp off
			vs[i] = math.Nextafter(vs[i], math.Inf(1))
		}
	}
	p, _, _, _, ok := decAnalyse(vs, nil, nil)
	require.True(t, ok)
	require.Equal(t, uint8(3), p.e)
	best, err := AppendBestFloats(nil, ts, vs)
	require.NoError(t, err)
	requireSameSamples(t, ts, vs, decodeAll(t, best))
	require.Equal(t, EncDecimal, ChunkEncoding(best[0]))
	g := gorillaChunk(t, ts, vs)
	require.Less(t, len(best)*2, len(g), "decimal %d B, gorilla %d B", len(best), len(g))
}

// noisyDecimals returns n samples of a three-decimal random walk a third
// of whose values arithmetic left one to three ulps off, and every
// wideEvery-th (if not 0) some 200 ulps off.
func noisyDecimals(rng *rand.Rand, n, wideEvery int) ([]int64, []float64) {
	ts, vs := make([]int64, n), make([]float64, n)
	x := 45.0
	for i := range vs {
		ts[i] = 1_700_000_000_000 + int64(i)*300_000
		x += float64(rng.IntN(2001)-1000) / 1000
		vs[i] = math.Round(x*1000) / 1000
		if rng.IntN(3) == 0 {
			vs[i] = math.Float64frombits(math.Float64bits(vs[i]) + uint64(1+rng.IntN(3)))
		}
		if wideEvery > 0 && i%wideEvery == wideEvery-1 {
			vs[i] = math.Float64frombits(math.Float64bits(vs[i]) + 200)
		}
	}
	return ts, vs
}

// TestDecimalResidualField: where many values are an ulp or two off a
// short decimal, each value carries a residual field after its code, which
// costs less than an escape for the few that need one; the chunk must read
// back whole, by Next and by SeekTo, in every chunk form, with residuals
// too wide for the field still escaped.
func TestDecimalResidualField(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, wideEvery := range []int{0, 9} {
		ts, vs := noisyDecimals(rng, 120, wideEvery)
		var sc bestScratch
		enc, p, g := chooseFloatEncoding(ts, vs, &sc)
		require.Equal(t, EncDecimal, enc)
		require.Equal(t, uint8(3), p.e)
		require.Equal(t, uint8(3), p.k, "1–3 ulps up, zigzagged, take 2–3 bits: %+v", p)
		best, err := AppendBestFloats(nil, ts, vs)
		require.NoError(t, err)
		requireSameSamples(t, ts, vs, decodeAll(t, best))
		// The same decisions without the field: larger, the same samples.
		plain := p
		plain.k = 0
		without, err := appendFloatChunk(nil, enc, ts, vs, &plain, g, &sc)
		require.NoError(t, err)
		requireSameSamples(t, ts, vs, decodeAll(t, without))
		require.Less(t, len(best), len(without))
		// And written without the sizing's cache, value by value.
		uncached, err := appendFloatChunk(nil, enc, ts, vs, &p, g, nil)
		require.NoError(t, err)
		require.Equal(t, best, uncached)
		var it FloatIterator
		for i := range ts {
			require.NoError(t, it.Reset(best))
			require.True(t, it.SeekTo(ts[i]), "seek to sample %d", i)
			gt, gv := it.At()
			require.Equal(t, ts[i], gt)
			require.Equal(t, math.Float64bits(vs[i]), math.Float64bits(gv), "sample %d", i)
		}
		values, err := AppendBestFloatValues(nil, vs)
		require.NoError(t, err)
		got := decodeAll(t, values)
		require.Len(t, got, len(vs))
		for i := range vs {
			require.Equal(t, math.Float64bits(vs[i]), math.Float64bits(got[i].v), "value %d", i)
			require.NoError(t, it.Reset(values))
			require.True(t, it.SeekTo(int64(i)), "seek to value %d", i)
			_, gv := it.At()
			require.Equal(t, math.Float64bits(vs[i]), math.Float64bits(gv), "value %d sought", i)
		}
	}
}

// TestDecimalResidualFieldHeader: the field's width is announced by kind
// 3 before the first value's kind; a second kind 3 is corrupt.
func TestDecimalResidualFieldHeader(t *testing.T) {
	p := decParams{e: 3, order: 1, w: [4]uint8{2, 4, 8, 16}}
	for _, tc := range []struct {
		name  string
		bits  uint64 // after the parameters: kind 3, k−1, kind, ...
		n     int
		k     uint8
		wantE error
	}{
		{"width 1, exact", 0b11_00_00, 6, 1, nil},
		{"width 4, exact", 0b11_11_00, 6, 4, nil},
		{"kind 3 twice", 0b11_01_11, 6, 0, ErrCorrupt},
		{"cut after kind 3", 0b11, 2, 0, ErrCorrupt},
	} {
		var w BitWriter
		p.write(&w)
		w.WriteBits(tc.bits, tc.n)
		if tc.wantE == nil {
			w.WriteBits(7, 7) // wide d: 7 bits of length, then the bits
			w.WriteBits(84, 7)
		}
		var s decState
		var r BitReader
		r.Reset(w.Bytes())
		vb, err := s.read(&r, 0)
		if tc.wantE != nil {
			require.ErrorIs(t, err, tc.wantE, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.k, s.p.k, tc.name)
		require.Equal(t, math.Float64bits(0.042), vb, tc.name) // 84 zigzagged is 42
	}
}

// TestDecimalScaleFollowsDigits holds decMinScale's search, and the scale
// chooser's shortcuts from the last value's scale (the same, a digit
// longer, a digit or two shorter), to the smallest exact scale that
// trying every one finds, and the chooser's treatment of a value an ulp
// off a short decimal as noise.
func TestDecimalScaleFollowsDigits(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for range 100_000 {
		digits := rng.IntN(6)
		v := float64(rng.IntN(10_000_000)) / pow10[digits]
		switch rng.IntN(4) {
		case 0: // up to 53 bits of digits at any scale
			v = float64(rng.Int64N(1<<53)>>rng.IntN(53)) / pow10[rng.IntN(maxDecimalScale+1)]
		case 1: // any double
			v = math.Float64frombits(rng.Uint64())
		}
		if rng.IntN(2) == 0 {
			v = -v
		}
		// The smallest exact scale, by trying every one.
		want, wantOK := uint8(0), false
		for e := range uint8(maxDecimalScale + 1) {
			if decExactAt(v, e) {
				want, wantOK = e, true
				break
			}
		}
		got, ok := decMinScale(v)
		require.True(t, ok == wantOK && got == want, "%v: scale %d %v, want %d %v", v, got, ok, want, wantOK)
		lastE := uint8(rng.IntN(maxDecimalScale + 1))
		got, ok = decScaleAfter(v, lastE, true)
		require.True(t, ok == wantOK && (got == want || !ok), "%v after scale %d: %d %v, want %d %v", v, lastE, got, ok, want, wantOK)
	}
	// An ulp off a three-digit decimal, after a scale of 2 or 3: noise,
	// with no search (a search finds 13 digits or more).
	v := math.Nextafter(46.476, math.Inf(1))
	e, ok := decMinScale(v)
	require.True(t, !ok || e >= 13)
	for _, lastE := range []uint8{2, 3} {
		e, ok := decScaleAfter(v, lastE, true)
		require.True(t, !ok && e == decNoise, "after scale %d: %d %v, want noise", lastE, e, ok)
	}
}

// TestDecimalScaleRefusesFullPrecision checks that a chunk whose values
// mostly have no decimal scale is not sized as decimal, while one whose
// odd values are only arithmetic's noise still is.
func TestDecimalScaleRefusesFullPrecision(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	walk := make([]float64, 120)
	x := 300.0
	for i := range walk {
		x += rng.NormFloat64()
		walk[i] = x
	}
	_, ok, _ := decChooseScale(walk)
	require.False(t, ok, "a full-precision random walk")

	noisy := make([]float64, 120)
	for i := range noisy {
		noisy[i] = float64(40000+rng.IntN(9000)) / 1000
		if i%3 != 0 {
			noisy[i] = math.Nextafter(noisy[i], math.Inf(1)) // an ulp off
		}
	}
	e, ok, _ := decChooseScale(noisy)
	require.True(t, ok && e == 3, "three-decimal values, two in three an ulp off: scale %d %v", e, ok)
}

// TestDecimalScaleAcrossZeros holds that zeros, exact at any scale, leave
// the scale context of the values between them alone: a value an ulp off
// a nine-decimal one, after zeros that follow a clean nine-decimal value,
// is arithmetic's noise at that scale, not a value with no scale; two in
// three such would otherwise refuse decimal for the chunk.
func TestDecimalScaleAcrossZeros(t *testing.T) {
	// The chooser samples every third value of 120: those go clean,
	// then zero, off, off, zero, off, off…; the rest are zeros.
	vs := make([]float64, 120)
	vs[0] = 1.047256313
	for k := 1; 3*k < len(vs); k++ {
		if (k-1)%3 != 0 {
			vs[3*k] = math.Nextafter(float64(1_000_000_000+k*7_919)/1e9, 2)
		}
	}
	_, ok, clean := decChooseScale(vs)
	require.True(t, ok, "nine-decimal values an ulp off, between zeros")
	require.False(t, clean, "the values an ulp off are not exact")
}

// TestDecimalScaleNotVotedByZeros checks that a sparse series' zeros,
// exact at every scale, do not pull its scale down to 0: the values
// between them (disk bytes in tenths, 3276.8) would then each be stored
// with a long residual, or raw.
func TestDecimalScaleNotVotedByZeros(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	vs := make([]float64, 120)
	for i := range vs {
		if rng.IntN(6) == 0 {
			vs[i] = float64(1+rng.IntN(200_000)) / 10
		}
	}
	e, ok, _ := decChooseScale(vs)
	require.True(t, ok)
	require.Equal(t, uint8(1), e, "most values between the zeros are exact in tenths")
	ts := lateTimes(rng, len(vs), 300_000, 10)
	b, err := AppendBestFloats(nil, ts, vs)
	require.NoError(t, err)
	require.Equal(t, EncDecimal, ChunkEncoding(b[0]))
	requireSameSamples(t, ts, vs, decodeAll(t, b))

	zeros := make([]float64, 120)
	zeros[9] = 0.25 // sampled: every third value is
	if e, ok, clean := decChooseScale(zeros); !ok || !clean || e != 2 {
		t.Fatalf("zeros and one value in hundredths: scale %d ok %v clean %v, want 2 true true", e, ok, clean)
	}
	if e, ok, clean := decChooseScale(make([]float64, 120)); !ok || !clean || e != 0 {
		t.Fatalf("zeros only: scale %d ok %v clean %v, want 0 true true", e, ok, clean)
	}
}

// TestDecimalRepeatsOnExactGrid decodes a sparse series on a grid of
// width 0 (scrapes exactly on time, some missed): the repeats between
// spikes take the decoder's repeat path, which must step by the interval
// and restart after each missed scrape as the grid does.
func TestDecimalRepeatsOnExactGrid(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	ts, vs := make([]int64, 0, 120), make([]float64, 0, 120)
	at := int64(1_400_000_000_000)
	for len(ts) < 120 {
		at += 300_000
		if rng.IntN(6) == 0 {
			at += 300_000 * int64(1+rng.IntN(3)) // missed scrapes
		}
		v := 0.0
		if rng.IntN(8) == 0 {
			v = float64(rng.IntN(1_000_000_000)) / 1e9
		}
		ts, vs = append(ts, at), append(vs, v)
	}
	ds := dodCost(ts)
	g, other := chooseGridBelow(ts, ds)
	require.Equal(t, int64(300_000), g.interval)
	require.Zero(t, g.width)
	require.Less(t, other, ds)
	b, err := AppendBestFloats(nil, ts, vs)
	require.NoError(t, err)
	require.Equal(t, EncDecimal, ChunkEncoding(b[0]))
	requireSameSamples(t, ts, vs, decodeAll(t, b))
	// Seeking lands on the same samples.
	var it FloatIterator
	require.NoError(t, it.Reset(b))
	require.True(t, it.SeekTo(ts[60]))
	got, _ := it.At()
	require.Equal(t, ts[60], got)
}
