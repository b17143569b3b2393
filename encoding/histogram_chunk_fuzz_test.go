package encoding

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzHistogramDecode feeds arbitrary bytes to the iterator, as they are
// and with a valid checksum (so the bit-stream decoder is reached): it must
// never panic, and whatever it accepts must be valid histograms that
// re-encode to the same histograms.
func FuzzHistogramDecode(f *testing.F) {
	for seed := range uint64(3) {
		c := NewHistogramChunk()
		fillChunk(f, c, newHistSeries(seed, int32(seed)-1, seed == 2), 5)
		f.Add(c.Bytes())
	}
	f.Add([]byte{byte(EncHistogram), histogramChunkVersion, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecoded(t, data)
		if len(data) >= histogramHeaderLen {
			b := append([]byte(nil), data...)
			b[0], b[1] = byte(EncHistogram), histogramChunkVersion
			checkDecoded(t, withCRC(b))
		}
	})
}

func checkDecoded(t *testing.T, data []byte) {
	it, err := NewHistogramIterator(data)
	if err != nil {
		require.ErrorIs(t, err, ErrCorrupt)
		return
	}
	var got []histSample
	for it.Next() {
		ts, h := it.AtHistogram(nil)
		require.NoError(t, h.Validate(), "decoded histogram must be valid")
		if len(got) > 0 {
			require.Greater(t, ts, got[len(got)-1].t)
		}
		got = append(got, histSample{ts, h})
	}
	if it.Err() != nil {
		require.ErrorIs(t, it.Err(), ErrCorrupt)
		return
	}
	c := NewHistogramChunk()
	for _, s := range got {
		require.NoError(t, c.Append(s.t, s.h))
	}
	requireHistsEqual(t, got, c.Bytes())
}

// FuzzHistogramRoundTrip builds histograms from arbitrary bytes (spans,
// counts, float bits of sums and thresholds, hints), appends them and
// requires every accepted one back exactly.
func FuzzHistogramRoundTrip(f *testing.F) {
	f.Add([]byte("\x03\x00\x01\x02\x05\x03\x07\x01\x02\x03\x04\x05\x06\x07\x08\x09"))
	f.Add([]byte("\x00\x01\xff\xff\xff\xff\x0f\x02\x00\x00\x00\x00\x00\x00\xf8\x7f\x10\x20\x30\x40\x50\x60\x70"))
	f.Add([]byte("\x0c\x03\x01\x01\x02\x01\x01\x01\x01\x01\x02\x00\x00\x00\x00\x00\x00\xf0\x7f\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(data)
		schema := int32(d.Byte()%13) + MinHistogramSchema
		mode := d.Byte()
		thr := [...]float64{0, 0x1p-128, 0.001, 1}[mode%4]
		gauge := mode&4 != 0
		c := NewHistogramChunk()
		var want []histSample
		var ts int64 = int64(d.Varint())
		for d.Len() > 0 && len(want) < 300 {
			h := &Histogram{Schema: schema, ZeroThreshold: thr}
			if gauge {
				h.CounterResetHint = GaugeType
			} else {
				h.CounterResetHint = CounterResetHint(d.Byte() % 3)
			}
			var total uint64
			h.PositiveSpans, h.PositiveBuckets, total = fuzzSide(&d)
			var neg uint64
			h.NegativeSpans, h.NegativeBuckets, neg = fuzzSide(&d)
			h.ZeroCount = d.Uvarint() % (1 << 40)
			h.Sum = math.Float64frombits(d.Uint64())
			h.Count = total + neg + h.ZeroCount
			if math.IsNaN(h.Sum) {
				h.Count += uint64(d.Byte())
			}
			if d.Err() != nil {
				break
			}
			require.NoError(t, h.Validate())
			require.NoError(t, c.Append(ts, h))
			want = append(want, histSample{ts, h})
			step := int64(d.Uvarint()%(1<<40)) + 1
			if ts > math.MaxInt64-step {
				break
			}
			ts += step
		}
		requireHistsEqual(t, want, c.Bytes())
	})
}

func fuzzSide(d *Decoder) ([]BucketSpan, []int64, uint64) {
	n := int(d.Byte() % 6)
	var spans []BucketSpan
	var deltas []int64
	var total uint64
	var prev int64
	for i := range n {
		off := d.Varint()
		if i > 0 && off < 0 {
			off = -off
		}
		off = max(min(off, 1<<20), -(1 << 20))
		length := uint32(d.Byte() % 5)
		spans = append(spans, BucketSpan{Offset: int32(off), Length: length})
		for range length {
			abs := int64(d.Uvarint() % (1 << 40))
			deltas = append(deltas, abs-prev)
			prev = abs
			total += uint64(abs)
		}
	}
	return spans, deltas, total
}
