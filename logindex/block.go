package logindex

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/pillar-db/pillar/encoding"
)

// A record block holds consecutive ordinals of one stream (same resource
// and severity text) of one partition. Its payload, before framing with
// encoding.AppendBlock (snappy, CRC32C), is a header and then columns, so
// that like values sit together and compress well:
//
//	+---------+--------------+----------------+-----------+
//	| version | severity     | resource attrs | count n   |
//	| 1 B     | text (str)   | (attrs)        | uvarint   |
//	+---------+--------------+----------------+-----------+
//	| timestamps      n varints: the first absolute, then delta-of-deltas
//	| observed        n varints: observed timestamp minus timestamp
//	| severity num    n varints
//	| ids             n bytes: bit 0 trace ID follows, bit 1 span ID follows;
//	|                 then the IDs present, 16 B and 8 B, in record order
//	| flags           n uvarints
//	| body heads      n × kind byte, then a uvarint length (string, bytes)
//	|                 or the scalar (bool 1 B, int varint, double 8 B LE bits)
//	| attributes      n × attrs
//	| bodies          the string and bytes bodies, concatenated
//	+-------------------------------------------------------------+
//
// A str is a uvarint length and bytes; attrs are a uvarint count and that
// many (key str, val), a val being a kind byte and its value as above (a
// string or bytes value inline, with its length).
const blockVersion byte = 2

// maxBlockRecords bounds a block's record count (about 32 KiB of typical
// lines, inside snappy's 64 KiB window), so one block decodes fast
// when a query needs a single record of it.
const maxBlockRecords = 256

func appendValue(dst []byte, v *Value) []byte {
	switch v.Kind {
	case KindString:
		dst = append(dst, byte(KindString))
		return encoding.AppendStringField(dst, v.Str)
	case KindBool:
		b := byte(0)
		if v.Bool {
			b = 1
		}
		return append(dst, byte(KindBool), b)
	case KindInt:
		return encoding.AppendVarint(append(dst, byte(KindInt)), v.Int)
	case KindDouble:
		bits := math.Float64bits(v.Float)
		dst = append(dst, byte(KindDouble))
		for i := 0; i < 8; i++ {
			dst = append(dst, byte(bits>>(8*i)))
		}
		return dst
	case KindBytes:
		dst = append(dst, byte(KindBytes))
		return encoding.AppendBytesField(dst, v.Bytes)
	}
	return append(dst, byte(KindEmpty))
}

func appendAttrs(dst []byte, attrs []Attribute) []byte {
	dst = encoding.AppendUvarint(dst, uint64(len(attrs)))
	for i := range attrs {
		dst = encoding.AppendStringField(dst, attrs[i].Key)
		dst = appendValue(dst, &attrs[i].Value)
	}
	return dst
}

// appendScalar appends a body head: the kind, then the length of a string
// or bytes body (whose bytes go to the bodies column) or a scalar's value.
func appendBodyHead(dst []byte, v *Value) []byte {
	switch v.Kind {
	case KindString:
		return encoding.AppendUvarint(append(dst, byte(KindString)), uint64(len(v.Str)))
	case KindBytes:
		return encoding.AppendUvarint(append(dst, byte(KindBytes)), uint64(len(v.Bytes)))
	}
	return appendValue(dst, v)
}

// appendBlockPayload appends the payload of a block holding recs[i] for i
// in order (every record when order is nil), all of one stream.
func appendBlockPayload(dst []byte, recs []Record, order []int) []byte {
	n := len(order)
	at := func(i int) *Record { return &recs[order[i]] }
	if order == nil {
		n = len(recs)
		at = func(i int) *Record { return &recs[i] }
	}
	first := at(0)
	dst = append(dst, blockVersion)
	dst = encoding.AppendStringField(dst, first.SeverityText)
	dst = appendAttrs(dst, first.Resource)
	dst = encoding.AppendUvarint(dst, uint64(n))
	var prev, delta int64
	for i := 0; i < n; i++ {
		t := at(i).Timestamp
		dst = encoding.AppendVarint(dst, t-prev-delta)
		delta, prev = t-prev, t
	}
	for i := 0; i < n; i++ {
		r := at(i)
		dst = encoding.AppendVarint(dst, r.ObservedTimestamp-r.Timestamp)
	}
	for i := 0; i < n; i++ {
		dst = encoding.AppendVarint(dst, int64(at(i).SeverityNumber))
	}
	for i := 0; i < n; i++ {
		r := at(i)
		var tf byte
		if r.TraceID != [16]byte{} {
			tf |= 1
		}
		if r.SpanID != [8]byte{} {
			tf |= 2
		}
		dst = append(dst, tf)
	}
	for i := 0; i < n; i++ {
		r := at(i)
		if r.TraceID != [16]byte{} {
			dst = append(dst, r.TraceID[:]...)
		}
		if r.SpanID != [8]byte{} {
			dst = append(dst, r.SpanID[:]...)
		}
	}
	for i := 0; i < n; i++ {
		dst = encoding.AppendUvarint(dst, uint64(at(i).Flags))
	}
	for i := 0; i < n; i++ {
		dst = appendBodyHead(dst, &at(i).Body)
	}
	for i := 0; i < n; i++ {
		dst = appendAttrs(dst, at(i).Attributes)
	}
	for i := 0; i < n; i++ {
		switch b := &at(i).Body; b.Kind {
		case KindString:
			dst = append(dst, b.Str...)
		case KindBytes:
			dst = append(dst, b.Bytes...)
		}
	}
	return dst
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: logindex: %s", encoding.ErrCorrupt, fmt.Sprintf(format, args...))
}

// blockReader gives access to the records of one decoded block payload.
// It parses every column once and keeps, per record, its scalar fields and
// where its variable parts lie in the payload (which it does not copy).
type blockReader struct {
	payload  []byte
	sevText  []byte
	resource []byte // encoded resource attrs
	recs     []recMeta
}

// recMeta is what blockReader keeps of one record.
type recMeta struct {
	ts, observed int64
	sevNum       int32
	ids          byte // bit 0 trace ID, bit 1 span ID
	idOff        int  // offset of the IDs in payload
	flags        uint32
	body         Value // Kind and scalar; string and bytes bodies are at bodyOff
	bodyOff      int
	bodyLen      int
	attrOff      int // offset of the attributes in payload
}

// reset parses payload. A payload that does not parse gives an error
// wrapping encoding.ErrCorrupt.
func (b *blockReader) reset(payload []byte) error {
	b.payload = payload
	b.recs = b.recs[:0]
	d := encoding.NewDecoder(payload)
	if v := d.Byte(); d.Err() == nil && v != blockVersion {
		return corruptf("record block version %d, want %d", v, blockVersion)
	}
	b.sevText = d.Bytes()
	start := len(payload) - d.Len()
	skipAttrs(&d)
	b.resource = payload[start : len(payload)-d.Len()]
	n := d.Uvarint()
	if err := d.Err(); err != nil {
		return fmt.Errorf("logindex: record block header: %w", err)
	}
	if n == 0 || n > uint64(d.Len()) || n > maxBlockRecords {
		return corruptf("record block claims %d records in %d bytes", n, d.Len())
	}
	b.recs = slices.Grow(b.recs, int(n))[:n]
	var ts, delta int64
	for i := range b.recs {
		delta += d.Varint()
		ts += delta
		b.recs[i] = recMeta{ts: ts}
	}
	for i := range b.recs {
		b.recs[i].observed = b.recs[i].ts + d.Varint()
	}
	for i := range b.recs {
		b.recs[i].sevNum = int32(d.Varint())
	}
	for i := range b.recs {
		b.recs[i].ids = d.Byte()
	}
	for i := range b.recs {
		r := &b.recs[i]
		r.idOff = len(payload) - d.Len()
		if r.ids&^3 != 0 {
			return corruptf("record %d has id flags %#x", i, r.ids)
		}
		if r.ids&1 != 0 {
			d.Uint64()
			d.Uint64()
		}
		if r.ids&2 != 0 {
			d.Uint64()
		}
	}
	for i := range b.recs {
		b.recs[i].flags = uint32(d.Uvarint())
	}
	var bodies uint64
	for i := range b.recs {
		r := &b.recs[i]
		switch k := ValueKind(d.Byte()); k {
		case KindString, KindBytes:
			r.body.Kind = k
			l := d.Uvarint()
			if l > uint64(len(payload)) {
				return corruptf("record %d body of %d bytes in a %d-byte block", i, l, len(payload))
			}
			r.bodyLen = int(l)
			bodies += l
		case KindEmpty, KindBool, KindInt, KindDouble:
			if err := d.Err(); err != nil {
				return fmt.Errorf("logindex: record %d body: %w", i, err)
			}
			// Re-read from the kind byte with readValue.
			d2 := encoding.NewDecoder(payload[len(payload)-d.Len()-1:])
			r.body = readValue(&d2)
			if err := d2.Err(); err != nil {
				return fmt.Errorf("logindex: record %d body: %w", i, err)
			}
			d.Reset(d2.Rest())
		default:
			if d.Err() == nil {
				return corruptf("record %d body kind %d", i, k)
			}
		}
	}
	for i := range b.recs {
		b.recs[i].attrOff = len(payload) - d.Len()
		skipAttrs(&d)
	}
	if err := d.Err(); err != nil {
		return fmt.Errorf("logindex: record block: %w", err)
	}
	if uint64(d.Len()) != bodies {
		return corruptf("record block has %d bytes of bodies, records claim %d", d.Len(), bodies)
	}
	off := len(payload) - d.Len()
	for i := range b.recs {
		r := &b.recs[i]
		if r.body.Kind == KindString || r.body.Kind == KindBytes {
			r.bodyOff = off
			off += r.bodyLen
		}
	}
	return nil
}

// len returns the number of records.
func (b *blockReader) len() int { return len(b.recs) }

func skipValue(d *encoding.Decoder) {
	switch ValueKind(d.Byte()) {
	case KindEmpty:
	case KindString, KindBytes:
		d.Bytes()
	case KindBool:
		d.Byte()
	case KindInt:
		d.Varint()
	case KindDouble:
		d.Uint64()
	default:
		if d.Err() == nil {
			// Force a sticky corrupt error via an impossible read.
			d.Reset(nil)
			d.Byte()
		}
	}
}

func skipAttrs(d *encoding.Decoder) {
	n := d.Uvarint()
	if n > uint64(d.Len()) {
		d.Reset(nil)
		d.Byte()
		return
	}
	for i := uint64(0); i < n && d.Err() == nil; i++ {
		d.Bytes()
		skipValue(d)
	}
}

// body returns record i's body bytes (aliasing the payload) and kind.
func (b *blockReader) body(i int) ([]byte, ValueKind) {
	r := &b.recs[i]
	if r.body.Kind == KindString || r.body.Kind == KindBytes {
		return b.payload[r.bodyOff : r.bodyOff+r.bodyLen], r.body.Kind
	}
	return r.body.AppendText(nil), r.body.Kind
}

func readValue(d *encoding.Decoder) Value {
	switch k := ValueKind(d.Byte()); k {
	case KindString:
		return StringValue(string(d.Bytes()))
	case KindBytes:
		return BytesValue(append([]byte(nil), d.Bytes()...))
	case KindBool:
		return BoolValue(d.Byte() != 0)
	case KindInt:
		return IntValue(d.Varint())
	case KindDouble:
		return DoubleValue(math.Float64frombits(d.Uint64()))
	}
	return Value{}
}

func readAttrs(d *encoding.Decoder) []Attribute {
	n := d.Uvarint()
	if n == 0 || d.Err() != nil || n > uint64(d.Len()) {
		return nil
	}
	attrs := make([]Attribute, 0, n)
	for i := uint64(0); i < n && d.Err() == nil; i++ {
		k := string(d.Bytes())
		attrs = append(attrs, Attribute{Key: k, Value: readValue(d)})
	}
	return attrs
}

// record decodes record i into a new Record that shares nothing with the
// payload.
func (b *blockReader) record(i int) (Record, error) {
	m := &b.recs[i]
	r := Record{Timestamp: m.ts, ObservedTimestamp: m.observed, SeverityNumber: m.sevNum, Flags: m.flags, Body: m.body}
	r.SeverityText = string(b.sevText)
	rd := encoding.NewDecoder(b.resource)
	r.Resource = readAttrs(&rd)
	off := m.idOff
	if m.ids&1 != 0 {
		copy(r.TraceID[:], b.payload[off:])
		off += 16
	}
	if m.ids&2 != 0 {
		copy(r.SpanID[:], b.payload[off:])
	}
	switch m.body.Kind {
	case KindString:
		r.Body = StringValue(string(b.payload[m.bodyOff : m.bodyOff+m.bodyLen]))
	case KindBytes:
		r.Body = BytesValue(append([]byte(nil), b.payload[m.bodyOff:m.bodyOff+m.bodyLen]...))
	}
	d := encoding.NewDecoder(b.payload[m.attrOff:])
	r.Attributes = readAttrs(&d)
	if err := errors.Join(rd.Err(), d.Err()); err != nil {
		return Record{}, err
	}
	return r, nil
}

// decodeRecords decodes every record of a framed block, the inverse of the
// block writer. It never panics on arbitrary bytes.
func decodeRecords(block []byte) ([]Record, error) {
	payload, err := encoding.DecodeBlock(nil, block)
	if err != nil {
		return nil, err
	}
	var br blockReader
	if err := br.reset(payload); err != nil {
		return nil, err
	}
	out := make([]Record, 0, br.len())
	for i := 0; i < br.len(); i++ {
		r, err := br.record(i)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// encodeRecords frames recs (one stream) as a block, the way Write does;
// tests use it.
func encodeRecords(dst []byte, scratch []byte, recs []Record) ([]byte, []byte) {
	scratch = appendBlockPayload(scratch[:0], recs, nil)
	return encoding.AppendBlock(dst, encoding.BlockSnappy, scratch), scratch
}
