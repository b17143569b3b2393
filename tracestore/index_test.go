package tracestore

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

// randomWorld is a random workload over four one-minute partitions: its
// traces are written in shuffled batches, some in two parts (the second
// part later, possibly in the next partition), and every span is kept so
// queries can be answered by brute force.
type randomWorld struct {
	rng    *rand.Rand
	traces map[TraceID][]Span
	next   uint64
}

var (
	worldServices = []string{"api", "db", "cache", "queue"}
	worldOps      = []string{"get", "put", "scan"}
)

const worldPart = time.Minute

func newRandomWorld(seed uint64) *randomWorld {
	return &randomWorld{rng: rand.New(rand.NewPCG(seed, seed+1)), traces: make(map[TraceID][]Span)}
}

// trace makes one trace's spans: the first part and (maybe) a later part.
func (w *randomWorld) trace() (first, later []Span) {
	w.next++
	id := tid(w.next)
	start := t0 + w.rng.Int64N(4*int64(worldPart)-int64(5*time.Second))
	n := 1 + w.rng.IntN(6)
	split := n > 1 && w.rng.IntN(4) == 0
	for i := range n {
		s := start + w.rng.Int64N(int64(200*time.Millisecond))
		if split && i >= n/2 {
			s += w.rng.Int64N(int64(20 * time.Second)) // arrives later, often in the next partition
		}
		d := int64(time.Millisecond) << w.rng.IntN(12)
		d += w.rng.Int64N(d)
		svc := worldServices[w.rng.IntN(len(worldServices))]
		sp := Span{TraceID: id, SpanID: sid(uint64(i + 1)), Name: worldOps[w.rng.IntN(len(worldOps))],
			StartTime: s, EndTime: s + d, Kind: SpanKindServer,
			Resource: res(svc, KeyValue{Key: "region", Value: StringValue([]string{"eu", "us"}[w.rng.IntN(2)])}),
			Attributes: []KeyValue{
				{Key: "k", Value: Int64Value(int64(w.rng.IntN(4)))},
				{Key: "env", Value: StringValue([]string{"prod", "dev", "test"}[w.rng.IntN(3)])},
			},
		}
		if i > 0 {
			sp.ParentSpanID = sid(1)
		}
		if w.rng.IntN(5) == 0 {
			sp.Events = []Event{{Time: s, Name: "retry", Attributes: []KeyValue{{Key: "attempt", Value: Int64Value(int64(1 + w.rng.IntN(3)))}}}}
		}
		if w.rng.IntN(10) == 0 {
			sp.Status = Status{Code: StatusError}
			sp.Attributes = append(sp.Attributes, KeyValue{Key: "flag", Value: BoolValue(true)})
		}
		if split && i >= n/2 {
			later = append(later, sp)
		} else {
			first = append(first, sp)
		}
	}
	return first, later
}

// write stores n new traces in shuffled batches, second parts last.
func (w *randomWorld) write(t *testing.T, st *Store, n int) {
	t.Helper()
	var firsts, laters []Span
	for range n {
		f, l := w.trace()
		firsts, laters = append(firsts, f...), append(laters, l...)
	}
	for _, part := range [][]Span{firsts, laters} {
		w.rng.Shuffle(len(part), func(i, j int) { part[i], part[j] = part[j], part[i] })
		for len(part) > 0 {
			k := min(len(part), 1+w.rng.IntN(40))
			require.NoError(t, st.Write(t.Context(), part[:k]))
			for _, sp := range part[:k] {
				w.traces[sp.TraceID] = append(w.traces[sp.TraceID], sp)
			}
			part = part[k:]
		}
	}
}

func (w *randomWorld) query() Query {
	r := w.rng
	var q Query
	if r.IntN(2) == 0 {
		q.Service = worldServices[r.IntN(len(worldServices))]
	}
	if r.IntN(4) == 0 {
		q.Operation = worldOps[r.IntN(len(worldOps))]
	}
	for range r.IntN(3) {
		if q.Attributes == nil {
			q.Attributes = map[string]string{}
		}
		switch r.IntN(5) {
		case 0:
			q.Attributes["k"] = fmt.Sprint(r.IntN(5))
		case 1:
			q.Attributes["env"] = []string{"prod", "dev", "test"}[r.IntN(3)]
		case 2:
			q.Attributes["region"] = []string{"eu", "us"}[r.IntN(2)]
		case 3:
			q.Attributes["attempt"] = fmt.Sprint(1 + r.IntN(3))
		default:
			q.Attributes["flag"] = "true"
		}
	}
	if r.IntN(5) == 0 {
		q.MinDuration = time.Duration(r.Int64N(int64(time.Second)))
	}
	if r.IntN(6) == 0 {
		q.MaxDuration = time.Duration(r.Int64N(int64(4 * time.Second)))
	}
	if r.IntN(3) == 0 {
		q.MinTraceDuration = time.Duration(r.Int64N(int64(3 * time.Second)))
	}
	if r.IntN(4) == 0 {
		q.MaxTraceDuration = time.Duration(r.Int64N(int64(10 * time.Second)))
	}
	if r.IntN(3) > 0 {
		q.Start = t0 + r.Int64N(int64(4*worldPart))
		q.End = q.Start + r.Int64N(int64(2*worldPart))
		if r.IntN(5) == 0 {
			q.Start = 0
		}
	}
	q.Limit = 1 + r.IntN(30)
	return q
}

// bruteFind answers q by checking every trace.
func (w *randomWorld) bruteFind(q Query) []TraceSummary {
	var (
		out []TraceSummary
		m   matcher
	)
	for id, spans := range w.traces {
		if !m.matchAny(&q, spans) {
			continue
		}
		sum := summarize(id, spans)
		if q.traceDurationHolds(sum.Duration) {
			out = append(out, sum)
		}
	}
	sortSummaries(out)
	return out[:min(len(out), q.Limit)]
}

type foundTrace struct {
	ID       TraceID
	Start    int64
	Duration time.Duration
	Spans    int
}

func brief(sums []TraceSummary) []foundTrace {
	out := make([]foundTrace, len(sums))
	for i, s := range sums {
		out[i] = foundTrace{s.TraceID, s.Start, s.Duration, s.SpanCount}
	}
	return out
}

func (w *randomWorld) checkQueries(t *testing.T, st *Store, n int) {
	t.Helper()
	hits := 0
	for range n {
		q := w.query()
		got, err := st.Find(t.Context(), q)
		require.NoError(t, err)
		want := w.bruteFind(q)
		require.Equal(t, brief(want), brief(got), "query %+v", q)
		hits += len(got)
	}
	require.Greater(t, hits, n, "the random queries should find traces")
}

func TestFindEqualsBruteForce(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{PartitionDuration: worldPart}
	st, err := Open(dir, opts)
	require.NoError(t, err)
	w := newRandomWorld(7)
	w.write(t, st, 250)
	w.checkQueries(t, st, 80)

	_, err = st.Compact(t.Context())
	require.NoError(t, err)
	w.checkQueries(t, st, 30)

	closed, err := st.ClosePartitions(t.Context(), t0+3*int64(worldPart))
	require.NoError(t, err)
	require.Equal(t, 3, closed)
	w.checkQueries(t, st, 40)

	// Late traces land in closed partitions and reopen them.
	w.write(t, st, 40)
	st.pmu.RLock()
	reopened := 3 - len(st.filters)
	st.pmu.RUnlock()
	require.Positive(t, reopened)
	w.checkQueries(t, st, 40)

	closed, err = st.ClosePartitions(t.Context(), t0+3*int64(worldPart))
	require.NoError(t, err)
	require.Equal(t, reopened, closed)
	require.NoError(t, st.Close())
	st, err = Open(dir, opts)
	require.NoError(t, err)
	defer st.Close()
	require.Len(t, st.filters, 3)
	w.checkQueries(t, st, 40)
}

func TestFindStopsWhenCertain(t *testing.T) {
	st := openStore(t, nil)
	ctx := t.Context()
	// 2,000 one-span traces 100 ms apart that all match: the newest 20
	// need only the last few start-time buckets read.
	var batch []Span
	for i := range 2000 {
		s := t0 + int64(i)*int64(100*time.Millisecond)
		batch = append(batch, Span{TraceID: tid(uint64(i + 1)), SpanID: sid(1), Name: "op", StartTime: s, EndTime: s + 10,
			Resource: res("svc"), Attributes: []KeyValue{{Key: "k", Value: StringValue("v")}}})
	}
	require.NoError(t, st.Write(ctx, batch))
	q := Query{Service: "svc", Attributes: map[string]string{"k": "v"}, Start: t0, End: t0 + int64(time.Hour), Limit: 20}
	f := finder{q: &q, limit: 20, seen: make(map[TraceID]struct{}), ts: newTraceScan()}
	f.ts.setQuery(&q)
	f.rb.dec.g = st.dict
	p := st.partitionOf(t0)
	acc, err := st.candidates(p, q.clauses())
	require.NoError(t, err)
	require.Equal(t, uint64(2000), acc.GetCardinality())
	done, err := st.scanBuckets(ctx, p, st.timeBucket(p, q.Start), st.timeBucket(p, q.End), acc, &f)
	require.NoError(t, err)
	require.True(t, done)
	require.Less(t, len(f.seen), 40, "traces read for 20 results")
	found, err := st.Find(ctx, q)
	require.NoError(t, err)
	require.Len(t, found, 20)
	require.Equal(t, tid(2000), found[0].TraceID)
	require.Equal(t, tid(1981), found[19].TraceID)
}

func TestTraceDurationSpansWritesAndPartitions(t *testing.T) {
	st := openStore(t, &Options{PartitionDuration: worldPart})
	ctx := t.Context()
	a := Span{TraceID: tid(1), SpanID: sid(1), Name: "root", StartTime: t0 + int64(50*time.Second), EndTime: t0 + int64(51*time.Second), Resource: res("svc")}
	require.NoError(t, st.Write(ctx, []Span{a}))
	q := Query{Operation: "root", MinTraceDuration: 20 * time.Second, Start: t0, End: t0 + int64(worldPart) - 1}
	found, err := st.Find(ctx, q)
	require.NoError(t, err)
	require.Empty(t, found)
	// A child in the next partition, written later, stretches the trace to
	// 30 s: the root's partition must now list it under its new duration.
	b := Span{TraceID: tid(1), SpanID: sid(2), ParentSpanID: sid(1), Name: "child", StartTime: t0 + int64(70*time.Second), EndTime: t0 + int64(80*time.Second), Resource: res("svc")}
	require.NoError(t, st.Write(ctx, []Span{b}))
	found, err = st.Find(ctx, q)
	require.NoError(t, err)
	require.Len(t, found, 1)
	require.Equal(t, 30*time.Second, found[0].Duration)
	p := st.partitionOf(a.StartTime)
	bm, err := st.rangePostings(p, binary.BigEndian.AppendUint16([]byte{termTraceDur}, traceDurBucket(int64(30*time.Second))),
		binary.BigEndian.AppendUint16([]byte{termTraceDur}, traceDurBucket(int64(30*time.Second))))
	require.NoError(t, err)
	require.Equal(t, uint64(1), bm.GetCardinality(), "the root's partition holds the new bucket")
	found, err = st.Find(ctx, Query{MaxTraceDuration: 29 * time.Second})
	require.NoError(t, err)
	require.Empty(t, found)
	found, err = st.Find(ctx, Query{MinTraceDuration: 30 * time.Second, MaxTraceDuration: 30 * time.Second})
	require.NoError(t, err)
	require.Len(t, found, 1)
}

func TestTraceDurBucketOrdered(t *testing.T) {
	prev := traceDurBucket(0)
	for d := int64(1); d < 1<<16; d++ {
		b := traceDurBucket(d)
		if b < prev {
			t.Fatalf("bucket of %d is %d, below %d", d, b, prev)
		}
		prev = b
	}
	for d := int64(1 << 16); d > 0 && d < 1<<62; d += d / 7 {
		require.LessOrEqual(t, traceDurBucket(d), traceDurBucket(d+d/7))
	}
	require.Equal(t, uint16(maxTraceDurBucket), traceDurBucket(1<<63-1))
}

func TestFormatMismatchIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(*pebble.DB) error
		version uint32
	}{
		{"unversioned store with spans", func(db *pebble.DB) error {
			return db.Set(keys.AppendTraceSpansKey(nil, tid(1), 0, 1), []byte("old"), kv.WriteOptions)
		}, 1},
		{"unversioned store with postings", func(db *pebble.DB) error {
			return db.Set(keys.AppendTracePostingsKey(nil, 0, []byte("a\x00\x01k\x00\x01v"), 1), nil, kv.WriteOptions)
		}, 1},
		{"newer layout", func(db *pebble.DB) error {
			return db.Set(keys.AppendTraceFormatKey(nil), binary.BigEndian.AppendUint32(nil, 9), kv.WriteOptions)
		}, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := kv.Open(t.TempDir(), kv.Options{})
			require.NoError(t, err)
			defer db.Close()
			require.NoError(t, tc.prepare(db))
			_, err = OpenPebble(db, nil)
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			require.ErrorIs(t, err, ErrFormat)
			require.Equal(t, FormatError{Version: tc.version, Want: formatVersion}, *fe)
			// Refusing changes nothing: still no current format stamp.
			v, closer, err := db.Get(keys.AppendTraceFormatKey(nil))
			if tc.version == 1 {
				require.ErrorIs(t, err, pebble.ErrNotFound)
			} else {
				require.NoError(t, err)
				require.Equal(t, tc.version, binary.BigEndian.Uint32(v))
				closer.Close()
			}
		})
	}
	// A fresh store is stamped and opens again.
	dir := t.TempDir()
	st, err := Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, st.Write(t.Context(), []Span{{TraceID: tid(1), SpanID: sid(1), Resource: res("s")}}))
	require.NoError(t, st.Close())
	st, err = Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, st.Close())
}

func TestAttributeListingsEqualBruteForce(t *testing.T) {
	st := openStore(t, &Options{PartitionDuration: worldPart})
	w := newRandomWorld(11)
	w.write(t, st, 300)
	// Every attribute value a span carries, by the partition it starts in.
	values := map[uint32]map[string]map[string]struct{}{}
	add := func(p uint32, kvs []KeyValue) {
		for _, kv := range kvs {
			if values[p] == nil {
				values[p] = map[string]map[string]struct{}{}
			}
			if values[p][kv.Key] == nil {
				values[p][kv.Key] = map[string]struct{}{}
			}
			values[p][kv.Key][string(kv.Value.appendCanonical(nil))] = struct{}{}
		}
	}
	for _, spans := range w.traces {
		for _, sp := range spans {
			p := st.partitionOf(sp.StartTime)
			add(p, sp.Attributes)
			add(p, sp.Resource.Attributes)
			add(p, sp.Scope.Attributes)
			for _, e := range sp.Events {
				add(p, e.Attributes)
			}
		}
	}
	brute := func(start, end int64) map[string][]string {
		lo, hi := uint32(0), ^uint32(0)
		if start != 0 {
			lo = st.partitionOf(start)
		}
		if end != 0 {
			hi = st.partitionOf(end)
		}
		set := map[string]map[string]struct{}{}
		for p, byKey := range values {
			if p < lo || p > hi {
				continue
			}
			for k, vs := range byKey {
				if set[k] == nil {
					set[k] = map[string]struct{}{}
				}
				for v := range vs {
					set[k][v] = struct{}{}
				}
			}
		}
		out := map[string][]string{}
		for k, vs := range set {
			for v := range vs {
				out[k] = append(out[k], v)
			}
			slices.Sort(out[k])
		}
		return out
	}
	windows := [][2]int64{{0, 0}, {t0, t0}, {t0 + int64(worldPart), t0 + int64(2*worldPart)}, {t0 + int64(3*worldPart) + 5, 0}, {t0 + int64(9*worldPart), 0}}
	for _, win := range windows {
		want := brute(win[0], win[1])
		keysGot, err := st.AttributeKeys(t.Context(), win[0], win[1])
		require.NoError(t, err)
		wantKeys := make([]string, 0, len(want))
		for k := range want {
			wantKeys = append(wantKeys, k)
		}
		slices.Sort(wantKeys)
		require.Equal(t, wantKeys, keysGot, "window %v", win)
		for _, k := range append(wantKeys, "absent") {
			for _, limit := range []int{0, 1, 2, 100} {
				got, err := st.AttributeValues(t.Context(), k, win[0], win[1], limit)
				require.NoError(t, err)
				wantVals := want[k]
				if limit > 0 && len(wantVals) > limit {
					wantVals = wantVals[:limit]
				}
				require.Equal(t, len(wantVals), len(got), "key %s window %v limit %d", k, win, limit)
				if len(wantVals) > 0 {
					require.Equal(t, wantVals, got)
				}
			}
		}
	}
	keysAll, err := st.AttributeKeys(t.Context(), 0, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"attempt", "env", "flag", "k", "region", ServiceNameKey}, keysAll)
}

func TestClosePartitionsSkipsAndReopens(t *testing.T) {
	st := openStore(t, &Options{PartitionDuration: worldPart})
	ctx := t.Context()
	mk := func(n uint64, minute int, svc string) Span {
		s := t0 + int64(minute)*int64(worldPart)
		return Span{TraceID: tid(n), SpanID: sid(1), Name: "op", StartTime: s, EndTime: s + 10, Resource: res(svc)}
	}
	require.NoError(t, st.Write(ctx, []Span{mk(1, 0, "a"), mk(2, 1, "b"), mk(3, 2, "a")}))
	n, err := st.ClosePartitions(ctx, t0+int64(2*worldPart))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = st.ClosePartitions(ctx, t0+int64(2*worldPart))
	require.NoError(t, err)
	require.Zero(t, n, "closed partitions stay closed")
	p0, p1 := st.partitionOf(t0), st.partitionOf(t0+int64(worldPart))
	svcB := Query{Service: "b"}
	require.False(t, st.filter(p0).admits(svcB.clauses()), "partition 0 has no span of b")
	require.True(t, st.filter(p1).admits(svcB.clauses()))
	found, err := st.Find(ctx, Query{Service: "a"})
	require.NoError(t, err)
	require.Len(t, found, 2)
	// A late span of b in partition 0 reopens it and is found.
	require.NoError(t, st.Write(ctx, []Span{mk(4, 0, "b")}))
	require.Nil(t, st.filter(p0))
	found, err = st.Find(ctx, svcB)
	require.NoError(t, err)
	require.Len(t, found, 2)
	_, closer, err := st.db.Get(keys.AppendTraceFilterKey(nil, p0))
	require.ErrorIs(t, err, pebble.ErrNotFound)
	if closer != nil {
		closer.Close()
	}
	n, err = st.ClosePartitions(ctx, t0+int64(2*worldPart))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 2, countKeys(t, st.db, keys.AppendPrefix(nil, keys.StoreTraces, keys.KindTraceFilter)))
	// Retention drops a closed partition with its filter.
	now := time.Unix(0, t0+int64(10*worldPart))
	st.opts.Retention, st.opts.Now = 9*worldPart, func() time.Time { return now }
	dropped, err := st.EnforceRetention(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, dropped)
	require.Nil(t, st.filter(p0))
	require.NotNil(t, st.filter(p1))
	require.Equal(t, 1, countKeys(t, st.db, keys.AppendPrefix(nil, keys.StoreTraces, keys.KindTraceFilter)))
}

func TestCloseWhileWriting(t *testing.T) {
	st := openStore(t, &Options{PartitionDuration: worldPart})
	ctx := t.Context()
	var wg sync.WaitGroup
	const writers, per = 3, 150
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				n := uint64(w*per + i + 1)
				s := t0 + int64(i%4)*int64(worldPart)
				if err := st.Write(ctx, []Span{{TraceID: tid(n), SpanID: sid(1), Name: "op", StartTime: s, EndTime: s + 10, Resource: res("svc")}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			if _, err := st.ClosePartitions(ctx, t0+int64(4*worldPart)); err != nil {
				t.Error(err)
				return
			}
			if _, err := st.Find(ctx, Query{Service: "svc", Limit: 5}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	_, err := st.ClosePartitions(ctx, t0+int64(4*worldPart))
	require.NoError(t, err)
	// Every trace is found through closed partitions' filters.
	found, err := st.Find(ctx, Query{Service: "svc", Limit: writers * per})
	require.NoError(t, err)
	require.Len(t, found, writers*per)
}

func TestFilterAndExtentDecodersRejectDamage(t *testing.T) {
	f := newTermFilter(3)
	for _, term := range []string{"a", "bb", "ccc"} {
		f.addHash(termHash([]byte(term)))
	}
	b := f.appendTo(nil)
	g, err := decodeTermFilter(b)
	require.NoError(t, err)
	require.Equal(t, f, g)
	require.True(t, g.mayContain([]byte("bb")))
	for i := range b {
		_, err := decodeTermFilter(b[:i])
		require.ErrorIs(t, err, encoding.ErrCorrupt, "truncated at %d", i)
	}
	first, last, err := decodeExtent(encoding.AppendUvarint(encoding.AppendVarint(nil, -5), 10))
	require.NoError(t, err)
	require.Equal(t, [2]int64{-5, 5}, [2]int64{first, last})
	_, _, err = decodeExtent([]byte{0x80})
	require.ErrorIs(t, err, encoding.ErrCorrupt)
}

func FuzzDecodeTermFilter(f *testing.F) {
	tf := newTermFilter(2)
	tf.addHash(termHash([]byte("x")))
	f.Add(tf.appendTo(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := decodeTermFilter(data)
		if err != nil {
			require.ErrorIs(t, err, encoding.ErrCorrupt)
			return
		}
		g.mayContain([]byte("probe"))
		again, err := decodeTermFilter(g.appendTo(nil))
		require.NoError(t, err)
		require.Equal(t, g, again)
	})
}

func FuzzDecodeExtent(f *testing.F) {
	f.Add(encoding.AppendUvarint(encoding.AppendVarint(nil, 1<<40), 1<<20))
	f.Fuzz(func(t *testing.T, data []byte) {
		first, last, err := decodeExtent(data)
		if err != nil {
			require.ErrorIs(t, err, encoding.ErrCorrupt)
			return
		}
		require.LessOrEqual(t, first, last)
		f2, l2, err := decodeExtent(encoding.AppendUvarint(encoding.AppendVarint(nil, first), uint64(last-first)))
		require.NoError(t, err)
		require.Equal(t, [2]int64{first, last}, [2]int64{f2, l2})
	})
}
