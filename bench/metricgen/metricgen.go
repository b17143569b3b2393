// Package metricgen generates scrape-shaped metric workloads with fixed
// seeds: the mixed workload Pillar's storage numbers are quoted on
// (counters, 2-decimal gauges, random walks, constants and classic
// histograms) and a TSBS cpu-only-shaped one (hosts × 10 cpu fields at
// 10 s). Every scrape gives each series one sample; the series of one
// scrape target share a timestamp with its own jitter, as real scrapes do.
package metricgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// Workload is a set of series and the recipe for their values.
type Workload struct {
	// Labels are each series' name/value pairs, sorted by name.
	Labels [][]string
	// Interval is the scrape interval and Jitter the most a target's
	// timestamp strays from it either way, both in milliseconds.
	Interval, Jitter int64
	// Scrapes is how many scrapes the workload spans, starting at Start
	// (Unix ms).
	Scrapes int
	Start   int64

	kinds    []kind
	target   []int
	rng      *rand.Rand
	vals     []float64
	hist     []int // classic histogram of a histogram series, -1 otherwise
	histCum  [][]float64
	targets  int
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
	kCPU
)

// BucketBounds are the `le` values of the mixed workload's histograms.
var BucketBounds = []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"}

// DefaultStart is the first scrape's time, fixed so runs are comparable.
const DefaultStart = int64(1_700_000_000_000)

func (w *Workload) add(k kind, hist, target int, ls ...string) {
	w.Labels = append(w.Labels, ls)
	w.kinds = append(w.kinds, k)
	w.target = append(w.target, target)
	w.hist = append(w.hist, hist)
	var v float64
	switch k {
	case kGauge, kWalk:
		v = math.Round(w.rng.Float64()*10000) / 100
	case kConst:
		v = float64(w.rng.IntN(64))
	case kCPU:
		v = w.rng.Float64() * 100
	}
	w.vals = append(w.vals, v)
}

// Mix builds scale groups of 1,000 counters (`http_requests_total`),
// 1,000 2-decimal gauges (`memory_usage_ratio`), 1,000 random walks
// (`temperature_celsius`), 1,000 constants (`build_info`) and 100 classic
// histograms of 13 series (`request_duration_seconds`: 11 buckets, _sum,
// _count), scraped every 15 s with ±25 ms jitter for the given hours. Scale
// 1 is 5,300 series; 24 hours of it is 30.5 M samples.
func Mix(scale int, hours float64, seed uint64) *Workload {
	const targets = 50
	w := &Workload{Interval: 15_000, Jitter: 25, Start: DefaultStart, targets: targets, rng: rand.New(rand.NewPCG(seed, 1))}
	w.Scrapes = int(hours * 3600_000 / float64(w.Interval))
	n := 0
	next := func() int { n++; return n % targets }
	for g := range scale {
		for i := range 1000 {
			inst := "host-" + strconv.Itoa(i%targets)
			id := strconv.Itoa(g*1000 + i)
			w.add(kCounter, -1, next(), "__name__", "http_requests_total", "handler", "/api/"+id, "instance", inst, "job", "api")
			w.add(kGauge, -1, next(), "__name__", "memory_usage_ratio", "id", id, "instance", inst, "job", "node")
			w.add(kWalk, -1, next(), "__name__", "temperature_celsius", "id", id, "instance", inst, "job", "sensors")
			w.add(kConst, -1, next(), "__name__", "build_info", "id", id, "instance", inst, "job", "meta")
		}
		for i := range 100 {
			h := len(w.histCum)
			w.histCum = append(w.histCum, make([]float64, len(BucketBounds)+1))
			inst := "host-" + strconv.Itoa(i%targets)
			id := strconv.Itoa(g*100 + i)
			t := next()
			for _, le := range BucketBounds {
				w.add(kHistBucket, h, t, "__name__", "request_duration_seconds_bucket", "id", id, "instance", inst, "job", "api", "le", le)
			}
			w.add(kHistSum, h, t, "__name__", "request_duration_seconds_sum", "id", id, "instance", inst, "job", "api")
			w.add(kHistCount, h, t, "__name__", "request_duration_seconds_count", "id", id, "instance", inst, "job", "api")
		}
	}
	w.scrapeTs = make([]int64, targets)
	return w
}

// CPUOnly builds the TSBS cpu-only shape: per host, ten `cpu_<field>`
// gauges (usage_user, usage_system, …) with host metadata labels, scraped
// every 10 s with ±10 ms jitter for the given hours.
func CPUOnly(hosts int, hours float64, seed uint64) *Workload {
	w := &Workload{Interval: 10_000, Jitter: 10, Start: DefaultStart, targets: hosts, rng: rand.New(rand.NewPCG(seed, 2))}
	w.Scrapes = int(hours * 3600_000 / float64(w.Interval))
	fields := []string{"usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
		"usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice"}
	regions := []string{"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1"}
	for h := range hosts {
		for _, f := range fields {
			w.add(kCPU, -1, h, "__name__", "cpu_"+f, "arch", []string{"x64", "x86"}[h%2],
				"datacenter", regions[h%len(regions)]+string(rune('a'+h%3)), "hostname", "host_"+strconv.Itoa(h),
				"os", "Ubuntu16.04LTS", "rack", strconv.Itoa(h%100), "region", regions[h%len(regions)], "service", strconv.Itoa(h%20))
		}
	}
	w.scrapeTs = make([]int64, hosts)
	return w
}

// NumSeries returns the number of series.
func (w *Workload) NumSeries() int { return len(w.Labels) }

// NumSamples returns the number of samples over all scrapes.
func (w *Workload) NumSamples() int { return len(w.Labels) * w.Scrapes }

// Scrape computes scrape k's samples into ts and vs (each NumSeries long):
// ts[i], vs[i] belong to series i. Scrapes must be generated in order.
func (w *Workload) Scrape(k int, ts []int64, vs []float64) {
	for t := range w.scrapeTs {
		w.scrapeTs[t] = w.Start + int64(k)*w.Interval + w.rng.Int64N(2*w.Jitter+1) - w.Jitter
	}
	// A few observations land in random buckets of each histogram per scrape.
	for _, cum := range w.histCum {
		for range 1 + w.rng.IntN(5) {
			b := w.rng.IntN(len(BucketBounds))
			for j := b; j < len(BucketBounds); j++ {
				cum[j]++
			}
			cum[len(BucketBounds)] += math.Round(w.rng.ExpFloat64()*1000) / 1000
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
			w.vals[i] = w.histCum[w.hist[i]][len(BucketBounds)]
			bucket = 0
		case kHistCount:
			w.vals[i] = w.histCum[w.hist[i]][len(BucketBounds)-1]
		case kCPU:
			w.vals[i] = math.Min(100, math.Max(0, w.vals[i]+w.rng.NormFloat64()))
		}
		vs[i] = w.vals[i]
	}
}

// String describes the workload's size.
func (w *Workload) String() string {
	return fmt.Sprintf("%d series × %d scrapes (%.1f h at %d s, ±%d ms) = %d samples",
		w.NumSeries(), w.Scrapes, float64(w.Scrapes)*float64(w.Interval)/3600e3, w.Interval/1000, w.Jitter, w.NumSamples())
}
