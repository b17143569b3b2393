package encoding

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/golang/snappy"
	"github.com/pillar-db/pillar/internal/testutil"
	"github.com/stretchr/testify/require"
)

// logLikePayload returns n bytes of repetitive, log-like text that snappy
// compresses well.
func logLikePayload(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = append(b, "2026-11-22T05:00:00Z level=info service=redirect msg=\"request served\" status=200 duration_ms="...)
		b = binary.AppendUvarint(b, uint64(i%97))
		b = append(b, '\n')
	}
	return b[:n]
}

func randomPayload(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestBlockRoundTrip(t *testing.T) {
	payloads := map[string][]byte{
		"empty":          {},
		"one byte":       {42},
		"log-like":       logLikePayload(10_000),
		"incompressible": randomPayload(4096, 1),
		"zeros":          make([]byte, 1<<16),
	}
	for name, p := range payloads {
		for _, codec := range []byte{BlockRaw, BlockSnappy} {
			t.Run(name+"/"+[]string{"raw", "snappy"}[codec], func(t *testing.T) {
				prefix := []byte("prefix")
				b := AppendBlock(slices.Clone(prefix), codec, p)
				require.Equal(t, prefix, b[:len(prefix)], "AppendBlock appends")
				block := b[len(prefix):]
				require.Equal(t, BlockVersion, block[0])

				got, err := DecodeBlock([]byte("dst"), block)
				require.NoError(t, err)
				require.Equal(t, "dst", string(got[:3]), "DecodeBlock appends")
				require.Equal(t, p, got[3:])

				switch {
				case codec == BlockRaw:
					require.Equal(t, BlockRaw, block[1])
					require.Len(t, block, 2+len(binary.AppendUvarint(nil, uint64(len(p))))+len(p)+4)
				case name == "log-like" || name == "zeros":
					require.Equal(t, BlockSnappy, block[1])
					require.Less(t, len(block), len(p)/2, "compressible data must shrink")
				default:
					// Snappy that does not shrink the payload is not used.
					require.Equal(t, BlockRaw, block[1])
				}
			})
		}
	}
}

func TestBlockDecodeReusesDst(t *testing.T) {
	p := logLikePayload(5000)
	block := AppendBlock(nil, BlockSnappy, p)
	dst := make([]byte, 0, 8192)
	got, err := DecodeBlock(dst, block)
	require.NoError(t, err)
	require.Equal(t, p, got)
	require.Equal(t, &dst[:1][0], &got[:1][0], "a large enough dst is reused")
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := DecodeBlock(dst[:0], block); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}

// TestBlockTruncation cuts blocks at every length: each prefix is corrupt.
func TestBlockTruncation(t *testing.T) {
	for _, codec := range []byte{BlockRaw, BlockSnappy} {
		block := AppendBlock(nil, codec, logLikePayload(600))
		for n := range len(block) {
			_, err := DecodeBlock(nil, block[:n])
			require.ErrorIs(t, err, ErrCorrupt, "codec %d cut to %d of %d", codec, n, len(block))
		}
		_, err := DecodeBlock(nil, append(slices.Clone(block), 0))
		require.ErrorIs(t, err, ErrCorrupt, "a trailing byte")
	}
}

// TestBlockBitFlips flips every bit of a block, one at a time.
func TestBlockBitFlips(t *testing.T) {
	for _, codec := range []byte{BlockRaw, BlockSnappy} {
		block := AppendBlock(nil, codec, logLikePayload(300))
		for i := range len(block) * 8 {
			g := slices.Clone(block)
			g[i/8] ^= 1 << (i % 8)
			_, err := DecodeBlock(nil, g)
			require.ErrorIs(t, err, ErrCorrupt, "codec %d bit %d", codec, i)
		}
	}
}

// resum replaces a block's checksum with a valid one, so a test reaches
// the checks behind it.
func resum(block []byte) []byte {
	body := slices.Clone(block[:len(block)-4])
	return binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
}

// craft builds a checksummed block from raw header fields and data.
func craft(version, codec byte, rawLen uint64, data []byte) []byte {
	b := append([]byte{version, codec}, binary.AppendUvarint(nil, rawLen)...)
	b = append(b, data...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func TestBlockRejects(t *testing.T) {
	p := logLikePayload(1000)
	snappyData := snappy.Encode(nil, p)
	cases := map[string][]byte{
		"unknown version":          craft(BlockVersion+1, BlockRaw, 3, []byte("abc")),
		"version zero":             craft(0, BlockRaw, 3, []byte("abc")),
		"unknown codec":            craft(BlockVersion, 7, 3, []byte("abc")),
		"raw length short":         craft(BlockVersion, BlockRaw, 2, []byte("abc")),
		"raw length long":          craft(BlockVersion, BlockRaw, 4, []byte("abc")),
		"huge claimed raw":         craft(BlockVersion, BlockRaw, 1<<62, []byte("abc")),
		"huge claimed snappy":      craft(BlockVersion, BlockSnappy, MaxBlockSize+1, snappyData),
		"just over the limit":      craft(BlockVersion, BlockRaw, MaxBlockSize+1, nil),
		"snappy length mismatch":   craft(BlockVersion, BlockSnappy, uint64(len(p)-1), snappyData),
		"snappy garbage":           craft(BlockVersion, BlockSnappy, 5, []byte{5, 0xff, 0xff, 0xff, 0xff}),
		"snappy truncated":         craft(BlockVersion, BlockSnappy, uint64(len(p)), snappyData[:len(snappyData)/2]),
		"snappy huge header":       craft(BlockVersion, BlockSnappy, 5, binary.AppendUvarint(nil, 1<<40)),
		"data beyond raw length":   craft(BlockVersion, BlockRaw, 0, bytes.Repeat([]byte{0x80}, 10)),
		"length varint overflows":  resum(append([]byte{BlockVersion, BlockRaw}, append(bytes.Repeat([]byte{0xff}, 10), 1, 0, 0, 0, 0)...)),
		"header only, no checksum": {BlockVersion, BlockRaw, 0},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := DecodeBlock(dst, b)
			require.ErrorIs(t, err, ErrCorrupt)
			require.Equal(t, "keep", string(got), "dst is returned unchanged")
		})
	}
	// A huge claimed length is refused before a buffer of that size is
	// allocated: only the error's few bytes are.
	for _, name := range []string{"huge claimed snappy", "snappy huge header", "huge claimed raw"} {
		require.Less(t, bytesAllocated(func() { _, _ = DecodeBlock(nil, cases[name]) }), uint64(64<<10), name)
	}
}

// bytesAllocated returns the heap bytes f allocates.
func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestBlockLoghub frames real log files: exact round trip, and snappy
// must pay off on them.
func TestBlockLoghub(t *testing.T) {
	dir := testutil.DataDir(t, "loghub")
	files, err := filepath.Glob(filepath.Join(dir, "*", "*_2k.log"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		p, err := os.ReadFile(f)
		require.NoError(t, err)
		block := AppendBlock(nil, BlockSnappy, p)
		got, err := DecodeBlock(nil, block)
		require.NoError(t, err)
		require.True(t, bytes.Equal(p, got), f)
		require.Less(t, len(block), len(p)*3/4, "%s: %d bytes framed from %d", filepath.Base(f), len(block), len(p))
	}
}

// FuzzBlockDecode feeds arbitrary bytes to DecodeBlock, as they are and
// with a valid checksum: it must not panic, must return ErrCorrupt errors,
// and whatever it accepts must re-frame to the same payload.
func FuzzBlockDecode(f *testing.F) {
	f.Add(AppendBlock(nil, BlockRaw, []byte("hello")))
	f.Add(AppendBlock(nil, BlockSnappy, logLikePayload(200)))
	f.Add([]byte{BlockVersion, BlockSnappy, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(b []byte) {
			got, err := DecodeBlock(nil, b)
			if err != nil {
				require.ErrorIs(t, err, ErrCorrupt)
				return
			}
			require.LessOrEqual(t, len(got), MaxBlockSize)
			again, err := DecodeBlock(nil, AppendBlock(nil, b[1], got))
			require.NoError(t, err)
			require.True(t, bytes.Equal(got, again))
		}
		check(data)
		if len(data) >= 4 {
			check(resum(data))
		}
	})
}

// FuzzBlockRoundTrip frames arbitrary payloads with either codec.
func FuzzBlockRoundTrip(f *testing.F) {
	f.Add([]byte(""), false)
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), true)
	f.Add(logLikePayload(300), true)
	f.Fuzz(func(t *testing.T, payload []byte, compress bool) {
		codec := BlockRaw
		if compress {
			codec = BlockSnappy
		}
		block := AppendBlock(nil, codec, payload)
		got, err := DecodeBlock(nil, block)
		require.NoError(t, err)
		require.True(t, bytes.Equal(payload, got))
		if !compress {
			require.Equal(t, BlockRaw, block[1])
		}
	})
}

// TestCRCHeaderMatchesUpdate holds the float chunks' byte-at-a-time
// checksum of their header to crc32.Update.
func TestCRCHeaderMatchesUpdate(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for range 1000 {
		hdr := make([]byte, rng.IntN(12))
		for i := range hdr {
			hdr[i] = byte(rng.Uint32())
		}
		crc := rng.Uint32()
		require.Equal(t, crc32.Update(crc, castagnoli, hdr), crcHeader(crc, hdr))
	}
}
