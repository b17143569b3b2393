package encoding

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzFloatIterator feeds arbitrary bytes to the float chunk decoder. It
// must never panic, must end every chunk it cannot decode with an error
// wrapping ErrCorrupt, and whatever it accepts must be a well-formed chunk:
// as many samples as the header says, strictly increasing timestamps, and
// a re-encoding that decodes to the same samples.
func FuzzFloatIterator(f *testing.F) {
	ts, vs := mixedSamples(20)
	for _, b := range encodings(f, ts, vs) {
		f.Add(b)
	}
	// Decimals an ulp or a few off, which take the residual field.
	ts, vs = noisyDecimals(rand.New(rand.NewPCG(5, 6)), 24, 7)
	for _, b := range encodings(f, ts, vs) {
		f.Add(b)
	}
	f.Add([]byte{byte(EncGorilla), 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxFuzzChunk {
			return
		}
		checkFloatChunk(t, b)
		// Random bytes rarely carry a valid checksum; seal them with one so
		// the decoder proper sees them too.
		if _, _, _, err := parseFloatHeader(b); err == nil {
			checkFloatChunk(t, reseal(b))
		}
	})
}

// maxFuzzChunk is the longest input FuzzFloatIterator decodes. Past 3·168
// bytes hash/crc32 (instrumented like everything else when fuzzing) takes
// its blocked path, whose loop counts grow with the length, so the fuzzer
// counts every longer chunk as new coverage whatever the decoder does with
// it, and then spends its whole minimisation budget (60 s by default) on
// it: removing any byte loses the coverage, so the minimiser's pass over
// every range of bytes, quadratic in the length, runs to the end. (A
// 3.5 KB chunk whose header fails at sample 0 took the full minute.)
// Chunks this long reach every decoder path (a constant chunk holds 2000
// samples); the checksum over longer ones is tested on its own.
const maxFuzzChunk = 3*168 - 1

// checkFloatChunk decodes b and checks what the decoder accepts.
func checkFloatChunk(t *testing.T, b []byte) {
	{
		it, err := NewFloatIterator(b)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		var got []sample
		for it.Next() {
			tt, v := it.At()
			if len(got) > 0 {
				require.Greater(t, tt, got[len(got)-1].t)
			}
			got = append(got, sample{tt, v})
		}
		if err := it.Err(); err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		n, err := FloatChunkLen(b)
		require.NoError(t, err)
		require.Len(t, got, n)
		gts := make([]int64, len(got))
		gvs := make([]float64, len(got))
		for i, s := range got {
			gts[i], gvs[i] = s.t, s.v
		}
		best, err := AppendBestFloatChunk(nil, b)
		require.NoError(t, err)
		requireSameSamples(t, gts, gvs, decodeAll(t, best))
	}
}

// samplesFromBytes turns fuzz input into a strictly increasing sample
// sequence: each 9-byte record is a timestamp step selector and a value,
// which is either raw bits or a small decimal, so every encoding path is
// reached.
func samplesFromBytes(b []byte) ([]int64, []float64) {
	var ts []int64
	var vs []float64
	t := int64(binary.LittleEndian.Uint64(append(b[:min(8, len(b)):min(8, len(b))], make([]byte, 8)...)))
	for len(b) >= 9 {
		sel, raw := b[0], binary.LittleEndian.Uint64(b[1:9])
		b = b[9:]
		var step int64
		switch sel % 5 {
		case 0:
			step = 15000
		case 1:
			step = 15000 + int64(sel>>3) - 16
		case 2:
			step = 1
		case 3:
			step = int64(raw>>20) + 1
		default:
			step = int64(sel) * 1000
		}
		if step <= 0 {
			step = 1
		}
		if len(ts) > 0 {
			if t > math.MaxInt64-step {
				break
			}
			t += step
		}
		var v float64
		switch sel % 3 {
		case 0:
			v = math.Float64frombits(raw)
		case 1:
			v = float64(int64(raw)%100000) / 100
			// Some an ulp or a few off, as arithmetic leaves them.
			v = math.Float64frombits(math.Float64bits(v) + raw>>61)
		default:
			v = float64(raw % 1000)
		}
		ts = append(ts, t)
		vs = append(vs, v)
	}
	return ts, vs
}

// FuzzFloatRoundTrip encodes arbitrary sample sequences with the open
// chunk, each encoding forced, and the best one, and requires every one to
// decode bit-exactly.
func FuzzFloatRoundTrip(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\xf0\x7f\x02\x00\x00\x00\x00\x00\x00\xf0\x7f\x02"))
	f.Add([]byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, vs := samplesFromBytes(b)
		for _, c := range encodings(t, ts, vs) {
			requireSameSamples(t, ts, vs, decodeAll(t, c))
		}
		best, err := AppendBestFloats(nil, ts, vs)
		require.NoError(t, err)
		requireSameSamples(t, ts, vs, decodeAll(t, best))
	})
}

// FuzzBitStream writes fields of arbitrary widths and values and reads
// them back, then reads the same bytes with arbitrary widths, which must
// never panic and must fail only with ErrCorrupt.
func FuzzBitStream(f *testing.F) {
	f.Add([]byte{1, 0xff, 64, 0x80, 7, 0x01, 33, 0xaa})
	f.Fuzz(func(t *testing.T, b []byte) {
		var w BitWriter
		type field struct {
			v uint64
			n int
		}
		var fields []field
		for i := 0; i+1 < len(b); i += 2 {
			n := int(b[i]) % 65
			v := uint64(b[i+1]) * 0x0101010101010101
			if n < 64 {
				v &= 1<<n - 1
			}
			w.WriteBits(v, n)
			fields = append(fields, field{v, n})
		}
		bits := w.BitLen()
		out := w.Bytes()
		require.Equal(t, (bits+7)/8, len(out))
		r := NewBitReader(out)
		for i, fl := range fields {
			got, err := r.ReadBits(fl.n)
			require.NoError(t, err)
			require.Equal(t, fl.v, got, "field %d", i)
		}
		require.Less(t, r.Remaining(), 8)

		r.Reset(b)
		for _, x := range b {
			if _, err := r.ReadBits(int(x) % 65); err != nil {
				require.ErrorIs(t, err, ErrCorrupt)
				require.True(t, IsTruncated(err))
				break
			}
		}
	})
}
