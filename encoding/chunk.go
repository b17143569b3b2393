package encoding

// ChunkEncoding is the first byte of every chunk: it says how the rest is
// encoded, so readers pick the decoder from the data, not from the caller.
type ChunkEncoding byte

// Chunk encodings. Values are part of the on-disk format: never renumber.
const (
	EncGorilla   ChunkEncoding = 1 // delta-of-delta timestamps, XOR values (the baseline every reader decodes)
	EncDecimal   ChunkEncoding = 2 // timestamps as in Gorilla, values as scaled decimal integers
	EncChimp     ChunkEncoding = 3 // timestamps as in Gorilla, Chimp-style XOR values
	EncHistogram ChunkEncoding = 4 // native exponential histograms
)

// String names the encoding.
func (e ChunkEncoding) String() string {
	switch e {
	case EncGorilla:
		return "gorilla"
	case EncDecimal:
		return "decimal"
	case EncChimp:
		return "chimp"
	case EncHistogram:
		return "histogram"
	}
	return "unknown"
}

// EncodingOf returns the encoding of a chunk, or an ErrCorrupt error for an
// empty chunk or an unknown first byte.
func EncodingOf(chunk []byte) (ChunkEncoding, error) {
	if len(chunk) == 0 {
		return 0, corruptf("empty chunk")
	}
	switch e := ChunkEncoding(chunk[0]); e {
	case EncGorilla, EncDecimal, EncChimp, EncHistogram:
		return e, nil
	default:
		return 0, corruptf("unknown chunk encoding %d", chunk[0])
	}
}
