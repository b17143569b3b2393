package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// Workload is the scrape-shaped metrics workload both stores ingest: per
// scrape every series gets one sample; targets (the instance label) carry
// their own ±Jitter on the scrape timestamp, as real scrapes do.
type Workload struct {
	Labels   [][]string // name, value pairs per series, sorted by name
	kinds    []kind
	target   []int
	Interval int64 // ms
	Jitter   int64 // ms, each side
	Scrapes  int
	Start    int64

	rng      *rand.Rand
	vals     []float64
	hist     []int // classic histogram group of a bucket series, -1 otherwise
	histCum  [][]float64
	scrapeTs []int64
}

type kind uint8

const (
	kCounter kind = iota
	kGauge
	kWalk
	kConst
	kHistBucket
	kHistSum
	kHistCount
)

const targets = 50

var bucketLE = []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"}

// NewWorkload builds n groups of 1,000 counters, 2-decimal gauges, random
// walks and constants plus 100 classic histograms of 13 series (11 le
// buckets, _sum, _count) per group; scale 1 gives 5,300 series.
func NewWorkload(scale int, hours float64, seed uint64) *Workload {
	w := &Workload{Interval: 15_000, Jitter: 25, Start: 1_700_000_000_000, rng: rand.New(rand.NewPCG(seed, 1))}
	w.Scrapes = int(hours * 3600_000 / float64(w.Interval))
	add := func(k kind, hist int, ls ...string) {
		w.Labels = append(w.Labels, ls)
		w.kinds = append(w.kinds, k)
		w.target = append(w.target, len(w.Labels)%targets)
		w.hist = append(w.hist, hist)
		var v float64
		switch k {
		case kGauge, kWalk:
			v = math.Round(w.rng.Float64()*10000) / 100
		case kConst:
			v = float64(w.rng.IntN(64))
		}
		w.vals = append(w.vals, v)
	}
	for g := range scale {
		for i := range 1000 {
			inst := strconv.Itoa(i % targets)
			id := strconv.Itoa(g*1000 + i)
			add(kCounter, -1, "__name__", "http_requests_total", "handler", "/api/"+id, "instance", "host-"+inst, "job", "api")
			add(kGauge, -1, "__name__", "memory_usage_ratio", "id", id, "instance", "host-"+inst, "job", "node")
			add(kWalk, -1, "__name__", "temperature_celsius", "id", id, "instance", "host-"+inst, "job", "sensors")
			add(kConst, -1, "__name__", "build_info", "id", id, "instance", "host-"+inst, "job", "meta")
		}
		for i := range 100 {
			h := len(w.histCum)
			w.histCum = append(w.histCum, make([]float64, len(bucketLE)+1))
			inst := strconv.Itoa(i % targets)
			id := strconv.Itoa(g*100 + i)
			for _, le := range bucketLE {
				add(kHistBucket, h, "__name__", "request_duration_seconds_bucket", "id", id, "instance", "host-"+inst, "job", "api", "le", le)
			}
			add(kHistSum, h, "__name__", "request_duration_seconds_sum", "id", id, "instance", "host-"+inst, "job", "api")
			add(kHistCount, h, "__name__", "request_duration_seconds_count", "id", id, "instance", "host-"+inst, "job", "api")
		}
	}
	w.scrapeTs = make([]int64, targets)
	return w
}

// NumSeries returns the number of series.
func (w *Workload) NumSeries() int { return len(w.Labels) }

// Scrape computes scrape k's timestamps and values; ts[i], vs[i] belong to
// series i. Scrapes must be generated in order.
func (w *Workload) Scrape(k int, ts []int64, vs []float64) {
	for t := range w.scrapeTs {
		w.scrapeTs[t] = w.Start + int64(k)*w.Interval + w.rng.Int64N(2*w.Jitter+1) - w.Jitter
	}
	// Advance the classic histograms once per scrape: a few observations
	// land in random buckets, cumulative counts grow.
	for _, cum := range w.histCum {
		for range 1 + w.rng.IntN(5) {
			b := w.rng.IntN(len(bucketLE))
			for j := b; j < len(bucketLE); j++ {
				cum[j]++
			}
			cum[len(bucketLE)] += math.Round(w.rng.ExpFloat64()*1000) / 1000 // sum
		}
	}
	bucket := 0
	for i, k := range w.kinds {
		ts[i] = w.scrapeTs[w.target[i]]
		switch k {
		case kCounter:
			w.vals[i] += float64(w.rng.IntN(100))
		case kGauge:
			w.vals[i] = math.Round(w.rng.Float64()*10000) / 100
		case kWalk:
			w.vals[i] += w.rng.NormFloat64()
		case kHistBucket:
			w.vals[i] = w.histCum[w.hist[i]][bucket]
			bucket++
		case kHistSum:
			w.vals[i] = w.histCum[w.hist[i]][len(bucketLE)]
			bucket = 0
		case kHistCount:
			w.vals[i] = w.histCum[w.hist[i]][len(bucketLE)-1]
		}
		vs[i] = w.vals[i]
	}
}

func (w *Workload) String() string {
	return fmt.Sprintf("%d series × %d scrapes (%.1f h at %d s, ±%d ms) = %d samples",
		w.NumSeries(), w.Scrapes, float64(w.Scrapes)*float64(w.Interval)/3600e3, w.Interval/1000, w.Jitter, w.NumSeries()*w.Scrapes)
}
