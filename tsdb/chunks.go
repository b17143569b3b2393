package tsdb

import (
	"fmt"
	"math"

	"github.com/pillar-db/pillar/encoding"
)

// Sealed chunk values (m c ...) are framed blocks (snappy, CRC32C) whose
// payload is
//
//	kind byte | uvarint n | n × varint Δt | n × value
//	value: kind 'f' → 8 B IEEE bits; kind 'h' → histogram (see records.go)
//
// One chunk holds one kind of sample, lies inside one chunkRange-aligned
// window, and is in time order with unique timestamps.

// appendFloatChunk encodes ts/vs (sorted, unique) as a sealed chunk.
func appendFloatChunk(dst, scratch []byte, ts []int64, vs []float64) ([]byte, []byte) {
	p := append(scratch[:0], kindFloat)
	p = encoding.AppendUvarint(p, uint64(len(ts)))
	p = appendTimes(p, ts)
	for _, v := range vs {
		p = appendFloatBits(p, v)
	}
	return encoding.AppendBlock(dst, encoding.BlockSnappy, p), p
}

// appendHistogramChunk encodes ts/hs (sorted, unique) as a sealed chunk.
func appendHistogramChunk(dst, scratch []byte, ts []int64, hs []*Histogram) ([]byte, []byte) {
	p := append(scratch[:0], kindHistogram)
	p = encoding.AppendUvarint(p, uint64(len(ts)))
	p = appendTimes(p, ts)
	for _, h := range hs {
		p = appendHistogram(p, h)
	}
	return encoding.AppendBlock(dst, encoding.BlockSnappy, p), p
}

func appendTimes(p []byte, ts []int64) []byte {
	prev := int64(0)
	for _, t := range ts {
		p = encoding.AppendVarint(p, t-prev)
		prev = t
	}
	return p
}

// decodeChunk appends the samples of chunk with mint <= t <= maxt to buf,
// reusing buf's memory. scratch holds the unframed payload and is returned
// for reuse.
func decodeChunk(buf *sampleBuf, scratch, chunk []byte, mint, maxt int64) ([]byte, error) {
	p, err := encoding.DecodeBlock(scratch[:0], chunk)
	if err != nil {
		return p, fmt.Errorf("tsdb: chunk: %w", err)
	}
	d := encoding.NewDecoder(p)
	kind := d.Byte()
	n := d.Uvarint()
	if d.Err() != nil || n > uint64(d.Len()) || (kind != kindFloat && kind != kindHistogram) {
		return p, fmt.Errorf("tsdb: chunk: %w: bad header", encoding.ErrCorrupt)
	}
	start := len(buf.ts)
	t := int64(0)
	for i := uint64(0); i < n; i++ {
		t += d.Varint()
		buf.ts = append(buf.ts, t)
	}
	if d.Err() != nil {
		buf.ts = buf.ts[:start]
		return p, fmt.Errorf("tsdb: chunk: %w", d.Err())
	}
	// Values are decoded for every sample (the stream is sequential) but only
	// those inside [mint, maxt] are kept.
	w := start
	for i := start; i < start+int(n); i++ {
		keep := buf.ts[i] >= mint && buf.ts[i] <= maxt
		switch kind {
		case kindFloat:
			v := math.Float64frombits(d.Uint64())
			if keep {
				buf.ts[w] = buf.ts[i]
				buf.vs = append(buf.vs, v)
				buf.hi = append(buf.hi, -1)
				w++
			}
		case kindHistogram:
			h := buf.nextHist()
			decodeHistogram(&d, h)
			if keep {
				buf.ts[w] = buf.ts[i]
				buf.vs = append(buf.vs, 0)
				buf.hi = append(buf.hi, int32(buf.nh-1))
				w++
			} else {
				buf.nh--
			}
		}
	}
	buf.ts = buf.ts[:w]
	if err := d.Err(); err != nil {
		buf.truncate(start)
		return p, fmt.Errorf("tsdb: chunk: %w", err)
	}
	if d.Len() != 0 {
		buf.truncate(start)
		return p, fmt.Errorf("tsdb: chunk: %w: %d trailing bytes", encoding.ErrCorrupt, d.Len())
	}
	return p, nil
}
