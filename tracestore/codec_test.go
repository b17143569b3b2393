package tracestore

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/encoding"
)

func encodeForTest(spans []Span) []byte {
	ptrs := make([]*Span, len(spans))
	for i := range spans {
		ptrs[i] = &spans[i]
	}
	return append([]byte(nil), newBlockEncoder().encode(ptrs)...)
}

func TestCodecRoundTrip(t *testing.T) {
	id := tid(3)
	spans := []Span{fullSpan(id, 1), fullSpan(id, 2), fullSpan(id, 3)}
	spans[1].ParentSpanID = spans[0].SpanID
	spans[2].Resource = res("other", KeyValue{Key: "k", Value: StringValue("v")})
	spans[2].Scope = Scope{}
	payload := encodeForTest(spans)
	got, err := decodeSpans(nil, id, payload)
	require.NoError(t, err)
	require.Equal(t, spans, got)
	// Appends to what is already there.
	got, err = decodeSpans(got, id, payload)
	require.NoError(t, err)
	require.Len(t, got, 6)
}

func TestCodecIsCompact(t *testing.T) {
	id := tid(1)
	spans := make([]Span, 20)
	for i := range spans {
		spans[i] = Span{TraceID: id, SpanID: sid(uint64(i + 1)), ParentSpanID: sid(1), Name: "GET /api", Kind: SpanKindServer,
			StartTime: t0 + int64(i)*1000, EndTime: t0 + int64(i)*1000 + 250_000, Resource: res("checkout"),
			Attributes: []KeyValue{{Key: "http.method", Value: StringValue("GET")}, {Key: "http.status_code", Value: Int64Value(200)}}}
	}
	spans[0].ParentSpanID = SpanID{}
	payload := encodeForTest(spans)
	// 8-byte span ID, a parent reference, times, names and attributes from
	// the dictionary: under 35 bytes a span before compression.
	require.Less(t, len(payload), 35*len(spans), "payload is %d bytes for %d spans", len(payload), len(spans))
}

func TestCodecRejectsDamage(t *testing.T) {
	id := tid(3)
	spans := []Span{fullSpan(id, 1), fullSpan(id, 2)}
	payload := encodeForTest(spans)
	// Every truncation is an error, never a partial trace.
	for n := range len(payload) {
		got, err := decodeSpans(nil, id, payload[:n])
		require.Error(t, err, "truncated to %d", n)
		require.True(t, errors.Is(err, encoding.ErrCorrupt), "truncated to %d: %v", n, err)
		require.Empty(t, got)
	}
	_, err := decodeSpans(nil, id, append(append([]byte(nil), payload...), 0))
	require.ErrorIs(t, err, encoding.ErrCorrupt)
	// A framed block with a flipped bit fails its checksum.
	block := encoding.AppendBlock(nil, encoding.BlockSnappy, payload)
	block[len(block)/2] ^= 1
	_, err = encoding.DecodeBlock(nil, block)
	require.ErrorIs(t, err, encoding.ErrCorrupt)
}

// FuzzDecodeSpans feeds arbitrary bytes to the span decoder, raw and framed:
// it must never panic, and whatever it accepts must re-encode to spans that
// decode the same.
func FuzzDecodeSpans(f *testing.F) {
	id := tid(3)
	f.Add(encodeForTest([]Span{fullSpan(id, 1)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeSpans(nil, id, data)
		if err != nil {
			require.ErrorIs(t, err, encoding.ErrCorrupt)
			require.Empty(t, got)
		} else if len(got) > 0 {
			again, err := decodeSpans(nil, id, encodeForTest(got))
			require.NoError(t, err)
			require.Equal(t, got, again)
		}
		if payload, err := encoding.DecodeBlock(nil, data); err == nil {
			_, _ = decodeSpans(nil, id, payload)
		}
	})
}

func TestCodecSharedDictionary(t *testing.T) {
	d := newDict()
	e := newBlockEncoder()
	e.g = d
	id := tid(3)
	long := make([]byte, maxDictString+1)
	for i := range long {
		long[i] = 'x'
	}
	spans := []Span{fullSpan(id, 1)}
	spans[0].Attributes = append(spans[0].Attributes, KeyValue{Key: "long", Value: StringValue(string(long))})
	payload := append([]byte(nil), e.encode([]*Span{&spans[0]})...)
	require.NotEmpty(t, e.defs, "new strings are defined by the write that introduces them")
	_, ok := d.ids[string(long)]
	require.False(t, ok, "long strings stay in their block")
	bd := blockDecoder{g: d}
	got, err := bd.decode(nil, id, payload)
	require.NoError(t, err)
	require.Equal(t, spans, got)
	// Without the dictionary the block does not decode, loudly.
	_, err = decodeSpans(nil, id, payload)
	require.ErrorIs(t, err, encoding.ErrCorrupt)
	// Once committed, a second block needs no definitions.
	d.markCommitted(e.defs)
	e.defs = e.defs[:0]
	e.encode([]*Span{&spans[0]})
	require.Empty(t, e.defs)
}

func TestCodecFloatsExact(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 72.5, 0.1, 4.2, -3.14159, 1e-300, 1e300, 123456789.123,
		math.Inf(1), math.Inf(-1), math.NaN(), math.Float64frombits(0x7ff8000000000abc), math.MaxFloat64, math.SmallestNonzeroFloat64, 1 << 53, 9007199254740993}
	for _, v := range vals {
		b := appendFloat(nil, math.Float64bits(v))
		bd := blockDecoder{}
		bd.d.Reset(b)
		got := bd.float()
		require.NoError(t, bd.d.Err())
		require.Equal(t, math.Float64bits(v), got, "%v", v)
		require.Zero(t, bd.d.Len())
	}
	require.Len(t, appendFloat(nil, math.Float64bits(72.5)), 3)
}

func TestEncodeAllocatesPerBlockNotPerSpan(t *testing.T) {
	id := tid(1)
	spans := make([]Span, 40)
	ptrs := make([]*Span, len(spans))
	for i := range spans {
		spans[i] = fullSpan(id, uint64(i+1))
		ptrs[i] = &spans[i]
	}
	e := newBlockEncoder()
	e.g = newDict()
	e.encode(ptrs) // warm the buffers and the dictionary
	allocs := testing.AllocsPerRun(20, func() {
		e.defs = e.defs[:0]
		e.encode(ptrs)
	})
	// The resource and scope table keys are the only allocations: two per
	// block, none per span.
	require.LessOrEqual(t, allocs, 2.0)
}

func TestCodecManyEmptyAttributes(t *testing.T) {
	// An attribute with an empty value is one byte: a list of them at the
	// end of a block must not be mistaken for a damaged count.
	id := tid(1)
	sp := Span{TraceID: id, SpanID: sid(1), Name: "n", StartTime: t0, EndTime: t0}
	for i := range 20 {
		sp.Attributes = append(sp.Attributes, KeyValue{Key: string(rune('a' + i))})
	}
	got, err := decodeSpans(nil, id, encodeForTest([]Span{sp}))
	require.NoError(t, err)
	require.Equal(t, []Span{sp}, got)
}
