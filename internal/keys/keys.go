// Package keys owns Pillar's Pebble key layout. Every store builds and parses
// its keys here and nowhere else, so the whole key space can be read in one
// place and no two stores can collide.
//
// Every key is
//
//	+-------+------+----------------------------------+
//	| store | kind | fields, each order-preserving     |
//	| 1 B   | 1 B  | (big-endian ints, escaped bytes)  |
//	+-------+------+----------------------------------+
//
// Fields are encoded so that comparing two keys byte by byte gives the same
// answer as comparing their fields one after another by value. That is what
// lets a store scan a series' chunks in time order, a trace's spans with one
// prefix scan, or a partition's terms in dictionary order.
//
// Field codecs:
//
//	uint32, uint64   big-endian
//	int64            big-endian with the sign bit flipped (negative < positive)
//	float64          IEEE bits; sign bit flipped for positives, all bits flipped
//	                 for negatives (total order, -0 < +0, NaN above +Inf)
//	bytes, string    0x00 escaped as 0x00 0xFF, terminated by 0x00 0x01, so a
//	                 shorter value sorts before any value it is a prefix of and
//	                 a field can be followed by more fields
//
// The per-store files (metrics.go, traces.go, logs.go, meta.go) define the
// kinds and the builders of each store.
package keys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Store bytes: the first byte of every key.
const (
	StoreMetrics byte = 'm'
	StoreTraces  byte = 't'
	StoreLogs    byte = 'l'
	StoreMeta    byte = 'x'
)

// ErrMalformed is returned when a key does not parse as the layout says.
var ErrMalformed = errors.New("keys: malformed key")

const (
	escByte  = 0x00
	escEsc   = 0xFF // 0x00 inside a value becomes 0x00 0xFF
	escTerm  = 0x01 // a value ends with 0x00 0x01
	signBit  = uint64(1) << 63
	prefixSz = 2
)

// Prefix returns the two-byte prefix shared by every key of one kind of one store.
func Prefix(store, kind byte) []byte { return []byte{store, kind} }

// AppendPrefix appends the store and kind bytes to dst.
func AppendPrefix(dst []byte, store, kind byte) []byte { return append(dst, store, kind) }

// PrefixEnd returns the smallest key greater than every key that starts with
// prefix, the exclusive upper bound of a prefix scan. It returns nil when no
// such key exists (prefix is all 0xFF), meaning "no upper bound".
func PrefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// AppendUint32 appends v big-endian.
func AppendUint32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

// AppendUint64 appends v big-endian.
func AppendUint64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// AppendInt64 appends v so that negative values sort before positive ones.
func AppendInt64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^signBit)
}

// AppendFloat64 appends v so that byte order is numeric order.
func AppendFloat64(dst []byte, v float64) []byte {
	b := math.Float64bits(v)
	if b&signBit != 0 {
		b = ^b
	} else {
		b ^= signBit
	}
	return binary.BigEndian.AppendUint64(dst, b)
}

// AppendBytes appends v escaped and terminated, so that it can be followed by
// further fields and still sort as a whole value.
func AppendBytes(dst, v []byte) []byte {
	for _, c := range v {
		if c == escByte {
			dst = append(dst, escByte, escEsc)
			continue
		}
		dst = append(dst, c)
	}
	return append(dst, escByte, escTerm)
}

// AppendString is AppendBytes for a string, without converting it.
func AppendString(dst []byte, v string) []byte {
	return append(AppendStringPrefix(dst, v), escByte, escTerm)
}

// AppendStringPrefix appends v escaped but not terminated: every key whose
// string field starts with v starts with the result. It is the lower bound
// of a `prefix*` range scan; PrefixEnd of it is the upper bound.
func AppendStringPrefix(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == escByte {
			dst = append(dst, escByte, escEsc)
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// Uint32 reads a big-endian uint32 and returns the rest of src.
func Uint32(src []byte) (uint32, []byte, error) {
	if len(src) < 4 {
		return 0, src, fmt.Errorf("%w: uint32 field needs 4 bytes, have %d", ErrMalformed, len(src))
	}
	return binary.BigEndian.Uint32(src), src[4:], nil
}

// Uint64 reads a big-endian uint64 and returns the rest of src.
func Uint64(src []byte) (uint64, []byte, error) {
	if len(src) < 8 {
		return 0, src, fmt.Errorf("%w: uint64 field needs 8 bytes, have %d", ErrMalformed, len(src))
	}
	return binary.BigEndian.Uint64(src), src[8:], nil
}

// Int64 reads a field written by AppendInt64.
func Int64(src []byte) (int64, []byte, error) {
	u, rest, err := Uint64(src)
	return int64(u ^ signBit), rest, err
}

// Float64 reads a field written by AppendFloat64.
func Float64(src []byte) (float64, []byte, error) {
	b, rest, err := Uint64(src)
	if err != nil {
		return 0, src, err
	}
	if b&signBit != 0 {
		b ^= signBit
	} else {
		b = ^b
	}
	return math.Float64frombits(b), rest, nil
}

// Bytes reads a field written by AppendBytes, appending the unescaped value
// to dst (which may be nil) and returning it with the rest of src.
func Bytes(dst, src []byte) ([]byte, []byte, error) {
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != escByte {
			dst = append(dst, c)
			continue
		}
		if i+1 >= len(src) {
			return dst, src, fmt.Errorf("%w: bytes field ends inside an escape", ErrMalformed)
		}
		switch src[i+1] {
		case escEsc:
			dst = append(dst, escByte)
			i++
		case escTerm:
			return dst, src[i+2:], nil
		default:
			return dst, src, fmt.Errorf("%w: bad escape 0x00 0x%02x in bytes field", ErrMalformed, src[i+1])
		}
	}
	return dst, src, fmt.Errorf("%w: bytes field has no terminator", ErrMalformed)
}

// String reads a field written by AppendString.
func String(src []byte) (string, []byte, error) {
	b, rest, err := Bytes(nil, src)
	return string(b), rest, err
}

// Split checks that key belongs to store and kind and returns its fields.
func Split(key []byte, store, kind byte) ([]byte, error) {
	if len(key) < prefixSz || key[0] != store || key[1] != kind {
		return nil, fmt.Errorf("%w: want prefix %q, have %q", ErrMalformed, []byte{store, kind}, key[:min(len(key), prefixSz)])
	}
	return key[prefixSz:], nil
}
