package encoding

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// latencySeries returns n scrapes, 15 s apart, of a request-latency
// histogram at schema 3: every scrape adds 800–1200 log-normal latencies
// (median 50 ms), which populate about 20 buckets, with rarer tail buckets
// appearing over time, as a real server's histogram does.
func latencySeries(seed uint64, n int) ([]int64, []*Histogram) {
	rng := rand.New(rand.NewPCG(seed, 3))
	counts := map[int64]int64{}
	var sum float64
	var count uint64
	ts := make([]int64, n)
	hs := make([]*Histogram, n)
	t := int64(1_700_000_000_000)
	for i := range n {
		for range 800 + rng.IntN(400) {
			v := math.Exp(math.Log(0.05) + 0.2*rng.NormFloat64())
			counts[int64(math.Ceil(math.Log2(v)*8))]++
			sum += v
			count++
		}
		idx, abs := sortedAbs(counts)
		h := histFromAbs(nil, 3, idx, abs, nil, nil, 0, sum, NotCounterReset)
		h.Count = count
		t += 15_000 + int64(rng.IntN(5)) - 2
		ts[i], hs[i] = t, h
	}
	return ts, hs
}

func TestLatencySeriesShape(t *testing.T) {
	_, hs := latencySeries(1, 120)
	for _, h := range hs {
		require.NoError(t, h.Validate())
	}
	require.InDelta(t, 20, len(hs[60].PositiveBuckets), 6, "about 20 populated buckets")
}

const benchChunkSamples = 120

// BenchmarkHistogramChunkAppend encodes a latency histogram series in
// chunks of 120 samples and reports the encoded size per sample.
func BenchmarkHistogramChunkAppend(b *testing.B) {
	ts, hs := latencySeries(1, 10*benchChunkSamples)
	c := NewHistogramChunk()
	var size int
	for i := range ts {
		if i%benchChunkSamples == 0 {
			size += len(c.Bytes())
			c.Reset()
		}
		require.NoError(b, c.Append(ts[i], hs[i]))
	}
	size += len(c.Bytes())
	b.ReportAllocs()
	for b.Loop() {
		for i := range ts {
			if i%benchChunkSamples == 0 {
				c.Reset()
			}
			if err := c.Append(ts[i], hs[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ts)), "ns/sample")
	b.ReportMetric(float64(size)/float64(len(ts)), "B/sample")
}

// BenchmarkHistogramChunkIterate decodes the same chunks into a reused
// histogram.
func BenchmarkHistogramChunkIterate(b *testing.B) {
	ts, hs := latencySeries(1, 10*benchChunkSamples)
	var chunks [][]byte
	for i := 0; i < len(ts); i += benchChunkSamples {
		c := NewHistogramChunk()
		for j := i; j < i+benchChunkSamples; j++ {
			require.NoError(b, c.Append(ts[j], hs[j]))
		}
		chunks = append(chunks, slices.Clone(c.Bytes()))
	}
	var it HistogramIterator
	var h Histogram
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range chunks {
			if err := it.Reset(c); err != nil {
				b.Fatal(err)
			}
			for it.Next() {
				it.AtHistogram(&h)
			}
			if it.Err() != nil {
				b.Fatal(it.Err())
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ts)), "ns/sample")
}
