package tsdb

import (
	"errors"
	"fmt"

	"github.com/pillar-db/pillar/encoding"
)

// Sealed chunk values (m c ...) are encoding chunks as they are: float
// chunks (Gorilla and its variants) or native-histogram chunks, each
// self-describing by its first byte and checksummed. One chunk holds one
// kind of sample, lies inside one chunkRange-aligned window, and is in time
// order with unique timestamps.

// chunkCodec holds the reusable encoders and decoders of one goroutine.
type chunkCodec struct {
	fc  *encoding.FloatChunk
	hc  *encoding.HistogramChunk
	fit encoding.FloatIterator
	hit encoding.HistogramIterator
}

// encodeGorilla encodes ts/vs (sorted, unique) as one Gorilla chunk
// appended to dst: the cheap encoding for sealing, which CompactChunks
// later replaces with the best one.
func (c *chunkCodec) encodeGorilla(dst []byte, ts []int64, vs []float64) ([]byte, error) {
	if c.fc == nil {
		c.fc = encoding.NewFloatChunk()
	}
	c.fc.Reset()
	for i, t := range ts {
		if err := c.fc.Append(t, vs[i]); err != nil {
			return dst, fmt.Errorf("tsdb: encode chunk: %w", err)
		}
	}
	return append(dst, c.fc.Bytes()...), nil
}

// encodeHistograms encodes a prefix of buf's samples [start, end) (all
// histograms) as one chunk appended to dst and returns how many samples it
// took (fewer when the histogram chunk asks for a new chunk, e.g. on a
// schema change).
func (c *chunkCodec) encodeHistograms(dst []byte, buf *sampleBuf, start, end int) ([]byte, int, error) {
	if c.hc == nil {
		c.hc = encoding.NewHistogramChunk()
	}
	c.hc.Reset()
	n := 0
	for i := start; i < end; i++ {
		err := c.hc.Append(buf.ts[i], &buf.hs[buf.hi[i]])
		if errors.Is(err, encoding.ErrNeedNewChunk) && n > 0 {
			break
		}
		if err != nil {
			return dst, 0, fmt.Errorf("tsdb: encode histogram chunk: %w", err)
		}
		n++
	}
	return append(dst, c.hc.Bytes()...), n, nil
}

func wrapChunkErr(err error) error {
	if err != nil {
		return fmt.Errorf("tsdb: chunk: %w", err)
	}
	return nil
}
