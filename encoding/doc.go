// Package encoding holds Pillar's byte formats: bit streams, the Gorilla
// float chunk and its denser variants, the native-histogram chunk, varints,
// and checksummed snappy blocks. Every decoder here checks what it reads and
// returns an error wrapping ErrCorrupt instead of decoding damaged bytes; none
// panics on any input (each has a fuzz target).
//
// # Chunks
//
// Every chunk starts with its ChunkEncoding byte, so a reader picks the
// decoder from the data. A change to a chunk format takes a new ChunkEncoding
// value; existing values are never reinterpreted.
//
// # Float chunks (EncGorilla, EncDecimal, EncChimp)
//
// The three float encodings share one frame and one timestamp coding and
// differ only in how values are coded:
//
//	+----------+----------------+------------------------------+-----------+
//	| encoding | sample count n | bit stream, zero-padded to a | check     |
//	| 1 B      | uvarint        | byte boundary                | 2 B, LE   |
//	+----------+----------------+------------------------------+-----------+
//	 \______ header ___________/
//
// The check is CRC32C (Castagnoli) of the bit stream followed by the header,
// folded to 16 bits (low half XOR high half); it detects every single-bit
// error in chunks up to 16 KiB (tested) and all but 1 in 65536 other
// damage. Independently of it, a reader decodes exactly n samples and
// requires the stream to end there, with fewer than eight zero padding bits
// left: a truncated chunk always fails, whatever its checksum. An open chunk
// (FloatChunk) keeps the count in place, widening it when it grows a byte,
// and checksums incrementally, so Bytes costs no re-encoding.
//
// The bit stream holds the samples in order, each a timestamp then a value,
// most significant bit first:
//
//	sample 0    t₀ as a zigzag varint in 8-bit groups        value 0
//	sample 1    t₁ − t₀ as a varint in 8-bit groups          value 1
//	sample i    delta of deltas, in buckets:                 value i
//	              0                 0
//	              10    + 7 bits    [-64, 63]         scrape jitter
//	              110   + 9 bits    [-256, 255]
//	              1110  + 16 bits   [-32768, 32767]   a missed 15 s scrape
//	              11110 + 20 bits   [-2^19, 2^19)     a missed 5 min scrape
//	              11111 + 64 bits   anything else
//
// Timestamps are milliseconds (any int64); arithmetic wraps, so every
// strictly increasing sequence round-trips, and a reader rejects a
// timestamp that does not advance.
//
// Decimal and chimp chunks have a timestamp header right after t₀ and may
// code the later timestamps on a grid instead:
//
//	0                                            deltas of deltas, as above
//	1 + interval uvarint + phase zigzag uvarint  on a grid (8-bit groups)
//	  + width 6 bits                             (interval ≥ 1)
//	sample i ≥ 1 on the grid:
//	  0 + zigzag offset in width bits            tᵢ = g + offset, g = previous grid point + interval
//	  1 + (tᵢ − tᵢ₋₁) varint in 8-bit groups     anything else; the grid restarts at tᵢ
//	1 + interval 0 (one 8-bit group)             implicit: tᵢ = t₀ + i, no timestamp
//	                                             bits in any sample after t₀
//
// The first grid point is t₀ + phase. Jittered scrapes cost their jitter's
// width here (7 bits for ±25 ms) instead of a delta of deltas of three
// jitters (about 9).
//
// Implicit chunks (AppendBestFloatValues, t₀ = 0) hold the values of series
// whose timestamps are stored once for many: sample i is read at time i, so
// each sample's bit stream is its value alone. A grid of interval 0 was
// rejected before implicit chunks existed, so no earlier chunk reads
// differently. A values-only gorilla chunk has no such header: it codes the
// times 0, 1, 2, … as deltas of deltas (t₀ 0, a first delta of 1, then a
// zero bit a sample) and is written only where its values save more than
// that bit a sample.
//
// Gorilla values (EncGorilla, what FloatChunk writes) are XORs with the
// previous value inside a window of lead leading and trail trailing zero
// bits:
//
//	0                                           repeated value
//	10 + (64 − lead − trail) bits               XOR fits the current window
//	11 + lead 5 bits + 0 + trail−base 2 bits    new window (base: see below)
//	   + (64 − lead − trail) bits
//	11 + lead 5 bits + 1 + trail 6 bits         new window
//	   + (64 − lead − trail) bits
//
// lead is capped at 31; base is 0 when the current window's trail is below
// 4 (or there is none), else that trail − 1. The first value is an XOR with
// zero in a window of its own (0, or 11 …), or 10 + 64 raw bits when that is
// shorter; it leaves no window behind.
//
// Decimal values (EncDecimal) are integers d with v = float64(d) / 10^e:
//
//	params      after t₀, once: e 4 bits (0…15), order−1 1 bit, four bucket
//	            widths w₀ ≤ w₁ ≤ w₂ ≤ w₃ 7 bits each
//	value 0     [11 + k−1 2 bits, when the chunk has a residual field]
//	            kind 2 bits (0 exact, 1 residual, 2 raw); raw: 64 bits;
//	            residual: wide r; then wide zigzag d
//	value i     0 + w₀ bits | 10 + w₁ | 110 + w₂ | 1110 + w₃ bits:
//	            zigzag code, where code = d − d₋₁ (order 1) or
//	            (d − d₋₁) − (d₋₁ − d₋₂) (order 2), then k bits of r
//	            11110 + wide r + bucketed code   residual value (k bits 0)
//	            11111 + 64 bits                  raw value
//	wide x      7-bit length l + l bits of x
//
// A residual value's bit pattern is that of float64(d)/10^e plus the
// zigzagged r, so values an ULP or two off a short decimal (the results of
// arithmetic) keep their small d. A chunk where many are has a residual
// field of k bits (1…4, announced by the first value's kind 3) after every
// code: a residual that fits goes there, without the escape, and the
// field is 0 in the others; a reader adds the escape's r and the field's.
// Without the announcement k is 0 and the field is absent. Raw values (NaN, ±Inf, −0, values whose
// d would reach 2^53) leave d at round(v·10^e) when that is finite and in
// range, else unchanged.
//
// Chimp values (EncChimp) follow Chimp128 (Liakos et al., VLDB 2022) with a
// reference window of the last 8 values; lead classes are the leading-zero
// counts 0, 8, 12, 16, 18, 20, 22, 24:
//
//	value 0     64 raw bits
//	00 + ref 3 bits                              equal to value ref (slot i mod 8)
//	01 + ref 3 + class 3 + centre 6 + centre bits   XOR with value ref, > 9 trailing zeros
//	10 + (64 − lead) bits                        XOR with the last value, class as before
//	11 + class 3 + (64 − lead) bits              XOR with the last value, new class
//
// # Histogram chunks (EncHistogram)
//
// The native-histogram chunk's byte layout is drawn in the comment at the top
// of histogram_chunk.go: a header with a version and a 16-bit sample count,
// a bit stream of timestamps, bucket layouts, bucket columns and sums, and a
// CRC32C.
//
// # Framed blocks
//
// AppendBlock frames an opaque payload (span and log record blocks):
//
//	+---------+-------+-----------------+------------------+------------+
//	| version | codec | raw length      | payload          | CRC32C     |
//	| 1 B     | 1 B   | uvarint         | (compressed) ... | 4 B, LE    |
//	+---------+-------+-----------------+------------------+------------+
//
// The CRC32C covers every byte before it; codec is BlockRaw or BlockSnappy.
//
// # Varints
//
// AppendUvarint writes unsigned LEB128 (seven bits a byte, low first, high
// bit set on all but the last byte); AppendVarint zigzags first (0, −1, 1,
// −2 → 0, 1, 2, 3). The bit-stream varints of BitWriter.WriteUvarint use the
// same groups, eight bits each, at any bit offset.
package encoding
