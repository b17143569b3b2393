package tracestore

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// TraceID identifies a trace: 16 bytes, all zero is invalid.
type TraceID [16]byte

// String returns the 32 lowercase hex digits of id.
func (id TraceID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is all zero bytes (invalid in W3C and OTLP).
func (id TraceID) IsZero() bool { return id == TraceID{} }

// ParseTraceID reads 32 hex digits (either case).
func ParseTraceID(s string) (TraceID, error) {
	var id TraceID
	if len(s) != 32 {
		return id, fmt.Errorf("%w: trace ID %q has %d hex digits, want 32", ErrBadID, s, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: trace ID %q: %v", ErrBadID, s, err)
	}
	return id, nil
}

// SpanID identifies a span within a trace: 8 bytes, all zero is invalid.
type SpanID [8]byte

// String returns the 16 lowercase hex digits of id.
func (id SpanID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is all zero bytes; a zero parent means "root".
func (id SpanID) IsZero() bool { return id == SpanID{} }

// ParseSpanID reads 16 hex digits (either case).
func ParseSpanID(s string) (SpanID, error) {
	var id SpanID
	if len(s) != 16 {
		return id, fmt.Errorf("%w: span ID %q has %d hex digits, want 16", ErrBadID, s, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: span ID %q: %v", ErrBadID, s, err)
	}
	return id, nil
}

// SpanKind is the OTLP span kind; the numbers are OTLP's.
type SpanKind uint8

// Span kinds.
const (
	SpanKindUnspecified SpanKind = 0
	SpanKindInternal    SpanKind = 1
	SpanKindServer      SpanKind = 2
	SpanKindClient      SpanKind = 3
	SpanKindProducer    SpanKind = 4
	SpanKindConsumer    SpanKind = 5
)

var spanKindNames = [...]string{"", "internal", "server", "client", "producer", "consumer"}

// String returns the lowercase name Jaeger uses ("server", "client", …), or
// "" for unspecified.
func (k SpanKind) String() string {
	if int(k) < len(spanKindNames) {
		return spanKindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// StatusCode is the OTLP status code; the numbers are OTLP's.
type StatusCode uint8

// Status codes.
const (
	StatusUnset StatusCode = 0
	StatusOK    StatusCode = 1
	StatusError StatusCode = 2
)

// Status is a span's outcome.
type Status struct {
	Code    StatusCode
	Message string
}

// ValueKind tells which field of a Value is set.
type ValueKind uint8

// Value kinds. The numbers are part of the span block format.
const (
	ValueEmpty ValueKind = iota
	ValueString
	ValueBool
	ValueInt64
	ValueFloat64
	ValueBytes
	ValueArray
	ValueMap
)

// Value is a typed attribute value as in OTLP's AnyValue. The zero Value is
// empty. Values are immutable once built; build them with the *Value
// constructors.
type Value struct {
	kind ValueKind
	num  uint64     // bool (0/1), int64, float64 bits
	str  string     // string or bytes
	ext  *valueList // array elements or map entries; nil when empty
}

// valueList holds the rare composite values out of line, which keeps Value
// (and so every attribute) small.
type valueList struct {
	arr []Value    // array elements
	kvs []KeyValue // map entries, in the order given
}

// StringValue returns a string Value.
func StringValue(s string) Value { return Value{kind: ValueString, str: s} }

// BoolValue returns a bool Value.
func BoolValue(b bool) Value {
	v := Value{kind: ValueBool}
	if b {
		v.num = 1
	}
	return v
}

// Int64Value returns an integer Value.
func Int64Value(i int64) Value { return Value{kind: ValueInt64, num: uint64(i)} }

// Float64Value returns a floating-point Value; the bits are kept exactly.
func Float64Value(f float64) Value { return Value{kind: ValueFloat64, num: math.Float64bits(f)} }

// BytesValue returns a bytes Value holding a copy of b.
func BytesValue(b []byte) Value { return Value{kind: ValueBytes, str: string(b)} }

// ArrayValue returns an array Value; an empty array is kept as such.
func ArrayValue(vs ...Value) Value {
	if len(vs) == 0 {
		return Value{kind: ValueArray}
	}
	return Value{kind: ValueArray, ext: &valueList{arr: vs}}
}

// MapValue returns a map Value (key-value list, order kept).
func MapValue(kvs ...KeyValue) Value {
	if len(kvs) == 0 {
		return Value{kind: ValueMap}
	}
	return Value{kind: ValueMap, ext: &valueList{kvs: kvs}}
}

// Kind returns the kind of v.
func (v Value) Kind() ValueKind { return v.kind }

// Str returns the string of a string Value, or "".
func (v Value) Str() string {
	if v.kind != ValueString {
		return ""
	}
	return v.str
}

// Bool returns the bool of a bool Value, or false.
func (v Value) Bool() bool { return v.kind == ValueBool && v.num != 0 }

// Int64 returns the integer of an int Value, or 0.
func (v Value) Int64() int64 {
	if v.kind != ValueInt64 {
		return 0
	}
	return int64(v.num)
}

// Float64 returns the float of a float Value, or 0.
func (v Value) Float64() float64 {
	if v.kind != ValueFloat64 {
		return 0
	}
	return math.Float64frombits(v.num)
}

// Bytes returns a copy of the bytes of a bytes Value, or nil.
func (v Value) Bytes() []byte {
	if v.kind != ValueBytes {
		return nil
	}
	return []byte(v.str)
}

// Array returns the elements of an array Value. The slice must not be modified.
func (v Value) Array() []Value {
	if v.kind != ValueArray || v.ext == nil {
		return nil
	}
	return v.ext.arr
}

// Map returns the entries of a map Value. The slice must not be modified.
func (v Value) Map() []KeyValue {
	if v.kind != ValueMap || v.ext == nil {
		return nil
	}
	return v.ext.kvs
}

// String returns the canonical string a query compares against: a string as
// is, "true"/"false", decimal integers, the shortest float that reads back
// ("72.5"), bytes in standard base64, arrays and maps in a JSON-like form.
func (v Value) String() string {
	switch v.kind {
	case ValueString:
		return v.str
	default:
		return string(v.appendCanonical(nil))
	}
}

// appendCanonical appends v's canonical string to dst.
func (v Value) appendCanonical(dst []byte) []byte {
	switch v.kind {
	case ValueString:
		return append(dst, v.str...)
	case ValueBool:
		return strconv.AppendBool(dst, v.num != 0)
	case ValueInt64:
		return strconv.AppendInt(dst, int64(v.num), 10)
	case ValueFloat64:
		return strconv.AppendFloat(dst, math.Float64frombits(v.num), 'g', -1, 64)
	case ValueBytes:
		return base64.StdEncoding.AppendEncode(dst, []byte(v.str))
	case ValueArray:
		dst = append(dst, '[')
		for i, e := range v.Array() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = e.appendNested(dst)
		}
		return append(dst, ']')
	case ValueMap:
		dst = append(dst, '{')
		for i, kv := range v.Map() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendQuote(dst, kv.Key)
			dst = append(dst, ':')
			dst = kv.Value.appendNested(dst)
		}
		return append(dst, '}')
	default:
		return dst
	}
}

// appendNested writes strings quoted inside arrays and maps.
func (v Value) appendNested(dst []byte) []byte {
	switch v.kind {
	case ValueString, ValueBytes:
		return strconv.AppendQuote(dst, string(v.appendCanonical(nil)))
	case ValueEmpty:
		return append(dst, "null"...)
	default:
		return v.appendCanonical(dst)
	}
}

// KeyValue is one attribute.
type KeyValue struct {
	Key   string
	Value Value
}

// String returns key=value with the canonical value.
func (kv KeyValue) String() string { return kv.Key + "=" + kv.Value.String() }

// Resource describes the entity that produced spans; service.name lives here.
type Resource struct {
	Attributes             []KeyValue
	DroppedAttributesCount uint32
	SchemaURL              string
}

// Scope is the instrumentation scope (library) that produced spans.
type Scope struct {
	Name                   string
	Version                string
	Attributes             []KeyValue
	DroppedAttributesCount uint32
	SchemaURL              string
}

// Event is a timestamped annotation on a span (Jaeger's "log").
type Event struct {
	Time                   int64 // Unix ns
	Name                   string
	Attributes             []KeyValue
	DroppedAttributesCount uint32
}

// Link points from a span to a span of possibly another trace.
type Link struct {
	TraceID                TraceID
	SpanID                 SpanID
	TraceState             string
	Flags                  uint32
	Attributes             []KeyValue
	DroppedAttributesCount uint32
}

// Span is one operation of a trace, shaped like an OTLP span with its
// resource and scope. Every field is stored and read back exactly. Empty
// lists read back as nil.
type Span struct {
	TraceID      TraceID
	SpanID       SpanID
	ParentSpanID SpanID // zero for a root span
	TraceState   string
	Flags        uint32
	Name         string
	Kind         SpanKind
	StartTime    int64 // Unix ns
	EndTime      int64 // Unix ns, not before StartTime

	Attributes             []KeyValue
	DroppedAttributesCount uint32
	Events                 []Event
	DroppedEventsCount     uint32
	Links                  []Link
	DroppedLinksCount      uint32
	Status                 Status

	Resource Resource
	Scope    Scope
}

// ServiceNameKey is the resource attribute naming a span's service.
const ServiceNameKey = "service.name"

// Service returns the span's service: the string of its resource's
// service.name attribute, or "" when it has none.
func (s *Span) Service() string {
	for i := range s.Resource.Attributes {
		if s.Resource.Attributes[i].Key == ServiceNameKey {
			return s.Resource.Attributes[i].Value.String()
		}
	}
	return ""
}

// Duration returns EndTime-StartTime in nanoseconds.
func (s *Span) Duration() int64 { return s.EndTime - s.StartTime }

// String returns a short description for errors and logs.
func (s *Span) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "span %s/%s %q", s.TraceID, s.SpanID, s.Name)
	return b.String()
}
