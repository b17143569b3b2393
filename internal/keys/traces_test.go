package keys

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTraceKeysRoundTrip(t *testing.T) {
	tid := [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0}
	k := AppendTraceSpansKey(nil, tid, 7, 42)
	gotID, part, seq, err := ParseTraceSpansKey(k)
	require.NoError(t, err)
	require.Equal(t, tid, gotID)
	require.Equal(t, uint32(7), part)
	require.Equal(t, uint64(42), seq)
	require.True(t, bytes.HasPrefix(k, AppendTraceSpansPrefix(nil, tid)))
	require.True(t, bytes.HasPrefix(k, AppendTraceSpansPartitionPrefix(nil, tid, 7)))

	term := []byte("a\x00key\x00\x01value")
	pk := AppendTracePostingsKey(nil, 3, term, 9)
	p, gotTerm, s, err := ParseTracePostingsKey(nil, pk)
	require.NoError(t, err)
	require.Equal(t, uint32(3), p)
	require.Equal(t, term, gotTerm)
	require.Equal(t, uint64(9), s)
	require.True(t, bytes.HasPrefix(pk, AppendTracePostingsTermPrefix(nil, 3, term)))
	// A term that is a prefix of another must not share its segment prefix.
	require.False(t, bytes.HasPrefix(AppendTracePostingsKey(nil, 3, []byte("ab"), 1), AppendTracePostingsTermPrefix(nil, 3, []byte("a"))))

	rp, ro, err := ParseTraceByOrdinalKey(AppendTraceByOrdinalKey(nil, 5, 11))
	require.NoError(t, err)
	require.Equal(t, [2]uint32{5, 11}, [2]uint32{rp, ro})

	mp, err := ParseTracePartitionKey(AppendTracePartitionKey(nil, 99))
	require.NoError(t, err)
	require.Equal(t, uint32(99), mp)

	svc, err := ParseTraceServiceKey(AppendTraceServiceKey(nil, "redirect"))
	require.NoError(t, err)
	require.Equal(t, "redirect", svc)

	s2, name, kind, err := ParseTraceOperationKey(AppendTraceOperationKey(nil, "redirect", "GET /r", 2))
	require.NoError(t, err)
	require.Equal(t, "redirect", s2)
	require.Equal(t, "GET /r", name)
	require.Equal(t, uint32(2), kind)

	did, err := ParseTraceDictKey(AppendTraceDictKey(nil, 77))
	require.NoError(t, err)
	require.Equal(t, uint32(77), did)

	es, en, et, eid, err := ParseTraceExemplarKey(AppendTraceExemplarKey(nil, "a", "b", -5, tid))
	require.NoError(t, err)
	require.Equal(t, "a", es)
	require.Equal(t, "b", en)
	require.Equal(t, int64(-5), et)
	require.Equal(t, tid, eid)
}

func TestTraceKeysOrder(t *testing.T) {
	tid := [16]byte{1}
	// Blocks of one trace sort by partition, then by write sequence.
	require.Negative(t, bytes.Compare(AppendTraceSpansKey(nil, tid, 1, 9), AppendTraceSpansKey(nil, tid, 2, 1)))
	require.Negative(t, bytes.Compare(AppendTraceSpansKey(nil, tid, 1, 1), AppendTraceSpansKey(nil, tid, 1, 2)))
	require.Negative(t, bytes.Compare(AppendTraceByOrdinalKey(nil, 1, 255), AppendTraceByOrdinalKey(nil, 1, 256)))
}

func TestTraceKeysMalformed(t *testing.T) {
	_, _, _, err := ParseTraceSpansKey([]byte("ts\x01"))
	require.True(t, errors.Is(err, ErrMalformed))
	_, _, err = ParseTraceByOrdinalKey([]byte("tr\x00"))
	require.True(t, errors.Is(err, ErrMalformed))
	_, _, _, err = ParseTracePostingsKey(nil, []byte("tp\x00\x00\x00\x01abc"))
	require.True(t, errors.Is(err, ErrMalformed))
	_, err = ParseTracePartitionKey([]byte("ms\x00\x00\x00\x01"))
	require.True(t, errors.Is(err, ErrMalformed))
}

func TestTraceIndexKeys(t *testing.T) {
	fp, err := ParseTraceFilterKey(AppendTraceFilterKey(nil, 12))
	require.NoError(t, err)
	require.Equal(t, uint32(12), fp)
	_, err = ParseTraceFilterKey(AppendTraceFilterKey(nil, 12)[:5])
	require.ErrorIs(t, err, ErrMalformed)

	// A term-start prefix covers every term that begins with it (even
	// across 0x00 bytes inside the term) and no other.
	start := AppendTracePostingsTermStart(nil, 4, []byte("A\x00\x01svc"))
	require.True(t, bytes.HasPrefix(AppendTracePostingsKey(nil, 4, []byte("A\x00\x01svc\x00\x01k"), 1), start))
	require.False(t, bytes.HasPrefix(AppendTracePostingsKey(nil, 4, []byte("A\x00\x02svc"), 1), start))
	require.False(t, bytes.HasPrefix(AppendTracePostingsKey(nil, 5, []byte("A\x00\x01svc"), 1), start))

	tid := [16]byte{1, 2, 3}
	require.Equal(t, append([]byte{StoreTraces, KindTraceExtent}, tid[:]...), AppendTraceExtentKey(nil, tid))
	require.Equal(t, []byte{StoreTraces, KindTraceFormat}, AppendTraceFormatKey(nil))
}
