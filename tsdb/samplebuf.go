package tsdb

import (
	"math"
	"sort"
)

// sampleBuf holds one series' samples for an iterator: parallel slices of
// timestamps, float values and histogram indexes (-1 for a float sample)
// into a pool of Histograms that is reused across series, so reading a
// series allocates nothing once the buffers have grown.
type sampleBuf struct {
	ts []int64
	vs []float64
	hi []int32
	hs []Histogram
	nh int
}

func (b *sampleBuf) reset() {
	b.ts, b.vs, b.hi, b.nh = b.ts[:0], b.vs[:0], b.hi[:0], 0
}

func (b *sampleBuf) nextHist() *Histogram {
	if b.nh == len(b.hs) {
		b.hs = append(b.hs, Histogram{})
	}
	b.nh++
	return &b.hs[b.nh-1]
}

func (b *sampleBuf) truncate(n int) {
	b.ts, b.vs, b.hi = b.ts[:n], b.vs[:n], b.hi[:n]
	b.nh = 0
	for i := n - 1; i >= 0; i-- {
		if b.hi[i] >= 0 {
			b.nh = int(b.hi[i]) + 1
			break
		}
	}
}

// Len, Less and Swap sort samples by time; Stable keeps the first of equal
// timestamps first, which normalize relies on.
func (b *sampleBuf) Len() int           { return len(b.ts) }
func (b *sampleBuf) Less(i, j int) bool { return b.ts[i] < b.ts[j] }
func (b *sampleBuf) Swap(i, j int) {
	b.ts[i], b.ts[j] = b.ts[j], b.ts[i]
	b.vs[i], b.vs[j] = b.vs[j], b.vs[i]
	b.hi[i], b.hi[j] = b.hi[j], b.hi[i]
}

// normalize puts the samples in time order and drops repeated timestamps,
// keeping the first. Sources are added head first, so a sample that was
// sealed while being read counts once.
func (b *sampleBuf) normalize() {
	sorted := true
	for i := 1; i < len(b.ts); i++ {
		if b.ts[i] <= b.ts[i-1] {
			sorted = false
			break
		}
	}
	if sorted {
		return
	}
	sort.Stable(b)
	w := 0
	for i := range b.ts {
		if i > 0 && b.ts[i] == b.ts[w-1] {
			continue
		}
		b.ts[w], b.vs[w], b.hi[w] = b.ts[i], b.vs[i], b.hi[i]
		w++
	}
	b.ts, b.vs, b.hi = b.ts[:w], b.vs[:w], b.hi[:w]
}

// addFloat appends one float sample.
func (b *sampleBuf) addFloat(t int64, v float64) {
	b.ts = append(b.ts, t)
	b.vs = append(b.vs, v)
	b.hi = append(b.hi, -1)
}

// addHistogram appends a copy of h.
func (b *sampleBuf) addHistogram(t int64, h *Histogram) {
	h.CopyTo(b.nextHist())
	b.ts = append(b.ts, t)
	b.vs = append(b.vs, math.NaN())
	b.hi = append(b.hi, int32(b.nh-1))
}
