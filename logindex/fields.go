package logindex

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// maxFieldValue bounds the length of an indexed field value: longer values
// (a whole JSON document in one attribute, say) are kept in the record but
// not indexed as field:value, which would make a key as long as the value.
const maxFieldValue = 512

// fieldSink receives the field:value pairs of a record, lowercased. Both
// slices are only valid during the call.
type fieldSink func(field, value []byte)

// fieldExtractor finds a record's fields without allocating on the common
// path (no JSON body).
type fieldExtractor struct {
	name, val []byte
}

// appendLower appends s lowercased (ASCII fast path, Unicode otherwise).
func appendLower(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError {
			dst = append(dst, s[i:i+n]...)
		} else {
			dst = utf8.AppendRune(dst, toLower(r))
		}
		i += n
	}
	return dst
}

// emit canonicalises the field name and lowercases the value.
func (x *fieldExtractor) emit(sink fieldSink, name string, value []byte) {
	if len(value) == 0 || len(value) > maxFieldValue {
		return
	}
	x.name = append(x.name[:0], canonicalField(name)...)
	x.val = appendLower(x.val[:0], value)
	sink(x.name, x.val)
}

func (x *fieldExtractor) emitValue(sink fieldSink, name string, v *Value) {
	switch v.Kind {
	case KindString:
		x.emit(sink, name, unsafeBytes(v.Str))
	case KindBytes:
		x.emit(sink, name, v.Bytes)
	case KindEmpty:
	default:
		var b [32]byte
		x.emit(sink, name, v.AppendText(b[:0]))
	}
}

// fields reports every field:value of r: level, service, trace and span
// IDs, attributes, resource attributes, the top-level scalars of a JSON
// object body and the key=value pairs of a logfmt body, plus the record's
// stream.
func (x *fieldExtractor) fields(r *Record, sink fieldSink) {
	x.emit(sink, fieldLevel, unsafeBytes(r.SeverityText))
	svc := r.Service()
	x.emit(sink, fieldService, unsafeBytes(svc))
	if r.TraceID != [16]byte{} {
		var b [32]byte
		x.emit(sink, fieldTraceID, appendHex(b[:0], r.TraceID[:]))
	}
	if r.SpanID != [8]byte{} {
		var b [16]byte
		x.emit(sink, fieldSpanID, appendHex(b[:0], r.SpanID[:]))
	}
	for i := range r.Attributes {
		x.emitValue(sink, r.Attributes[i].Key, &r.Attributes[i].Value)
	}
	for i := range r.Resource {
		if r.Resource[i].Key == ServiceAttr {
			continue
		}
		x.emitValue(sink, r.Resource[i].Key, &r.Resource[i].Value)
	}
	body := r.BodyText()
	if t := bytes.TrimSpace(body); len(t) > 1 && t[0] == '{' {
		x.jsonFields(t, sink)
	} else if bytes.IndexByte(body, '=') >= 0 {
		x.logfmtFields(body, sink)
	}
	// The stream a record belongs to, for Context.
	sv := append(x.val[:0], svc...)
	sv = append(sv, 0x1f)
	sv = append(sv, r.SeverityText...)
	x.val = sv
	x.name = append(x.name[:0], fieldStream...)
	sink(x.name, sv)
}

func appendHex(dst, b []byte) []byte {
	const digits = "0123456789abcdef"
	for _, c := range b {
		dst = append(dst, digits[c>>4], digits[c&15])
	}
	return dst
}

// jsonFields indexes the top-level scalar members of a JSON object.
func (x *fieldExtractor) jsonFields(body []byte, sink fieldSink) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return
	}
	for k, raw := range m {
		if len(raw) == 0 {
			continue
		}
		switch raw[0] {
		case '"':
			var s string
			if json.Unmarshal(raw, &s) == nil {
				x.emit(sink, k, []byte(s))
			}
		case '{', '[', 'n':
			// Nested values and null are not fields.
		default:
			x.emit(sink, k, raw)
		}
	}
}

func isLogfmtKey(c byte) bool {
	return isASCIIWord(c) || c == '.' || c == '-' || c == '/'
}

// logfmtFields indexes key=value and key="quoted value" pairs; a key starts
// at the beginning of the body or after a space.
func (x *fieldExtractor) logfmtFields(body []byte, sink fieldSink) {
	for i := 0; i < len(body); {
		if i > 0 && !isSpace(body[i-1]) || !isLogfmtKey(body[i]) {
			i++
			continue
		}
		j := i
		for j < len(body) && isLogfmtKey(body[j]) {
			j++
		}
		if j >= len(body) || body[j] != '=' {
			i = j + 1
			continue
		}
		key := body[i:j]
		j++
		var val []byte
		if j < len(body) && body[j] == '"' {
			k := j + 1
			for k < len(body) && body[k] != '"' {
				if body[k] == '\\' {
					k++
				}
				k++
			}
			val = body[j+1 : min(k, len(body))]
			j = k + 1
		} else {
			k := j
			for k < len(body) && !isSpace(body[k]) {
				k++
			}
			val = body[j:k]
			j = k
		}
		x.emit(sink, unsafeString(key), val)
		i = j
	}
}
