package tracestore

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/pillar-db/pillar/encoding"
)

// Span block format. The spans of one trace written by one Write call are
// stored as one payload, framed by encoding.AppendBlock (version, codec,
// CRC32C, snappy). The trace ID is not repeated: it is in the key.
//
//	payload:
//	+---------+----------------------+-----------------+--------------+---------+----------+-------+
//	| version | strings              | resources       | scopes       | nspans  | base ns  | spans |
//	| 1 B     | n, n×entry           | n, n×resource   | n, n×scope   | uvarint | varint   | ...   |
//	+---------+----------------------+-----------------+--------------+---------+----------+-------+
//
//	resource: attrs, dropped uvarint, schemaURL str
//	scope:    name str, version str, attrs, dropped uvarint, schemaURL str
//	span:     spanID 8B, parent (0 | 1 idx uvarint of an earlier span | 2 + 8B),
//	          presence mask 1B, uvarint name str<<3 | kind (7: kind byte follows),
//	          start varint (minus base), duration varint,
//	          resource uvarint, scope uvarint, attrs,
//	          then only the fields whose mask bit is set, in this order:
//	          traceState str, flags uvarint, dropped attrs uvarint,
//	          events n × (time varint (minus start), name str, attrs, dropped),
//	          dropped events uvarint,
//	          links n × (0 same trace | 1 + 16B, spanID 8B, traceState str, flags uvarint, attrs, dropped),
//	          dropped links uvarint, status (code 1B, message str)
//	attrs:    n uvarint, n × (uvarint key str<<3 | kind, value body)
//	value:    kind 1B, value body (inside arrays)
//	body:     string: str; bool: 1B; int: varint; bytes: len + bytes;
//	          float: uvarint 0 + 8B LE bits, or uvarint places+1 + varint
//	          mantissa when mantissa/10^places reads back bit for bit;
//	          array: n + values; map: attrs
//	str:      uvarint index into the block's string table
//	entry:    uvarint x; x even: the string is ID x/2 of the store's shared
//	          dictionary (`t d <id>`); x odd: x/2 bytes follow, the string itself
//
// Strings (attribute keys and string values, names) are dictionary-coded per
// block, so a key repeated on every span costs one byte per use, and the
// block's table names most of them by a shared-dictionary ID of a byte or
// two instead of spelling them in every trace. Resources and scopes are
// stored once per block and referenced by index.
const blockFormatVersion = 1

// maxValueDepth bounds nesting of arrays and maps, so a crafted block cannot
// exhaust the stack.
const maxValueDepth = 32

// Presence bits of a span's optional fields; a field whose bit is clear is
// zero and takes no bytes.
const (
	hasTraceState = 1 << iota
	hasFlags
	hasDroppedAttrs
	hasEvents
	hasDroppedEvents
	hasLinks
	hasDroppedLinks
	hasStatus
)

// kindEscape in the low bits of a span's name field says the kind follows
// in its own byte.
const kindEscape = 7

const (
	parentNone = 0
	parentRef  = 1
	parentRaw  = 2
)

// blockEncoder turns the spans of one trace into a span block. It keeps its
// buffers and maps between blocks so that steady-state encoding allocates
// only for strings it has not seen in the current block.
type blockEncoder struct {
	dict      map[string]uint32
	nstr      int
	strs      []byte // string table entries
	res       []byte // encoded resources
	nres      int
	resIdx    map[string]uint32
	scopes    []byte
	nscopes   int
	scopeIdx  map[string]uint32
	tmp       []byte
	body      []byte
	payload   []byte
	spanIndex map[SpanID]uint32

	// g is the store's shared dictionary, nil to keep every string in the
	// block. defs collects the IDs the blocks refer to whose definitions
	// are not yet durable: the Write must store them with the blocks.
	g    *dict
	defs []uint32
}

func newBlockEncoder() *blockEncoder {
	return &blockEncoder{
		dict:      make(map[string]uint32),
		resIdx:    make(map[string]uint32),
		scopeIdx:  make(map[string]uint32),
		spanIndex: make(map[SpanID]uint32),
	}
}

func (e *blockEncoder) reset() {
	clear(e.dict)
	clear(e.resIdx)
	clear(e.scopeIdx)
	clear(e.spanIndex)
	e.nstr, e.nres, e.nscopes = 0, 0, 0
	e.strs, e.res, e.scopes, e.body, e.payload = e.strs[:0], e.res[:0], e.scopes[:0], e.body[:0], e.payload[:0]
}

func (e *blockEncoder) str(dst []byte, s string) []byte {
	return binary.AppendUvarint(dst, uint64(e.strIdx(s)))
}

// strIdx returns the index of s in the block's string table, adding it.
func (e *blockEncoder) strIdx(s string) uint32 {
	idx, ok := e.dict[s]
	if !ok {
		idx = uint32(e.nstr)
		e.nstr++
		e.dict[s] = idx
		if id, uncommitted, ok := e.shared(s); ok {
			e.strs = binary.AppendUvarint(e.strs, uint64(id)<<1)
			if uncommitted {
				e.defs = append(e.defs, id)
			}
		} else {
			e.strs = binary.AppendUvarint(e.strs, uint64(len(s))<<1|1)
			e.strs = append(e.strs, s...)
		}
	}
	return idx
}

func (e *blockEncoder) shared(s string) (uint32, bool, bool) {
	if e.g == nil {
		return 0, false, false
	}
	return e.g.lookup(s)
}

func (e *blockEncoder) attrs(dst []byte, kvs []KeyValue) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(kvs)))
	for i := range kvs {
		// Key index and value kind share one uvarint: one byte for the
		// first 16 strings of the block.
		dst = binary.AppendUvarint(dst, uint64(e.strIdx(kvs[i].Key))<<3|uint64(kvs[i].Value.kind))
		dst = e.valueBody(dst, &kvs[i].Value)
	}
	return dst
}

func (e *blockEncoder) value(dst []byte, v *Value) []byte {
	dst = append(dst, byte(v.kind))
	return e.valueBody(dst, v)
}

// pow10 holds the exact powers of ten a decimal float is divided by.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// appendFloat writes v as a decimal when that reads back bit for bit
// (72.5 → places 1, mantissa 725: three bytes instead of eight), else raw:
//
//	uvarint 0, 8 bytes LE bits  |  uvarint places+1, varint mantissa
func appendFloat(dst []byte, bits uint64) []byte {
	v := math.Float64frombits(bits)
	if !math.IsNaN(v) && !math.IsInf(v, 0) && math.Abs(v) < 1<<52 && bits != 1<<63 { // -0 has no decimal form
		for k, p := range pow10 {
			m := math.Round(v * p)
			if math.Abs(m) >= 1<<53 {
				break
			}
			if math.Float64bits(m/p) == bits {
				dst = binary.AppendUvarint(dst, uint64(k+1))
				return encoding.AppendVarint(dst, int64(m))
			}
		}
	}
	dst = binary.AppendUvarint(dst, 0)
	return binary.LittleEndian.AppendUint64(dst, bits)
}

func (e *blockEncoder) valueBody(dst []byte, v *Value) []byte {
	switch v.kind {
	case ValueString:
		dst = e.str(dst, v.str)
	case ValueBool:
		dst = append(dst, byte(v.num))
	case ValueInt64:
		dst = encoding.AppendVarint(dst, int64(v.num))
	case ValueFloat64:
		dst = appendFloat(dst, v.num)
	case ValueBytes:
		dst = encoding.AppendStringField(dst, v.str)
	case ValueArray:
		arr := v.Array()
		dst = binary.AppendUvarint(dst, uint64(len(arr)))
		for i := range arr {
			dst = e.value(dst, &arr[i])
		}
	case ValueMap:
		dst = e.attrs(dst, v.Map())
	}
	return dst
}

// resource returns the index of r in the block's resource table.
func (e *blockEncoder) resource(r *Resource) uint32 {
	e.tmp = e.attrs(e.tmp[:0], r.Attributes)
	e.tmp = binary.AppendUvarint(e.tmp, uint64(r.DroppedAttributesCount))
	e.tmp = e.str(e.tmp, r.SchemaURL)
	if idx, ok := e.resIdx[string(e.tmp)]; ok {
		return idx
	}
	idx := uint32(e.nres)
	e.nres++
	e.resIdx[string(e.tmp)] = idx
	e.res = append(e.res, e.tmp...)
	return idx
}

func (e *blockEncoder) scope(s *Scope) uint32 {
	e.tmp = e.str(e.tmp[:0], s.Name)
	e.tmp = e.str(e.tmp, s.Version)
	e.tmp = e.attrs(e.tmp, s.Attributes)
	e.tmp = binary.AppendUvarint(e.tmp, uint64(s.DroppedAttributesCount))
	e.tmp = e.str(e.tmp, s.SchemaURL)
	if idx, ok := e.scopeIdx[string(e.tmp)]; ok {
		return idx
	}
	idx := uint32(e.nscopes)
	e.nscopes++
	e.scopeIdx[string(e.tmp)] = idx
	e.scopes = append(e.scopes, e.tmp...)
	return idx
}

// encode builds the payload of a block holding spans (all of one trace) and
// returns it; the result is valid until the next call.
func (e *blockEncoder) encode(spans []*Span) []byte {
	e.reset()
	if len(spans) == 0 {
		return nil
	}
	traceID := spans[0].TraceID
	base := spans[0].StartTime
	for _, s := range spans {
		base = min(base, s.StartTime)
	}
	b := e.body
	for i, s := range spans {
		b = append(b, s.SpanID[:]...)
		switch idx, ok := e.spanIndex[s.ParentSpanID]; {
		case s.ParentSpanID.IsZero():
			b = append(b, parentNone)
		case ok:
			b = append(b, parentRef)
			b = binary.AppendUvarint(b, uint64(idx))
		default:
			b = append(b, parentRaw)
			b = append(b, s.ParentSpanID[:]...)
		}
		if _, dup := e.spanIndex[s.SpanID]; !dup {
			e.spanIndex[s.SpanID] = uint32(i)
		}
		var mask byte
		if s.TraceState != "" {
			mask |= hasTraceState
		}
		if s.Flags != 0 {
			mask |= hasFlags
		}
		if s.DroppedAttributesCount != 0 {
			mask |= hasDroppedAttrs
		}
		if len(s.Events) != 0 {
			mask |= hasEvents
		}
		if s.DroppedEventsCount != 0 {
			mask |= hasDroppedEvents
		}
		if len(s.Links) != 0 {
			mask |= hasLinks
		}
		if s.DroppedLinksCount != 0 {
			mask |= hasDroppedLinks
		}
		if s.Status != (Status{}) {
			mask |= hasStatus
		}
		b = append(b, mask)
		// Name and kind share a uvarint; kinds past 6 take one more byte.
		if s.Kind < kindEscape {
			b = binary.AppendUvarint(b, uint64(e.strIdx(s.Name))<<3|uint64(s.Kind))
		} else {
			b = binary.AppendUvarint(b, uint64(e.strIdx(s.Name))<<3|kindEscape)
			b = append(b, byte(s.Kind))
		}
		b = encoding.AppendVarint(b, s.StartTime-base)
		b = encoding.AppendVarint(b, s.EndTime-s.StartTime)
		b = binary.AppendUvarint(b, uint64(e.resource(&s.Resource)))
		b = binary.AppendUvarint(b, uint64(e.scope(&s.Scope)))
		b = e.attrs(b, s.Attributes)
		if mask&hasTraceState != 0 {
			b = e.str(b, s.TraceState)
		}
		if mask&hasFlags != 0 {
			b = binary.AppendUvarint(b, uint64(s.Flags))
		}
		if mask&hasDroppedAttrs != 0 {
			b = binary.AppendUvarint(b, uint64(s.DroppedAttributesCount))
		}
		if mask&hasEvents != 0 {
			b = binary.AppendUvarint(b, uint64(len(s.Events)))
			for j := range s.Events {
				ev := &s.Events[j]
				b = encoding.AppendVarint(b, ev.Time-s.StartTime)
				b = e.str(b, ev.Name)
				b = e.attrs(b, ev.Attributes)
				b = binary.AppendUvarint(b, uint64(ev.DroppedAttributesCount))
			}
		}
		if mask&hasDroppedEvents != 0 {
			b = binary.AppendUvarint(b, uint64(s.DroppedEventsCount))
		}
		if mask&hasLinks != 0 {
			b = binary.AppendUvarint(b, uint64(len(s.Links)))
			for j := range s.Links {
				l := &s.Links[j]
				if l.TraceID == traceID {
					b = append(b, 0)
				} else {
					b = append(b, 1)
					b = append(b, l.TraceID[:]...)
				}
				b = append(b, l.SpanID[:]...)
				b = e.str(b, l.TraceState)
				b = binary.AppendUvarint(b, uint64(l.Flags))
				b = e.attrs(b, l.Attributes)
				b = binary.AppendUvarint(b, uint64(l.DroppedAttributesCount))
			}
		}
		if mask&hasDroppedLinks != 0 {
			b = binary.AppendUvarint(b, uint64(s.DroppedLinksCount))
		}
		if mask&hasStatus != 0 {
			b = append(b, byte(s.Status.Code))
			b = e.str(b, s.Status.Message)
		}
	}
	e.body = b

	p := append(e.payload, blockFormatVersion)
	p = binary.AppendUvarint(p, uint64(e.nstr))
	p = append(p, e.strs...)
	p = binary.AppendUvarint(p, uint64(e.nres))
	p = append(p, e.res...)
	p = binary.AppendUvarint(p, uint64(e.nscopes))
	p = append(p, e.scopes...)
	p = binary.AppendUvarint(p, uint64(len(spans)))
	p = encoding.AppendVarint(p, base)
	p = append(p, e.body...)
	e.payload = p
	return p
}

// blockDecoder reads span payloads. The strings of a block are converted
// once and shared by every span decoded from it.
type blockDecoder struct {
	g      *dict // shared dictionary; nil: a block must not refer to it
	kvSlab []KeyValue
	// slabUsed counts attributes handed out since the last reuseSlab.
	slabUsed int
	d        encoding.Decoder
	err      error // first semantic error; d holds the first read error
	strs     []string
	res      []Resource
	scopes   []Scope
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: tracestore: %s", encoding.ErrCorrupt, fmt.Sprintf(format, args...))
}

// count reads a list length and checks that at least minBytes per element
// remain, so a damaged length cannot make the decoder allocate without bound.
func (bd *blockDecoder) count(what string, minBytes int) int {
	n := bd.d.Uvarint()
	if bd.d.Err() != nil {
		return 0
	}
	if n > uint64(bd.d.Len()/minBytes) {
		bd.fail(corruptf("%s count %d exceeds the %d bytes left", what, n, bd.d.Len()))
		return 0
	}
	return int(n)
}

func (bd *blockDecoder) fail(err error) {
	if bd.d.Err() == nil {
		// Poison the decoder: reading past the end sets its sticky error; we
		// keep ours instead by replacing the input with nothing.
		bd.d.Reset(nil)
		bd.err = err
	}
}

func (bd *blockDecoder) str() string { return bd.strAt(bd.d.Uvarint()) }

func (bd *blockDecoder) strAt(i uint64) string {
	if bd.d.Err() != nil {
		return ""
	}
	if i >= uint64(len(bd.strs)) {
		bd.fail(corruptf("string index %d outside the table of %d", i, len(bd.strs)))
		return ""
	}
	return bd.strs[i]
}

func (bd *blockDecoder) u32() uint32 {
	v := bd.d.Uvarint()
	if v > math.MaxUint32 {
		bd.fail(corruptf("count %d overflows 32 bits", v))
		return 0
	}
	return uint32(v)
}

func (bd *blockDecoder) attrs(depth int) []KeyValue {
	n := bd.count("attribute", 1) // an empty value takes no body byte
	if n == 0 {
		return nil
	}
	kvs := bd.allocKVs(n)
	for i := range kvs {
		head := bd.d.Uvarint()
		kvs[i].Key = bd.strAt(head >> 3)
		kvs[i].Value = bd.valueBody(ValueKind(head&7), depth)
		if bd.failed() {
			return nil
		}
	}
	return kvs
}

// allocKVs hands out attribute slices from a slab, so decoding a block
// allocates per block rather than per span. A slab is never reused: slices
// handed out stay valid, and each is capped so appends cannot run into its
// neighbour.
func (bd *blockDecoder) allocKVs(n int) []KeyValue {
	bd.slabUsed += n
	if cap(bd.kvSlab)-len(bd.kvSlab) < n {
		bd.kvSlab = make([]KeyValue, 0, max(n, 1024))
	}
	l := len(bd.kvSlab)
	bd.kvSlab = bd.kvSlab[:l+n]
	return bd.kvSlab[l : l+n : l+n]
}

// reuseSlab lets the next decode overwrite the attributes handed out so
// far. Only for callers that no longer hold any span decoded before.
// When the last decodes needed more than the slab holds, it is replaced by
// one of that size (up to 256 Ki attributes), so a reader of many traces
// (Find) stops allocating a run of small slabs for every large trace.
func (bd *blockDecoder) reuseSlab() {
	if bd.slabUsed > cap(bd.kvSlab) {
		bd.kvSlab = make([]KeyValue, 0, min(bd.slabUsed, 1<<18))
	}
	bd.kvSlab, bd.slabUsed = bd.kvSlab[:0], 0
}

func (bd *blockDecoder) value(depth int) Value {
	return bd.valueBody(ValueKind(bd.d.Byte()), depth)
}

func (bd *blockDecoder) float() uint64 {
	h := bd.d.Uvarint()
	switch {
	case h == 0:
		return bd.d.Uint64()
	case h <= uint64(len(pow10)):
		m := bd.d.Varint()
		if m >= 1<<53 || m <= -(1<<53) {
			bd.fail(corruptf("decimal float mantissa %d out of range", m))
			return 0
		}
		return math.Float64bits(float64(m) / pow10[h-1])
	default:
		bd.fail(corruptf("float header %d", h))
		return 0
	}
}

func (bd *blockDecoder) valueBody(k ValueKind, depth int) Value {
	if depth > maxValueDepth {
		bd.fail(corruptf("values nested deeper than %d", maxValueDepth))
		return Value{}
	}
	v := Value{kind: k}
	switch k {
	case ValueEmpty:
	case ValueString:
		v.str = bd.str()
	case ValueBool:
		b := bd.d.Byte()
		if b > 1 {
			bd.fail(corruptf("bool value byte %d", b))
		}
		v.num = uint64(b)
	case ValueInt64:
		v.num = uint64(bd.d.Varint())
	case ValueFloat64:
		v.num = bd.float()
	case ValueBytes:
		v.str = string(bd.d.Bytes())
	case ValueArray:
		n := bd.count("array element", 1)
		if n > 0 {
			arr := make([]Value, n)
			v.ext = &valueList{arr: arr}
			for i := range arr {
				arr[i] = bd.value(depth + 1)
				if bd.failed() {
					return Value{}
				}
			}
		}
	case ValueMap:
		if kvs := bd.attrs(depth + 1); len(kvs) > 0 {
			v.ext = &valueList{kvs: kvs}
		}
	default:
		bd.fail(corruptf("unknown value kind %d", k))
	}
	return v
}

func (bd *blockDecoder) failed() bool { return bd.d.Err() != nil || bd.err != nil }

// parent reads how span i of the block names its parent: it returns the
// index of an earlier span of the block, or -1 when there is none or the
// parent's ID was written out, which it then reads into raw.
func (bd *blockDecoder) parent(i int, raw []byte) int {
	switch bd.d.Byte() {
	case parentNone:
	case parentRef:
		ref := bd.d.Uvarint()
		if ref >= uint64(i) {
			bd.fail(corruptf("span %d refers to parent %d, not an earlier span", i, ref))
			break
		}
		return int(ref)
	case parentRaw:
		bd.id(raw)
	default:
		bd.fail(corruptf("span %d has an unknown parent tag", i))
	}
	return -1
}

func (bd *blockDecoder) id(dst []byte) {
	for i := range dst {
		dst[i] = bd.d.Byte()
	}
}

// decodeSpans appends the spans of payload (trace traceID) to dst. Damaged
// input gives an error wrapping encoding.ErrCorrupt and dst unchanged.
func decodeSpans(dst []Span, traceID TraceID, payload []byte) ([]Span, error) {
	var bd blockDecoder
	return bd.decode(dst, traceID, payload)
}

// header reads a block's version, string table, resources and scopes, and
// returns the span count and the time base.
func (bd *blockDecoder) header(payload []byte) (n int, base int64, err error) {
	bd.d.Reset(payload)
	bd.err = nil
	if v := bd.d.Byte(); bd.d.Err() == nil && v != blockFormatVersion {
		return 0, 0, corruptf("span block version %d, want %d", v, blockFormatVersion)
	}
	nstr := bd.count("string", 1)
	bd.strs = bd.strs[:0]
	for range nstr {
		x := bd.d.Uvarint()
		if bd.failed() {
			break
		}
		if x&1 == 1 {
			n := x >> 1
			if n > uint64(bd.d.Len()) {
				bd.fail(corruptf("string of %d bytes exceeds the %d bytes left", n, bd.d.Len()))
				break
			}
			bd.strs = append(bd.strs, string(bd.d.Rest()[:n]))
			bd.d.Reset(bd.d.Rest()[n:])
			continue
		}
		var s string
		ok := false
		if bd.g != nil {
			s, ok = bd.g.str(x >> 1)
		}
		if !ok {
			bd.fail(corruptf("unknown shared dictionary ID %d", x>>1))
			break
		}
		bd.strs = append(bd.strs, s)
	}
	nres := bd.count("resource", 3)
	bd.res = bd.res[:0]
	for range nres {
		var r Resource
		r.Attributes = bd.attrs(0)
		r.DroppedAttributesCount = bd.u32()
		r.SchemaURL = bd.str()
		bd.res = append(bd.res, r)
	}
	nsc := bd.count("scope", 5)
	bd.scopes = bd.scopes[:0]
	for range nsc {
		var s Scope
		s.Name = bd.str()
		s.Version = bd.str()
		s.Attributes = bd.attrs(0)
		s.DroppedAttributesCount = bd.u32()
		s.SchemaURL = bd.str()
		bd.scopes = append(bd.scopes, s)
	}
	n = bd.count("span", 16)
	base = bd.d.Varint()
	if bd.failed() {
		return 0, 0, bd.error()
	}
	return n, base, nil
}

func (bd *blockDecoder) decode(dst []Span, traceID TraceID, payload []byte) ([]Span, error) {
	orig := len(dst)
	n, base, err := bd.header(payload)
	if err != nil {
		return dst[:orig], err
	}
	dst = growSpans(dst, n)
	for i := range n {
		s := &dst[orig+i]
		*s = Span{TraceID: traceID}
		bd.id(s.SpanID[:])
		if ref := bd.parent(i, s.ParentSpanID[:]); ref >= 0 {
			s.ParentSpanID = dst[orig+ref].SpanID
		}
		mask := bd.d.Byte()
		head := bd.d.Uvarint()
		s.Name = bd.strAt(head >> 3)
		if s.Kind = SpanKind(head & 7); s.Kind == kindEscape {
			s.Kind = SpanKind(bd.d.Byte())
		}
		s.StartTime = base + bd.d.Varint()
		s.EndTime = s.StartTime + bd.d.Varint()
		ri, si := bd.d.Uvarint(), bd.d.Uvarint()
		if bd.failed() {
			break
		}
		if ri >= uint64(len(bd.res)) || si >= uint64(len(bd.scopes)) {
			bd.fail(corruptf("span %d refers to resource %d / scope %d of %d / %d", i, ri, si, len(bd.res), len(bd.scopes)))
			break
		}
		s.Resource, s.Scope = bd.res[ri], bd.scopes[si]
		s.Attributes = bd.attrs(0)
		if mask&hasTraceState != 0 {
			s.TraceState = bd.str()
		}
		if mask&hasFlags != 0 {
			s.Flags = bd.u32()
		}
		if mask&hasDroppedAttrs != 0 {
			s.DroppedAttributesCount = bd.u32()
		}
		if mask&hasEvents != 0 {
			if ne := bd.count("event", 4); ne > 0 {
				s.Events = make([]Event, ne)
				for j := range s.Events {
					ev := &s.Events[j]
					ev.Time = s.StartTime + bd.d.Varint()
					ev.Name = bd.str()
					ev.Attributes = bd.attrs(0)
					ev.DroppedAttributesCount = bd.u32()
				}
			}
		}
		if mask&hasDroppedEvents != 0 {
			s.DroppedEventsCount = bd.u32()
		}
		if mask&hasLinks != 0 {
			if nl := bd.count("link", 13); nl > 0 {
				s.Links = make([]Link, nl)
				for j := range s.Links {
					l := &s.Links[j]
					switch bd.d.Byte() {
					case 0:
						l.TraceID = traceID
					case 1:
						bd.id(l.TraceID[:])
					default:
						bd.fail(corruptf("span %d link %d has an unknown trace tag", i, j))
					}
					bd.id(l.SpanID[:])
					l.TraceState = bd.str()
					l.Flags = bd.u32()
					l.Attributes = bd.attrs(0)
					l.DroppedAttributesCount = bd.u32()
				}
			}
		}
		if mask&hasDroppedLinks != 0 {
			s.DroppedLinksCount = bd.u32()
		}
		if mask&hasStatus != 0 {
			s.Status.Code = StatusCode(bd.d.Byte())
			s.Status.Message = bd.str()
		}
		if bd.failed() {
			break
		}
	}
	if bd.failed() {
		clear(dst[orig:])
		return dst[:orig], bd.error()
	}
	if bd.d.Len() != 0 {
		clear(dst[orig:])
		return dst[:orig], corruptf("%d bytes after the last span", bd.d.Len())
	}
	return dst, nil
}

func (bd *blockDecoder) error() error {
	if bd.err != nil {
		return bd.err
	}
	return fmt.Errorf("tracestore: span block: %w", bd.d.Err())
}

func growSpans(dst []Span, n int) []Span {
	if cap(dst)-len(dst) >= n {
		return dst[:len(dst)+n]
	}
	nd := make([]Span, len(dst)+n, len(dst)+n+len(dst)/4)
	copy(nd, dst)
	return nd
}
