package logindex

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/internal/keys"
)

// Sealing changes how postings and blocks are stored, never what a query
// finds: the differential test's queries agree with the brute-force scan
// on sealed partitions (with filters) and on the unsealed newest one.
func TestDifferentialSealed(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC).UnixNano()
	recs := genRecords(3, 6000, base, 5)
	sealed := 0
	runDifferentialWith(t, recs, 100, &Options{FlushRecords: 700, MaxScan: 3000}, func(ix *Index) {
		st, err := ix.SealPartitions(t.Context(), base+4*int64(time.Hour))
		require.NoError(t, err)
		sealed += st.Partitions
		ix.mu.RLock()
		defer ix.mu.RUnlock()
		for id, p := range ix.parts {
			if ix.partitionStart(id) < base+3*int64(time.Hour) {
				require.Equal(t, p.nextSeg-1, p.firstSeg, "partition %d has one segment", id)
				require.NotNil(t, p.filter, "partition %d", id)
			}
		}
	})
	require.GreaterOrEqual(t, sealed, 4, "sealed before the reopen, and nothing left to do after")
}

// countKeys counts the keys of one kind in partition part.
func countKeys(t *testing.T, ix *Index, kind byte, part uint32) int {
	lo := keys.AppendLogPartition(nil, kind, part)
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	require.NoError(t, err)
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	require.NoError(t, it.Close())
	return n
}

func TestSealMergesSegmentsAndBlocks(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	o := &Options{FlushRecords: 10}
	ix, err := Open(dir, o)
	require.NoError(t, err)
	// One record per write: a block each; three streams taking turns in
	// runs of 20, so runs of blocks of one stream are adjacent.
	var want []string
	for i := range 120 {
		svc := fmt.Sprint("svc", i/20%3)
		body := fmt.Sprintf("request %d served by %s code%d", i, svc, i%7)
		want = append(want, body)
		require.NoError(t, ix.Write(ctx, []Record{rec(t0+int64(i)*minNs/4, svc, "INFO", body,
			Attribute{"code", IntValue(int64(i % 7))})}))
	}
	part := ix.partitionOf(t0)
	require.Equal(t, 120, countKeys(t, ix, keys.LogBlock, part))
	require.Equal(t, 12, countKeys(t, ix, keys.LogSegment, part))

	queries := []string{"served", "svc1", "code3", "code:3", "service:svc2", `"served by svc0"`, "request AND NOT code:1", "nothere", "code:9"}
	results := func(ix *Index) map[string][]string {
		out := map[string][]string{}
		for _, q := range queries {
			hits, err := ix.Search(ctx, q, t0, t0+hourNs, 1000)
			require.NoError(t, err, q)
			out[q] = bodies(hits)
		}
		counts, err := ix.Count(ctx, "served", t0, t0+hourNs, 5*time.Minute)
		require.NoError(t, err)
		out["count"] = []string{fmt.Sprint(counts)}
		top, err := ix.TopValues(ctx, "served", "code", t0, t0+hourNs, 3)
		require.NoError(t, err)
		out["top"] = []string{fmt.Sprint(top)}
		return out
	}
	before := results(ix)
	require.Len(t, before["served"], 120)

	// Not yet closed: nothing happens.
	st, err := ix.SealPartitions(ctx, t0+hourNs-1)
	require.NoError(t, err)
	require.Zero(t, st)

	st, err = ix.SealPartitions(ctx, t0+hourNs)
	require.NoError(t, err)
	require.Equal(t, 1, st.Partitions)
	require.Equal(t, 11, st.Segments)
	require.Equal(t, 114, st.Blocks, "six runs of 20 blocks, each one block now")
	require.Positive(t, st.BytesIn)
	require.Positive(t, st.BytesOut)
	require.Equal(t, 1, countKeys(t, ix, keys.LogSegment, part))
	require.Equal(t, 6, countKeys(t, ix, keys.LogBlock, part), "each run of one stream merged")
	require.Equal(t, before, results(ix))

	// Sealing again has nothing to do.
	st, err = ix.SealPartitions(ctx, t0+hourNs)
	require.NoError(t, err)
	require.Zero(t, st)

	// A late record goes to a new segment and is found; a second seal
	// folds it in.
	require.NoError(t, ix.Write(ctx, []Record{rec(t0+30*minNs, "svc9", "WARN", "late arrival served")}))
	require.NoError(t, ix.Flush(ctx))
	hits, err := ix.Search(ctx, "late", t0, t0+hourNs, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"late arrival served"}, bodies(hits))
	st, err = ix.SealPartitions(ctx, t0+hourNs)
	require.NoError(t, err)
	require.Equal(t, 1, st.Segments)
	hits, err = ix.Search(ctx, "late OR code:3", t0, t0+hourNs, 100)
	require.NoError(t, err)
	require.Len(t, hits, 1+len(before["code:3"]))

	require.NoError(t, ix.Close())
	ix, err = Open(dir, o)
	require.NoError(t, err)
	defer ix.Close()
	after := results(ix)
	require.Len(t, after["served"], 121)
	require.Equal(t, before["code:3"], after["code:3"])
	require.Equal(t, before["nothere"], after["nothere"])
	ix.mu.RLock()
	require.NotNil(t, ix.parts[part].filter, "the filter is read back")
	ix.mu.RUnlock()
}

func TestSealWhileWritingAndSearching(t *testing.T) {
	ctx := t.Context()
	ix := openTest(t, &Options{FlushRecords: 50, BlockCacheSize: 1 << 20})
	const writers, per = 3, 300
	var wg, writing sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		writing.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range per {
				// Mostly the past two hours (sealable), some late.
				ts := t0 + r.Int64N(3*hourNs)
				body := fmt.Sprintf("writer%d item%d", w, i)
				if err := ix.Write(ctx, []Record{rec(ts, fmt.Sprint("svc", w), "INFO", body)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := ix.Search(ctx, "writer1", t0, t0+3*hourNs, 50); err != nil {
				t.Error(err)
				return
			}
		}
	})
	sealer := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				sealer <- nil
				return
			default:
			}
			if _, err := ix.SealPartitions(ctx, t0+2*hourNs); err != nil {
				sealer <- err
				return
			}
		}
	}()
	writing.Wait()
	close(stop)
	wg.Wait()
	require.NoError(t, <-sealer)
	_, err := ix.SealPartitions(ctx, t0+2*hourNs)
	require.NoError(t, err)
	for w := range writers {
		hits, err := ix.Search(ctx, fmt.Sprintf("writer%d", w), t0, t0+3*hourNs, 10*per)
		require.NoError(t, err)
		require.Len(t, hits, per, "writer %d", w)
		seen := map[string]bool{}
		for _, h := range hits {
			require.False(t, seen[h.Body.Str], "duplicate %s", h.Body.Str)
			seen[h.Body.Str] = true
		}
	}
}

func TestSealThenRetention(t *testing.T) {
	ctx := t.Context()
	now := time.Unix(0, t0+5*hourNs)
	ix := openTest(t, &Options{FlushRecords: 5, Now: func() time.Time { return now }})
	for h := int64(0); h < 4; h++ {
		for i := range 20 {
			require.NoError(t, ix.Write(ctx, []Record{rec(t0+h*hourNs+int64(i)*minNs, "s", "INFO", fmt.Sprintf("hour%d line%d", h, i))}))
		}
	}
	st, err := ix.SealPartitions(ctx, t0+4*hourNs)
	require.NoError(t, err)
	require.Equal(t, 4, st.Partitions)
	n, err := ix.DropBefore(ctx, t0+2*hourNs)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	hits, err := ix.Search(ctx, "line3", 0, 1<<62, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"hour3 line3", "hour2 line3"}, bodies(hits))
	for _, p := range []uint32{ix.partitionOf(t0), ix.partitionOf(t0 + hourNs)} {
		for _, kind := range keys.LogKinds {
			require.Zero(t, countKeys(t, ix, kind, p))
		}
	}
}

func TestSealCancelled(t *testing.T) {
	ix := openTest(t, &Options{FlushRecords: 5})
	for i := range 20 {
		require.NoError(t, ix.Write(t.Context(), []Record{rec(t0+int64(i)*minNs, "s", "INFO", "x")}))
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := ix.SealPartitions(ctx, t0+hourNs)
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, ix.Close())
	_, err = ix.SealPartitions(t.Context(), t0+hourNs)
	require.ErrorIs(t, err, ErrClosed)
}

func TestBloomFilter(t *testing.T) {
	var hashes []uint64
	for i := range 10000 {
		hashes = append(hashes, bloomHash(fmt.Appendf(nil, "tkey%d", i)))
	}
	f := newBloom(hashes)
	for _, h := range hashes {
		require.True(t, f.mayContain(h), "no false negatives")
	}
	fp := 0
	for i := range 10000 {
		if f.mayContain(bloomHash(fmt.Appendf(nil, "tother%d", i))) {
			fp++
		}
	}
	require.Less(t, fp, 300, "false positives out of 10000")
	require.False(t, newBloom(nil).mayContain(bloomHash([]byte("t"))), "an empty filter holds nothing")
}

// BenchmarkSearchSealed compares searches over 24 hourly partitions of
// 240k records flushed every 1,000 records (ten postings segments per
// partition) before and after SealPartitions, and reports the log store's
// table bytes per record in each state.
func BenchmarkSearchSealed(b *testing.B) {
	ix, recs := benchIndex(b, &Options{FlushRecords: 1000})
	t0, t1 := recs[0].Timestamp-int64(time.Hour), recs[len(recs)-1].Timestamp+1
	trace := recs[len(recs)/2].TraceIDHex()
	tableBytes := func() float64 {
		lo := []byte{keys.StoreLogs}
		require.NoError(b, ix.db.Compact(b.Context(), lo, keys.PrefixEnd(lo), true))
		n, err := ix.db.EstimateDiskUsage(lo, keys.PrefixEnd(lo))
		require.NoError(b, err)
		return float64(n) / float64(len(recs))
	}
	for _, state := range []string{"unsealed", "sealed"} {
		if state == "sealed" {
			_, err := ix.SealPartitions(b.Context(), t1+int64(time.Hour))
			require.NoError(b, err)
		}
		perRecord := tableBytes()
		for _, q := range []struct{ name, query string }{
			{"trace", "trace_id:" + trace},
			{"rare", "id499 AND 東京 AND backoff AND gateway"},
			{"absent", "nosuchterm"},
			{"frequent", "error"},
			{"prefix", "gate*"},
		} {
			b.Run(state+"/"+q.name, func(b *testing.B) {
				for range b.N {
					if _, err := ix.Search(b.Context(), q.query, t0, t1, 100); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(perRecord, "B/record")
			})
		}
	}
}
