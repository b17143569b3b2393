// Package otlpconv converts between OTLP trace protobufs
// (go.opentelemetry.io/proto/otlp trace/v1) and tracestore spans, in both
// directions, and reads and writes OTLP/JSON with hex trace and span IDs as
// the OTLP/JSON mapping requires. It lives apart from tracestore so that the
// store does not depend on protobuf.
package otlpconv

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/pillar-db/pillar/tracestore"
)

// ErrUnsupported marks OTLP content the span model cannot hold (string
// table references of the dictionary-encoded profile format).
var ErrUnsupported = errors.New("otlpconv: unsupported value")

// FromResourceSpans appends the spans of rss to dst, each carrying its
// resource and scope. IDs of the wrong length give an error wrapping
// tracestore.ErrBadID; an empty parent or link ID is the zero ID.
func FromResourceSpans(dst []tracestore.Span, rss []*tracepb.ResourceSpans) ([]tracestore.Span, error) {
	for ri, rs := range rss {
		var res tracestore.Resource
		if r := rs.GetResource(); r != nil {
			attrs, err := fromKeyValues(r.GetAttributes())
			if err != nil {
				return dst, fmt.Errorf("otlpconv: resource %d: %w", ri, err)
			}
			res = tracestore.Resource{Attributes: attrs, DroppedAttributesCount: r.GetDroppedAttributesCount()}
		}
		res.SchemaURL = rs.GetSchemaUrl()
		for si, ss := range rs.GetScopeSpans() {
			var sc tracestore.Scope
			if s := ss.GetScope(); s != nil {
				attrs, err := fromKeyValues(s.GetAttributes())
				if err != nil {
					return dst, fmt.Errorf("otlpconv: resource %d scope %d: %w", ri, si, err)
				}
				sc = tracestore.Scope{Name: s.GetName(), Version: s.GetVersion(), Attributes: attrs, DroppedAttributesCount: s.GetDroppedAttributesCount()}
			}
			sc.SchemaURL = ss.GetSchemaUrl()
			for pi, p := range ss.GetSpans() {
				sp, err := fromSpan(p)
				if err != nil {
					return dst, fmt.Errorf("otlpconv: resource %d scope %d span %d: %w", ri, si, pi, err)
				}
				sp.Resource, sp.Scope = res, sc
				dst = append(dst, sp)
			}
		}
	}
	return dst, nil
}

func fromSpan(p *tracepb.Span) (tracestore.Span, error) {
	var sp tracestore.Span
	var err error
	if err = copyID(sp.TraceID[:], p.GetTraceId(), "trace ID", false); err != nil {
		return sp, err
	}
	if err = copyID(sp.SpanID[:], p.GetSpanId(), "span ID", false); err != nil {
		return sp, err
	}
	if err = copyID(sp.ParentSpanID[:], p.GetParentSpanId(), "parent span ID", true); err != nil {
		return sp, err
	}
	sp.TraceState = p.GetTraceState()
	sp.Flags = p.GetFlags()
	sp.Name = p.GetName()
	sp.Kind = tracestore.SpanKind(p.GetKind())
	sp.StartTime = int64(p.GetStartTimeUnixNano())
	sp.EndTime = int64(p.GetEndTimeUnixNano())
	if sp.Attributes, err = fromKeyValues(p.GetAttributes()); err != nil {
		return sp, err
	}
	sp.DroppedAttributesCount = p.GetDroppedAttributesCount()
	for _, e := range p.GetEvents() {
		attrs, err := fromKeyValues(e.GetAttributes())
		if err != nil {
			return sp, err
		}
		sp.Events = append(sp.Events, tracestore.Event{Time: int64(e.GetTimeUnixNano()), Name: e.GetName(), Attributes: attrs, DroppedAttributesCount: e.GetDroppedAttributesCount()})
	}
	sp.DroppedEventsCount = p.GetDroppedEventsCount()
	for _, l := range p.GetLinks() {
		var link tracestore.Link
		if err := copyID(link.TraceID[:], l.GetTraceId(), "link trace ID", true); err != nil {
			return sp, err
		}
		if err := copyID(link.SpanID[:], l.GetSpanId(), "link span ID", true); err != nil {
			return sp, err
		}
		link.TraceState, link.Flags, link.DroppedAttributesCount = l.GetTraceState(), l.GetFlags(), l.GetDroppedAttributesCount()
		if link.Attributes, err = fromKeyValues(l.GetAttributes()); err != nil {
			return sp, err
		}
		sp.Links = append(sp.Links, link)
	}
	sp.DroppedLinksCount = p.GetDroppedLinksCount()
	if st := p.GetStatus(); st != nil {
		sp.Status = tracestore.Status{Code: tracestore.StatusCode(st.GetCode()), Message: st.GetMessage()}
	}
	return sp, nil
}

func copyID(dst, src []byte, what string, emptyOK bool) error {
	if len(src) == 0 && emptyOK {
		return nil
	}
	if len(src) != len(dst) {
		return fmt.Errorf("%w: %s has %d bytes, want %d", tracestore.ErrBadID, what, len(src), len(dst))
	}
	copy(dst, src)
	return nil
}

func fromKeyValues(kvs []*commonpb.KeyValue) ([]tracestore.KeyValue, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make([]tracestore.KeyValue, len(kvs))
	for i, kv := range kvs {
		v, err := fromAnyValue(kv.GetValue())
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", kv.GetKey(), err)
		}
		out[i] = tracestore.KeyValue{Key: kv.GetKey(), Value: v}
	}
	return out, nil
}

func fromAnyValue(v *commonpb.AnyValue) (tracestore.Value, error) {
	switch x := v.GetValue().(type) {
	case nil:
		return tracestore.Value{}, nil
	case *commonpb.AnyValue_StringValue:
		return tracestore.StringValue(x.StringValue), nil
	case *commonpb.AnyValue_BoolValue:
		return tracestore.BoolValue(x.BoolValue), nil
	case *commonpb.AnyValue_IntValue:
		return tracestore.Int64Value(x.IntValue), nil
	case *commonpb.AnyValue_DoubleValue:
		return tracestore.Float64Value(x.DoubleValue), nil
	case *commonpb.AnyValue_BytesValue:
		return tracestore.BytesValue(x.BytesValue), nil
	case *commonpb.AnyValue_ArrayValue:
		vs := make([]tracestore.Value, len(x.ArrayValue.GetValues()))
		for i, e := range x.ArrayValue.GetValues() {
			ev, err := fromAnyValue(e)
			if err != nil {
				return tracestore.Value{}, err
			}
			vs[i] = ev
		}
		return tracestore.ArrayValue(vs...), nil
	case *commonpb.AnyValue_KvlistValue:
		kvs, err := fromKeyValues(x.KvlistValue.GetValues())
		if err != nil {
			return tracestore.Value{}, err
		}
		return tracestore.MapValue(kvs...), nil
	default:
		return tracestore.Value{}, fmt.Errorf("%w: %T", ErrUnsupported, x)
	}
}

// ToResourceSpans converts spans to OTLP, grouping consecutive spans that
// share a resource into one ResourceSpans and a scope into one ScopeSpans.
func ToResourceSpans(spans []tracestore.Span) []*tracepb.ResourceSpans {
	var out []*tracepb.ResourceSpans
	var rs *tracepb.ResourceSpans
	var ss *tracepb.ScopeSpans
	for i := range spans {
		sp := &spans[i]
		if rs == nil || !reflect.DeepEqual(sp.Resource, spans[i-1].Resource) {
			rs = &tracepb.ResourceSpans{
				Resource:  &resourcepb.Resource{Attributes: toKeyValues(sp.Resource.Attributes), DroppedAttributesCount: sp.Resource.DroppedAttributesCount},
				SchemaUrl: sp.Resource.SchemaURL,
			}
			out = append(out, rs)
			ss = nil
		}
		if ss == nil || !reflect.DeepEqual(sp.Scope, spans[i-1].Scope) {
			ss = &tracepb.ScopeSpans{
				Scope: &commonpb.InstrumentationScope{Name: sp.Scope.Name, Version: sp.Scope.Version,
					Attributes: toKeyValues(sp.Scope.Attributes), DroppedAttributesCount: sp.Scope.DroppedAttributesCount},
				SchemaUrl: sp.Scope.SchemaURL,
			}
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		ss.Spans = append(ss.Spans, toSpan(sp))
	}
	return out
}

func idBytes(id []byte) []byte {
	for _, b := range id {
		if b != 0 {
			return bytes.Clone(id)
		}
	}
	return nil
}

func toSpan(sp *tracestore.Span) *tracepb.Span {
	p := &tracepb.Span{
		TraceId: bytes.Clone(sp.TraceID[:]), SpanId: bytes.Clone(sp.SpanID[:]), ParentSpanId: idBytes(sp.ParentSpanID[:]),
		TraceState: sp.TraceState, Flags: sp.Flags, Name: sp.Name, Kind: tracepb.Span_SpanKind(sp.Kind),
		StartTimeUnixNano: uint64(sp.StartTime), EndTimeUnixNano: uint64(sp.EndTime),
		Attributes: toKeyValues(sp.Attributes), DroppedAttributesCount: sp.DroppedAttributesCount,
		DroppedEventsCount: sp.DroppedEventsCount, DroppedLinksCount: sp.DroppedLinksCount,
		Status: &tracepb.Status{Code: tracepb.Status_StatusCode(sp.Status.Code), Message: sp.Status.Message},
	}
	for _, e := range sp.Events {
		p.Events = append(p.Events, &tracepb.Span_Event{TimeUnixNano: uint64(e.Time), Name: e.Name,
			Attributes: toKeyValues(e.Attributes), DroppedAttributesCount: e.DroppedAttributesCount})
	}
	for _, l := range sp.Links {
		p.Links = append(p.Links, &tracepb.Span_Link{TraceId: idBytes(l.TraceID[:]), SpanId: idBytes(l.SpanID[:]),
			TraceState: l.TraceState, Flags: l.Flags, Attributes: toKeyValues(l.Attributes), DroppedAttributesCount: l.DroppedAttributesCount})
	}
	return p
}

func toKeyValues(kvs []tracestore.KeyValue) []*commonpb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]*commonpb.KeyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = &commonpb.KeyValue{Key: kv.Key, Value: toAnyValue(kv.Value)}
	}
	return out
}

func toAnyValue(v tracestore.Value) *commonpb.AnyValue {
	switch v.Kind() {
	case tracestore.ValueString:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.Str()}}
	case tracestore.ValueBool:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v.Bool()}}
	case tracestore.ValueInt64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v.Int64()}}
	case tracestore.ValueFloat64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v.Float64()}}
	case tracestore.ValueBytes:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: v.Bytes()}}
	case tracestore.ValueArray:
		arr := &commonpb.ArrayValue{}
		for _, e := range v.Array() {
			arr.Values = append(arr.Values, toAnyValue(e))
		}
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: arr}}
	case tracestore.ValueMap:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: toKeyValues(v.Map())}}}
	default:
		return &commonpb.AnyValue{}
	}
}

// UnmarshalProto reads a binary protobuf TracesData message and appends its spans to dst.
func UnmarshalProto(dst []tracestore.Span, b []byte) ([]tracestore.Span, error) {
	var td tracepb.TracesData
	if err := proto.Unmarshal(b, &td); err != nil {
		return dst, fmt.Errorf("otlpconv: %w", err)
	}
	return FromResourceSpans(dst, td.GetResourceSpans())
}

// MarshalProto writes spans as a binary protobuf TracesData message.
func MarshalProto(spans []tracestore.Span) ([]byte, error) {
	b, err := proto.Marshal(&tracepb.TracesData{ResourceSpans: ToResourceSpans(spans)})
	if err != nil {
		return nil, fmt.Errorf("otlpconv: %w", err)
	}
	return b, nil
}

// idFields are the OTLP/JSON fields that hold IDs as hex strings, where
// protojson expects base64.
var idFields = map[string]bool{"traceId": true, "spanId": true, "parentSpanId": true}

// UnmarshalJSON reads an OTLP/JSON TracesData document ({"resourceSpans":
// [...]}) and appends its spans to dst. Trace and span IDs are read as hex,
// as the OTLP/JSON mapping says (protojson alone would read them as base64).
func UnmarshalJSON(dst []tracestore.Span, data []byte) ([]tracestore.Span, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return dst, fmt.Errorf("otlpconv: %w", err)
	}
	if err := rewriteIDs(doc, func(s string) (string, error) {
		b, err := hex.DecodeString(s)
		if err != nil {
			return "", fmt.Errorf("%w: %q is not hex: %v", tracestore.ErrBadID, s, err)
		}
		return base64.StdEncoding.EncodeToString(b), nil
	}); err != nil {
		return dst, fmt.Errorf("otlpconv: %w", err)
	}
	fixed, err := json.Marshal(doc)
	if err != nil {
		return dst, fmt.Errorf("otlpconv: %w", err)
	}
	var td tracepb.TracesData
	if err := protojson.Unmarshal(fixed, &td); err != nil {
		return dst, fmt.Errorf("otlpconv: %w", err)
	}
	return FromResourceSpans(dst, td.GetResourceSpans())
}

// MarshalJSON writes spans as an OTLP/JSON TracesData document with hex IDs.
func MarshalJSON(spans []tracestore.Span) ([]byte, error) {
	b, err := protojson.Marshal(&tracepb.TracesData{ResourceSpans: ToResourceSpans(spans)})
	if err != nil {
		return nil, fmt.Errorf("otlpconv: %w", err)
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("otlpconv: %w", err)
	}
	if err := rewriteIDs(doc, func(s string) (string, error) {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", err
		}
		return hex.EncodeToString(raw), nil
	}); err != nil {
		return nil, fmt.Errorf("otlpconv: %w", err)
	}
	return json.Marshal(doc)
}

// rewriteIDs applies f to every ID field in a decoded JSON document.
func rewriteIDs(doc any, f func(string) (string, error)) error {
	switch x := doc.(type) {
	case map[string]any:
		for k, v := range x {
			if s, ok := v.(string); ok && idFields[k] {
				ns, err := f(s)
				if err != nil {
					return err
				}
				x[k] = ns
				continue
			}
			if err := rewriteIDs(v, f); err != nil {
				return err
			}
		}
	case []any:
		for _, v := range x {
			if err := rewriteIDs(v, f); err != nil {
				return err
			}
		}
	}
	return nil
}
