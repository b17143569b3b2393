package tracestore

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/encoding"
)

// scanQueries are checked against every block in the scan tests.
var scanQueries = []Query{
	{},
	{Service: "redirect"},
	{Service: "api", Attributes: map[string]string{"k": "1"}},
	{Attributes: map[string]string{"i": "-123", "b": "true"}},
	{Attributes: map[string]string{"f": "72.5", "e": "1", "l": "x", "sc": "1"}},
	{Attributes: map[string]string{"arr": `["a",1,[]]`}},
	{Operation: "GET /r", MinDuration: 1, MaxDuration: 5_000_000},
	{Start: t0 + 2000, End: t0 + 3000},
	{Attributes: map[string]string{"env": "prod", "region": "eu"}, Service: "db"},
}

// checkScan asserts that scanning payload agrees with decoding it.
func checkScan(t *testing.T, id TraceID, payload []byte) {
	t.Helper()
	spans, decErr := decodeSpans(nil, id, payload)
	for i := range scanQueries {
		q := &scanQueries[i]
		ts := newTraceScan()
		ts.setQuery(q)
		ts.reset()
		var bd blockDecoder
		err := bd.scanBlock(ts, payload)
		if decErr != nil {
			require.ErrorIs(t, err, encoding.ErrCorrupt)
			continue
		}
		require.NoError(t, err)
		var m matcher
		require.Equal(t, m.matchAny(q, spans), ts.matched, "query %+v", q)
		if len(spans) > 0 {
			require.Equal(t, summarize(id, spans), ts.summary(id))
		}
	}
}

func TestScanAgreesWithDecode(t *testing.T) {
	id := tid(3)
	checkScan(t, id, encodeForTest([]Span{fullSpan(id, 1), fullSpan(id, 2), fullSpan(id, 3)}))
	w := newRandomWorld(5)
	for range 300 {
		first, later := w.trace()
		checkScan(t, first[0].TraceID, encodeForTest(append(first, later...)))
	}
	// Many query attributes: every bit of the mask is used.
	q := Query{Attributes: map[string]string{}}
	kvs := []KeyValue{}
	for i := range maxScanAttrs {
		k := string(rune('A'+i%26)) + string(rune('a'+i/26))
		q.Attributes[k] = "v"
		kvs = append(kvs, KeyValue{Key: k, Value: StringValue("v")})
	}
	sp := Span{TraceID: id, SpanID: sid(1), Attributes: kvs}
	ts := newTraceScan()
	ts.setQuery(&q)
	ts.reset()
	var bd blockDecoder
	require.NoError(t, bd.scanBlock(ts, encodeForTest([]Span{sp})))
	require.True(t, ts.matched)
	sp.Attributes = kvs[1:]
	ts.reset()
	require.NoError(t, bd.scanBlock(ts, encodeForTest([]Span{sp})))
	require.False(t, ts.matched)
}

func FuzzScanBlock(f *testing.F) {
	id := tid(3)
	f.Add(encodeForTest([]Span{fullSpan(id, 1)}))
	w := newRandomWorld(9)
	first, _ := w.trace()
	for i := range first {
		first[i].TraceID = id
	}
	f.Add(encodeForTest(first))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScan(t, id, data)
	})
}
