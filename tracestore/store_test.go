package tracestore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()

func tid(n uint64) TraceID {
	var id TraceID
	for i := range 8 {
		id[8+i] = byte(n >> (56 - 8*i))
	}
	id[0] = 0xab
	return id
}

func sid(n uint64) SpanID {
	var id SpanID
	for i := range 8 {
		id[i] = byte(n >> (56 - 8*i))
	}
	return id
}

func res(svc string, extra ...KeyValue) Resource {
	return Resource{Attributes: append([]KeyValue{{Key: ServiceNameKey, Value: StringValue(svc)}}, extra...)}
}

// fullSpan uses every field of the model.
func fullSpan(trace TraceID, n uint64) Span {
	return Span{
		TraceID: trace, SpanID: sid(n), ParentSpanID: sid(n + 1000),
		TraceState: "vendor=x", Flags: 0x101, Name: "GET /r", Kind: SpanKindServer,
		StartTime: t0 + int64(n)*1000, EndTime: t0 + int64(n)*1000 + 5_000_000,
		Attributes: []KeyValue{
			{Key: "s", Value: StringValue("str")},
			{Key: "b", Value: BoolValue(true)},
			{Key: "i", Value: Int64Value(-123)},
			{Key: "f", Value: Float64Value(72.5)},
			{Key: "nan", Value: Float64Value(math.Float64frombits(0x7ff8000000000abc))},
			{Key: "bytes", Value: BytesValue([]byte{0, 1, 2, 0xff})},
			{Key: "arr", Value: ArrayValue(StringValue("a"), Int64Value(1), ArrayValue())},
			{Key: "map", Value: MapValue(KeyValue{Key: "k", Value: BoolValue(false)}, KeyValue{Key: "nested", Value: MapValue()})},
			{Key: "empty"},
		},
		DroppedAttributesCount: 3,
		Events: []Event{
			{Time: t0 + int64(n)*1000 + 10, Name: "ev", Attributes: []KeyValue{{Key: "e", Value: Int64Value(1)}}, DroppedAttributesCount: 1},
			{Time: t0 - 5},
		},
		DroppedEventsCount: 4,
		Links: []Link{
			{TraceID: trace, SpanID: sid(7), TraceState: "a=b", Flags: 1, Attributes: []KeyValue{{Key: "l", Value: StringValue("x")}}, DroppedAttributesCount: 2},
			{TraceID: tid(999), SpanID: sid(8)},
		},
		DroppedLinksCount: 5,
		Status:            Status{Code: StatusError, Message: "boom"},
		Resource:          Resource{Attributes: []KeyValue{{Key: ServiceNameKey, Value: StringValue("redirect")}}, DroppedAttributesCount: 1, SchemaURL: "https://schema/1"},
		Scope:             Scope{Name: "lib", Version: "1.2", Attributes: []KeyValue{{Key: "sc", Value: Float64Value(1)}}, DroppedAttributesCount: 6, SchemaURL: "https://schema/2"},
	}
}

func openStore(t *testing.T, o *Options) *Store {
	t.Helper()
	st, err := Open(t.TempDir(), o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

func TestRoundTripEveryField(t *testing.T) {
	st := openStore(t, nil)
	ctx := t.Context()
	id := tid(1)
	spans := []Span{fullSpan(id, 1), fullSpan(id, 2)}
	spans[1].ParentSpanID = spans[0].SpanID // parent coded as a reference
	spans[1].Kind = SpanKind(9)             // unknown kinds and codes are kept too
	spans[1].Status.Code = StatusCode(7)
	require.NoError(t, st.Write(ctx, spans))
	tr, err := st.Trace(ctx, id)
	require.NoError(t, err)
	require.Equal(t, id, tr.ID)
	require.Equal(t, spans, tr.Spans)
	require.Equal(t, uint64(0x7ff8000000000abc), math.Float64bits(tr.Spans[0].Attributes[4].Value.Float64()))

	_, err = st.Trace(ctx, tid(2))
	require.ErrorIs(t, err, ErrNotFound)
}

func TestSpansArriveLaterAndReuseIDs(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, nil)
	require.NoError(t, err)
	ctx := t.Context()
	id := tid(5)
	var want []Span
	for w := range 4 {
		sp := fullSpan(id, 1) // the same span ID every time
		sp.StartTime += int64(w) * int64(10*time.Minute)
		sp.EndTime += int64(w) * int64(10*time.Minute)
		sp.Name = fmt.Sprintf("op-%d", w)
		require.NoError(t, st.Write(ctx, []Span{sp, sp}))
		want = append(want, sp, sp)
	}
	require.NoError(t, st.Close())
	st, err = Open(dir, nil) // and after reopening, a new write sequence
	require.NoError(t, err)
	defer st.Close()
	extra := fullSpan(id, 1)
	require.NoError(t, st.Write(ctx, []Span{extra}))
	want = append(want, extra)
	tr, err := st.Trace(ctx, id)
	require.NoError(t, err)
	require.ElementsMatch(t, want, tr.Spans)
	found, err := st.Find(ctx, Query{Operation: "op-3"})
	require.NoError(t, err)
	require.Len(t, found, 1)
	require.Equal(t, 9, found[0].SpanCount)
}

func TestBadInputRejectsWholeBatch(t *testing.T) {
	st := openStore(t, &Options{MaxTraceBytes: 4096})
	ctx := t.Context()
	good := fullSpan(tid(1), 1)
	cases := []struct {
		name   string
		mutate func(*Span)
		want   error
	}{
		{"zero trace", func(s *Span) { s.TraceID = TraceID{} }, ErrZeroTraceID},
		{"zero span", func(s *Span) { s.SpanID = SpanID{} }, ErrZeroSpanID},
		{"end before start", func(s *Span) { s.EndTime = s.StartTime - 1 }, ErrEndBeforeStart},
		{"too large", func(s *Span) {
			s.Attributes = append(s.Attributes, KeyValue{Key: "big", Value: BytesValue(make([]byte, 8192))})
		}, ErrTraceTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := fullSpan(tid(2), 2)
			c.mutate(&bad)
			err := st.Write(ctx, []Span{good, bad})
			require.ErrorIs(t, err, c.want)
			var se *SpanError
			require.True(t, errors.As(err, &se))
			require.Equal(t, 1, se.Index)
			require.Contains(t, err.Error(), "span 1")
			_, err = st.Trace(ctx, tid(1))
			require.ErrorIs(t, err, ErrNotFound, "nothing of a rejected batch is stored")
		})
	}
	svcs, err := st.Services(ctx)
	require.NoError(t, err)
	require.Empty(t, svcs)
}

func TestFindSameSpanRule(t *testing.T) {
	st := openStore(t, nil)
	ctx := t.Context()
	mk := func(trace TraceID, n uint64, svc, op string, dur time.Duration, attrs ...KeyValue) Span {
		return Span{TraceID: trace, SpanID: sid(n), Name: op, StartTime: t0 + int64(n), EndTime: t0 + int64(n) + int64(dur),
			Attributes: attrs, Resource: res(svc)}
	}
	code500 := KeyValue{Key: "http.status_code", Value: Int64Value(500)}
	// Trace A: one span has everything.
	a := []Span{mk(tid(1), 1, "redirect", "GET /r", 600*time.Millisecond, code500)}
	// Trace B: the conditions are split over two spans: must not match.
	b := []Span{
		mk(tid(2), 2, "redirect", "GET /r", 600*time.Millisecond),
		mk(tid(2), 3, "redirect", "other", 10*time.Millisecond, code500),
	}
	// Trace C: right span but too fast.
	c := []Span{mk(tid(3), 4, "redirect", "GET /r", 100*time.Millisecond, code500)}
	// Trace D: another service.
	d := []Span{mk(tid(4), 5, "api", "GET /r", 600*time.Millisecond, code500)}
	for _, batch := range [][]Span{a, b, c, d} {
		require.NoError(t, st.Write(ctx, batch))
	}
	q := Query{Service: "redirect", Operation: "GET /r", Attributes: map[string]string{"http.status_code": "500"},
		MinDuration: 500 * time.Millisecond, Start: t0 - 1, End: t0 + int64(time.Hour)}
	found, err := st.Find(ctx, q)
	require.NoError(t, err)
	require.Len(t, found, 1)
	require.Equal(t, tid(1), found[0].TraceID)
	require.Equal(t, "redirect", found[0].RootService)
	require.Equal(t, []string{"redirect"}, found[0].Services)

	// No service: both services' traces with the attribute on one span.
	found, err = st.Find(ctx, Query{Attributes: map[string]string{"http.status_code": "500"}, MinDuration: 500 * time.Millisecond})
	require.NoError(t, err)
	require.Len(t, found, 2)
	require.Equal(t, tid(4), found[0].TraceID, "newest first")
	require.Equal(t, tid(1), found[1].TraceID)

	// Inclusive duration bounds.
	found, err = st.Find(ctx, Query{MinDuration: 100 * time.Millisecond, MaxDuration: 100 * time.Millisecond})
	require.NoError(t, err)
	require.Len(t, found, 1)
	require.Equal(t, tid(3), found[0].TraceID)

	// Empty query: everything, limited.
	found, err = st.Find(ctx, Query{Limit: 2})
	require.NoError(t, err)
	require.Len(t, found, 2)
	found, err = st.Find(ctx, Query{})
	require.NoError(t, err)
	require.Len(t, found, 4)

	// A window that excludes every span.
	found, err = st.Find(ctx, Query{Start: t0 + int64(time.Hour)})
	require.NoError(t, err)
	require.Empty(t, found)
}

func TestServicesAndOperations(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, nil)
	require.NoError(t, err)
	ctx := t.Context()
	spans := []Span{
		{TraceID: tid(1), SpanID: sid(1), Name: "b-op", Kind: SpanKindClient, StartTime: t0, EndTime: t0 + 1, Resource: res("svc-b")},
		{TraceID: tid(1), SpanID: sid(2), Name: "a-op", Kind: SpanKindServer, StartTime: t0, EndTime: t0 + 1, Resource: res("svc-a")},
		{TraceID: tid(1), SpanID: sid(3), Name: "a-op", Kind: SpanKindUnspecified, StartTime: t0, EndTime: t0 + 1, Resource: res("svc-a")},
	}
	require.NoError(t, st.Write(ctx, spans))
	require.NoError(t, st.Close())
	st, err = Open(dir, nil)
	require.NoError(t, err)
	defer st.Close()
	svcs, err := st.Services(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"svc-a", "svc-b"}, svcs)
	ops, err := st.Operations(ctx, "svc-a")
	require.NoError(t, err)
	require.Equal(t, []Operation{{"a-op", SpanKindUnspecified}, {"a-op", SpanKindServer}}, ops)
	ops, err = st.Operations(ctx, "svc")
	require.NoError(t, err)
	require.Empty(t, ops, "a service name that is a prefix of another has no operations of its own")
}

func TestCorruptBlockIsAnError(t *testing.T) {
	db, err := kv.Open(t.TempDir(), kv.Options{})
	require.NoError(t, err)
	defer db.Close()
	st, err := OpenPebble(db, nil)
	require.NoError(t, err)
	ctx := t.Context()
	id := tid(1)
	require.NoError(t, st.Write(ctx, []Span{fullSpan(id, 1)}))
	prefix := keys.AppendTraceSpansPrefix(nil, id)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keys.PrefixEnd(prefix)})
	require.NoError(t, err)
	require.True(t, it.First())
	k := append([]byte(nil), it.Key()...)
	v := append([]byte(nil), it.Value()...)
	require.NoError(t, it.Close())
	v[len(v)/2] ^= 0x40
	require.NoError(t, db.Set(k, v, kv.WriteOptions))
	_, err = st.Trace(ctx, id)
	require.ErrorIs(t, err, encoding.ErrCorrupt)
	require.NoError(t, st.Close())
	// Closing a store opened on a shared Pebble leaves it usable.
	_, _, err = db.Get(k)
	require.NoError(t, err)
	_, err = st.Trace(ctx, id)
	require.ErrorIs(t, err, ErrClosed)
}

func TestRetentionDropsPartitions(t *testing.T) {
	now := time.Unix(0, t0).Add(10 * time.Hour)
	st := openStore(t, &Options{Retention: 3 * time.Hour, Now: func() time.Time { return now }})
	ctx := t.Context()
	for h := range 10 {
		start := t0 + int64(h)*int64(time.Hour)
		require.NoError(t, st.Write(ctx, []Span{{TraceID: tid(uint64(h + 1)), SpanID: sid(1), Name: "op", StartTime: start, EndTime: start + 10, Resource: res("s")}}))
	}
	found, err := st.Find(ctx, Query{Limit: 100})
	require.NoError(t, err)
	require.Len(t, found, 3, "writing newer partitions enforced retention as it went")
	now = now.Add(2 * time.Hour)
	n, err := st.EnforceRetention(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	for h := range 10 {
		_, err := st.Trace(ctx, tid(uint64(h+1)))
		if h < 9 {
			require.ErrorIs(t, err, ErrNotFound, "hour %d", h)
		} else {
			require.NoError(t, err, "hour %d", h)
		}
	}
	found, err = st.Find(ctx, Query{Limit: 100})
	require.NoError(t, err)
	require.Len(t, found, 1)
}

func TestConcurrentWritersAndReaders(t *testing.T) {
	st := openStore(t, nil)
	ctx := t.Context()
	const writers, traces, spansPer = 4, 30, 4
	var wg sync.WaitGroup
	errs := make(chan error, writers*2)
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range traces {
				// Every writer adds spans to the same shared traces.
				id := tid(uint64(i + 1))
				batch := make([]Span, spansPer)
				for j := range batch {
					n := uint64(w*1000 + i*10 + j + 1)
					batch[j] = Span{TraceID: id, SpanID: sid(n), Name: fmt.Sprintf("op-%d", w), StartTime: t0 + int64(i), EndTime: t0 + int64(i) + 10, Resource: res(fmt.Sprintf("svc-%d", w))}
				}
				if err := st.Write(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range traces {
				if _, err := st.Trace(ctx, tid(uint64(i+1))); err != nil && !errors.Is(err, ErrNotFound) {
					errs <- err
					return
				}
				if _, err := st.Find(ctx, Query{Service: fmt.Sprintf("svc-%d", w)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for i := range traces {
		tr, err := st.Trace(ctx, tid(uint64(i+1)))
		require.NoError(t, err)
		require.Len(t, tr.Spans, writers*spansPer)
	}
	for w := range writers {
		found, err := st.Find(ctx, Query{Service: fmt.Sprintf("svc-%d", w), Limit: 1000})
		require.NoError(t, err)
		require.Len(t, found, traces)
	}
}

func TestOptionsValidated(t *testing.T) {
	_, err := Open(t.TempDir(), &Options{PartitionDuration: time.Millisecond, MaxTraceBytes: -1})
	require.ErrorIs(t, err, ErrBadOptions)
	require.Contains(t, err.Error(), "PartitionDuration")
	require.Contains(t, err.Error(), "MaxTraceBytes")
}

func TestWriteHonoursContext(t *testing.T) {
	st := openStore(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, st.Write(ctx, []Span{fullSpan(tid(1), 1)}), context.Canceled)
	_, err := st.Trace(t.Context(), tid(1))
	require.ErrorIs(t, err, ErrNotFound)
}

func countKeys(t *testing.T, db *pebble.DB, prefix []byte) int {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keys.PrefixEnd(prefix)})
	require.NoError(t, err)
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	require.NoError(t, it.Close())
	return n
}

func TestCompactMergesPostings(t *testing.T) {
	db, err := kv.Open(t.TempDir(), kv.Options{})
	require.NoError(t, err)
	defer db.Close()
	st, err := OpenPebble(db, nil)
	require.NoError(t, err)
	defer st.Close()
	ctx := t.Context()
	for i := range 20 {
		sp := Span{TraceID: tid(uint64(i + 1)), SpanID: sid(1), Name: "op", StartTime: t0 + int64(i), EndTime: t0 + int64(i) + 10,
			Resource: res("svc"), Attributes: []KeyValue{{Key: "k", Value: Int64Value(int64(i % 2))}}}
		require.NoError(t, st.Write(ctx, []Span{sp}))
	}
	before, err := st.Find(ctx, Query{Service: "svc", Attributes: map[string]string{"k": "1"}, Limit: 100})
	require.NoError(t, err)
	require.Len(t, before, 10)
	postings := keys.AppendPrefix(nil, keys.StoreTraces, keys.KindTracePostings)
	nBefore := countKeys(t, db, postings)
	removed, err := st.Compact(ctx)
	require.NoError(t, err)
	require.Equal(t, nBefore-countKeys(t, db, postings), removed)
	// all, service, operation, span-duration bucket, trace-duration bucket,
	// start-time bucket, service.name=svc, k=0, k=1: one segment each.
	require.Equal(t, 9, countKeys(t, db, postings))
	after, err := st.Find(ctx, Query{Service: "svc", Attributes: map[string]string{"k": "1"}, Limit: 100})
	require.NoError(t, err)
	require.Equal(t, before, after)
	removed, err = st.Compact(ctx)
	require.NoError(t, err)
	require.Zero(t, removed)
}

func TestLateSpansKeepTheirOrdinal(t *testing.T) {
	st := openStore(t, nil)
	ctx := t.Context()
	mk := func(trace TraceID, n uint64, hour int, op string) Span {
		start := t0 + int64(hour)*int64(time.Hour)
		return Span{TraceID: trace, SpanID: sid(n), Name: op, StartTime: start, EndTime: start + 10, Resource: res("svc")}
	}
	require.NoError(t, st.Write(ctx, []Span{mk(tid(1), 1, 0, "early"), mk(tid(2), 1, 0, "other")}))
	for h := 1; h <= 4; h++ { // time moves on; hour 0's ordinals leave memory
		require.NoError(t, st.Write(ctx, []Span{mk(tid(uint64(10+h)), 1, h, "later")}))
	}
	require.NoError(t, st.Write(ctx, []Span{mk(tid(1), 2, 0, "late")}))
	found, err := st.Find(ctx, Query{Operation: "late"})
	require.NoError(t, err)
	require.Len(t, found, 1)
	require.Equal(t, tid(1), found[0].TraceID)
	require.Equal(t, 2, found[0].SpanCount)
	// The late span joined the trace's existing ordinal: hour 0 still
	// holds two traces.
	found, err = st.Find(ctx, Query{Start: t0, End: t0 + int64(time.Minute), Limit: 100})
	require.NoError(t, err)
	require.Len(t, found, 2)
	part := st.partitionOf(t0)
	bm, err := st.postings(part, []byte{termAll})
	require.NoError(t, err)
	require.Equal(t, uint64(2), bm.GetCardinality())
}
