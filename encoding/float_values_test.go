package encoding

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// valuesChunkAs encodes vs as an implicit-timestamp chunk in enc whether or
// not it is the smallest.
func valuesChunkAs(t testing.TB, enc ChunkEncoding, vs []float64) []byte {
	t.Helper()
	p, _, _, _, ok := decAnalyse(vs, nil, nil)
	if !ok {
		p, _, _ = decCost(vs, 0, nil, nil)
	}
	b, err := appendFloatValuesChunk(nil, enc, vs, &p, nil)
	require.NoError(t, err)
	return b
}

// indexTimes returns 0, 1, …, n−1.
func indexTimes(n int) []int64 {
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = int64(i)
	}
	return ts
}

func TestFloatValuesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{1, 2, 120, 1024, 5000} {
		ts := indexTimes(n)
		for name, vs := range valuePatterns(n, rng) {
			t.Run(strconv.Itoa(n)+"/"+name, func(t *testing.T) {
				best, err := AppendBestFloatValues(nil, vs)
				require.NoError(t, err)
				requireSameSamples(t, ts, vs, decodeAll(t, best))
				for _, enc := range []ChunkEncoding{EncGorilla, EncDecimal, EncChimp} {
					b := valuesChunkAs(t, enc, vs)
					requireSameSamples(t, ts, vs, decodeAll(t, b))
					require.LessOrEqual(t, len(best), len(b), "best is %s, yet %s is smaller", ChunkEncoding(best[0]), enc)
				}
			})
		}
	}
}

// TestFloatValuesAppends checks AppendBestFloatValues appends after what dst
// holds and leaves it in place.
func TestFloatValuesAppends(t *testing.T) {
	vs := []float64{1.5, 2.5, 2.5, 3}
	prefix := []byte("prefix")
	b, err := AppendBestFloatValues(append([]byte(nil), prefix...), vs)
	require.NoError(t, err)
	require.Equal(t, prefix, b[:len(prefix)])
	requireSameSamples(t, indexTimes(len(vs)), vs, decodeAll(t, b[len(prefix):]))

	empty, err := AppendBestFloatValues(nil, nil)
	require.NoError(t, err)
	n, err := FloatChunkLen(empty)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Empty(t, decodeAll(t, empty))
}

// TestFloatValuesTimestampsAreFree checks an implicit chunk spends no bits
// a sample on timestamps: each decimal or chimp chunk is at most a few
// bytes (t₀ and the header) larger than its values alone, which the same
// values on a regular grid cost at least a bit a sample more.
func TestFloatValuesTimestampsAreFree(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	const n = 1024
	regular := make([]int64, n)
	for i := range regular {
		regular[i] = 1_700_000_000_000 + int64(i)*15000
	}
	for name, vs := range valuePatterns(n, rng) {
		for _, enc := range []ChunkEncoding{EncDecimal, EncChimp} {
			b := valuesChunkAs(t, enc, vs)
			// Values alone: the same stream without t₀ and the header,
			// 17 bits at most before the values.
			timed := chunkAs(enc, regular, vs)
			require.LessOrEqual(t, len(b)*8+n-17-64, len(timed)*8, "%s %s: %d bytes implicit, %d timed", name, enc, len(b), len(timed))
		}
		best, err := AppendBestFloatValues(nil, vs)
		require.NoError(t, err)
		timed, err := AppendBestFloats(nil, regular, vs)
		require.NoError(t, err)
		require.LessOrEqual(t, len(best), len(timed), name)
	}
	// A constant series: a bit a sample, all of it the value's.
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = 0.25
	}
	b, err := AppendBestFloatValues(nil, vs)
	require.NoError(t, err)
	require.Equal(t, EncDecimal, ChunkEncoding(b[0]))
	require.LessOrEqual(t, len(b), n/8+16)
}

func TestFloatValuesSeek(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, n := range []int{1, 2, 120, 1024} {
		for name, vs := range valuePatterns(n, rng) {
			for _, enc := range []ChunkEncoding{EncGorilla, EncDecimal, EncChimp} {
				b := valuesChunkAs(t, enc, vs)
				var it FloatIterator
				for _, k := range []int{0, 1, n / 3, n / 2, n - 1} {
					if k >= n {
						continue
					}
					require.NoError(t, it.Reset(b))
					require.True(t, it.SeekTo(int64(k)), "%d %s %s: seek %d", n, name, enc, k)
					tt, v := it.At()
					require.Equal(t, int64(k), tt)
					require.Equal(t, math.Float64bits(vs[k]), math.Float64bits(v), "%d %s %s: sample %d", n, name, enc, k)
					require.True(t, it.SeekTo(int64(k))) // already there: stays
					tt, _ = it.At()
					require.Equal(t, int64(k), tt)
					if k+1 < n {
						require.True(t, it.Next())
						tt, v = it.At()
						require.Equal(t, int64(k+1), tt)
						require.Equal(t, math.Float64bits(vs[k+1]), math.Float64bits(v))
					}
				}
				require.NoError(t, it.Reset(b))
				require.True(t, it.SeekTo(-5)) // before the first: lands on it
				tt, _ := it.At()
				require.Zero(t, tt)
				require.False(t, it.SeekTo(int64(n)))
				require.NoError(t, it.Err())
			}
		}
	}
}

// TestFloatValuesAllocs checks the values-only paths allocate nothing on
// reading, and writing allocates only the chunk.
func TestFloatValuesAllocs(t *testing.T) {
	_, vs := mixedSamples(120)
	for _, enc := range []ChunkEncoding{EncGorilla, EncDecimal, EncChimp} {
		b := valuesChunkAs(t, enc, vs)
		var it FloatIterator
		allocs := testing.AllocsPerRun(50, func() {
			_ = it.Reset(b)
			for it.Next() {
			}
		})
		require.Zero(t, allocs, enc)
		require.NoError(t, it.Err())
		allocs = testing.AllocsPerRun(50, func() {
			_ = it.Reset(b)
			_ = it.SeekTo(int64(len(vs) / 2))
			_ = it.SeekTo(int64(len(vs) - 1))
		})
		require.Zero(t, allocs, enc)
		require.NoError(t, it.Err())
	}
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(50, func() {
		buf, _ = AppendBestFloatValues(buf[:0], vs)
	})
	require.Zero(t, allocs)
}

// TestImplicitHeaderOnlyInNewChunks checks the implicit timestamp header
// takes a grid interval of 0, which no grid chunk holds: every decimal and
// chimp chunk AppendBestFloats writes for grid-friendly timestamps keeps a
// positive interval, and an implicit chunk whose t₀ would overflow on the
// next sample is rejected, not wrapped.
func TestImplicitHeaderOnlyInNewChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	for name, ts := range timestampPatterns(120, rng) {
		g := chooseGrid(ts)
		require.False(t, g.implicit, name)
		require.True(t, g.interval > 0 || g == tsGrid{}, name)
	}

	// t₀ = MaxInt64, then a second sample: the time cannot advance.
	var w BitWriter
	w.WriteUvarint(Zigzag(math.MaxInt64))
	g := tsGrid{implicit: true}
	g.write(&w)
	w.WriteBits(math.Float64bits(1), 64) // chimp value 0
	w.WriteBits(0b00000, 5)              // equal to value 0
	chunk := sealFloatChunk(EncChimp, 2, w.Bytes())
	it, err := NewFloatIterator(chunk)
	require.NoError(t, err)
	require.True(t, it.Next())
	tt, v := it.At()
	require.Equal(t, int64(math.MaxInt64), tt)
	require.Equal(t, 1.0, v)
	require.False(t, it.Next())
	require.ErrorIs(t, it.Err(), ErrCorrupt)
}

// sealFloatChunk frames a bit stream as a float chunk of n samples.
func sealFloatChunk(enc ChunkEncoding, n int, stream []byte) []byte {
	b := binary.AppendUvarint([]byte{byte(enc)}, uint64(n))
	hdr := len(b)
	b = append(b, stream...)
	sum := crc32Update(crc32Checksum(b[hdr:]), b[:hdr])
	return binary.LittleEndian.AppendUint16(b, foldCRC(sum))
}

// FuzzFloatValuesRoundTrip encodes arbitrary value sequences as
// implicit-timestamp chunks, the best one and each encoding forced, and
// requires every one to decode bit-exactly at times 0, 1, 2, …
func FuzzFloatValuesRoundTrip(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\xf0\x7f\x02\x00\x00\x00\x00\x00\x00\xf0\x7f\x02"))
	f.Add([]byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, vs := samplesFromBytes(b)
		ts := indexTimes(len(vs))
		best, err := AppendBestFloatValues(nil, vs)
		require.NoError(t, err)
		requireSameSamples(t, ts, vs, decodeAll(t, best))
		for _, enc := range []ChunkEncoding{EncGorilla, EncDecimal, EncChimp} {
			requireSameSamples(t, ts, vs, decodeAll(t, valuesChunkAs(t, enc, vs)))
		}
	})
}

// TestFloatValuesSeekAfterNext checks an implicit decimal chunk's seek
// from every kind of position — a fresh iterator, inside a run of values
// decoded ahead, at its end — lands on the sample a walk with Next reaches,
// and that Next carries on from there through the rest of the chunk.
func TestFloatValuesSeekAfterNext(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	patterns := valuePatterns(300, rng)
	_, patterns["mixed"] = mixedSamples(300)
	for name, vs := range patterns {
		n := len(vs)
		b := valuesChunkAs(t, EncDecimal, vs)
		var it FloatIterator
		for _, before := range []int{0, 1, 2, 3, valuesAhead, valuesAhead + 1, 2*valuesAhead + 3} {
			for _, k := range []int{0, 1, 2, 5, valuesAhead, valuesAhead + 2, 3 * valuesAhead, 97, n / 2, n - 2, n - 1} {
				require.NoError(t, it.Reset(b))
				for range before {
					require.True(t, it.Next())
				}
				want := max(k, before-1)
				require.True(t, it.SeekTo(int64(k)), "%s: %d Next then seek %d", name, before, k)
				for i := want; ; i++ {
					tt, v := it.At()
					require.Equal(t, int64(i), tt)
					require.Equal(t, math.Float64bits(vs[i]), math.Float64bits(v),
						"%s: %d Next, seek %d, sample %d: want %v got %v", name, before, k, i, vs[i], v)
					if !it.Next() {
						require.Equal(t, n-1, i)
						break
					}
				}
				require.NoError(t, it.Err())
			}
		}
	}
}

// TestFloatValuesDamagedSeekAgreesWithNext damages implicit decimal chunks
// bit by bit (and reseals them): seeking a fresh iterator to each time
// must find what a walk with Next finds there, the same sample or the same
// failure, so values decoded ahead and codes summed past never report a
// sample the careful path would not.
func TestFloatValuesDamagedSeekAgreesWithNext(t *testing.T) {
	_, vs := mixedSamples(60)
	good := valuesChunkAs(t, EncDecimal, vs)
	_, _, hdr, err := parseFloatHeader(good)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(31, 32))
	var it FloatIterator
	for range 300 {
		b := append([]byte(nil), good[:len(good)-floatCheckLen]...)
		for range 1 + rng.IntN(3) {
			pos := hdr + rng.IntN(len(b)-hdr)
			b[pos] ^= 1 << rng.IntN(8)
		}
		b = reseal(b)
		require.NoError(t, it.Reset(b))
		var walk []sample
		for it.Next() {
			tt, v := it.At()
			walk = append(walk, sample{tt, v})
		}
		walkErr := it.Err()
		if walkErr != nil {
			require.ErrorIs(t, walkErr, ErrCorrupt)
		}
		for k := range len(vs) + 1 {
			require.NoError(t, it.Reset(b))
			if !it.SeekTo(int64(k)) {
				// Past the samples the walk found: the same end.
				i := sort.Search(len(walk), func(i int) bool { return walk[i].t >= int64(k) })
				require.Equal(t, len(walk), i, "seek %d ended early", k)
				require.Equal(t, walkErr == nil, it.Err() == nil, "seek %d: %v, walk: %v", k, it.Err(), walkErr)
				continue
			}
			tt, v := it.At()
			i := sort.Search(len(walk), func(i int) bool { return walk[i].t >= int64(k) })
			require.Less(t, i, len(walk), "seek %d found a sample the walk did not", k)
			require.Equal(t, walk[i].t, tt, "seek %d", k)
			require.Equal(t, math.Float64bits(walk[i].v), math.Float64bits(v), "seek %d", k)
		}
	}
}

// TestFloatValuesDecimalNearMaxTime checks an implicit decimal chunk whose
// t₀ leaves room for fewer samples than it holds yields those samples and
// then fails, from Next and from SeekTo, rather than wrapping the time.
func TestFloatValuesDecimalNearMaxTime(t *testing.T) {
	vs := []float64{1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3, 3.25, 3.5, 3.75, 4}
	const room = 5 // samples at MaxInt64-4 … MaxInt64
	p, _, _, _, ok := decAnalyse(vs, nil, nil)
	require.True(t, ok)
	var w BitWriter
	w.WriteUvarint(Zigzag(math.MaxInt64 - room + 1))
	g := tsGrid{implicit: true}
	g.write(&w)
	var ds decState
	ds.p = p
	for i, v := range vs {
		require.True(t, writeDecimalValue(&w, &ds, i, math.Float64bits(v), nil))
	}
	chunk := sealFloatChunk(EncDecimal, len(vs), w.Bytes())

	it, err := NewFloatIterator(chunk)
	require.NoError(t, err)
	for i := range room {
		require.True(t, it.Next())
		tt, v := it.At()
		require.Equal(t, int64(math.MaxInt64-room+1+i), tt)
		require.Equal(t, vs[i], v)
	}
	require.False(t, it.Next())
	require.ErrorIs(t, it.Err(), ErrCorrupt)

	require.NoError(t, it.Reset(chunk))
	require.True(t, it.SeekTo(math.MaxInt64))
	tt, v := it.At()
	require.Equal(t, int64(math.MaxInt64), tt)
	require.Equal(t, vs[room-1], v)
	require.False(t, it.Next())
	require.ErrorIs(t, it.Err(), ErrCorrupt)
}

// FuzzFloatValuesSeek feeds arbitrary bytes, resealed, to the iterator as
// chunks, implicit decimal ones among the seeds, and requires seeking a
// fresh iterator to each time a walk with Next found, and to one past each,
// to find what the walk found there: the values an implicit chunk decodes
// ahead and the codes its seek sums must agree with the careful path.
func FuzzFloatValuesSeek(f *testing.F) {
	_, mixed := mixedSamples(40)
	for _, vs := range [][]float64{mixed, {1, 1, 1, 2, 2.5, 3.25, 3.25, 1e300, math.NaN(), 0, -7.5}} {
		b := valuesChunkAs(f, EncDecimal, vs)
		f.Add(b[:len(b)-floatCheckLen])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxFuzzChunk {
			return
		}
		if _, _, _, err := parseFloatHeader(b); err != nil {
			return
		}
		b = reseal(b)
		it, err := NewFloatIterator(b)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		var walk []sample
		for it.Next() {
			tt, v := it.At()
			walk = append(walk, sample{tt, v})
		}
		walkErr := it.Err()
		for i, s := range walk {
			for _, target := range []int64{s.t, s.t - 1} {
				if target == s.t-1 && (i == 0 || walk[i-1].t >= target) {
					continue
				}
				require.NoError(t, it.Reset(b))
				require.True(t, it.SeekTo(target), "seek %d: %v", target, it.Err())
				tt, v := it.At()
				require.Equal(t, s.t, tt, "seek %d", target)
				require.Equal(t, math.Float64bits(s.v), math.Float64bits(v), "seek %d", target)
			}
		}
		if len(walk) > 0 && walk[len(walk)-1].t < math.MaxInt64 {
			require.NoError(t, it.Reset(b))
			require.False(t, it.SeekTo(walk[len(walk)-1].t+1))
			require.Equal(t, walkErr == nil, it.Err() == nil, "seek past the end: %v, walk: %v", it.Err(), walkErr)
		}
	})
}
