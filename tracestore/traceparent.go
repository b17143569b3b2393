package tracestore

import (
	"encoding/hex"
	"fmt"
)

// TraceParent is a W3C Trace Context traceparent header:
// version-traceid-parentid-flags, lowercase hex.
type TraceParent struct {
	Version byte
	TraceID TraceID
	SpanID  SpanID // the caller's span, the parent of the next span
	Flags   byte   // bit 0: sampled
}

// Sampled reports whether the sampled flag is set.
func (tp TraceParent) Sampled() bool { return tp.Flags&1 != 0 }

// String formats tp as a traceparent header, e.g.
// "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".
func (tp TraceParent) String() string {
	var b [55]byte
	return string(tp.AppendTo(b[:0]))
}

// AppendTo appends the header form of tp to dst.
func (tp TraceParent) AppendTo(dst []byte) []byte {
	dst = hex.AppendEncode(dst, []byte{tp.Version})
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, tp.TraceID[:])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, tp.SpanID[:])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, []byte{tp.Flags})
}

// ParseTraceParent parses a traceparent header as the W3C Trace Context
// specifies: lowercase hex only; version ff is invalid; version 00 is
// exactly 55 characters; a higher version may carry more fields after a
// '-', which are ignored; all-zero trace or span IDs are invalid. Errors
// wrap ErrBadTraceParent.
func ParseTraceParent(s string) (TraceParent, error) {
	var tp TraceParent
	bad := func(why string) (TraceParent, error) {
		return TraceParent{}, fmt.Errorf("%w: %q: %s", ErrBadTraceParent, s, why)
	}
	if len(s) < 55 {
		return bad(fmt.Sprintf("%d characters, want 55", len(s)))
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return bad("fields not separated by '-' at positions 2, 35 and 52")
	}
	var v [1]byte
	if !lowerHex(v[:], s[0:2]) {
		return bad("version is not two lowercase hex digits")
	}
	tp.Version = v[0]
	switch {
	case tp.Version == 0xff:
		return bad("version ff is invalid")
	case tp.Version == 0 && len(s) != 55:
		return bad(fmt.Sprintf("version 00 has %d characters, want 55", len(s)))
	case len(s) > 55 && s[55] != '-':
		return bad("extra characters after the flags are not a '-' field")
	}
	if !lowerHex(tp.TraceID[:], s[3:35]) {
		return bad("trace ID is not 32 lowercase hex digits")
	}
	if !lowerHex(tp.SpanID[:], s[36:52]) {
		return bad("parent ID is not 16 lowercase hex digits")
	}
	var f [1]byte
	if !lowerHex(f[:], s[53:55]) {
		return bad("flags are not two lowercase hex digits")
	}
	tp.Flags = f[0]
	if tp.TraceID.IsZero() {
		return bad("trace ID is all zeros")
	}
	if tp.SpanID.IsZero() {
		return bad("parent ID is all zeros")
	}
	return tp, nil
}

// lowerHex decodes s (lowercase hex, len 2*len(dst)) into dst.
func lowerHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}
