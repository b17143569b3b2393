package keys

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLogKeysRoundTrip(t *testing.T) {
	k := AppendLogBlock(nil, 7, 1234)
	p, f, err := ParseLogBlock(k)
	require.NoError(t, err)
	require.Equal(t, uint32(7), p)
	require.Equal(t, uint32(1234), f)

	k = AppendLogTokenChunk(nil, 3, 9, []byte("err\x00or"))
	p, seg, tok, err := ParseLogTokenChunk(nil, k)
	require.NoError(t, err)
	require.Equal(t, uint32(3), p)
	require.Equal(t, []byte("err\x00or"), tok)
	require.Equal(t, uint32(9), seg)

	k = AppendLogField(nil, 4, []byte("service"), []byte("redirect"), 2)
	p, fld, val, seg, err := ParseLogField(nil, k)
	require.NoError(t, err)
	require.Equal(t, uint32(4), p)
	require.Equal(t, "service", string(fld))
	require.Equal(t, "redirect", string(val))
	require.Equal(t, uint32(2), seg)

	k = AppendLogSegment(nil, 5, 6)
	p, seg, err = ParseLogSegment(k)
	require.NoError(t, err)
	require.Equal(t, uint32(5), p)
	require.Equal(t, uint32(6), seg)

	kind, p, err := ParseLogPartition(AppendLogBlock(nil, 11, 0))
	require.NoError(t, err)
	require.Equal(t, LogBlock, kind)
	require.Equal(t, uint32(11), p)
}

func TestLogKeysMalformed(t *testing.T) {
	_, _, err := ParseLogBlock(append(AppendLogBlock(nil, 1, 2), 'x'))
	require.True(t, errors.Is(err, ErrMalformed))
	_, _, err = ParseLogBlock([]byte("lb"))
	require.True(t, errors.Is(err, ErrMalformed))
	_, _, _, err = ParseLogTokenChunk(nil, AppendLogTokenSegment(nil, 1, 2))
	require.True(t, errors.Is(err, ErrMalformed))
	_, _, _, _, err = ParseLogField(nil, AppendLogFieldName(nil, 1, []byte("a")))
	require.True(t, errors.Is(err, ErrMalformed))
	_, _, err = ParseLogSegment(AppendLogBlock(nil, 1, 2))
	require.True(t, errors.Is(err, ErrMalformed))
}

// TestLogKeysOrder checks the orders queries rely on: blocks by ordinal,
// tokens in dictionary order with a token's segments contiguous, and a
// prefix range covering exactly the tokens that start with it.
func TestLogKeysOrder(t *testing.T) {
	require.Negative(t, bytes.Compare(AppendLogBlock(nil, 1, 255), AppendLogBlock(nil, 1, 256)))
	require.Negative(t, bytes.Compare(AppendLogBlock(nil, 1, 1<<31), AppendLogBlock(nil, 2, 0)))
	a := AppendLogTokenChunk(nil, 1, 5, []byte("err"))
	b := AppendLogTokenChunk(nil, 1, 5, []byte("error"))
	require.Negative(t, bytes.Compare(a, b), "chunks sort by first token")
	require.Negative(t, bytes.Compare(AppendLogTokenChunk(nil, 1, 4, []byte("zz")), a), "a segment's chunks are contiguous")
	seg := AppendLogTokenSegment(nil, 1, 5)
	require.True(t, bytes.HasPrefix(a, seg) && bytes.HasPrefix(b, seg))
	lo := AppendLogFieldRange(nil, 1, []byte("f"), "err")
	hi := PrefixEnd(lo)
	for _, v := range []string{"err", "error", "errno"} {
		k := AppendLogField(nil, 1, []byte("f"), []byte(v), 3)
		require.True(t, bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0, v)
	}
	for _, v := range []string{"er", "erq", "esc"} {
		k := AppendLogField(nil, 1, []byte("f"), []byte(v), 3)
		require.False(t, bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0, v)
	}
}
