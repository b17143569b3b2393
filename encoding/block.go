package encoding

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/golang/snappy"
)

// A framed block carries an opaque payload with a version, a codec and a
// checksum, so a reader can always tell a good block from a damaged one:
//
//	+---------+-------+-----------------+------------------+------------+
//	| version | codec | raw length      | payload          | CRC32C     |
//	| 1 B     | 1 B   | uvarint         | (compressed) ... | 4 B, LE    |
//	+---------+-------+-----------------+------------------+------------+
//
// The CRC32C (Castagnoli) covers every byte before it. Version is
// BlockVersion; codec is BlockRaw or BlockSnappy. Raw length is the length of
// the payload after decompression and is checked.

// BlockVersion is the framed-block format version written by AppendBlock.
const BlockVersion byte = 1

// Block codecs.
const (
	BlockRaw    byte = 0 // payload stored as is
	BlockSnappy byte = 1 // payload snappy-compressed (block format)
)

// MaxBlockSize bounds the decoded size a block may claim, so a corrupt
// length cannot make a reader allocate without limit.
const MaxBlockSize = 256 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendBlock frames payload with codec and appends the block to dst. With
// BlockSnappy the payload is compressed unless that makes it larger, in
// which case it is stored raw; readers see which from the codec byte.
func AppendBlock(dst []byte, codec byte, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, BlockVersion, BlockRaw)
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	switch codec {
	case BlockSnappy:
		hdr := len(dst)
		n := snappy.MaxEncodedLen(len(payload))
		dst = growTo(dst, hdr+n)
		enc := snappy.Encode(dst[hdr:hdr+n], payload)
		if len(enc) < len(payload) {
			dst[start+1] = BlockSnappy
			dst = dst[:hdr+len(enc)]
		} else {
			dst = append(dst[:hdr], payload...)
		}
	default:
		dst = append(dst, payload...)
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// DecodeBlock checks a block written by AppendBlock and appends its payload
// to dst (which may be reused). A block that is truncated, fails its
// checksum, has an unknown version or codec, or decompresses to the wrong
// length gives an error for which errors.Is(err, ErrCorrupt) holds.
func DecodeBlock(dst, block []byte) ([]byte, error) {
	if len(block) < 2+1+4 {
		return dst, corruptf("block of %d bytes is shorter than its header", len(block))
	}
	body, sum := block[:len(block)-4], binary.LittleEndian.Uint32(block[len(block)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return dst, corruptf("block checksum mismatch: stored %08x, computed %08x", sum, got)
	}
	if body[0] != BlockVersion {
		return dst, corruptf("block version %d, want %d", body[0], BlockVersion)
	}
	codec := body[1]
	rawLen, rest, err := Uvarint(body[2:])
	if err != nil {
		return dst, err
	}
	if rawLen > MaxBlockSize {
		return dst, corruptf("block claims %d bytes, more than the %d limit", rawLen, MaxBlockSize)
	}
	switch codec {
	case BlockRaw:
		if uint64(len(rest)) != rawLen {
			return dst, corruptf("raw block holds %d bytes, header says %d", len(rest), rawLen)
		}
		return append(dst, rest...), nil
	case BlockSnappy:
		n, err := snappy.DecodedLen(rest)
		if err != nil || uint64(n) != rawLen {
			return dst, corruptf("snappy block decodes to %d bytes, header says %d (%v)", n, rawLen, err)
		}
		start := len(dst)
		dst = growTo(dst, start+n)
		out, err := snappy.Decode(dst[start:start+n], rest)
		if err != nil {
			return dst[:start], corruptf("snappy: %v", err)
		}
		if len(out) != n {
			return dst[:start], corruptf("snappy block decoded to %d bytes, want %d", len(out), n)
		}
		return dst[:start+n], nil
	default:
		return dst, corruptf("unknown block codec %d", codec)
	}
}

// growTo returns b extended to length n, reallocating only when needed.
func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}
