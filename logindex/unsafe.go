package logindex

import "unsafe"

// unsafeBytes views s as bytes without copying. Callers only read the result
// and never keep it past the life of s.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// unsafeString views b as a string without copying, for map lookups and
// comparisons that do not keep it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
