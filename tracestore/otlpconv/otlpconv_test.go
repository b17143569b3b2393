package otlpconv

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/pillar-db/pillar/internal/testutil"
	"github.com/pillar-db/pillar/tracestore"
)

func sampleSpans() []tracestore.Span {
	tid := tracestore.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	res := tracestore.Resource{Attributes: []tracestore.KeyValue{{Key: tracestore.ServiceNameKey, Value: tracestore.StringValue("redirect")}}, DroppedAttributesCount: 1, SchemaURL: "https://opentelemetry.io/schemas/1.21.0"}
	scope := tracestore.Scope{Name: "lib", Version: "1.0", Attributes: []tracestore.KeyValue{{Key: "x", Value: tracestore.BoolValue(true)}}, DroppedAttributesCount: 2, SchemaURL: "s2"}
	root := tracestore.Span{
		TraceID: tid, SpanID: tracestore.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceState: "k=v", Flags: 0x301, Name: "GET /r", Kind: tracestore.SpanKindServer,
		StartTime: 1_700_000_000_000_000_000, EndTime: 1_700_000_000_500_000_000,
		Attributes: []tracestore.KeyValue{
			{Key: "s", Value: tracestore.StringValue("v")},
			{Key: "i", Value: tracestore.Int64Value(-7)},
			{Key: "f", Value: tracestore.Float64Value(math.Inf(-1))},
			{Key: "b", Value: tracestore.BytesValue([]byte{0, 1, 2})},
			{Key: "a", Value: tracestore.ArrayValue(tracestore.StringValue("x"), tracestore.Float64Value(1.5))},
			{Key: "m", Value: tracestore.MapValue(tracestore.KeyValue{Key: "k", Value: tracestore.Int64Value(1)})},
			{Key: "empty"},
		},
		DroppedAttributesCount: 3,
		Events:                 []tracestore.Event{{Time: 1_700_000_000_100_000_000, Name: "ev", Attributes: []tracestore.KeyValue{{Key: "e", Value: tracestore.StringValue("1")}}, DroppedAttributesCount: 4}},
		DroppedEventsCount:     5,
		Links:                  []tracestore.Link{{TraceID: tid, SpanID: tracestore.SpanID{9}, TraceState: "a=b", Flags: 1, Attributes: []tracestore.KeyValue{{Key: "l", Value: tracestore.BoolValue(false)}}, DroppedAttributesCount: 6}},
		DroppedLinksCount:      7,
		Status:                 tracestore.Status{Code: tracestore.StatusError, Message: "boom"},
		Resource:               res,
		Scope:                  scope,
	}
	child := root
	child.SpanID = tracestore.SpanID{1, 2, 3, 4, 5, 6, 7, 8}
	child.ParentSpanID = root.SpanID
	child.Events, child.Links, child.Attributes = nil, nil, nil
	other := child
	other.SpanID[0] = 9
	other.Resource = tracestore.Resource{Attributes: []tracestore.KeyValue{{Key: tracestore.ServiceNameKey, Value: tracestore.StringValue("api")}}}
	other.Scope = tracestore.Scope{}
	return []tracestore.Span{root, child, other}
}

func TestProtoRoundTrip(t *testing.T) {
	spans := sampleSpans()
	rss := ToResourceSpans(spans)
	require.Len(t, rss, 2, "consecutive spans of one resource share a ResourceSpans")
	require.Len(t, rss[0].ScopeSpans[0].Spans, 2)
	b, err := MarshalProto(spans)
	require.NoError(t, err)
	got, err := UnmarshalProto(nil, b)
	require.NoError(t, err)
	require.Equal(t, spans, got)
}

func TestJSONRoundTripUsesHexIDs(t *testing.T) {
	spans := sampleSpans()
	b, err := MarshalJSON(spans)
	require.NoError(t, err)
	require.Contains(t, string(b), `"traceId":"4bf92f3577b34da6a3ce929d0e0e4736"`)
	require.Contains(t, string(b), `"spanId":"00f067aa0ba902b7"`)
	got, err := UnmarshalJSON(nil, b)
	require.NoError(t, err)
	require.Equal(t, spans, got)
}

func TestBadInput(t *testing.T) {
	_, err := UnmarshalJSON(nil, []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0000000000000001"}]}]}]}`))
	require.ErrorIs(t, err, tracestore.ErrBadID)
	// Base64 of 16 bytes is the wrong length once read as hex.
	_, err = UnmarshalJSON(nil, []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abcd","spanId":"0000000000000001"}]}]}]}`))
	require.ErrorIs(t, err, tracestore.ErrBadID)
	_, err = FromResourceSpans(nil, []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{TraceId: make([]byte, 16), SpanId: make([]byte, 9)}}}}}})
	require.ErrorIs(t, err, tracestore.ErrBadID)
	_, err = FromResourceSpans(nil, []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
		TraceId: make([]byte, 16), SpanId: make([]byte, 8),
		Attributes: []*commonpb.KeyValue{{Key: "k", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValueStrindex{StringValueStrindex: 1}}}},
	}}}}}})
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = UnmarshalProto(nil, []byte{0xff, 0xff})
	require.Error(t, err)
}

func TestJaegerFixturesParse(t *testing.T) {
	dir := testutil.DataDir(t, "jaeger-fixtures")
	files, err := filepath.Glob(filepath.Join(dir, "traces", "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 32)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		spans, err := UnmarshalJSON(nil, data)
		require.NoError(t, err, f)
		for _, sp := range spans {
			require.False(t, sp.TraceID.IsZero(), f)
			require.NotEmpty(t, sp.Service(), f)
		}
		b, err := MarshalJSON(spans)
		require.NoError(t, err)
		again, err := UnmarshalJSON(nil, b)
		require.NoError(t, err)
		require.Equal(t, spans, again, f)
	}
	data, err := os.ReadFile(filepath.Join(dir, "traces", "span_tags_trace.json"))
	require.NoError(t, err)
	spans, err := UnmarshalJSON(nil, data)
	require.NoError(t, err)
	require.Equal(t, "00000000000000000000000000000001", spans[0].TraceID.String())
	require.Equal(t, "0000000000000002", spans[0].SpanID.String())
	require.Equal(t, []byte{0, 0, 0x30, 0x39}, spans[0].Attributes[4].Value.Bytes())
}
