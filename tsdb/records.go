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
// append order, timestamps and series IDs delta-coded against the previous
// sample of the entry:
//
//	uvarint n | n × ( varint Δid | varint Δt | kind byte | value )
//	value: kind 'f' → 8 B IEEE bits (little-endian); kind 'h' → histogram
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
	d      encoding.Decoder
	n, i   uint64
	prevID int64
	prevT  int64
}

func (w *walDecoder) reset(payload []byte) error {
	w.d.Reset(payload)
	w.n, w.i, w.prevID, w.prevT = w.d.Uvarint(), 0, 0, 0
	if w.d.Err() != nil || w.n > uint64(w.d.Len()) {
		return fmt.Errorf("tsdb: write-ahead entry: %w: bad sample count", encoding.ErrCorrupt)
	}
	return nil
}

// next decodes the next sample into s; false at the end or on error.
func (w *walDecoder) next(s *walSample) (bool, error) {
	if w.i >= w.n {
		if w.d.Len() != 0 {
			return false, fmt.Errorf("tsdb: write-ahead entry: %w: %d trailing bytes", encoding.ErrCorrupt, w.d.Len())
		}
		return false, nil
	}
	w.i++
	id := w.prevID + w.d.Varint()
	w.prevT += w.d.Varint()
	if id < 0 || id > math.MaxUint32 {
		return false, fmt.Errorf("tsdb: write-ahead entry: %w: series id %d", encoding.ErrCorrupt, id)
	}
	w.prevID = id
	s.id, s.t = uint32(id), w.prevT
	switch s.kind = w.d.Byte(); s.kind {
	case kindFloat:
		s.v = math.Float64frombits(w.d.Uint64())
	case kindHistogram:
		decodeHistogram(&w.d, &s.h)
	default:
		if w.d.Err() == nil {
			return false, fmt.Errorf("tsdb: write-ahead entry: %w: sample kind %d", encoding.ErrCorrupt, s.kind)
		}
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
