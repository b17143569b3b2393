package encoding

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// valuesBenchWorkload is one shape of values, with the jittered 15 s
// timestamps a timed chunk of them carries.
type valuesBenchWorkload struct {
	name string
	ts   []int64
	vs   []float64
}

// valuesBenchWorkloads returns 2-decimal gauges, integer counters, a
// full-precision random walk and a constant, each of 480 and of 1024
// samples.
func valuesBenchWorkloads() []valuesBenchWorkload {
	var out []valuesBenchWorkload
	for _, n := range []int{480, 1024} {
		rng := rand.New(rand.NewPCG(31, uint64(n)))
		ts := make([]int64, n)
		for i := range ts {
			ts[i] = 1_700_000_000_000 + int64(i)*15000 + rng.Int64N(51) - 25
		}
		gen := func(name string, f func() float64) {
			vs := make([]float64, n)
			for i := range vs {
				vs[i] = f()
			}
			out = append(out, valuesBenchWorkload{name + "/" + strconv.Itoa(n), ts, vs})
		}
		g := 50.0
		gen("gauge-2dp", func() float64 { g += rng.NormFloat64(); return math.Round(g*100) / 100 })
		c := 0.0
		gen("counter", func() float64 { c += float64(rng.IntN(50)); return c })
		w := 500.0
		gen("random-walk", func() float64 { w += rng.NormFloat64(); return w })
		gen("constant", func() float64 { return 1 })
	}
	return out
}

// valuesBenchChunks returns the timed chunk (AppendBestFloats) and the
// implicit one (AppendBestFloatValues) of w's values.
func valuesBenchChunks(b *testing.B, w valuesBenchWorkload) (timed, implicit []byte) {
	b.Helper()
	timed, err := AppendBestFloats(nil, w.ts, w.vs)
	if err != nil {
		b.Fatal(err)
	}
	implicit, err = AppendBestFloatValues(nil, w.vs)
	if err != nil {
		b.Fatal(err)
	}
	return timed, implicit
}

// BenchmarkFloatValuesIterator iterates the same values in a timed chunk
// and in an implicit one, side by side: implicit chunks are what compacted
// series keep, so their decode is query speed.
func BenchmarkFloatValuesIterator(b *testing.B) {
	for _, w := range valuesBenchWorkloads() {
		timed, implicit := valuesBenchChunks(b, w)
		for _, c := range []struct {
			form  string
			chunk []byte
		}{{"timed", timed}, {"implicit", implicit}} {
			b.Run(w.name+"/"+c.form, func(b *testing.B) {
				var it FloatIterator
				var sum float64
				n := 0
				for b.Loop() {
					_ = it.Reset(c.chunk)
					n = 0
					for it.Next() {
						_, v := it.At()
						sum += v
						n++
					}
				}
				if n != len(w.vs) || it.Err() != nil {
					b.Fatalf("decoded %d of %d samples: %v", n, len(w.vs), it.Err())
				}
				reportPerSample(b, len(w.vs), len(c.chunk))
			})
		}
	}
}

// BenchmarkFloatValuesIteratorSeek seeks a fresh iterator to the middle
// sample of a timed and of an implicit chunk; ns/sample is per sample
// passed over.
func BenchmarkFloatValuesIteratorSeek(b *testing.B) {
	for _, w := range valuesBenchWorkloads() {
		timed, implicit := valuesBenchChunks(b, w)
		mid := len(w.vs) / 2
		for _, c := range []struct {
			form   string
			chunk  []byte
			target int64
		}{{"timed", timed, w.ts[mid]}, {"implicit", implicit, int64(mid)}} {
			b.Run(w.name+"/"+c.form, func(b *testing.B) {
				var it FloatIterator
				var sum float64
				for b.Loop() {
					_ = it.Reset(c.chunk)
					if !it.SeekTo(c.target) {
						b.Fatal(it.Err())
					}
					_, v := it.At()
					sum += v
				}
				if _, v := it.At(); math.Float64bits(v) != math.Float64bits(w.vs[mid]) {
					b.Fatalf("landed on %v, want %v", v, w.vs[mid])
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(mid+1), "ns/sample")
			})
		}
	}
}
