package histcmp

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pillar-db/pillar/encoding"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

const chunkSamples = 120

// latencySeries returns n scrapes, 15 s apart with a little jitter, of a
// request-latency histogram at schema 3: each scrape adds 800–1200
// log-normal latencies (median 50 ms), about 20 populated buckets, with
// tail buckets appearing over time.
func latencySeries(seed uint64, n int) ([]int64, []*encoding.Histogram) {
	rng := rand.New(rand.NewPCG(seed, 3))
	counts := map[int64]int64{}
	var sum float64
	var count uint64
	ts := make([]int64, n)
	hs := make([]*encoding.Histogram, n)
	t := int64(1_700_000_000_000)
	for i := range n {
		for range 800 + rng.IntN(400) {
			v := math.Exp(math.Log(0.05) + 0.2*rng.NormFloat64())
			counts[int64(math.Ceil(math.Log2(v)*8))]++
			sum += v
			count++
		}
		h := &encoding.Histogram{CounterResetHint: encoding.NotCounterReset, Schema: 3,
			ZeroThreshold: 0x1p-128, Count: count, Sum: sum}
		idx := make([]int64, 0, len(counts))
		for k := range counts {
			idx = append(idx, k)
		}
		slices.Sort(idx)
		var prev, next int64
		for j, ix := range idx {
			if j > 0 && ix == next {
				h.PositiveSpans[len(h.PositiveSpans)-1].Length++
			} else {
				h.PositiveSpans = append(h.PositiveSpans, encoding.BucketSpan{Offset: int32(ix - next), Length: 1})
			}
			next = ix + 1
			h.PositiveBuckets = append(h.PositiveBuckets, counts[ix]-prev)
			prev = counts[ix]
		}
		t += 15_000 + int64(rng.IntN(5)) - 2
		ts[i], hs[i] = t, h
	}
	return ts, hs
}

// toProm converts to Prometheus' model; the two are field-for-field alike.
func toProm(h *encoding.Histogram) *histogram.Histogram {
	p := &histogram.Histogram{
		CounterResetHint: histogram.CounterResetHint(h.CounterResetHint),
		Schema:           h.Schema,
		ZeroThreshold:    h.ZeroThreshold,
		ZeroCount:        h.ZeroCount,
		Count:            h.Count,
		Sum:              h.Sum,
		PositiveBuckets:  slices.Clone(h.PositiveBuckets),
		NegativeBuckets:  slices.Clone(h.NegativeBuckets),
	}
	for _, s := range h.PositiveSpans {
		p.PositiveSpans = append(p.PositiveSpans, histogram.Span{Offset: s.Offset, Length: s.Length})
	}
	for _, s := range h.NegativeSpans {
		p.NegativeSpans = append(p.NegativeSpans, histogram.Span{Offset: s.Offset, Length: s.Length})
	}
	return p
}

func pillarChunks(tb testing.TB, ts []int64, hs []*encoding.Histogram) [][]byte {
	var out [][]byte
	c := encoding.NewHistogramChunk()
	for i := range ts {
		if i > 0 && i%chunkSamples == 0 {
			out = append(out, slices.Clone(c.Bytes()))
			c.Reset()
		}
		require.NoError(tb, c.Append(ts[i], hs[i]))
	}
	return append(out, slices.Clone(c.Bytes()))
}

// promChunks appends to Prometheus chunks of 120 samples, following its
// appender when it recodes a chunk or cuts a new one.
func promChunks(tb testing.TB, ts []int64, hs []*histogram.Histogram) [][]byte {
	var out [][]byte
	var c chunkenc.Chunk
	var app chunkenc.Appender
	for i := range ts {
		if i%chunkSamples == 0 {
			if c != nil {
				out = append(out, slices.Clone(c.Bytes()))
			}
			c = chunkenc.NewHistogramChunk()
			var err error
			app, err = c.Appender()
			require.NoError(tb, err)
		}
		nc, recoded, napp, err := app.AppendHistogram(nil, 0, ts[i], hs[i], false)
		require.NoError(tb, err)
		if nc != nil {
			if !recoded {
				out = append(out, slices.Clone(c.Bytes()))
			}
			c = nc
		}
		app = napp
	}
	return append(out, slices.Clone(c.Bytes()))
}

func promSeries(hs []*encoding.Histogram) []*histogram.Histogram {
	out := make([]*histogram.Histogram, len(hs))
	for i, h := range hs {
		out[i] = toProm(h)
	}
	return out
}

func totalLen(chunks [][]byte) int {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	return n
}

// TestBothDecodeTheSeries checks that both encodings give the series back,
// so the sizes compared are sizes of the same data, and logs them.
func TestBothDecodeTheSeries(t *testing.T) {
	ts, hs := latencySeries(1, 10*chunkSamples)
	ph := promSeries(hs)

	i := 0
	for _, c := range pillarChunks(t, ts, hs) {
		it, err := encoding.NewHistogramIterator(c)
		require.NoError(t, err)
		for it.Next() {
			gt, h := it.AtHistogram(nil)
			require.Equal(t, ts[i], gt)
			require.True(t, hs[i].Equal(h), "pillar sample %d", i)
			i++
		}
		require.NoError(t, it.Err())
	}
	require.Equal(t, len(ts), i)

	i = 0
	for _, c := range promChunks(t, ts, ph) {
		it := chunkenc.NewHistogramChunk()
		it.Reset(c)
		ci := it.Iterator(nil)
		for ci.Next() == chunkenc.ValHistogram {
			gt, h := ci.AtHistogram(nil)
			require.Equal(t, ts[i], gt)
			// Prometheus keeps one counter-reset hint per chunk and returns
			// the chunk's union layout, with spans shared with the iterator:
			// compare a compacted copy, hint aside.
			h = h.Copy()
			h.CounterResetHint = ph[i].CounterResetHint
			require.True(t, ph[i].Equals(h.Compact(0)), "prometheus sample %d:\nwant %v\ngot  %v", i, ph[i], h)
			i++
		}
		require.NoError(t, ci.Err())
	}
	require.Equal(t, len(ts), i)

	p, q := totalLen(pillarChunks(t, ts, hs)), totalLen(promChunks(t, ts, ph))
	t.Logf("bytes/sample over %d samples in chunks of %d: pillar %.2f, prometheus %.2f (pillar/prometheus %.2f)",
		len(ts), chunkSamples, float64(p)/float64(len(ts)), float64(q)/float64(len(ts)), float64(p)/float64(q))
	require.Less(t, p, q, "pillar's chunk must not be larger")
}

// TestTruncatedChunks cuts one chunk at every length and counts how often
// each decoder reports an error rather than returning fewer (or wrong)
// histograms without one.
func TestTruncatedChunks(t *testing.T) {
	ts, hs := latencySeries(2, chunkSamples)
	pc := pillarChunks(t, ts, hs)[0]
	qc := promChunks(t, ts, promSeries(hs))[0]

	pillarSilent := 0
	for n := range len(pc) {
		it, err := encoding.NewHistogramIterator(pc[:n])
		if err != nil {
			continue
		}
		for it.Next() {
		}
		if it.Err() == nil {
			pillarSilent++
		}
	}
	promSilent := 0
	for n := 3; n < len(qc); n++ { // shorter than its header, Prometheus' iterator would panic
		c := chunkenc.NewHistogramChunk()
		c.Reset(qc[:n])
		it := c.Iterator(nil)
		for it.Next() != chunkenc.ValNone {
		}
		if it.Err() == nil {
			promSilent++
		}
	}
	t.Logf("truncated prefixes decoded without an error: pillar %d of %d, prometheus %d of %d",
		pillarSilent, len(pc), promSilent, len(qc)-3)
	require.Zero(t, pillarSilent)
}

func BenchmarkAppend(b *testing.B) {
	ts, hs := latencySeries(1, 10*chunkSamples)
	b.Run("pillar", func(b *testing.B) {
		size := totalLen(pillarChunks(b, ts, hs))
		c := encoding.NewHistogramChunk()
		b.ReportAllocs()
		for b.Loop() {
			for i := range ts {
				if i%chunkSamples == 0 {
					c.Reset()
				}
				if err := c.Append(ts[i], hs[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
		report(b, len(ts), size)
	})
	b.Run("prometheus", func(b *testing.B) {
		ph := promSeries(hs)
		size := totalLen(promChunks(b, ts, ph))
		b.ReportAllocs()
		for b.Loop() {
			promChunksNoCopy(ts, ph)
		}
		report(b, len(ts), size)
	})
}

// promChunksNoCopy is promChunks without keeping the chunks, for timing.
func promChunksNoCopy(ts []int64, hs []*histogram.Histogram) {
	var app chunkenc.Appender
	for i := range ts {
		if i%chunkSamples == 0 {
			app, _ = chunkenc.NewHistogramChunk().Appender()
		}
		_, _, napp, err := app.AppendHistogram(nil, 0, ts[i], hs[i], false)
		if err != nil {
			panic(err)
		}
		app = napp
	}
}

func BenchmarkIterate(b *testing.B) {
	ts, hs := latencySeries(1, 10*chunkSamples)
	b.Run("pillar", func(b *testing.B) {
		chunks := pillarChunks(b, ts, hs)
		var it encoding.HistogramIterator
		var h encoding.Histogram
		b.ReportAllocs()
		for b.Loop() {
			for _, c := range chunks {
				if err := it.Reset(c); err != nil {
					b.Fatal(err)
				}
				for it.Next() {
					it.AtHistogram(&h)
				}
			}
		}
		report(b, len(ts), totalLen(chunks))
	})
	b.Run("prometheus", func(b *testing.B) {
		chunks := promChunks(b, ts, promSeries(hs))
		c := chunkenc.NewHistogramChunk()
		var it chunkenc.Iterator
		var h histogram.Histogram
		b.ReportAllocs()
		for b.Loop() {
			for _, raw := range chunks {
				c.Reset(raw)
				it = c.Iterator(it)
				for it.Next() == chunkenc.ValHistogram {
					it.AtHistogram(&h)
				}
			}
		}
		report(b, len(ts), totalLen(chunks))
	})
}

func report(b *testing.B, samples, size int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*samples), "ns/sample")
	b.ReportMetric(float64(size)/float64(samples), "B/sample")
}
