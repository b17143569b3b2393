package main

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Series is one metric series: strictly increasing millisecond timestamps
// and their values.
type Series struct {
	T []int64
	V []float64
}

// Workload is a named set of series compressed the same way.
type Workload struct {
	Name   string
	Group  string // "generated" or "nab"
	Series []Series
}

// Samples counts the workload's samples.
func (w Workload) Samples() int {
	n := 0
	for _, s := range w.Series {
		n += len(s.T)
	}
	return n
}

const (
	genSeries   = 16
	genSamples  = 1200 // ten 120-sample chunks per series
	interval    = 15_000
	jitterMilli = 25
	startMilli  = 1_700_000_000_000
)

// timestamps returns n scrape times 15 s apart, each moved by up to
// ±jitter ms when jitter > 0.
func timestamps(rng *rand.Rand, n int, jitter int64) []int64 {
	ts := make([]int64, n)
	base := startMilli + rng.Int64N(interval)
	for i := range ts {
		ts[i] = base + int64(i)*interval
		if jitter > 0 {
			ts[i] += rng.Int64N(2*jitter+1) - jitter
		}
	}
	return ts
}

// Generated returns the synthetic workloads, each with and without ±25 ms
// scrape jitter. The seed fixes them, so every run measures the same data.
func Generated(seed uint64) []Workload {
	kinds := []struct {
		name string
		gen  func(rng *rand.Rand, n, k int) [][]float64
	}{
		{"counter", genCounters},
		{"gauge-2dp", genGauges2dp},
		{"random-walk", genRandomWalk},
		{"constant", genConstants},
		{"histogram-buckets", genHistogramBuckets},
	}
	var out []Workload
	for _, k := range kinds {
		for _, jitter := range []int64{0, jitterMilli} {
			rng := rand.New(rand.NewPCG(seed, uint64(len(out))))
			vals := k.gen(rng, genSamples, genSeries)
			w := Workload{Name: k.name, Group: "generated"}
			if jitter > 0 {
				w.Name += "+jitter"
			}
			for _, v := range vals {
				w.Series = append(w.Series, Series{T: timestamps(rng, len(v), jitter), V: v})
			}
			out = append(out, w)
		}
	}
	return out
}

// genCounters: monotonic counters with integer increments at per-series
// rates, and an occasional reset to zero (a process restart).
func genCounters(rng *rand.Rand, n, k int) [][]float64 {
	out := make([][]float64, k)
	for s := range out {
		rate := []float64{0.2, 3, 40, 900, 25000}[s%5]
		c := float64(rng.IntN(1e6))
		vs := make([]float64, n)
		for i := range vs {
			if rng.IntN(2000) == 0 {
				c = 0
			}
			c += math.Floor(rate * (0.5 + rng.Float64()))
			vs[i] = c
		}
		out[s] = vs
	}
	return out
}

// genGauges2dp: gauges (temperatures, percentages, queue lengths) moving
// randomly and reported with two decimals.
func genGauges2dp(rng *rand.Rand, n, k int) [][]float64 {
	out := make([][]float64, k)
	for s := range out {
		level := []float64{20, 55, 0.5, 900, 12}[s%5]
		step := level / 50
		x := level
		vs := make([]float64, n)
		for i := range vs {
			x += rng.NormFloat64() * step
			if x < 0 {
				x = -x
			}
			vs[i] = math.Round(x*100) / 100
		}
		out[s] = vs
	}
	return out
}

// genRandomWalk: full-precision random walks (derived values such as
// ratios and averages).
func genRandomWalk(rng *rand.Rand, n, k int) [][]float64 {
	out := make([][]float64, k)
	for s := range out {
		x := rng.Float64() * 1000
		vs := make([]float64, n)
		for i := range vs {
			x += rng.NormFloat64()
			vs[i] = x
		}
		out[s] = vs
	}
	return out
}

// genConstants: series that never change: up, build info, configured
// limits and ratios.
func genConstants(_ *rand.Rand, n, k int) [][]float64 {
	values := []float64{1, 0, 1, 3.7, 1024, 0.5, 1, 65536, 0.95, 1, 2.5e9, 1, 0, 12.34, 1, 100}
	out := make([][]float64, k)
	for s := range out {
		vs := make([]float64, n)
		for i := range vs {
			vs[i] = values[s%len(values)]
		}
		out[s] = vs
	}
	return out
}

// genHistogramBuckets: the series of one classic histogram — cumulative
// `le` bucket counters, _count and _sum — fed by request latencies.
func genHistogramBuckets(rng *rand.Rand, n, k int) [][]float64 {
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	nb := len(bounds) + 1 // +Inf
	series := make([][]float64, nb+2)
	for i := range series {
		series[i] = make([]float64, n)
	}
	counts := make([]float64, nb)
	var sum float64
	for i := range n {
		reqs := 50 + rng.IntN(100)
		for range reqs {
			lat := math.Exp(rng.NormFloat64()*1.2 - 3)
			sum += lat
			for b := range nb {
				if b == nb-1 || lat <= bounds[b] {
					counts[b]++
				}
			}
		}
		for b := range nb {
			series[b][i] = counts[b]
		}
		series[nb][i] = counts[nb-1]
		series[nb+1][i] = sum
	}
	return series[:min(k, len(series))]
}

// NABDir looks for the NAB data set: dir if set, else a shared/data/nab
// folder beside the working directory or one of its parents.
func NABDir(dir string) (string, bool) {
	if dir != "" {
		_, err := os.Stat(dir)
		return dir, err == nil
	}
	if d := os.Getenv("PILLAR_DATA"); d != "" {
		p := filepath.Join(d, "nab")
		_, err := os.Stat(p)
		return p, err == nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		p := filepath.Join(wd, "..", "shared", "data", "nab")
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
		parent := filepath.Dir(wd)
		if parent == wd {
			return "", false
		}
		wd = parent
	}
}

// LoadNAB reads every CSV under dir (timestamp,value with a header line) as
// one workload per file.
func LoadNAB(dir string) ([]Workload, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".csv") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Workload
	for _, f := range files {
		s, err := loadCSV(f)
		if err != nil {
			return nil, err
		}
		out = append(out, Workload{Name: strings.TrimSuffix(filepath.Base(f), ".csv"), Group: "nab", Series: []Series{s}})
	}
	return out, nil
}

func loadCSV(path string) (Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return Series{}, err
	}
	defer f.Close()
	var s Series
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			continue
		}
		ts, vs, ok := strings.Cut(sc.Text(), ",")
		if !ok {
			return s, fmt.Errorf("%s:%d: no comma", path, line)
		}
		tm, err := time.Parse(time.DateTime, ts)
		if err != nil {
			return s, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		v, err := strconv.ParseFloat(vs, 64)
		if err != nil {
			return s, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		t := tm.UnixMilli()
		if n := len(s.T); n > 0 && t <= s.T[n-1] {
			continue // keep timestamps strictly increasing, as a TSDB would
		}
		s.T = append(s.T, t)
		s.V = append(s.V, v)
	}
	return s, sc.Err()
}
