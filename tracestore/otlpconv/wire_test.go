package otlpconv

import (
	"errors"
	"math"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tracestore/tracegen"
)

// requireSameAsConverter decodes b both ways: through the generated
// messages and the converter (the reference) and through d. Both must
// reject it, or both accept it with equal spans.
func requireSameAsConverter(t testing.TB, d *TraceDecoder, b []byte) []tracestore.Span {
	t.Helper()
	want, wantErr := UnmarshalProto(nil, b)
	got, err := d.Decode(nil, b)
	if wantErr != nil || err != nil {
		require.Equal(t, wantErr != nil, err != nil, "reference error %v, decoder error %v", wantErr, err)
		if errors.Is(wantErr, tracestore.ErrBadID) {
			require.ErrorIs(t, err, tracestore.ErrBadID)
		}
		if errors.Is(wantErr, ErrUnsupported) {
			require.ErrorIs(t, err, ErrUnsupported)
		}
		return nil
	}
	require.Equal(t, want, got)
	return got
}

func tracegenRequests(t testing.TB, n, spans int) [][]byte {
	g := tracegen.New(tracegen.Config{Seed: 7})
	var out [][]byte
	var batch []tracestore.Span
	for range n {
		batch = g.Batch(batch[:0], spans)
		b, err := MarshalProto(batch)
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

func TestTraceDecoderMatchesConverter(t *testing.T) {
	var d TraceDecoder
	// One decoder over many requests: reusing its arenas and intern table
	// must not leak one request's data into the next.
	for _, b := range tracegenRequests(t, 20, 100) {
		got := requireSameAsConverter(t, &d, b)
		require.GreaterOrEqual(t, len(got), 100)
	}
	b, err := MarshalProto(sampleSpans())
	require.NoError(t, err)
	got := requireSameAsConverter(t, &d, b)
	require.Equal(t, sampleSpans(), got)
}

func TestTraceDecoderAppendsToDst(t *testing.T) {
	var d TraceDecoder
	b, err := MarshalProto(sampleSpans())
	require.NoError(t, err)
	prefix := tracestore.Span{Name: "kept"}
	got, err := d.Decode([]tracestore.Span{prefix}, b)
	require.NoError(t, err)
	require.Equal(t, append([]tracestore.Span{prefix}, sampleSpans()...), got)
	_, err = d.Decode(got[:1], []byte{0xff})
	require.Error(t, err)
	require.Equal(t, "kept", got[0].Name, "a failed decode leaves dst's spans alone")
}

// Hand-built wire messages for the runtime's rules the encoder never
// exercises: order, repetition, merging, wrong wire types, unknown fields.
type msg []byte

func (m msg) bytes(num protowire.Number, b []byte) msg {
	m = protowire.AppendTag(m, num, protowire.BytesType)
	return protowire.AppendBytes(m, b)
}

func (m msg) str(num protowire.Number, s string) msg { return m.bytes(num, []byte(s)) }

func (m msg) varint(num protowire.Number, v uint64) msg {
	m = protowire.AppendTag(m, num, protowire.VarintType)
	return protowire.AppendVarint(m, v)
}

func (m msg) fixed64(num protowire.Number, v uint64) msg {
	m = protowire.AppendTag(m, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(m, v)
}

func (m msg) fixed32(num protowire.Number, v uint32) msg {
	m = protowire.AppendTag(m, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(m, v)
}

func kv(key string, value msg) msg { return msg(nil).str(1, key).bytes(2, value) }

func strValue(s string) msg { return msg(nil).str(1, s) }

var (
	tid16 = string(make([]byte, 15)) + "\x01"
	sid8  = string(make([]byte, 7)) + "\x02"
)

func minimalSpan() msg { return msg(nil).str(1, tid16).str(2, sid8) }

// request wraps spans in one scope of one resource.
func request(resource msg, spans ...msg) []byte {
	ss := msg(nil)
	for _, sp := range spans {
		ss = ss.bytes(2, sp)
	}
	rs := msg(nil).bytes(2, ss)
	if resource != nil {
		rs = rs.bytes(1, resource)
	}
	return msg(nil).bytes(1, rs)
}

func TestTraceDecoderWireRules(t *testing.T) {
	svc := msg(nil).bytes(1, kv("service.name", strValue("api")))
	cases := map[string][]byte{
		"resource after spans":   request(svc, minimalSpan().str(5, "op")),
		"resource twice merges":  request(append(svc, msg(nil).bytes(1, kv("host", strValue("h"))).varint(2, 3)...), minimalSpan()),
		"empty message":          nil,
		"unknown fields skipped": append(request(svc, minimalSpan().varint(99, 1).str(100, "x").fixed32(101, 1)), msg(nil).varint(7, 1)...),
		"wrong wire type skipped": request(svc, minimalSpan().
			varint(5, 1).       // name as a varint
			str(7, "x").        // start time as bytes
			fixed64(10, 1).     // dropped attributes as fixed64
			varint(9, 1).       // attributes as a varint
			fixed64(16, 0x0f)), // flags as fixed64
		"last scalar wins": request(nil, minimalSpan().str(5, "a").str(5, "b").varint(6, 1).varint(6, 2).
			fixed64(7, 5).fixed64(7, 6).str(1, string(make([]byte, 15))+"\x09")),
		"status twice merges": request(nil, minimalSpan().bytes(15, msg(nil).str(2, "m")).bytes(15, msg(nil).varint(3, 2))),
		"truncating enums and counts": request(nil, minimalSpan().varint(6, 0x1_0000_0102).varint(10, 1<<40|5).
			bytes(15, msg(nil).varint(3, math.MaxUint64))),
		"array merges": request(nil, minimalSpan().bytes(9, kv("a",
			msg(nil).bytes(5, msg(nil).bytes(1, strValue("x"))).bytes(5, msg(nil).bytes(1, msg(nil).varint(3, 7)))))),
		"array replaced by string": request(nil, minimalSpan().bytes(9, kv("a",
			msg(nil).bytes(5, msg(nil).bytes(1, strValue("x"))).str(1, "s")))),
		"string replaced by empty array": request(nil, minimalSpan().bytes(9, kv("a",
			msg(nil).str(1, "s").bytes(5, nil)))),
		"map merges and value merges": request(nil, minimalSpan().bytes(9, kv("m",
			msg(nil).bytes(6, msg(nil).bytes(1, kv("k", strValue("v")))).bytes(6, msg(nil).bytes(1, kv("j", msg(nil).varint(2, 1))))).bytes(2, msg(nil).bytes(6, nil)))),
		"strindex replaced": request(nil, minimalSpan().bytes(9, kv("k", msg(nil).varint(8, 1).str(1, "ok")))),
		"strindex in replaced array": request(nil, minimalSpan().bytes(9, kv("k",
			msg(nil).bytes(5, msg(nil).bytes(1, msg(nil).varint(8, 1))).fixed64(4, math.Float64bits(math.NaN()))))),
		"strindex wrong type":  request(nil, minimalSpan().bytes(9, kv("k", msg(nil).str(8, "x")))),
		"strindex":             request(nil, minimalSpan().bytes(9, kv("k", msg(nil).varint(8, 1)))),
		"strindex in array":    request(nil, minimalSpan().bytes(9, kv("k", msg(nil).bytes(5, msg(nil).bytes(1, msg(nil).varint(8, 1)))))),
		"strindex in resource": request(msg(nil).bytes(1, kv("k", msg(nil).varint(8, 1)))),
		"key strindex ignored": request(nil, minimalSpan().bytes(9, msg(nil).str(1, "k").varint(3, 4))),
		"interleaved repeats": request(nil, minimalSpan().
			bytes(9, kv("a", strValue("1"))).bytes(11, msg(nil).str(2, "e1").bytes(3, kv("ea", strValue("x")))).
			bytes(13, msg(nil).str(3, "ts").bytes(4, kv("la", strValue("y")))).bytes(9, kv("b", strValue("2"))).
			bytes(11, msg(nil).str(2, "e2")).bytes(13, msg(nil).str(1, tid16).str(2, sid8).fixed32(6, 1))),
		"entity refs":          request(msg(nil).bytes(3, msg(nil).str(1, "u").str(2, "t").str(3, "k").str(4, "d"))),
		"entity ref bad utf8":  request(msg(nil).bytes(3, msg(nil).str(3, "\xff"))),
		"bad utf8 name":        request(nil, minimalSpan().str(5, "\xc3")),
		"bad utf8 replaced":    request(nil, minimalSpan().str(5, "\xc3").str(5, "ok")),
		"bad utf8 key":         request(nil, minimalSpan().bytes(9, kv("\xff", nil))),
		"bad utf8 in bytes ok": request(nil, minimalSpan().bytes(9, kv("b", msg(nil).str(7, "\xff")))),
		"short trace ID":       request(nil, msg(nil).str(1, "abc").str(2, sid8)),
		"missing span ID":      request(nil, msg(nil).str(1, tid16)),
		"short parent ID":      request(nil, minimalSpan().str(4, "xx")),
		"short link ID":        request(nil, minimalSpan().bytes(13, msg(nil).str(2, "x"))),
		"empty link IDs":       request(nil, minimalSpan().bytes(13, nil)),
		"field number zero":    request(nil, append(minimalSpan(), 0x00, 0x01)),
		"end group":            request(nil, append(minimalSpan(), 0x0c)),
		"unknown group":        request(nil, append(minimalSpan(), 0x0b, 0x08, 0x01, 0x0c)),
		"unterminated group":   request(nil, append(minimalSpan(), 0x0b, 0x08, 0x01)),
		"reserved wire type":   request(nil, append(minimalSpan(), 0x0e)),
		"truncated varint":     request(nil, append(minimalSpan(), 0x30, 0x80)),
		"overlong varint":      request(nil, append(minimalSpan(), 0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02)),
		"field number too big": request(nil, append(minimalSpan(), protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3)...)),
		"truncated bytes":      append(request(nil, minimalSpan()), 0x0a, 0x05, 0x01),
	}
	var d TraceDecoder
	for name, b := range cases {
		t.Run(name, func(t *testing.T) { requireSameAsConverter(t, &d, b) })
	}
}

func TestTraceDecoderDepth(t *testing.T) {
	// A value nested until the message depth is just below, at and above
	// the runtime's limit: TracesData, ResourceSpans, ScopeSpans, Span and
	// KeyValue are 5 levels, then each array adds two (ArrayValue,
	// AnyValue).
	nested := func(arrays int) []byte {
		v := strValue("leaf")
		for range arrays {
			v = msg(nil).bytes(5, msg(nil).bytes(1, v))
		}
		return request(nil, minimalSpan().bytes(9, kv("deep", v)))
	}
	var d TraceDecoder
	for _, arrays := range []int{4996, 4997, 4998} {
		b := nested(arrays)
		want, wantErr := UnmarshalProto(nil, b)
		got, err := d.Decode(nil, b)
		require.Equal(t, wantErr != nil, err != nil, "arrays %d: %v / %v", arrays, wantErr, err)
		if err == nil {
			require.Equal(t, want, got)
		}
	}
	_, err := d.Decode(nil, nested(4998))
	require.ErrorIs(t, err, errDepth)
}

func TestTraceDecoderAllocs(t *testing.T) {
	reqs := tracegenRequests(t, 1, 100)
	var d TraceDecoder
	spans, err := d.Decode(nil, reqs[0])
	require.NoError(t, err)
	n := len(spans)
	allocs := testing.AllocsPerRun(50, func() {
		spans, _ = d.Decode(spans[:0], reqs[0])
	})
	t.Logf("%.1f allocations per request of %d spans", allocs, n)
	require.LessOrEqual(t, allocs, 1.0, "at most the request's string copy; nothing per span")
}

func TestTraceDecoderKeepsNoRequestMemory(t *testing.T) {
	// Span names and service names are what stores keep; they must not be
	// slices of the request copy, even when too long to intern.
	long := string(make([]byte, 100))
	b := request(msg(nil).bytes(1, kv("service.name", strValue("svc-"+long))), minimalSpan().str(5, "op-"+long))
	var d TraceDecoder
	spans, err := d.Decode(nil, b)
	require.NoError(t, err)
	require.Len(t, spans, 1)
	require.Equal(t, "svc-"+long, spans[0].Service())
	require.Equal(t, "op-"+long, spans[0].Name)

	// Inside a decode: a string is a slice of the request copy, and own
	// makes one of its own.
	d.src = b
	i := len(b) - len(long)
	s, err := d.str(b[i:])
	require.NoError(t, err)
	addr := func(s string) uintptr { return uintptr(unsafe.Pointer(unsafe.StringData(s))) }
	require.Equal(t, addr(d.body[i:]), addr(s))
	owned := d.own(b[i:])
	require.Equal(t, s, owned)
	require.NotEqual(t, addr(s), addr(owned))
	require.Equal(t, addr(d.own([]byte("op"))), addr(d.own([]byte("op"))), "short names are interned")
}

func FuzzTraceDecoder(f *testing.F) {
	for _, b := range tracegenRequests(f, 2, 5) {
		f.Add(b)
	}
	b, err := MarshalProto(sampleSpans())
	require.NoError(f, err)
	f.Add(b)
	var d TraceDecoder
	f.Fuzz(func(t *testing.T, b []byte) {
		requireSameAsConverter(t, &d, b)
	})
}

func BenchmarkDecodeTraces(b *testing.B) {
	req := tracegenRequests(b, 1, 100)[0]
	spans, err := UnmarshalProto(nil, req)
	require.NoError(b, err)
	n := len(spans)
	b.Run("converter", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(req)))
		for b.Loop() {
			spans, _ = UnmarshalProto(spans[:0], req)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/span")
	})
	b.Run("wire", func(b *testing.B) {
		var d TraceDecoder
		b.ReportAllocs()
		b.SetBytes(int64(len(req)))
		for b.Loop() {
			spans, _ = d.Decode(spans[:0], req)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/span")
	})
}
