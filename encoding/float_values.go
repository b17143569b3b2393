package encoding

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// AppendBestFloatValues appends a chunk of vs in the smallest float encoding
// whose timestamps are implicit: a reader's iterator reports sample i at
// time i (0, 1, 2, …), so SeekTo(k) lands on sample k.
//
// Series scraped together share their timestamps, which are kept once,
// elsewhere; their chunks need the values alone. A decimal or chimp chunk
// then carries the implicit timestamp header (1 + interval 0) and no
// timestamp bits at all; a gorilla chunk, which has no such header, codes
// the times 0, 1, 2, … as ordinary deltas of deltas, a bit a sample, and is
// chosen only where its values save more than that. Sizes are computed
// exactly, as in AppendBestFloats, and the writer proves every sample
// decodes bit for bit; a mismatch, which would be a bug, is an error and
// dst is returned unchanged.
func AppendBestFloatValues(dst []byte, vs []float64) ([]byte, error) {
	var e BestFloatEncoder
	return e.AppendValues(dst, vs)
}

// AppendValues is AppendBestFloatValues with the encoder's scratch space.
func (e *BestFloatEncoder) AppendValues(dst []byte, vs []float64) ([]byte, error) {
	// Timestamp bits after t₀, each with the header bit that chooses
	// them: in gorilla the deltas of deltas of 0, 1, 2, … (the first delta
	// as a uvarint of one group, then a zero bit each); in decimal and
	// chimp the implicit header.
	dod := 1
	if len(vs) >= 2 {
		dod += 8 + len(vs) - 2
	}
	const implicit = 1 + 8
	enc, p := chooseValueEncoding(vs, dod, implicit, &e.sc)
	return appendFloatValuesChunk(dst, enc, vs, &p, &e.sc)
}

// appendFloatValuesChunk writes a whole chunk of vs in enc with implicit
// timestamps (t₀ = 0 and, in gorilla, deltas of deltas of one apart). sc,
// when not nil, holds the decisions chooseValueEncoding made. It checks its output as
// appendFloatChunk does, rebuilding every value the way FloatIterator does
// and comparing it bit for bit.
func appendFloatValuesChunk(dst []byte, enc ChunkEncoding, vs []float64, p *decParams, sc *bestScratch) ([]byte, error) {
	if enc == EncDecimal && len(vs) > 0 && !p.valid() {
		return dst, fmt.Errorf("encoding: %s chunk header would not decode", enc)
	}
	cached := sc != nil && len(vs) <= bestCached
	start := len(dst)
	dst = append(dst, byte(enc))
	dst = binary.AppendUvarint(dst, uint64(len(vs)))
	hdr := len(dst) - start
	w := BitWriter{buf: dst}
	bad := -1
	switch enc {
	case EncGorilla:
		bad = writeGorillaValues(&w, vs)
	case EncDecimal:
		bad = writeDecimalValues(&w, vs, p, sc, cached)
	case EncChimp:
		bad = writeChimpValues(&w, vs, sc, cached)
	default:
		return dst[:start], fmt.Errorf("encoding: %s is not a float encoding", enc)
	}
	if bad >= 0 {
		return dst[:start], fmt.Errorf("encoding: %s chunk would decode sample %d differently", enc, bad)
	}
	dst = w.Bytes()
	sum := crcHeader(crc32.Checksum(dst[start+hdr:], castagnoli), dst[start:start+hdr])
	return binary.LittleEndian.AppendUint16(dst, foldCRC(sum)), nil
}

// writeGorillaValues writes the samples (i, vs[i]) as a gorilla stream and
// returns the first one a reader would not recover, or -1.
func writeGorillaValues(w *BitWriter, vs []float64) int {
	lead, trail := uint8(noWindow), uint8(noWindow)
	var prev uint64
	for i, v := range vs {
		vb := math.Float64bits(v)
		var x uint64
		switch {
		case i == 0:
			w.WriteUvarint(0) // t₀
			lead, trail, x = writeFirstValue(w, vb)
		case i == 1:
			w.WriteUvarint(1) // the first delta
			lead, trail, x = writeXOR(w, vb^prev, lead, trail)
		case vb == prev:
			w.writeSmall(0, 2) // dod 0 and a repeated value
			continue
		default:
			w.writeSmall(0, 1) // dod 0
			lead, trail, x = writeXOR(w, vb^prev, lead, trail)
		}
		if prev^x != vb {
			return i
		}
		prev = vb
	}
	return -1
}

// writeDecimalValues writes vs as the values of an implicit decimal chunk,
// after t₀ and the timestamp header, and returns the first sample a reader
// would not recover, or -1. When cached, sc holds every value's
// classification.
func writeDecimalValues(w *BitWriter, vs []float64, p *decParams, sc *bestScratch, cached bool) int {
	if len(vs) == 0 {
		return -1
	}
	w.WriteUvarint(0) // t₀
	g := tsGrid{implicit: true}
	g.write(w)
	var ds decState
	ds.p = *p
	var c *decItem
	if cached {
		c = &sc.dec[0]
	}
	if !writeDecimalValue(w, &ds, 0, math.Float64bits(vs[0]), c) {
		return 0
	}
	// A value equal to the one a reader holds, with d unchanged since the
	// last (delta 0), is code 0 in the first bucket in either order (see
	// writeDecimalRun).
	rep := 1 + uint(ds.p.w[0]) + uint(ds.p.k)
	for i := 1; i < len(vs); i++ {
		vb := math.Float64bits(vs[i])
		if vb == ds.base && ds.delta == 0 && ds.baseOK {
			if rep <= 64 {
				w.writeSmall(0, rep)
				continue
			}
			if cached {
				sc.dec[i] = decItem{d: ds.d} // decCost may have left it unfilled
			}
		}
		var ok bool
		if cached {
			ok = writeDecimalItem(w, &ds, vb, &sc.dec[i])
		} else {
			ok = writeDecimalValue(w, &ds, i, vb, nil)
		}
		if !ok {
			return i
		}
	}
	return -1
}

// writeChimpValues writes vs as the values of an implicit chimp chunk,
// after t₀ and the timestamp header, and returns the first sample a reader
// would not recover, or -1. When cached, sc holds every value's plan.
func writeChimpValues(w *BitWriter, vs []float64, sc *bestScratch, cached bool) int {
	if len(vs) == 0 {
		return -1
	}
	w.WriteUvarint(0) // t₀
	g := tsGrid{implicit: true}
	g.write(w)
	var cs chimpState
	cs.reset()
	for i, v := range vs {
		vb := math.Float64bits(v)
		var got uint64
		if cached {
			got = cs.write(w, vb, sc.chimp[i])
		} else {
			var p chimpPlan
			cs.plan(vb, &p)
			got = cs.write(w, vb, p)
		}
		if got != vb {
			return i
		}
	}
	return -1
}
