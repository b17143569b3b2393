package logindex

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchIndex holds 240k generated records over 24 hourly partitions,
// written 1,000 at a time with opts and flushed, with a trace ID on every
// 50th record.
func benchIndex(b *testing.B, opts *Options) (*Index, []Record) {
	base := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC).UnixNano()
	recs := genRecords(3, 240_000, base, 24)
	for i := range recs {
		recs[i].TraceID = [16]byte{}
		if i%50 == 0 {
			recs[i].TraceID = [16]byte{0xab, byte(i >> 16), byte(i >> 8), byte(i)}
		}
	}
	ix, err := Open(b.TempDir(), opts)
	require.NoError(b, err)
	b.Cleanup(func() { _ = ix.Close() })
	for i := 0; i < len(recs); i += 1000 {
		require.NoError(b, ix.Write(b.Context(), recs[i:i+1000]))
	}
	require.NoError(b, ix.Flush(b.Context()))
	return ix, recs
}

func BenchmarkWrite(b *testing.B) {
	base := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC).UnixNano()
	recs := genRecords(5, 100_000, base, 4)
	var bytes int
	for i := range recs {
		bytes += len(recs[i].Body.Str)
	}
	ix, err := Open(b.TempDir(), nil)
	require.NoError(b, err)
	defer ix.Close()
	n := 0
	for b.Loop() {
		for i := 0; i < len(recs); i += 1000 {
			require.NoError(b, ix.Write(b.Context(), recs[i:i+1000]))
		}
		n += len(recs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(bytes)/float64(len(recs)), "B/line")
}

func BenchmarkSearch(b *testing.B) {
	ix, recs := benchIndex(b, nil)
	t0, t1 := recs[0].Timestamp-int64(time.Hour), recs[len(recs)-1].Timestamp+1
	trace := recs[len(recs)/2].TraceIDHex()
	for _, q := range []struct{ name, query string }{
		{"trace", "trace_id:" + trace},
		{"rare", "id499 AND 東京 AND backoff AND gateway"},
		{"frequent", "error"},
		{"phrase", `"slow query"`},
		{"field", "service:redirect AND timeout"},
	} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := ix.Search(b.Context(), q.query, t0, t1, 100); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("count24", func(b *testing.B) {
		for b.Loop() {
			if _, err := ix.Count(b.Context(), "error", t0, t1, time.Duration(t1-t0)/24); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("top5", func(b *testing.B) {
		for b.Loop() {
			if _, err := ix.TopValues(b.Context(), "error", "service", t0, t1, 5); err != nil {
				b.Fatal(err)
			}
		}
	})
	_ = fmt.Sprint
}
