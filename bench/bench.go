// Package bench is Pillar's storage benchmark harness: it runs fixed-seed
// workloads for metrics, traces and logs (and the demo's dataset) against
// fresh stores and reports throughput, bytes on disk per item, heap, and
// query latencies. The `pillar bench` command prints its Report; the
// side-by-side comparisons with other engines live in bench/peers.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/pillar-db/pillar/internal/kv"
)

// Workloads are the names Run accepts, in the order they run.
var Workloads = []string{"metrics", "tsbs", "traces", "logs", "demo", "compaction", "serve"}

// Config chooses what to run and how big.
type Config struct {
	// Workloads to run; nil or empty means all of Workloads.
	Workloads []string
	// Scale multiplies every workload's size. Default 1: each workload
	// runs in tens of seconds on two cores.
	Scale float64
	// Dir holds the stores; default a temporary directory, removed after.
	Dir string
	// QuerySeconds bounds how long each query is repeated to get its
	// latency percentiles. Default 1.
	QuerySeconds float64
	// LoghubDir holds the loghub logs for the logs workload; default: a
	// `shared/data/loghub` beside the working directory or an ancestor.
	// Without it the logs workload uses synthetic lines.
	LoghubDir string
	// Progress receives a progress line per step; nil means none.
	Progress io.Writer
}

// Result is one measured figure.
type Result struct {
	Workload string  `json:"workload"`
	Metric   string  `json:"metric"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Note     string  `json:"note,omitempty"`
}

// Report is everything Run measured, with the machine it ran on.
type Report struct {
	GoVersion string        `json:"go_version"`
	OS        string        `json:"os"`
	CPUs      int           `json:"cpus"`
	Scale     float64       `json:"scale"`
	Took      time.Duration `json:"took_ns"`
	Results   []Result      `json:"results"`
}

// Run runs the configured workloads one after another.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Scale <= 0 {
		cfg.Scale = 1
	}
	if cfg.QuerySeconds <= 0 {
		cfg.QuerySeconds = 1
	}
	names := cfg.Workloads
	if len(names) == 0 {
		names = Workloads
	}
	for _, n := range names {
		if !slices.Contains(Workloads, n) {
			return nil, fmt.Errorf("bench: unknown workload %q (have %s)", n, strings.Join(Workloads, ", "))
		}
	}
	root := cfg.Dir
	if root == "" {
		d, err := os.MkdirTemp("", "pillar-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		root = d
	}
	rep := &Report{GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(), Scale: cfg.Scale}
	start := time.Now()
	r := &runner{cfg: cfg, rep: rep}
	for _, n := range names {
		dir := filepath.Join(root, n)
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		var err error
		switch n {
		case "metrics":
			err = r.metrics(ctx, dir)
		case "tsbs":
			err = r.tsbs(ctx, dir)
		case "traces":
			err = r.traces(ctx, dir)
		case "logs":
			err = r.logs(ctx, dir)
		case "demo":
			err = r.demo(ctx, dir)
		case "compaction":
			err = r.compaction(ctx, dir)
		case "serve":
			err = r.serve(ctx, dir)
		}
		if err != nil {
			return rep, fmt.Errorf("bench: %s: %w", n, err)
		}
	}
	rep.Took = time.Since(start)
	r.progress("done", 1)
	if cfg.Progress != nil {
		fmt.Fprintln(cfg.Progress)
	}
	return rep, nil
}

type runner struct {
	cfg Config
	rep *Report
}

func (r *runner) add(workload, metric string, v float64, unit, note string) {
	r.rep.Results = append(r.rep.Results, Result{workload, metric, v, unit, note})
}

// progress redraws a one-line progress bar.
func (r *runner) progress(what string, frac float64) {
	if r.cfg.Progress == nil {
		return
	}
	const width = 30
	n := int(frac * width)
	n = max(0, min(width, n))
	fmt.Fprintf(r.cfg.Progress, "\r[%s%s] %3.0f%% %-50s", strings.Repeat("#", n), strings.Repeat(" ", width-n), 100*frac, what)
}

// WriteTable prints the report as aligned text, one section per workload.
func (rep *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "Pillar storage benchmarks — %s, %s, %d CPUs, scale %g, %s\n", rep.GoVersion, rep.OS, rep.CPUs, rep.Scale,
		rep.Took.Round(time.Second))
	last := ""
	for _, res := range rep.Results {
		if res.Workload != last {
			fmt.Fprintf(w, "\n%s\n", res.Workload)
			last = res.Workload
		}
		note := ""
		if res.Note != "" {
			note = "  " + res.Note
		}
		fmt.Fprintf(w, "  %-50s %12s %-10s%s\n", res.Metric, formatValue(res.Value), res.Unit, note)
	}
	return nil
}

// WriteJSON prints the report as JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func formatValue(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// dirSize is the bytes of every file under dir.
func dirSize(dir string) (uint64, error) {
	var n uint64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += uint64(info.Size())
		}
		return nil
	})
	return n, err
}

// diskSizes measures a closed store twice: the whole directory as Close
// left it (tables, the write-ahead log and log files Pebble keeps for
// reuse), and the live tables after reopening, flushing and fully
// compacting it, the size the data settles to.
func diskSizes(ctx context.Context, dir string) (afterClose, compacted uint64, err error) {
	if afterClose, err = dirSize(dir); err != nil {
		return 0, 0, err
	}
	p, err := kv.Open(dir, kv.Options{})
	if err != nil {
		return 0, 0, err
	}
	if err := p.Flush(); err != nil {
		p.Close()
		return 0, 0, err
	}
	if err := p.Compact(ctx, []byte{0}, []byte{0xff, 0xff}, true); err != nil {
		p.Close()
		return 0, 0, err
	}
	m := p.Metrics()
	compacted = m.Table.Local.LiveSize + m.BlobFiles.Local.LiveSize
	return afterClose, compacted, p.Close()
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// latencies repeats f until budget has passed (at least 5 and at most
// 10,000 times) and returns the median and 99th percentile.
func latencies(ctx context.Context, budget time.Duration, f func(i int) error) (p50, p99 time.Duration, err error) {
	var ds []time.Duration
	deadline := time.Now().Add(budget)
	for i := 0; i < 10_000 && (i < 5 || time.Now().Before(deadline)); i++ {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		t := time.Now()
		if err := f(i); err != nil {
			return 0, 0, err
		}
		ds = append(ds, time.Since(t))
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], nil
}

// ms converts a duration to milliseconds for the report.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
