package encoding

import (
	"math"
	"math/rand/v2"
	"testing"
)

// benchWorkloads are chunk-sized sample sets of common shapes, 15 s apart
// with ±25 ms jitter.
func benchWorkloads() map[string][2][]float64 {
	rng := rand.New(rand.NewPCG(11, 12))
	out := map[string][2][]float64{}
	gen := func(name string, f func() float64) {
		vs := make([]float64, 120)
		for i := range vs {
			vs[i] = f()
		}
		out[name] = [2][]float64{nil, vs}
	}
	c := 0.0
	gen("counter", func() float64 { c += float64(rng.IntN(50)); return c })
	g := 50.0
	gen("gauge-2dp", func() float64 { g += rng.NormFloat64(); return math.Round(g*100) / 100 })
	w := 500.0
	gen("random-walk", func() float64 { w += rng.NormFloat64(); return w })
	gen("constant", func() float64 { return 1 })
	return out
}

func benchTimestamps() []int64 {
	rng := rand.New(rand.NewPCG(13, 14))
	ts := make([]int64, 120)
	for i := range ts {
		ts[i] = 1_700_000_000_000 + int64(i)*15000 + rng.Int64N(51) - 25
	}
	return ts
}

func BenchmarkFloatChunkAppend(b *testing.B) {
	ts := benchTimestamps()
	for name, w := range benchWorkloads() {
		vs := w[1]
		b.Run(name, func(b *testing.B) {
			c := NewFloatChunk()
			size := 0
			for b.Loop() {
				c.Reset()
				for i := range ts {
					_ = c.Append(ts[i], vs[i])
				}
				size = len(c.Bytes())
			}
			reportPerSample(b, len(ts), size)
		})
	}
}

func BenchmarkAppendBestFloats(b *testing.B) {
	ts := benchTimestamps()
	for name, w := range benchWorkloads() {
		vs := w[1]
		b.Run(name, func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				buf, _ = AppendBestFloats(buf[:0], ts, vs)
			}
			reportPerSample(b, len(ts), len(buf))
		})
	}
}

func BenchmarkFloatIterator(b *testing.B) {
	ts := benchTimestamps()
	for name, w := range benchWorkloads() {
		vs := w[1]
		for _, enc := range []ChunkEncoding{EncGorilla, EncDecimal, EncChimp} {
			chunk := chunkAs(enc, ts, vs)
			b.Run(name+"/"+enc.String(), func(b *testing.B) {
				var it FloatIterator
				var sum float64
				for b.Loop() {
					_ = it.Reset(chunk)
					for it.Next() {
						_, v := it.At()
						sum += v
					}
				}
				reportPerSample(b, len(ts), len(chunk))
			})
		}
	}
}

// reportPerSample adds B/sample and ns/sample to a benchmark whose every
// iteration handles n samples into size bytes.
func reportPerSample(b *testing.B, n, size int) {
	b.ReportMetric(float64(size)/float64(n), "B/sample")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sample")
}
