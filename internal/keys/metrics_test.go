package keys

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMetricKeysRoundTrip(t *testing.T) {
	id, err := ParseMetricSeries(AppendMetricSeries(nil, 7))
	require.NoError(t, err)
	require.Equal(t, uint32(7), id)
	id, err = ParseMetricMark(AppendMetricMark(nil, 9))
	require.NoError(t, err)
	require.Equal(t, uint32(9), id)
	seq, err := ParseMetricWAL(AppendMetricWAL(nil, 1<<40))
	require.NoError(t, err)
	require.Equal(t, uint64(1<<40), seq)
	id, minT, maxT, seq, err := ParseMetricChunk(AppendMetricChunk(nil, 3, -5, 10, 99))
	require.NoError(t, err)
	require.Equal(t, []any{uint32(3), int64(-5), int64(10), uint64(99)}, []any{id, minT, maxT, seq})

	_, err = ParseMetricSeries(AppendMetricMark(nil, 1))
	require.ErrorIs(t, err, ErrMalformed)
	_, err = ParseMetricWAL(append(AppendMetricWAL(nil, 1), 0))
	require.ErrorIs(t, err, ErrMalformed)
	_, _, _, _, err = ParseMetricChunk(AppendMetricChunkFrom(nil, 1, 2))
	require.ErrorIs(t, err, ErrMalformed)
}

func TestMetricChunkOrder(t *testing.T) {
	// A series' chunks sort by first timestamp, negative before positive,
	// and all sit under the series' prefix.
	a := AppendMetricChunk(nil, 1, -100, 0, 5)
	b := AppendMetricChunk(nil, 1, 50, 60, 1)
	c := AppendMetricChunk(nil, 2, -1000, 0, 0)
	require.Negative(t, bytes.Compare(a, b))
	require.Negative(t, bytes.Compare(b, c))
	p := AppendMetricChunkPrefix(nil, 1)
	require.True(t, bytes.HasPrefix(a, p) && bytes.HasPrefix(b, p))
	require.Negative(t, bytes.Compare(b, PrefixEnd(p)))
	require.Positive(t, bytes.Compare(c, PrefixEnd(p))+1)
	require.LessOrEqual(t, bytes.Compare(AppendMetricChunkFrom(nil, 1, 50), b), 0)
}

func TestMetricTimesKeys(t *testing.T) {
	minT, hash, err := ParseMetricTimes(AppendMetricTimes(nil, -7200000, 1<<63|5))
	require.NoError(t, err)
	require.Equal(t, int64(-7200000), minT)
	require.Equal(t, uint64(1<<63|5), hash)
	_, _, err = ParseMetricTimes(AppendMetricTimesFrom(nil, 1))
	require.ErrorIs(t, err, ErrMalformed)
	_, _, err = ParseMetricTimes(append(AppendMetricTimes(nil, 1, 2), 0))
	require.ErrorIs(t, err, ErrMalformed)
	_, _, err = ParseMetricTimes(AppendMetricChunk(nil, 1, 2, 3, 4))
	require.ErrorIs(t, err, ErrMalformed)

	// Columns sort by first timestamp, negative first, so one range
	// delete below a time drops every column that starts before it.
	a := AppendMetricTimes(nil, -1, ^uint64(0))
	b := AppendMetricTimes(nil, 0, 0)
	c := AppendMetricTimes(nil, 0, 1)
	require.Negative(t, bytes.Compare(a, b))
	require.Negative(t, bytes.Compare(b, c))
	require.Negative(t, bytes.Compare(a, AppendMetricTimesFrom(nil, 0)))
	require.LessOrEqual(t, bytes.Compare(AppendMetricTimesFrom(nil, 0), b), 0)
}
