package keys

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMetricRollupKeys(t *testing.T) {
	res, id, end, isMark, err := ParseMetricRollup(AppendMetricRollupMark(nil, 2, 7))
	require.NoError(t, err)
	require.Equal(t, []any{uint8(2), uint32(7), int64(0), true}, []any{res, id, end, isMark})
	res, id, end, isMark, err = ParseMetricRollup(AppendMetricRollupBlock(nil, 1, 9, -300))
	require.NoError(t, err)
	require.Equal(t, []any{uint8(1), uint32(9), int64(-300), false}, []any{res, id, end, isMark})

	_, _, _, _, err = ParseMetricRollup(AppendMetricChunkPrefix(nil, 1))
	require.ErrorIs(t, err, ErrMalformed)
	_, _, _, _, err = ParseMetricRollup(append(AppendMetricRollupBlock(nil, 1, 1, 1), 0))
	require.ErrorIs(t, err, ErrMalformed)
	_, _, _, _, err = ParseMetricRollup(AppendMetricRollupMark(nil, 1, 1)[:5])
	require.ErrorIs(t, err, ErrMalformed)
}

func TestMetricRollupOrder(t *testing.T) {
	// The mark sorts before every block of its series and resolution, the
	// blocks by time, and all of them under the shared prefix.
	p := AppendMetricRollupPrefix(nil, 1, 5)
	mark := AppendMetricRollupMark(nil, 1, 5)
	lo := AppendMetricRollupBlock(nil, 1, 5, math.MinInt64)
	a := AppendMetricRollupBlock(nil, 1, 5, -10)
	b := AppendMetricRollupBlock(nil, 1, 5, 10)
	other := AppendMetricRollupMark(nil, 1, 6)
	otherRes := AppendMetricRollupMark(nil, 2, 0)
	require.Negative(t, bytes.Compare(mark, lo))
	require.LessOrEqual(t, bytes.Compare(lo, a), 0)
	require.Negative(t, bytes.Compare(a, b))
	require.Negative(t, bytes.Compare(b, PrefixEnd(p)))
	require.LessOrEqual(t, bytes.Compare(PrefixEnd(p), other), 0)
	require.Negative(t, bytes.Compare(other, otherRes))
	for _, k := range [][]byte{mark, a, b} {
		require.True(t, bytes.HasPrefix(k, p))
	}
	// Every key at one resolution, of any series, shares its resolution's
	// prefix, and no key at another resolution does.
	rp := AppendMetricRollupResPrefix(nil, 1)
	for _, k := range [][]byte{mark, a, b, other} {
		require.True(t, bytes.HasPrefix(k, rp))
	}
	require.False(t, bytes.HasPrefix(otherRes, rp))
	require.LessOrEqual(t, bytes.Compare(PrefixEnd(rp), otherRes), 0)
	// Rollup keys never collide with the other metric kinds.
	for _, k := range []byte{MetricSeries, MetricWAL, MetricChunk, MetricMark} {
		require.NotEqual(t, k, MetricRollup)
	}
}
