package tsdb

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
)

// MetricName is the label that holds a series' metric name.
const MetricName = "__name__"

// Label is one name/value pair of a series.
type Label struct{ Name, Value string }

// Labels identify a series: sorted by Name, no empty values, no duplicate
// names. Build them with FromStrings, FromMap or a LabelsBuilder, which
// establish that order; a hand-built Labels is checked when appended.
type Labels []Label

// FromStrings builds Labels from name, value pairs. It sorts them and drops
// pairs whose value is empty (an empty value means the label is absent). A
// trailing unpaired string is ignored. When a name repeats the last value wins.
func FromStrings(ss ...string) Labels {
	ls := make(Labels, 0, len(ss)/2)
	for i := 0; i+1 < len(ss); i += 2 {
		if ss[i+1] == "" {
			continue
		}
		ls = append(ls, Label{Name: ss[i], Value: ss[i+1]})
	}
	return sortDedup(ls)
}

// FromMap builds Labels from a map, dropping empty values.
func FromMap(m map[string]string) Labels {
	ls := make(Labels, 0, len(m))
	for n, v := range m {
		if v != "" {
			ls = append(ls, Label{Name: n, Value: v})
		}
	}
	return sortDedup(ls)
}

// sortDedup sorts by name (stable, so the last of equal names is kept by the
// compaction below) and keeps the last value of each repeated name.
func sortDedup(ls Labels) Labels {
	slices.SortStableFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	out := ls[:0]
	for i, l := range ls {
		if i+1 < len(ls) && ls[i+1].Name == l.Name {
			continue
		}
		out = append(out, l)
	}
	return out
}

// Get returns the value of name, or "" when absent.
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Has reports whether name is present.
func (ls Labels) Has(name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}

// Map returns the labels as a new map.
func (ls Labels) Map() map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// String prints the labels as Prometheus does: {__name__="x", a="b"}.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// sep separates names and values inside hashes; 0xff never occurs in UTF-8,
// so ("ab","c") and ("a","bc") hash differently.
const sep = '\xff'

// Hash returns a hash of all pairs, stable across processes (xxhash64).
func (ls Labels) Hash() uint64 {
	var d xxhash.Digest
	d.Reset()
	for _, l := range ls {
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write([]byte{sep})
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write([]byte{sep})
	}
	return d.Sum64()
}

// HashForLabels hashes only the named labels (as `by (...)` groups).
// names need not be sorted.
func (ls Labels) HashForLabels(names ...string) uint64 {
	var d xxhash.Digest
	d.Reset()
	for _, l := range ls {
		if !slices.Contains(names, l.Name) {
			continue
		}
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write([]byte{sep})
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write([]byte{sep})
	}
	return d.Sum64()
}

// HashWithoutLabels hashes all labels but the named ones and __name__ (as
// `without (...)` groups).
func (ls Labels) HashWithoutLabels(names ...string) uint64 {
	var d xxhash.Digest
	d.Reset()
	for _, l := range ls {
		if l.Name == MetricName || slices.Contains(names, l.Name) {
			continue
		}
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write([]byte{sep})
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write([]byte{sep})
	}
	return d.Sum64()
}

// Copy returns a copy that shares no backing array with ls.
func (ls Labels) Copy() Labels { return slices.Clone(ls) }

// Compare orders label sets pair by pair, names before values; a set that is
// a prefix of another sorts first.
func Compare(a, b Labels) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// Equal reports whether a and b hold the same pairs.
func Equal(a, b Labels) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// LabelsBuilder edits a label set without touching the original.
type LabelsBuilder struct {
	base Labels
	add  []Label
	del  []string
	keep []string // nil means keep everything
}

// NewBuilder starts a builder from base (which is not modified).
func NewBuilder(base Labels) *LabelsBuilder { return &LabelsBuilder{base: base} }

// Reset starts over from base, reusing the builder's memory.
func (b *LabelsBuilder) Reset(base Labels) {
	b.base, b.add, b.del, b.keep = base, b.add[:0], b.del[:0], nil
}

// Set sets name to value; an empty value deletes the label.
func (b *LabelsBuilder) Set(name, value string) *LabelsBuilder {
	if value == "" {
		return b.Del(name)
	}
	b.del = slices.DeleteFunc(b.del, func(n string) bool { return n == name })
	for i := range b.add {
		if b.add[i].Name == name {
			b.add[i].Value = value
			return b
		}
	}
	b.add = append(b.add, Label{Name: name, Value: value})
	return b
}

// Del removes the named labels.
func (b *LabelsBuilder) Del(names ...string) *LabelsBuilder {
	for _, n := range names {
		b.add = slices.DeleteFunc(b.add, func(l Label) bool { return l.Name == n })
		if !slices.Contains(b.del, n) {
			b.del = append(b.del, n)
		}
	}
	return b
}

// Keep removes every label whose name is not listed (applied after Set/Del).
func (b *LabelsBuilder) Keep(names ...string) *LabelsBuilder {
	b.keep = append(b.keep[:0:0], names...)
	return b
}

// Labels returns the edited set as new Labels.
func (b *LabelsBuilder) Labels() Labels {
	out := make(Labels, 0, len(b.base)+len(b.add))
	for _, l := range b.base {
		if slices.Contains(b.del, l.Name) || slices.ContainsFunc(b.add, func(a Label) bool { return a.Name == l.Name }) {
			continue
		}
		out = append(out, l)
	}
	out = append(out, b.add...)
	if b.keep != nil {
		out = slices.DeleteFunc(out, func(l Label) bool { return !slices.Contains(b.keep, l.Name) })
	}
	slices.SortFunc(out, func(a, c Label) int { return strings.Compare(a.Name, c.Name) })
	return out
}

// LabelError says which label of a set broke which rule. errors.Is(err,
// ErrInvalidLabels) holds for it.
type LabelError struct {
	Name   string // the offending label name ("" when the name itself is empty)
	Reason string
}

func (e *LabelError) Error() string {
	return fmt.Sprintf("%v: label %q: %s", ErrInvalidLabels, e.Name, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidLabels) hold.
func (e *LabelError) Unwrap() error { return ErrInvalidLabels }

// validateLabels checks the rules every stored series obeys.
func validateLabels(ls Labels, allowUTF8 bool) error {
	if len(ls) == 0 {
		return &LabelError{Reason: "empty label set"}
	}
	for i, l := range ls {
		if l.Name == "" {
			return &LabelError{Reason: "empty name"}
		}
		if i > 0 {
			switch c := strings.Compare(ls[i-1].Name, l.Name); {
			case c == 0:
				return &LabelError{Name: l.Name, Reason: "duplicate name"}
			case c > 0:
				return &LabelError{Name: l.Name, Reason: "labels not sorted by name"}
			}
		}
		if allowUTF8 {
			if !utf8.ValidString(l.Name) {
				return &LabelError{Name: l.Name, Reason: "name is not valid UTF-8"}
			}
		} else if !legacyName(l.Name) {
			return &LabelError{Name: l.Name, Reason: "name must match [a-zA-Z_][a-zA-Z0-9_]*"}
		}
		if l.Value == "" {
			return &LabelError{Name: l.Name, Reason: "empty value"}
		}
		if !utf8.ValidString(l.Value) {
			return &LabelError{Name: l.Name, Reason: "value is not valid UTF-8"}
		}
	}
	return nil
}

func legacyName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return s != ""
}
