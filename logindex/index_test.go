package logindex

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/kv"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano()

const (
	minNs  = int64(time.Minute)
	hourNs = int64(time.Hour)
)

func rec(ts int64, svc, level, body string, attrs ...Attribute) Record {
	return Record{Timestamp: ts, SeverityText: level, Body: StringValue(body), Attributes: attrs,
		Resource: []Attribute{{ServiceAttr, StringValue(svc)}}}
}

func bodies(hits []Hit) []string {
	out := make([]string, len(hits))
	for i := range hits {
		out[i] = string(hits[i].BodyText())
	}
	return out
}

func openTest(t *testing.T, o *Options) *Index {
	ix, err := Open(t.TempDir(), o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ix.Close() })
	return ix
}

func TestSearchBasics(t *testing.T) {
	ctx := t.Context()
	ix := openTest(t, nil)
	require.NoError(t, ix.Write(ctx, []Record{
		rec(t0+1*minNs, "redirect", "ERROR", "slow query on 10.0.0.1 took 900ms"),
		rec(t0+2*minNs, "redirect", "INFO", "request served from 10.0.0.2"),
		rec(t0+3*minNs, "frontend", "ERROR", "slow query timeout after 5s"),
		rec(t0+4*minNs, "redirect", "ERROR", "query slow: retrying"),
	}))
	end := t0 + hourNs
	for q, want := range map[string][]string{
		`service:redirect AND level:error AND "slow query" AND NOT timeout`: {"slow query on 10.0.0.1 took 900ms"},
		`"10.0.0.1"`:                           {"slow query on 10.0.0.1 took 900ms"},
		`slow`:                                 {"query slow: retrying", "slow query timeout after 5s", "slow query on 10.0.0.1 took 900ms"},
		`slow -query`:                          nil,
		`serv*`:                                {"request served from 10.0.0.2"},
		`service:front*`:                       {"slow query timeout after 5s"},
		`level:info OR timeout`:                {"slow query timeout after 5s", "request served from 10.0.0.2"},
		`(SLOW AND Retrying) OR "served from"`: {"query slow: retrying", "request served from 10.0.0.2"},
		`severity:ERROR service:redirect`:      {"query slow: retrying", "slow query on 10.0.0.1 took 900ms"},
		`nothing_here`:                         nil,
	} {
		hits, err := ix.Search(ctx, q, t0, end, 10)
		require.NoError(t, err, q)
		require.Equal(t, want, nilIfEmpty(bodies(hits)), q)
	}
	// Time range is [t0, t1).
	hits, err := ix.Search(ctx, "slow", t0+1*minNs, t0+3*minNs, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"slow query on 10.0.0.1 took 900ms"}, bodies(hits))
	// Limit stops at the newest.
	hits, err = ix.Search(ctx, "slow", t0, end, 1)
	require.NoError(t, err)
	require.Equal(t, []string{"query slow: retrying"}, bodies(hits))
	_, err = ix.Search(ctx, "slow", end, t0, 1)
	require.ErrorIs(t, err, ErrBadRange)
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestParseErrors(t *testing.T) {
	for q, pos := range map[string]int{
		`"unterminated`: 0,
		`a AND`:         5,
		`(a OR b`:       7,
		`a OR OR b`:     5,
		`()`:            1,
		`a )`:           2,
		`:value`:        0,
		`field:`:        6,
		`"..."`:         0,
		`foo AND ("bar`: 9,
		`pre.*`:         0,
	} {
		_, err := ParseQuery(q)
		var pe *ParseError
		require.True(t, errors.As(err, &pe), "%q: %v", q, err)
		require.ErrorIs(t, err, ErrSyntax)
		require.Equal(t, pos, pe.Pos, "%q: %v", q, err)
		require.Contains(t, err.Error(), fmt.Sprintf("position %d", pos))
	}
	for _, q := range []string{"", "*", "a b", "-a", "!a", "a && b || c", `f:"x y"`, `f:x*`, `a\:b`, `"a" "b"`} {
		_, err := ParseQuery(q)
		require.NoError(t, err, q)
	}
	ix := openTest(t, nil)
	_, err := ix.Search(t.Context(), "a AND", t0, t0+1, 1)
	require.ErrorIs(t, err, ErrSyntax)
}

func TestJSONAndLogfmtFields(t *testing.T) {
	ctx := t.Context()
	ix := openTest(t, nil)
	require.NoError(t, ix.Write(ctx, []Record{
		rec(t0+1, "api", "INFO", `{"user":"Alice","status":500,"ok":false,"nested":{"x":1},"msg":"payment failed"}`),
		rec(t0+2, "api", "INFO", `method=GET path=/r/abc status=200 msg="all good here" dur=12ms`),
		rec(t0+3, "api", "INFO", `plain line status 500`, Attribute{"http.route", StringValue("/checkout")}, Attribute{"attempt", IntValue(3)}),
	}))
	for q, want := range map[string]int{
		"user:alice":                1,
		"status:500":                1,
		"ok:false":                  1,
		"nested:1":                  0,
		"payment":                   1,
		"method:get AND status:200": 1,
		`msg:"all good here"`:       1,
		"path:/r/*":                 1,
		"http.route:/checkout":      1,
		"attempt:3":                 1,
		"status:*":                  2,
		"500":                       2, // tokens of the JSON body and the plain line
	} {
		hits, err := ix.Search(ctx, q, t0, t0+hourNs, 10)
		require.NoError(t, err, q)
		require.Len(t, hits, want, q)
	}
}

func TestUTF8AndBytesBodies(t *testing.T) {
	ctx := t.Context()
	ix := openTest(t, nil)
	bad := "caf\xc3 broken \xff\xfeQUERY über"
	require.NoError(t, ix.Write(ctx, []Record{
		rec(t0+1, "s", "INFO", bad),
		{Timestamp: t0 + 2, Body: BytesValue([]byte("raw\x00bytes Größe"))},
		rec(t0+3, "s", "INFO", "東京 データ ÜBER"),
	}))
	hits, err := ix.Search(ctx, "query", t0, t0+hourNs, 10)
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Equal(t, KindBytes, hits[0].Body.Kind, "invalid UTF-8 is stored as bytes")
	require.Equal(t, []byte(bad), hits[0].Body.Bytes, "every byte reads back")
	hits, err = ix.Search(ctx, "über", t0, t0+hourNs, 10)
	require.NoError(t, err)
	require.Len(t, hits, 2)
	hits, err = ix.Search(ctx, `größe AND bytes`, t0, t0+hourNs, 10)
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Equal(t, []byte("raw\x00bytes Größe"), hits[0].Body.Bytes)
	hits, err = ix.Search(ctx, `"東京 データ"`, t0, t0+hourNs, 10)
	require.NoError(t, err)
	require.Len(t, hits, 1)
}

func TestTokenizer(t *testing.T) {
	require.Equal(t, []string{"10", "0", "0", "1", "get", "r_x", "größe", "東京"}, Tokens("10.0.0.1 GET /r_x Größe,東京"))
	require.Nil(t, Tokens("  ... !!"))
	var tk Tokenizer
	src := []byte("Connection refused from 10.0.0.1 user_42 ÜBER")
	allocs := testing.AllocsPerRun(100, func() {
		tk.Reset(src)
		for tk.Next() {
		}
	})
	require.Zero(t, allocs, "tokens are found without allocating")
}

func TestRecordRoundTripAndMissingTimestamp(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 5, 1, 13, 30, 0, 0, time.UTC)
	ix := openTest(t, &Options{Now: func() time.Time { return now }})
	r := Record{
		ObservedTimestamp: 77, SeverityNumber: 17, SeverityText: "ERROR",
		Body:       StringValue("boom"),
		Attributes: []Attribute{{"i", IntValue(-5)}, {"f", DoubleValue(2.5)}, {"b", BoolValue(true)}, {"raw", BytesValue([]byte{0, 1})}, {"e", Value{}}},
		Resource:   []Attribute{{ServiceAttr, StringValue("svc")}, {"host", StringValue("h1")}},
		TraceID:    [16]byte{1, 2, 3}, SpanID: [8]byte{9}, Flags: 1,
	}
	require.NoError(t, ix.Write(ctx, []Record{r}))
	hits, err := ix.Search(ctx, "trace_id:"+r.TraceIDHex(), 0, 1<<62, 10)
	require.NoError(t, err)
	require.Len(t, hits, 1)
	r.Timestamp = now.UnixNano()
	require.Equal(t, r, hits[0].Record)
	hits, err = ix.Search(ctx, "host:h1 AND f:2.5 AND b:true AND i:\\-5", 0, 1<<62, 10)
	require.NoError(t, err)
	require.Len(t, hits, 1)
}

func TestCountAndTopValues(t *testing.T) {
	ctx := t.Context()
	ix := openTest(t, &Options{FlushRecords: 7})
	var recs []Record
	for i := 0; i < 30; i++ {
		lvl := []string{"INFO", "ERROR", "WARN"}[i%3]
		svc := []string{"a", "b"}[i%2]
		recs = append(recs, rec(t0+int64(i)*minNs, svc, lvl, fmt.Sprintf("event %d happened", i)))
	}
	require.NoError(t, ix.Write(ctx, recs[:13]))
	require.NoError(t, ix.Write(ctx, recs[13:]))
	b, err := ix.Count(ctx, "level:error", t0, t0+30*minNs, 10*time.Minute)
	require.NoError(t, err)
	require.Equal(t, []Bucket{{t0, 3}, {t0 + 10*minNs, 4}, {t0 + 20*minNs, 3}}, b)
	b, err = ix.Count(ctx, `"event 4"`, t0, t0+30*minNs, 15*time.Minute)
	require.NoError(t, err)
	require.Equal(t, []Bucket{{t0, 1}, {t0 + 15*minNs, 0}}, b)
	top, err := ix.TopValues(ctx, "event", "level", t0, t0+30*minNs, 2)
	require.NoError(t, err)
	require.Equal(t, []ValueCount{{"error", 10}, {"info", 10}}, top)
	top, err = ix.TopValues(ctx, "level:warn", "service", t0, t0+30*minNs, 5)
	require.NoError(t, err)
	require.Equal(t, []ValueCount{{"a", 5}, {"b", 5}}, top)
	_, err = ix.Count(ctx, "x", t0, t0+1, 0)
	require.ErrorIs(t, err, ErrBadRange)
}

func TestContext(t *testing.T) {
	ctx := t.Context()
	ix := openTest(t, &Options{FlushRecords: 5})
	var recs []Record
	for i := 0; i < 20; i++ {
		svc := "a"
		if i%4 == 3 {
			svc = "b"
		}
		// Crosses a partition boundary at i == 10.
		recs = append(recs, rec(t0+hourNs-10*minNs+int64(i)*minNs, svc, "INFO", fmt.Sprintf("line %d", i)))
	}
	for i := 0; i < len(recs); i += 3 {
		require.NoError(t, ix.Write(ctx, recs[i:min(i+3, len(recs))]))
	}
	hits, err := ix.Search(ctx, `"line 9"`, t0, t0+2*hourNs, 1)
	require.NoError(t, err)
	require.Len(t, hits, 1)
	around, err := ix.Context(ctx, hits[0], 3)
	require.NoError(t, err)
	require.Equal(t, []string{"line 5", "line 6", "line 8", "line 9", "line 10", "line 12", "line 13"}, bodies(around))
	hits, err = ix.Search(ctx, `"line 1"`, t0, t0+2*hourNs, 1)
	require.NoError(t, err)
	around, err = ix.Context(ctx, hits[0], 2)
	require.NoError(t, err)
	require.Equal(t, []string{"line 0", "line 1", "line 2", "line 4"}, bodies(around))
}

func TestRetention(t *testing.T) {
	ctx := t.Context()
	now := time.Unix(0, t0+10*hourNs)
	dir := t.TempDir()
	o := &Options{Retention: 3 * time.Hour, Now: func() time.Time { return now }}
	ix, err := Open(dir, o)
	require.NoError(t, err)
	var recs []Record
	for h := int64(0); h < 10; h++ {
		recs = append(recs, rec(t0+h*hourNs+minNs, "s", "INFO", fmt.Sprintf("hour %d", h)))
	}
	require.NoError(t, ix.Write(ctx, recs))
	require.Equal(t, 10, ix.Stats().Partitions)
	n, err := ix.EnforceRetention(ctx)
	require.NoError(t, err)
	require.Equal(t, 7, n, "partitions ending at or before now-3h are dropped")
	hits, err := ix.Search(ctx, "hour", 0, 1<<62, 100)
	require.NoError(t, err)
	require.Equal(t, []string{"hour 9", "hour 8", "hour 7"}, bodies(hits))
	require.NoError(t, ix.Close())
	ix, err = Open(dir, o)
	require.NoError(t, err)
	defer ix.Close()
	hits, err = ix.Search(ctx, "hour", 0, 1<<62, 100)
	require.NoError(t, err)
	require.Len(t, hits, 3, "dropped partitions stay dropped after reopen")
}

func TestScanLimit(t *testing.T) {
	ctx := t.Context()
	ix := openTest(t, &Options{MaxScan: 50})
	var recs []Record
	for i := 0; i < 200; i++ {
		recs = append(recs, rec(t0+int64(i), "s", "INFO", fmt.Sprintf("n%d common", i%7)))
	}
	require.NoError(t, ix.Write(ctx, recs))
	hits, err := ix.Search(ctx, "NOT n3", t0, t0+hourNs, 10)
	require.NoError(t, err, "a small limit examines few records")
	require.Len(t, hits, 10)
	_, err = ix.Count(ctx, "NOT n3", t0, t0+hourNs, time.Minute)
	require.ErrorIs(t, err, ErrScanLimit)
	_, err = ix.Search(ctx, "*", t0, t0+hourNs, 100)
	require.ErrorIs(t, err, ErrScanLimit)
	b, err := ix.Count(ctx, "common AND NOT n3", t0, t0+hourNs, time.Hour)
	require.NoError(t, err, "a narrowing query is not bounded")
	require.Equal(t, uint64(200-29), b[0].Count)
}

func TestConcurrentWritersAndSearchers(t *testing.T) {
	ctx := t.Context()
	ix := openTest(t, &Options{FlushRecords: 300})
	const writers, batches, per = 4, 25, 20
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				recs := make([]Record, per)
				for i := range recs {
					recs[i] = rec(t0+int64(b*per+i)*int64(time.Second), fmt.Sprintf("w%d", w), "INFO", fmt.Sprintf("writer%d batch%d item%d shared", w, b, i))
				}
				if err := ix.Write(ctx, recs); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	var rg sync.WaitGroup
	for r := 0; r < 3; r++ {
		rg.Add(1)
		go func() {
			defer rg.Done()
			last := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				b, err := ix.Count(ctx, "shared", t0, t0+2*hourNs, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				n := int(b[0].Count + b[1].Count)
				if n < last {
					t.Errorf("count went back from %d to %d", last, n)
					return
				}
				last = n
				if _, err := ix.Search(ctx, `shared AND "batch3"`, t0, t0+2*hourNs, 5); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	rg.Wait()
	b, err := ix.Count(ctx, "shared", t0, t0+2*hourNs, 2*time.Hour)
	require.NoError(t, err)
	require.Equal(t, uint64(writers*batches*per), b[0].Count)
	for w := 0; w < writers; w++ {
		hits, err := ix.Search(ctx, fmt.Sprintf("service:w%d", w), t0, t0+2*hourNs, 1000)
		require.NoError(t, err)
		require.Len(t, hits, batches*per)
	}
}

func TestCorruptBlockIsAnError(t *testing.T) {
	recs := []Record{rec(t0, "s", "INFO", "hello world"), rec(t0+1, "s", "INFO", "second")}
	block, _ := encodeRecords(nil, nil, recs)
	got, err := decodeRecords(block)
	require.NoError(t, err)
	require.Equal(t, recs, got)
	for i := range block {
		bad := append([]byte(nil), block...)
		bad[i] ^= 0x40
		_, err := decodeRecords(bad)
		require.ErrorIs(t, err, encoding.ErrCorrupt, "flipped byte %d", i)
	}
	for n := 0; n < len(block); n++ {
		_, err := decodeRecords(block[:n])
		require.ErrorIs(t, err, encoding.ErrCorrupt, "truncated to %d", n)
	}
}

func TestOpenRefusesOlderFormat(t *testing.T) {
	dir := t.TempDir()
	db, err := kv.Open(dir, kv.Options{})
	require.NoError(t, err)
	defer db.Close()
	// The meta record of an index written by the first format.
	require.NoError(t, db.Set(metaKey, encoding.AppendUvarint([]byte{1}, uint64(time.Hour)), kv.WriteOptions))
	_, err = OpenPebble(db, nil)
	require.ErrorIs(t, err, ErrFormat)
}

func TestOpenPebbleLeavesDBOpen(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, ix.Write(t.Context(), []Record{rec(t0, "s", "INFO", "persisted")}))
	require.NoError(t, ix.Close())
	require.ErrorIs(t, ix.Write(t.Context(), []Record{rec(t0, "s", "INFO", "x")}), ErrClosed)
	_, err = Open(dir, &Options{PartitionDuration: 2 * time.Hour})
	require.ErrorIs(t, err, ErrOptions, "the partition duration is fixed at creation")
	_, err = Open(t.TempDir(), &Options{MaxScan: -1, Retention: -1})
	require.ErrorIs(t, err, ErrOptions)

	db, err := kv.Open(dir, kv.Options{})
	require.NoError(t, err)
	defer db.Close()
	ix, err = OpenPebble(db, nil)
	require.NoError(t, err)
	hits, err := ix.Search(t.Context(), "persisted", t0, t0+1, 1)
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.NoError(t, ix.Close())
	require.NoError(t, db.Set([]byte("x-other-store"), []byte("v"), kv.WriteOptions), "the caller's Pebble stays open")
}

func TestWriteContextCancelled(t *testing.T) {
	ix := openTest(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, ix.Write(ctx, []Record{rec(t0, "s", "INFO", "x")}), context.Canceled)
	require.Equal(t, uint64(0), ix.Stats().Records)
}

func TestPostingsAndChunkRoundTrip(t *testing.T) {
	for _, bm := range []*roaring.Bitmap{roaring.BitmapOf(0), roaring.BitmapOf(3, 9, 1<<31, 1<<32-1), roaring.BitmapOf()} {
		b, err := appendPostings(nil, bm.Clone())
		require.NoError(t, err)
		got := roaring.New()
		require.NoError(t, decodePostings(got, b, nil))
		require.True(t, bm.Equals(got))
	}
	big := roaring.New()
	for i := uint32(0); i < 100000; i += 3 {
		big.Add(i)
	}
	b, err := appendPostings(nil, big.Clone())
	require.NoError(t, err)
	require.Equal(t, byte(postingsRoaring), b[0]&1)
	got := roaring.New()
	require.NoError(t, decodePostings(got, b, nil))
	require.True(t, big.Equals(got))
	require.ErrorIs(t, decodePostings(got, []byte{9}, nil), encoding.ErrCorrupt)

	// Mid-sized lists are smaller as deltas than as roaring; long ones
	// decode through a bitset, sparse ones ordinal by ordinal, and the
	// scratch buffers carry nothing from one value to the next.
	var sc postingsScratch
	for _, c := range []struct{ n, step uint32 }{{500, 1}, {500, 7}, {500, 300}, {500, 100000}, {3000, 5}, {3000, 100}} {
		step := c.step
		bm := roaring.New()
		for i := uint32(0); i < c.n; i++ {
			bm.Add(3 + i*step)
		}
		b, err := appendPostings(nil, bm)
		require.NoError(t, err)
		if step > 1 && step < 300 {
			require.Equal(t, byte(postingsList), b[0]&1, "%d every %d", c.n, step)
		}
		require.NoError(t, decodePostings(got, b, &sc))
		require.True(t, bm.Equals(got), "%d every %d", c.n, step)
	}
	// A value is all of v: trailing bytes and a short tail are corrupt.
	b, err = appendPostings(nil, roaring.BitmapOf(4, 8))
	require.NoError(t, err)
	require.ErrorIs(t, decodePostings(got, append(b, 0), &sc), encoding.ErrCorrupt)
	require.ErrorIs(t, decodePostings(got, b[:len(b)-1], &sc), encoding.ErrCorrupt)
	require.ErrorIs(t, decodePostings(got, []byte{4, 1, 0}, &sc), encoding.ErrCorrupt, "repeated ordinal")

	var cw chunkWriter
	toks := []string{"a", "ab", "abc", "abd", "b", "b\x00c"}
	for i, tk := range toks {
		p, _ := appendPostings(nil, roaring.BitmapOf(uint32(i)))
		cw.add([]byte(tk), p)
	}
	var cr chunkReader
	cr.reset(cw.appendTo(nil))
	var seen []string
	for cr.next() {
		require.NoError(t, decodePostings(got, cr.postings, nil))
		require.True(t, got.Contains(uint32(len(seen))))
		seen = append(seen, string(cr.tok))
	}
	require.NoError(t, cr.err)
	require.Equal(t, toks, seen)
}

func TestCountExtremeRange(t *testing.T) {
	ix := openTest(t, nil)
	require.NoError(t, ix.Write(t.Context(), []Record{rec(t0, "s", "INFO", "edge"), rec(-5, "s", "INFO", "edge before epoch")}))
	b, err := ix.Count(t.Context(), "edge", -1<<63, 1<<63-1, time.Duration(1<<62))
	require.NoError(t, err)
	require.Len(t, b, 4)
	var n uint64
	for _, x := range b {
		n += x.Count
	}
	require.Equal(t, uint64(2), n)
	_, err = ix.Count(t.Context(), "edge", -1<<63, 1<<63-1, time.Nanosecond)
	require.ErrorIs(t, err, ErrBadRange, "too many buckets")
}

// TestDroppedPartitionRewritten checks that a partition dropped and then
// written again never shows cached blocks of its earlier life.
func TestDroppedPartitionRewritten(t *testing.T) {
	ctx := t.Context()
	ix := openTest(t, nil)
	require.NoError(t, ix.Write(ctx, []Record{rec(t0, "s", "INFO", "first life")}))
	hits, err := ix.Search(ctx, "life", t0, t0+hourNs, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"first life"}, bodies(hits))
	n, err := ix.DropBefore(ctx, t0+2*hourNs)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, ix.Write(ctx, []Record{rec(t0, "s", "INFO", "second life")}))
	hits, err = ix.Search(ctx, "life", t0, t0+hourNs, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"second life"}, bodies(hits))
}
