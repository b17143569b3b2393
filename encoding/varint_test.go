package encoding

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

var uvarintEdges = []uint64{0, 1, 127, 128, 255, 256, 16383, 16384, 1<<32 - 1, 1 << 32, 1<<56 - 1, 1 << 63, math.MaxUint64}

var varintEdges = []int64{0, 1, -1, 63, -64, 64, -65, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1}

func TestZigzag(t *testing.T) {
	for v, want := range map[int64]uint64{0: 0, -1: 1, 1: 2, -2: 3, 2: 4, math.MaxInt64: math.MaxUint64 - 1, math.MinInt64: math.MaxUint64} {
		require.Equal(t, want, Zigzag(v), "Zigzag(%d)", v)
		require.Equal(t, v, Unzigzag(want), "Unzigzag(%d)", want)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		v := int64(rng.Uint64())
		require.Equal(t, v, Unzigzag(Zigzag(v)))
	}
}

func TestUvarintRoundTrip(t *testing.T) {
	var b []byte
	for _, v := range uvarintEdges {
		b = AppendUvarint(b, v)
	}
	for _, v := range uvarintEdges {
		got, rest, err := Uvarint(b)
		require.NoError(t, err)
		require.Equal(t, v, got)
		b = rest
	}
	require.Empty(t, b)
	require.Len(t, AppendUvarint(nil, 127), 1)
	require.Len(t, AppendUvarint(nil, 128), 2)
	require.Len(t, AppendUvarint(nil, math.MaxUint64), binary.MaxVarintLen64)
}

func TestVarintRoundTrip(t *testing.T) {
	var b []byte
	for _, v := range varintEdges {
		b = AppendVarint(b, v)
	}
	for _, v := range varintEdges {
		got, rest, err := Varint(b)
		require.NoError(t, err)
		require.Equal(t, v, got)
		b = rest
	}
	require.Empty(t, b)
	require.Len(t, AppendVarint(nil, -64), 1, "small negatives stay short")
}

func TestUvarintCorrupt(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":               nil,
		"truncated":           {0x80},
		"truncated long":      AppendUvarint(nil, math.MaxUint64)[:9],
		"overflow 10th byte":  append(bytes.Repeat([]byte{0xff}, 9), 0x02),
		"overflow eleven":     append(bytes.Repeat([]byte{0x80}, 10), 0x01),
		"continuation at end": bytes.Repeat([]byte{0xff}, 10),
	} {
		t.Run(name, func(t *testing.T) {
			_, rest, err := Uvarint(b)
			require.ErrorIs(t, err, ErrCorrupt)
			require.Equal(t, b, rest, "input is returned unconsumed")
			_, _, err = Varint(b)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
	// Every prefix of a multi-byte varint is truncated.
	b := AppendUvarint(nil, 1<<60)
	for n := range len(b) {
		_, _, err := Uvarint(b[:n])
		require.ErrorIs(t, err, ErrCorrupt, "cut to %d", n)
	}
}

func TestDecoderRoundTrip(t *testing.T) {
	var b []byte
	b = AppendUvarint(b, 300)
	b = AppendVarint(b, -7)
	b = append(b, 0xab)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(math.Pi))
	b = AppendBytesField(b, []byte("span payload"))
	b = AppendStringField(b, "service.name")
	b = AppendBytesField(b, nil)

	d := NewDecoder(b)
	require.Equal(t, len(b), d.Len())
	require.Equal(t, uint64(300), d.Uvarint())
	require.Equal(t, int64(-7), d.Varint())
	require.Equal(t, byte(0xab), d.Byte())
	require.Equal(t, math.Pi, math.Float64frombits(d.Uint64()))
	payload := d.Bytes()
	require.Equal(t, "span payload", string(payload))
	require.Equal(t, len(payload), cap(payload), "Bytes caps its result so appends cannot clobber the input")
	require.Equal(t, "service.name", string(d.Bytes()))
	require.Empty(t, d.Bytes())
	require.NoError(t, d.Err())
	require.Zero(t, d.Len())
	require.Empty(t, d.Rest())

	allocs := testing.AllocsPerRun(100, func() {
		d.Reset(b)
		d.Uvarint()
		d.Varint()
		d.Byte()
		d.Uint64()
		d.Bytes()
		d.Bytes()
		d.Bytes()
	})
	require.Zero(t, allocs)
	require.NoError(t, d.Err())
}

// TestDecoderSticky checks that the first error sticks: later reads return
// zero values and do not consume input, and Reset clears it.
func TestDecoderSticky(t *testing.T) {
	for name, read := range map[string]func(d *Decoder){
		"Uvarint": func(d *Decoder) { d.Uvarint() },
		"Varint":  func(d *Decoder) { d.Varint() },
		"Byte":    func(d *Decoder) { d.Byte() },
		"Uint64":  func(d *Decoder) { d.Uint64() },
		"Bytes":   func(d *Decoder) { d.Bytes() },
	} {
		t.Run(name, func(t *testing.T) {
			d := NewDecoder(nil)
			read(&d)
			first := d.Err()
			require.ErrorIs(t, first, ErrCorrupt)

			// A valid input behind the error is not read.
			d.buf = AppendUvarint(nil, 5)
			require.Zero(t, d.Uvarint())
			require.Zero(t, d.Varint())
			require.Zero(t, d.Byte())
			require.Zero(t, d.Uint64())
			require.Nil(t, d.Bytes())
			require.Equal(t, 1, d.Len(), "nothing consumed after the error")
			require.Same(t, first, d.Err())

			d.Reset(AppendUvarint(nil, 5))
			require.NoError(t, d.Err())
			require.Equal(t, uint64(5), d.Uvarint())
		})
	}
}

func TestDecoderCorrupt(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []byte
		read func(d *Decoder)
	}{
		"Uint64 short":      {[]byte{1, 2, 3, 4, 5, 6, 7}, func(d *Decoder) { d.Uint64() }},
		"Bytes too long":    {append(AppendUvarint(nil, 10), "short"...), func(d *Decoder) { d.Bytes() }},
		"Bytes huge length": {AppendUvarint(nil, math.MaxUint64), func(d *Decoder) { d.Bytes() }},
		"Bytes bad length":  {[]byte{0x80}, func(d *Decoder) { d.Bytes() }},
		"Uvarint overflow":  {append(bytes.Repeat([]byte{0xff}, 9), 0x7f), func(d *Decoder) { d.Uvarint() }},
	} {
		t.Run(name, func(t *testing.T) {
			d := NewDecoder(tc.in)
			tc.read(&d)
			require.ErrorIs(t, d.Err(), ErrCorrupt)
		})
	}
}

// FuzzVarint decodes arbitrary bytes as varints: no panic, errors are
// ErrCorrupt, and a decoded value re-encodes to something that decodes to
// it again with no more bytes than were read.
func FuzzVarint(f *testing.F) {
	for _, v := range uvarintEdges {
		f.Add(AppendUvarint(nil, v))
	}
	f.Add([]byte{0x80, 0x00})
	f.Add(bytes.Repeat([]byte{0xff}, 11))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, rest, err := Uvarint(data)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			require.Equal(t, len(data), len(rest))
			return
		}
		used := len(data) - len(rest)
		require.Positive(t, used)
		enc := AppendUvarint(nil, u)
		require.LessOrEqual(t, len(enc), used)
		again, tail, err := Uvarint(enc)
		require.NoError(t, err)
		require.Empty(t, tail)
		require.Equal(t, u, again)

		s, _, err := Varint(data)
		require.NoError(t, err)
		require.Equal(t, Unzigzag(u), s)
		s2, _, err := Varint(AppendVarint(nil, s))
		require.NoError(t, err)
		require.Equal(t, s, s2)
	})
}

// FuzzDecoder runs a sequence of reads chosen by ops over arbitrary input:
// no panic, no read past the input, and the first error sticks.
func FuzzDecoder(f *testing.F) {
	var rec []byte
	rec = AppendUvarint(rec, 7)
	rec = AppendVarint(rec, -3)
	rec = AppendStringField(rec, "abc")
	rec = binary.LittleEndian.AppendUint64(rec, 99)
	f.Add([]byte{0, 1, 4, 3, 2}, rec)
	f.Add([]byte{4, 4, 4}, []byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, ops, data []byte) {
		d := NewDecoder(data)
		var firstErr error
		for _, op := range ops {
			before := d.Len()
			var zero bool
			switch op % 5 {
			case 0:
				zero = d.Uvarint() == 0
			case 1:
				zero = d.Varint() == 0
			case 2:
				zero = d.Byte() == 0
			case 3:
				zero = d.Uint64() == 0
			case 4:
				b := d.Bytes()
				zero = b == nil
				if d.Err() == nil {
					require.LessOrEqual(t, len(b), before)
					require.Equal(t, len(b), cap(b))
				}
			}
			require.LessOrEqual(t, d.Len(), before)
			if firstErr != nil {
				require.True(t, zero, "a read after an error returns the zero value")
				require.Equal(t, before, d.Len())
				require.Same(t, firstErr, d.Err())
			} else if d.Err() != nil {
				require.ErrorIs(t, d.Err(), ErrCorrupt)
				firstErr = d.Err()
			}
		}
		require.Equal(t, data[len(data)-d.Len():], d.Rest())
	})
}
