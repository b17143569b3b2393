// Command encodingcmp compares Pillar's float chunk encodings with
// Prometheus' XOR chunk (chunkenc.XORChunk) on the same samples in the same
// process: generated workloads (counters, gauges, random walks, constants,
// classic histogram buckets; 15 s scrapes with and without ±25 ms jitter)
// and the NAB real-world series when the data set is found. Both sides cut
// series into 120-sample chunks. It prints bytes per sample and encode and
// decode nanoseconds per sample (medians of -reps runs; CPU time of the
// measuring thread on Linux, so other load on the machine does not skew
// them, or wall-clock time with -wall) with the ratios Pillar/Prometheus.
//
//	go run ./encodingcmp [-nab DIR] [-reps 7]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
)

func main() {
	nab := flag.String("nab", "", "NAB data directory (default: shared/data/nab beside the repository)")
	reps := flag.Int("reps", 7, "timed repetitions per workload and codec; medians are reported")
	seed := flag.Uint64("seed", 1, "seed of the generated workloads")
	wall := flag.Bool("wall", false, "time with the wall clock instead of the measuring thread's CPU time")
	flag.Parse()
	var clk clock = wallClock{}
	if c, ok := newThreadClock(); ok && !*wall {
		clk = c
	}
	if err := run(os.Stdout, clk, *nab, *reps, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "encodingcmp:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, clk clock, nabDir string, reps int, seed uint64) error {
	wls := Generated(seed)
	if dir, ok := NABDir(nabDir); ok {
		nab, err := LoadNAB(dir)
		if err != nil {
			return err
		}
		wls = append(wls, nab...)
	} else {
		fmt.Fprintln(out, "NAB data set not found (pass -nab DIR); generated workloads only")
	}
	if _, ok := clk.(wallClock); ok {
		fmt.Fprintln(out, "times: wall clock")
	} else {
		fmt.Fprintln(out, "times: CPU time of the measuring thread")
	}
	rows, err := Compare(clk, wls, reps)
	if err != nil {
		return err
	}
	return PrintTable(out, rows)
}

// Row is every codec's result on one workload; Results[0] is Prometheus.
type Row struct {
	Workload Workload
	Results  []Result
}

// Codecs returns the codecs compared, Prometheus first.
func Codecs() []Codec { return []Codec{&Prometheus{}, &Gorilla{}, &Best{}} }

// Compare measures every codec on every workload.
func Compare(clk clock, wls []Workload, reps int) ([]Row, error) {
	var rows []Row
	for _, w := range wls {
		rs, err := MeasureAll(clk, Codecs(), w, reps)
		if err != nil {
			return nil, err
		}
		rows = append(rows, Row{Workload: w, Results: rs})
	}
	return rows, nil
}

// PrintTable writes the comparison, one line per workload and a total line
// per group (total bytes over total samples; time weighted by samples).
func PrintTable(out io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tsamples\tB/s prom\tB/s gorilla\tB/s best\tgor/prom\tbest/prom\tenc ns prom\tenc gor\tenc best\tdec ns prom\tdec gor\tdec best\tenc best/prom\tdec best/prom\t")
	line := func(name string, samples int, rs []Result) {
		p, g, b := rs[0], rs[1], rs[2]
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t\n",
			name, samples, p.BytesPerSample(), g.BytesPerSample(), b.BytesPerSample(),
			g.BytesPerSample()/p.BytesPerSample(), b.BytesPerSample()/p.BytesPerSample(),
			p.EncodeNs, g.EncodeNs, b.EncodeNs, p.DecodeNs, g.DecodeNs, b.DecodeNs,
			b.EncodeNs/p.EncodeNs, b.DecodeNs/p.DecodeNs)
	}
	totals := map[string][]Result{}
	var groups []string
	for _, r := range rows {
		line(r.Workload.Name, r.Workload.Samples(), r.Results)
		g := r.Workload.Group
		if _, ok := totals[g]; !ok {
			groups = append(groups, g)
			totals[g] = make([]Result, len(r.Results))
		}
		for i, res := range r.Results {
			t := &totals[g][i]
			t.Bytes += res.Bytes
			t.EncodeNs += res.EncodeNs * float64(res.Samples)
			t.DecodeNs += res.DecodeNs * float64(res.Samples)
			t.Samples += res.Samples
		}
	}
	for _, g := range groups {
		rs := totals[g]
		for i := range rs {
			rs[i].EncodeNs /= float64(rs[i].Samples)
			rs[i].DecodeNs /= float64(rs[i].Samples)
		}
		line("TOTAL "+g, rs[0].Samples, rs)
	}
	return tw.Flush()
}
