package keys

import (
	"bytes"
	"cmp"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// checkOrder asserts that for every pair the byte order of the encodings
// equals the logical order of the values, and that each decodes back.
func checkOrder[T any](t *testing.T, vals []T, enc func([]byte, T) []byte, dec func([]byte) (T, []byte, error), less func(a, b T) int, eq func(a, b T) bool) {
	t.Helper()
	encs := make([][]byte, len(vals))
	for i, v := range vals {
		encs[i] = enc(nil, v)
		got, rest, err := dec(append(append([]byte(nil), encs[i]...), 'z'))
		require.NoError(t, err)
		require.Equal(t, []byte{'z'}, rest, "decoder must return the bytes after the field")
		require.True(t, eq(v, got), "round trip of %v gave %v", v, got)
	}
	for i := range vals {
		for j := range vals {
			want := less(vals[i], vals[j])
			got := bytes.Compare(encs[i], encs[j])
			require.Equal(t, want, got, "order of %v vs %v", vals[i], vals[j])
		}
	}
}

func TestUint32Order(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []uint32{0, 1, 255, 256, math.MaxUint32 - 1, math.MaxUint32}
	for range 50 {
		vals = append(vals, r.Uint32())
	}
	checkOrder(t, vals, AppendUint32, Uint32, cmp.Compare[uint32], func(a, b uint32) bool { return a == b })
}

func TestUint64Order(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	vals := []uint64{0, 1, 1 << 32, math.MaxUint64}
	for range 50 {
		vals = append(vals, r.Uint64())
	}
	checkOrder(t, vals, AppendUint64, Uint64, cmp.Compare[uint64], func(a, b uint64) bool { return a == b })
}

func TestInt64Order(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	vals := []int64{math.MinInt64, -1 << 40, -1, 0, 1, 1 << 40, math.MaxInt64}
	for range 50 {
		vals = append(vals, int64(r.Uint64()))
	}
	checkOrder(t, vals, AppendInt64, Int64, cmp.Compare[int64], func(a, b int64) bool { return a == b })
}

func TestFloat64Order(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	vals := []float64{math.Inf(-1), -math.MaxFloat64, -1, -math.SmallestNonzeroFloat64, 0,
		math.SmallestNonzeroFloat64, 0.5, 1, math.MaxFloat64, math.Inf(1)}
	for range 50 {
		vals = append(vals, (r.Float64()-0.5)*math.Pow(10, float64(r.IntN(40)-20)))
	}
	checkOrder(t, vals, AppendFloat64, Float64, cmp.Compare[float64], func(a, b float64) bool {
		return math.Float64bits(a) == math.Float64bits(b)
	})
	// -0 sorts just below +0 and round-trips bit-exactly.
	neg := AppendFloat64(nil, math.Copysign(0, -1))
	pos := AppendFloat64(nil, 0)
	require.Equal(t, -1, bytes.Compare(neg, pos))
	got, _, err := Float64(neg)
	require.NoError(t, err)
	require.True(t, math.Signbit(got))
}

func TestStringOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	vals := []string{"", "\x00", "\x00\x00", "\x00\x01", "\x00\xff", "\x01", "a", "a\x00", "a\x00b", "ab", "b", "\xff", "\xff\xff"}
	for range 60 {
		n := r.IntN(5)
		b := make([]byte, n)
		for i := range b {
			b[i] = []byte{0, 1, 'a', 'b', 0xff}[r.IntN(5)]
		}
		vals = append(vals, string(b))
	}
	checkOrder(t, vals, AppendString, String, cmp.Compare[string], func(a, b string) bool { return a == b })
	checkOrder(t, [][]byte{nil, {0}, {0, 0}, {1}}, AppendBytes, func(src []byte) ([]byte, []byte, error) { return Bytes(nil, src) },
		bytes.Compare, bytes.Equal)
}

func TestCompositeOrder(t *testing.T) {
	// A string field followed by a number: the string decides first even when
	// one string is a prefix of the other.
	k := func(s string, n uint32) []byte { return AppendUint32(AppendString(Prefix(StoreLogs, 'i'), s), n) }
	require.Equal(t, -1, bytes.Compare(k("a", math.MaxUint32), k("a\x00", 0)))
	require.Equal(t, -1, bytes.Compare(k("a", math.MaxUint32), k("ab", 0)))
	require.Equal(t, -1, bytes.Compare(k("ab", 1), k("ab", 2)))
}

func TestStringPrefixRange(t *testing.T) {
	lo := AppendStringPrefix(Prefix(StoreLogs, 'i'), "err")
	hi := PrefixEnd(lo)
	in := []string{"err", "error", "errors\x00x"}
	out := []string{"er", "erq", "ers", "f", ""}
	for _, s := range in {
		k := AppendString(Prefix(StoreLogs, 'i'), s)
		require.True(t, bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0, "%q should be in range", s)
	}
	for _, s := range out {
		k := AppendString(Prefix(StoreLogs, 'i'), s)
		require.False(t, bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0, "%q should be out of range", s)
	}
}

func TestPrefixEnd(t *testing.T) {
	require.Equal(t, []byte("mc"+"\x01"), PrefixEnd([]byte("mc\x00")))
	require.Equal(t, []byte("md"), PrefixEnd([]byte("mc\xff")))
	require.Nil(t, PrefixEnd([]byte{0xff, 0xff}))
}

func TestMalformed(t *testing.T) {
	_, _, err := Uint32([]byte{1, 2})
	require.True(t, errors.Is(err, ErrMalformed))
	_, _, err = Uint64(nil)
	require.True(t, errors.Is(err, ErrMalformed))
	_, _, err = String([]byte("abc"))
	require.True(t, errors.Is(err, ErrMalformed))
	_, _, err = String([]byte("ab\x00"))
	require.True(t, errors.Is(err, ErrMalformed))
	_, _, err = String([]byte("ab\x00\x05"))
	require.True(t, errors.Is(err, ErrMalformed))
	_, err = Split([]byte("t"), StoreTraces, 's')
	require.True(t, errors.Is(err, ErrMalformed))
	rest, err := Split([]byte("ts123"), StoreTraces, 's')
	require.NoError(t, err)
	require.Equal(t, []byte("123"), rest)
}

func FuzzStringRoundTrip(f *testing.F) {
	f.Add([]byte("abc"), []byte("ab"))
	f.Add([]byte{0, 1}, []byte{0})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ea, eb := AppendBytes(nil, a), AppendBytes(nil, b)
		if got, want := bytes.Compare(ea, eb), bytes.Compare(a, b); got != want {
			t.Fatalf("order %q vs %q: encoded %d, values %d", a, b, got, want)
		}
		got, rest, err := Bytes(nil, ea)
		if err != nil || len(rest) != 0 || !bytes.Equal(got, a) {
			t.Fatalf("round trip %q: %q %q %v", a, got, rest, err)
		}
		// Arbitrary bytes never panic the decoder.
		_, _, _ = Bytes(nil, a)
	})
}
