package logindex

import (
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// ValueKind says which field of a Value holds it.
type ValueKind uint8

// Value kinds, as in OTLP's AnyValue (arrays and maps are not modelled).
const (
	KindEmpty ValueKind = iota
	KindString
	KindBool
	KindInt
	KindDouble
	KindBytes
	numKinds
)

// Value is a typed attribute or body value.
type Value struct {
	Kind  ValueKind
	Str   string
	Int   int64
	Float float64
	Bool  bool
	Bytes []byte
}

// StringValue returns a string Value.
func StringValue(s string) Value { return Value{Kind: KindString, Str: s} }

// BytesValue returns a bytes Value.
func BytesValue(b []byte) Value { return Value{Kind: KindBytes, Bytes: b} }

// IntValue returns an integer Value.
func IntValue(i int64) Value { return Value{Kind: KindInt, Int: i} }

// DoubleValue returns a floating-point Value.
func DoubleValue(f float64) Value { return Value{Kind: KindDouble, Float: f} }

// BoolValue returns a boolean Value.
func BoolValue(b bool) Value { return Value{Kind: KindBool, Bool: b} }

// AppendText appends the canonical text of v: the string itself, decimal
// integers, the shortest float that round-trips, true/false, or the raw
// bytes. Field queries match this text.
func (v Value) AppendText(dst []byte) []byte {
	switch v.Kind {
	case KindString:
		return append(dst, v.Str...)
	case KindBool:
		return strconv.AppendBool(dst, v.Bool)
	case KindInt:
		return strconv.AppendInt(dst, v.Int, 10)
	case KindDouble:
		return strconv.AppendFloat(dst, v.Float, 'g', -1, 64)
	case KindBytes:
		return append(dst, v.Bytes...)
	}
	return dst
}

// Text returns the canonical text of v (see AppendText).
func (v Value) Text() string {
	if v.Kind == KindString {
		return v.Str
	}
	return string(v.AppendText(nil))
}

// Attribute is one key and typed value.
type Attribute struct {
	Key   string
	Value Value
}

// Record is one log record, shaped like an OTLP LogRecord with its
// resource. Timestamps are Unix nanoseconds.
type Record struct {
	// Timestamp is when the event happened. Zero means "now" at Write.
	Timestamp int64
	// ObservedTimestamp is when the collector saw the event.
	ObservedTimestamp int64
	// SeverityNumber is OTLP's 1..24 scale (0 unspecified).
	SeverityNumber int32
	// SeverityText is the level as written ("ERROR", "info").
	SeverityText string
	// Body is the message: a string, or bytes. A string body that is not
	// valid UTF-8 is stored as bytes.
	Body Value
	// Attributes are the record's own typed attributes.
	Attributes []Attribute
	// Resource are the attributes of the emitting resource, service.name
	// among them.
	Resource []Attribute
	// TraceID and SpanID tie the record to a span; all zero means none.
	TraceID [16]byte
	SpanID  [8]byte
	// Flags are the W3C trace flags.
	Flags uint32
}

// ServiceAttr is the resource attribute naming the service.
const ServiceAttr = "service.name"

// Service returns the resource's service.name, or "".
func (r *Record) Service() string {
	for i := range r.Resource {
		if r.Resource[i].Key == ServiceAttr {
			return r.Resource[i].Value.Text()
		}
	}
	return ""
}

// BodyText returns the body's bytes without copying where it can: the
// string, the bytes, or the canonical text of a scalar.
func (r *Record) BodyText() []byte {
	switch r.Body.Kind {
	case KindString:
		return unsafeBytes(r.Body.Str)
	case KindBytes:
		return r.Body.Bytes
	}
	return r.Body.AppendText(nil)
}

// HasTrace reports whether the record carries a trace ID.
func (r *Record) HasTrace() bool { return r.TraceID != [16]byte{} }

// TraceIDHex returns the trace ID as 32 lowercase hex digits.
func (r *Record) TraceIDHex() string { return hex.EncodeToString(r.TraceID[:]) }

// normalize applies Write's rules to bad input: a missing timestamp becomes
// now, an invalid UTF-8 string body becomes bytes.
func (r *Record) normalize(now int64) {
	if r.Timestamp == 0 {
		r.Timestamp = now
	}
	if r.Body.Kind == KindString && !utf8.ValidString(r.Body.Str) {
		r.Body = BytesValue([]byte(r.Body.Str))
	}
	if r.Body.Kind >= numKinds {
		r.Body.Kind = KindEmpty
	}
}
