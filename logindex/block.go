package logindex

import (
	"fmt"
	"math"

	"github.com/pillar-db/pillar/encoding"
)

// A record block holds consecutive ordinals of one stream (same resource
// and severity text) of one partition. Its payload, before framing with
// encoding.AppendBlock (snappy, CRC32C), is
//
//	+---------+----------+-----------------+----------+-----------+
//	| version | severity | resource attrs  | count    | records   |
//	| 1 B     | text str | uvarint n, attr | uvarint  | ...       |
//	+---------+----------+-----------------+----------+-----------+
//
// and each record is
//
//	+-----------+-------------+---------+-------+----------+---------+------+-------+
//	| ts delta  | observed -  | sev num | trace | span     | flags   | body | attrs |
//	| varint    | ts, varint  | varint  | flags | 16B/8B   | uvarint | val  | n,... |
//	+-----------+-------------+---------+-------+----------+---------+------+-------+
//
// where ts delta is from the previous record (the first from zero), the
// trace byte says whether a trace ID (bit 0) and span ID (bit 1) follow, a
// val is a kind byte then string/bytes (uvarint length + bytes), bool (1 B),
// int (varint) or double (8 B little-endian bits), and an attr is a key
// string and a val. Strings are uvarint length + bytes.
const blockVersion byte = 1

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

// appendBlockHeader starts a block payload for the stream of r.
func appendBlockHeader(dst []byte, r *Record, count int) []byte {
	dst = append(dst, blockVersion)
	dst = encoding.AppendStringField(dst, r.SeverityText)
	dst = appendAttrs(dst, r.Resource)
	return encoding.AppendUvarint(dst, uint64(count))
}

// appendRecord appends r's per-record fields; prevTS is the previous
// record's timestamp in the block (0 for the first).
func appendRecord(dst []byte, r *Record, prevTS int64) []byte {
	dst = encoding.AppendVarint(dst, r.Timestamp-prevTS)
	dst = encoding.AppendVarint(dst, r.ObservedTimestamp-r.Timestamp)
	dst = encoding.AppendVarint(dst, int64(r.SeverityNumber))
	var tf byte
	if r.TraceID != [16]byte{} {
		tf |= 1
	}
	if r.SpanID != [8]byte{} {
		tf |= 2
	}
	dst = append(dst, tf)
	if tf&1 != 0 {
		dst = append(dst, r.TraceID[:]...)
	}
	if tf&2 != 0 {
		dst = append(dst, r.SpanID[:]...)
	}
	dst = encoding.AppendUvarint(dst, uint64(r.Flags))
	dst = appendValue(dst, &r.Body)
	return appendAttrs(dst, r.Attributes)
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: logindex: %s", encoding.ErrCorrupt, fmt.Sprintf(format, args...))
}

// blockReader gives access to the records of one decoded block payload.
// It keeps the payload (which it does not copy) and the offset of each
// record, so one record decodes without the others.
type blockReader struct {
	payload  []byte
	sevText  []byte
	resource []byte // encoded resource attrs
	offs     []int  // offset of each record in payload
	ts       []int64
}

// reset parses payload's header and indexes its records. A payload that
// does not parse gives an error wrapping encoding.ErrCorrupt.
func (b *blockReader) reset(payload []byte) error {
	b.payload = payload
	b.offs, b.ts = b.offs[:0], b.ts[:0]
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
	var ts int64
	for i := uint64(0); i < n; i++ {
		b.offs = append(b.offs, len(payload)-d.Len())
		ts += d.Varint()
		b.ts = append(b.ts, ts)
		skipRecordTail(&d)
		if err := d.Err(); err != nil {
			return fmt.Errorf("logindex: record %d of block: %w", i, err)
		}
	}
	if d.Len() != 0 {
		return corruptf("record block has %d trailing bytes", d.Len())
	}
	return nil
}

// len returns the number of records.
func (b *blockReader) len() int { return len(b.offs) }

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

// skipRecordTail skips a record after its timestamp delta.
func skipRecordTail(d *encoding.Decoder) {
	d.Varint()
	d.Varint()
	tf := d.Byte()
	if tf&1 != 0 {
		d.Uint64()
		d.Uint64()
	}
	if tf&2 != 0 {
		d.Uint64()
	}
	d.Uvarint()
	skipValue(d)
	skipAttrs(d)
}

// body returns record i's body bytes (aliasing the payload) and kind.
func (b *blockReader) body(i int) ([]byte, ValueKind) {
	d := encoding.NewDecoder(b.payload[b.offs[i]:])
	d.Varint()
	d.Varint()
	d.Varint()
	tf := d.Byte()
	if tf&1 != 0 {
		d.Uint64()
		d.Uint64()
	}
	if tf&2 != 0 {
		d.Uint64()
	}
	d.Uvarint()
	k := ValueKind(d.Byte())
	switch k {
	case KindString, KindBytes:
		return d.Bytes(), k
	}
	return nil, k
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
	var r Record
	r.SeverityText = string(b.sevText)
	rd := encoding.NewDecoder(b.resource)
	r.Resource = readAttrs(&rd)
	d := encoding.NewDecoder(b.payload[b.offs[i]:])
	d.Varint()
	r.Timestamp = b.ts[i]
	r.ObservedTimestamp = r.Timestamp + d.Varint()
	r.SeverityNumber = int32(d.Varint())
	tf := d.Byte()
	if tf&1 != 0 {
		copy(r.TraceID[:], d.Rest())
		d.Uint64()
		d.Uint64()
	}
	if tf&2 != 0 {
		copy(r.SpanID[:], d.Rest())
		d.Uint64()
	}
	r.Flags = uint32(d.Uvarint())
	r.Body = readValue(&d)
	r.Attributes = readAttrs(&d)
	if err := rd.Err(); err != nil {
		return Record{}, err
	}
	return r, d.Err()
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

// encodeRecords frames recs (one stream) as a block; a helper for tests and
// the writer.
func encodeRecords(dst []byte, scratch []byte, recs []Record) ([]byte, []byte) {
	scratch = appendBlockHeader(scratch[:0], &recs[0], len(recs))
	var prev int64
	for i := range recs {
		scratch = appendRecord(scratch, &recs[i], prev)
		prev = recs[i].Timestamp
	}
	return encoding.AppendBlock(dst, encoding.BlockSnappy, scratch), scratch
}
