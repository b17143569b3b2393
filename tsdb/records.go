package tsdb

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/pillar-db/pillar/encoding"
)

// Record formats. Every record value is an encoding framed block (version,
// codec, CRC32C), so a damaged record is reported, never misread.
//
// Series record (m s <id>), payload:
//
//	uvarint n | n × (name string field, value string field)
//
// Write-ahead entry (m w <seq>), payload: the samples of one commit in
// append order, in columns. A scrape commits one sample per series with
// cached refs, so ids come in runs of consecutive ids and timestamps in
// runs of one value (a target's scrape time); each column stores runs:
//
//	uvarint n | flags byte | ids field | timestamps field | [kinds field] | n × value
//	ids:        runs × (varint first id − previous run's last id | uvarint length−1)
//	timestamps: runs × (varint t − previous run's t | uvarint length−1)
//	kinds:      n kind bytes, present when flags has walKinds; else every sample is 'f'
//	value: kind 'f' → 8 B IEEE bits (little-endian); kind 'h' → histogram
//
// (a field is a uvarint length and that many bytes.)
//
// Histogram:
//
//	hint byte | varint schema | 8 B zero threshold | uvarint zero count |
//	uvarint count | 8 B sum | spans(+) | spans(−) | buckets(+) | buckets(−)
//	spans:   uvarint n | n × (varint offset, uvarint length)
//	buckets: uvarint n | n × varint delta
//
// Seal mark (m k <id>), payload:
//
//	uvarint seq | varint sealT | varint minT | varint maxT | 8 B last value bits
//
// A write-ahead sample (seq, t) of a series is in its sealed chunks exactly
// when seq <= mark.seq and t <= mark.sealT; Open replays all others.

const (
	kindFloat     byte = 'f'
	kindHistogram byte = 'h'
)

// walKinds is the write-ahead flag saying the entry has a kinds column.
const walKinds byte = 1

// maxRecordItems bounds counts read from records so corrupt input cannot
// make a decoder allocate without limit.
const maxRecordItems = 1 << 24

func appendLabelsRecord(dst []byte, scratch []byte, ls Labels) ([]byte, []byte) {
	p := encoding.AppendUvarint(scratch[:0], uint64(len(ls)))
	for _, l := range ls {
		p = encoding.AppendStringField(p, l.Name)
		p = encoding.AppendStringField(p, l.Value)
	}
	return encoding.AppendBlock(dst, encoding.BlockRaw, p), p
}

func decodeLabelsRecord(scratch, b []byte) (Labels, []byte, error) {
	p, err := encoding.DecodeBlock(scratch[:0], b)
	if err != nil {
		return nil, p, fmt.Errorf("tsdb: series record: %w", err)
	}
	d := encoding.NewDecoder(p)
	n := d.Uvarint()
	if n > uint64(d.Len()) {
		return nil, p, fmt.Errorf("tsdb: series record: %w: %d labels in %d bytes", encoding.ErrCorrupt, n, d.Len())
	}
	ls := make(Labels, 0, n)
	for i := uint64(0); i < n && d.Err() == nil; i++ {
		name := string(d.Bytes())
		value := string(d.Bytes())
		ls = append(ls, Label{Name: name, Value: value})
	}
	if d.Err() != nil {
		return nil, p, fmt.Errorf("tsdb: series record: %w", d.Err())
	}
	if d.Len() != 0 {
		return nil, p, fmt.Errorf("tsdb: series record: %w: %d trailing bytes", encoding.ErrCorrupt, d.Len())
	}
	return ls, p, nil
}

func appendFloatBits(dst []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}

func appendHistogram(dst []byte, h *Histogram) []byte {
	dst = append(dst, byte(h.CounterResetHint))
	dst = encoding.AppendVarint(dst, int64(h.Schema))
	dst = appendFloatBits(dst, h.ZeroThreshold)
	dst = encoding.AppendUvarint(dst, h.ZeroCount)
	dst = encoding.AppendUvarint(dst, h.Count)
	dst = appendFloatBits(dst, h.Sum)
	for _, spans := range [2][]encoding.BucketSpan{h.PositiveSpans, h.NegativeSpans} {
		dst = encoding.AppendUvarint(dst, uint64(len(spans)))
		for _, s := range spans {
			dst = encoding.AppendVarint(dst, int64(s.Offset))
			dst = encoding.AppendUvarint(dst, uint64(s.Length))
		}
	}
	for _, bs := range [2][]int64{h.PositiveBuckets, h.NegativeBuckets} {
		dst = encoding.AppendUvarint(dst, uint64(len(bs)))
		for _, b := range bs {
			dst = encoding.AppendVarint(dst, b)
		}
	}
	return dst
}

// decodeHistogram reads a histogram into h, reusing its slices. Errors stay
// in d (sticky).
func decodeHistogram(d *encoding.Decoder, h *Histogram) {
	hint := d.Byte()
	if hint > byte(encoding.GaugeType) {
		d.Reset(nil)
		_ = d.Byte() // makes the decoder's error sticky
		return
	}
	h.CounterResetHint = encoding.CounterResetHint(hint)
	h.Schema = int32(d.Varint())
	h.ZeroThreshold = math.Float64frombits(d.Uint64())
	h.ZeroCount = d.Uvarint()
	h.Count = d.Uvarint()
	h.Sum = math.Float64frombits(d.Uint64())
	h.PositiveSpans = decodeSpans(d, h.PositiveSpans[:0])
	h.NegativeSpans = decodeSpans(d, h.NegativeSpans[:0])
	h.PositiveBuckets = decodeBuckets(d, h.PositiveBuckets[:0])
	h.NegativeBuckets = decodeBuckets(d, h.NegativeBuckets[:0])
}

func decodeSpans(d *encoding.Decoder, dst []encoding.BucketSpan) []encoding.BucketSpan {
	n := d.Uvarint()
	if n > uint64(d.Len()) {
		d.Reset(nil)
		_ = d.Byte()
		return dst
	}
	for i := uint64(0); i < n && d.Err() == nil; i++ {
		dst = append(dst, encoding.BucketSpan{Offset: int32(d.Varint()), Length: uint32(d.Uvarint())})
	}
	return dst
}

func decodeBuckets(d *encoding.Decoder, dst []int64) []int64 {
	n := d.Uvarint()
	if n > uint64(d.Len()) {
		d.Reset(nil)
		_ = d.Byte()
		return dst
	}
	for i := uint64(0); i < n && d.Err() == nil; i++ {
		dst = append(dst, d.Varint())
	}
	return dst
}

// walSample is one decoded write-ahead sample; h is only valid until the
// next sample is decoded.
type walSample struct {
	id   uint32
	t    int64
	v    float64
	kind byte
	h    Histogram
}

// walDecoder walks the samples of one write-ahead entry.
type walDecoder struct {
	d       encoding.Decoder // the values
	ids, ts encoding.Decoder // the run columns
	kinds   []byte           // nil when every sample is a float
	n, i    uint64
	id      int64  // the last id decoded
	idLeft  uint64 // ids left in the current run
	t       int64
	tLeft   uint64
}

func (w *walDecoder) reset(payload []byte) error {
	w.d.Reset(payload)
	w.n, w.i = w.d.Uvarint(), 0
	flags := w.d.Byte()
	w.ids.Reset(w.d.Bytes())
	w.ts.Reset(w.d.Bytes())
	w.kinds = nil
	if flags&walKinds != 0 {
		w.kinds = w.d.Bytes()
	}
	w.id, w.idLeft, w.t, w.tLeft = 0, 0, 0, 0
	switch {
	case w.d.Err() != nil:
		return fmt.Errorf("tsdb: write-ahead entry: %w", w.d.Err())
	case flags&^walKinds != 0:
		return fmt.Errorf("tsdb: write-ahead entry: %w: flags %#x", encoding.ErrCorrupt, flags)
	case w.n > uint64(w.d.Len()):
		return fmt.Errorf("tsdb: write-ahead entry: %w: bad sample count", encoding.ErrCorrupt)
	case w.kinds != nil && uint64(len(w.kinds)) != w.n:
		return fmt.Errorf("tsdb: write-ahead entry: %w: %d kinds for %d samples", encoding.ErrCorrupt, len(w.kinds), w.n)
	}
	return nil
}

// next decodes the next sample into s; false at the end or on error.
func (w *walDecoder) next(s *walSample) (bool, error) {
	if w.i >= w.n {
		if n := w.d.Len() + w.ids.Len() + w.ts.Len(); n != 0 || w.idLeft != 0 || w.tLeft != 0 {
			return false, fmt.Errorf("tsdb: write-ahead entry: %w: %d trailing bytes, runs past the samples", encoding.ErrCorrupt, n)
		}
		return false, nil
	}
	left := w.n - w.i
	if w.idLeft == 0 {
		w.id += w.ids.Varint()
		if w.idLeft = w.ids.Uvarint() + 1; w.idLeft == 0 || w.idLeft > left {
			return false, fmt.Errorf("tsdb: write-ahead entry: %w: id run past the samples", encoding.ErrCorrupt)
		}
	} else {
		w.id++
	}
	w.idLeft--
	if w.tLeft == 0 {
		w.t += w.ts.Varint()
		if w.tLeft = w.ts.Uvarint() + 1; w.tLeft == 0 || w.tLeft > left {
			return false, fmt.Errorf("tsdb: write-ahead entry: %w: timestamp run past the samples", encoding.ErrCorrupt)
		}
	}
	w.tLeft--
	if err := w.ids.Err(); err != nil {
		return false, fmt.Errorf("tsdb: write-ahead entry: ids: %w", err)
	}
	if err := w.ts.Err(); err != nil {
		return false, fmt.Errorf("tsdb: write-ahead entry: timestamps: %w", err)
	}
	if w.id < 0 || w.id > math.MaxUint32 {
		return false, fmt.Errorf("tsdb: write-ahead entry: %w: series id %d", encoding.ErrCorrupt, w.id)
	}
	s.id, s.t, s.kind = uint32(w.id), w.t, kindFloat
	if w.kinds != nil {
		s.kind = w.kinds[w.i]
	}
	w.i++
	switch s.kind {
	case kindFloat:
		s.v = math.Float64frombits(w.d.Uint64())
	case kindHistogram:
		decodeHistogram(&w.d, &s.h)
	default:
		return false, fmt.Errorf("tsdb: write-ahead entry: %w: sample kind %d", encoding.ErrCorrupt, s.kind)
	}
	if err := w.d.Err(); err != nil {
		return false, fmt.Errorf("tsdb: write-ahead entry: %w", err)
	}
	return true, nil
}

// mark is a series' seal mark, see the package format notes above.
type mark struct {
	seq        uint64
	sealT      int64
	minT, maxT int64
	lastV      uint64
}

func appendMark(dst, scratch []byte, m mark) ([]byte, []byte) {
	p := encoding.AppendUvarint(scratch[:0], m.seq)
	p = encoding.AppendVarint(p, m.sealT)
	p = encoding.AppendVarint(p, m.minT)
	p = encoding.AppendVarint(p, m.maxT)
	p = appendFloatBits(p, math.Float64frombits(m.lastV))
	return encoding.AppendBlock(dst, encoding.BlockRaw, p), p
}

func decodeMark(scratch, b []byte) (mark, []byte, error) {
	p, err := encoding.DecodeBlock(scratch[:0], b)
	if err != nil {
		return mark{}, p, fmt.Errorf("tsdb: seal mark: %w", err)
	}
	d := encoding.NewDecoder(p)
	m := mark{seq: d.Uvarint(), sealT: d.Varint(), minT: d.Varint(), maxT: d.Varint(), lastV: d.Uint64()}
	if d.Err() != nil {
		return mark{}, p, fmt.Errorf("tsdb: seal mark: %w", d.Err())
	}
	if d.Len() != 0 {
		return mark{}, p, fmt.Errorf("tsdb: seal mark: %w: %d trailing bytes", encoding.ErrCorrupt, d.Len())
	}
	return m, p, nil
}
