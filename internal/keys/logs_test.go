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

	k = AppendLogToken(nil, 3, []byte("err\x00or"), 9)
	p, tok, seg, err := ParseLogToken(nil, k)
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
	_, _, _, err = ParseLogToken(nil, AppendLogTokenPrefix(nil, 1, []byte("a")))
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
	a := AppendLogToken(nil, 1, []byte("err"), 5)
	b := AppendLogToken(nil, 1, []byte("error"), 0)
	require.Negative(t, bytes.Compare(a, b), "a token's segments sort before longer tokens")
	lo := AppendLogTokenRange(nil, 1, "err")
	hi := PrefixEnd(lo)
	for _, tok := range []string{"err", "error", "errno"} {
		k := AppendLogToken(nil, 1, []byte(tok), 3)
		require.True(t, bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0, tok)
	}
	for _, tok := range []string{"er", "erq", "esc"} {
		k := AppendLogToken(nil, 1, []byte(tok), 3)
		require.False(t, bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0, tok)
	}
}
