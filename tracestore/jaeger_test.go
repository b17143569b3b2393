package tracestore_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/internal/testutil"
	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tracestore/otlpconv"
)

// The Jaeger storage-integration fixtures: every trace round-trips field by
// field, and every search case that maps onto Query returns exactly the
// expected traces, whole.

type fixtureQuery struct {
	Caption string
	Query   struct {
		ServiceName   string
		OperationName string
		Tags          map[string]any
		StartTimeMin  time.Time
		StartTimeMax  time.Time
		DurationMin   time.Duration
		DurationMax   time.Duration
		NumTraces     int
	}
	ExpectedFixtures []string
}

func loadFixtures(t *testing.T) (string, map[string][]tracestore.Span) {
	t.Helper()
	dir := testutil.DataDir(t, "jaeger-fixtures")
	files, err := filepath.Glob(filepath.Join(dir, "traces", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := make(map[string][]tracestore.Span)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		spans, err := otlpconv.UnmarshalJSON(nil, data)
		require.NoError(t, err, f)
		require.NotEmpty(t, spans, f)
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = spans
	}
	return dir, out
}

func openTestStore(t *testing.T) *tracestore.Store {
	t.Helper()
	st, err := tracestore.Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

func TestJaegerFixtures(t *testing.T) {
	dir, fixtures := loadFixtures(t)
	st := openTestStore(t)
	ctx := t.Context()
	names := make([]string, 0, len(fixtures))
	for name := range fixtures {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		require.NoError(t, st.Write(ctx, fixtures[name]), name)
	}
	byID := make(map[tracestore.TraceID]string)
	spanCount := 0
	for _, name := range names {
		spans := fixtures[name]
		spanCount += len(spans)
		tr, err := st.Trace(ctx, spans[0].TraceID)
		require.NoError(t, err, name)
		require.Equal(t, spans, tr.Spans, "fixture %s reads back field by field", name)
		byID[spans[0].TraceID] = name
	}
	require.Equal(t, 38, spanCount, "the README promises 38 spans in 32 files")

	data, err := os.ReadFile(filepath.Join(dir, "queries.json"))
	require.NoError(t, err)
	var queries []fixtureQuery
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&queries))
	require.Len(t, queries, 25)
	for _, fq := range queries {
		t.Run(fq.Caption, func(t *testing.T) {
			q := tracestore.Query{
				Service:     fq.Query.ServiceName,
				Operation:   fq.Query.OperationName,
				MinDuration: fq.Query.DurationMin,
				MaxDuration: fq.Query.DurationMax,
				Start:       fq.Query.StartTimeMin.UnixNano(),
				End:         fq.Query.StartTimeMax.UnixNano(),
				Limit:       fq.Query.NumTraces,
			}
			if len(fq.Query.Tags) > 0 {
				q.Attributes = make(map[string]string)
				for k, v := range fq.Query.Tags {
					q.Attributes[k] = fmt.Sprint(v) // json.Number and bool print canonically
				}
			}
			found, err := st.Find(ctx, q)
			require.NoError(t, err)
			var got []string
			for _, s := range found {
				got = append(got, byID[s.TraceID])
				// A matching trace comes back whole.
				tr, err := st.Trace(ctx, s.TraceID)
				require.NoError(t, err)
				require.Equal(t, fixtures[byID[s.TraceID]], tr.Spans)
				require.Equal(t, len(tr.Spans), s.SpanCount)
			}
			require.ElementsMatch(t, fq.ExpectedFixtures, got)
		})
	}
}

func TestJaegerServicesOperationsAndSummary(t *testing.T) {
	_, fixtures := loadFixtures(t)
	st := openTestStore(t)
	ctx := t.Context()
	example := fixtures["example_trace"]
	require.NoError(t, st.Write(ctx, example))
	svcs, err := st.Services(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"example-service-1", "example-service-2", "example-service-3"}, svcs)
	ops, err := st.Operations(ctx, "example-service-1")
	require.NoError(t, err)
	require.Equal(t, []tracestore.Operation{
		{Name: "example-operation-1", Kind: tracestore.SpanKindUnspecified},
		{Name: "example-operation-3", Kind: tracestore.SpanKindServer},
		{Name: "example-operation-4", Kind: tracestore.SpanKindClient},
	}, ops)
	tr, err := st.Trace(ctx, example[0].TraceID)
	require.NoError(t, err)
	require.Len(t, tr.Spans, 5)

	found, err := st.Find(ctx, tracestore.Query{Service: "example-service-2"})
	require.NoError(t, err)
	require.Len(t, found, 1)
	s := found[0]
	require.Equal(t, 5, s.SpanCount)
	require.Equal(t, example[0].StartTime, s.Start)
	require.Equal(t, time.Duration(100_000), s.Duration)
	require.Equal(t, []string{"example-service-1", "example-service-2", "example-service-3"}, s.Services)
	require.False(t, s.Error)

	unknown, err := tracestore.ParseTraceID("00000000000000000000000000000999")
	require.NoError(t, err)
	_, err = st.Trace(ctx, unknown)
	require.ErrorIs(t, err, tracestore.ErrNotFound)
}

func TestJaegerLargeTraceAndDuplicates(t *testing.T) {
	_, fixtures := loadFixtures(t)
	st := openTestStore(t)
	ctx := t.Context()
	first := fixtures["example_trace"][0]

	// Large trace: the first span copied 10,008 times, IDs 1..10008, shifted
	// by i+1 seconds.
	large := make([]tracestore.Span, 10008)
	for i := range large {
		sp := first
		sp.TraceID[0] = 0x77
		sp.SpanID = tracestore.SpanID{}
		for b := range 8 {
			sp.SpanID[7-b] = byte(uint64(i+1) >> (8 * b))
		}
		shift := int64(i+1) * int64(time.Second)
		sp.StartTime += shift
		sp.EndTime += shift
		large[i] = sp
	}
	require.NoError(t, st.Write(ctx, large))
	tr, err := st.Trace(ctx, large[0].TraceID)
	require.NoError(t, err)
	require.Len(t, tr.Spans, len(large))
	require.ElementsMatch(t, large, tr.Spans)

	// Duplicate span IDs: 200 copies, every 20th reuses the original ID.
	dups := make([]tracestore.Span, 200)
	for i := range dups {
		sp := first
		sp.TraceID[0] = 0x78
		if i%20 != 0 {
			sp.SpanID[0] = byte(i)
			sp.SpanID[1] = 0xEE
		}
		sp.StartTime += int64(i)
		sp.EndTime += int64(i)
		dups[i] = sp
	}
	require.NoError(t, st.Write(ctx, dups[:100]))
	require.NoError(t, st.Write(ctx, dups[100:]))
	tr, err = st.Trace(ctx, dups[0].TraceID)
	require.NoError(t, err)
	require.ElementsMatch(t, dups, tr.Spans)

	// Search without a service name: two traces from two services share an attribute.
	a, b := first, first
	a.TraceID[0], b.TraceID[0] = 0x79, 0x7a
	a.Resource = tracestore.Resource{Attributes: []tracestore.KeyValue{{Key: tracestore.ServiceNameKey, Value: tracestore.StringValue("svc-a")}}}
	b.Resource = tracestore.Resource{Attributes: []tracestore.KeyValue{{Key: tracestore.ServiceNameKey, Value: tracestore.StringValue("svc-b")}}}
	a.Attributes = []tracestore.KeyValue{{Key: "shared", Value: tracestore.Int64Value(42)}}
	b.Attributes = a.Attributes
	require.NoError(t, st.Write(ctx, []tracestore.Span{a, b}))
	found, err := st.Find(ctx, tracestore.Query{Attributes: map[string]string{"shared": "42"}, Start: first.StartTime - 1, End: first.EndTime + 1})
	require.NoError(t, err)
	require.Len(t, found, 2)
	require.ElementsMatch(t, []tracestore.TraceID{a.TraceID, b.TraceID}, []tracestore.TraceID{found[0].TraceID, found[1].TraceID})
}
