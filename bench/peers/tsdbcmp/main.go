// Command tsdbcmp runs one metrics workload through Pillar's tsdb and
// through Prometheus' TSDB (v0.315.0) in the same process and prints the
// figures side by side: ingest samples/s with the write-ahead log on, heap
// per active series, disk bytes per sample after Close, and Select latency
// with an `=` and a `=~` matcher over many series.
//
//	go run ./tsdbcmp -scale 1 -hours 24        # 5,300 series × 24 h
//	go run ./tsdbcmp -scale 19 -hours 3        # ~100k series × 3 h
//	go run ./tsdbcmp -select 1000000           # Select over 1 M series
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/pillar-db/pillar/bench/metricgen"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"
)

func main() {
	scale := flag.Int("scale", 1, "workload groups of 5,300 series")
	hours := flag.Float64("hours", 24, "hours of scrapes")
	sel := flag.Int("select", 0, "when > 0, run the Select comparison over this many series instead")
	only := flag.String("only", "both", "ours, prom or both")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the ingest loops (not Open, Close or the Select runs) to this file")
	memProfile := flag.String("memprofile", "", "write a heap profile taken after the first store's ingest (where heap B/series is measured) to this file")
	flag.Parse()
	heapProfile = *memProfile
	var prof *os.File
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		prof = f
	}
	if err := run(*scale, *hours, *sel, *only, prof); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(scale int, hours float64, sel int, only string, prof *os.File) error {
	ctx := context.Background()
	if sel > 0 {
		return runSelect(ctx, sel, only)
	}
	fmt.Println("workload:", metricgen.Mix(scale, hours, 1))
	fmt.Printf("%-12s %14s %14s %14s %14s %14s %10s\n", "store", "samples/s", "samples/CPU-s", "heap B/series", "disk B/sample", "disk bytes", "ingest s")
	for _, s := range stores(only) {
		r, err := ingest(ctx, s, metricgen.Mix(scale, hours, 1), prof)
		prof = nil // one profile per file
		if err != nil {
			return fmt.Errorf("%s: %w", s.name(), err)
		}
		fmt.Printf("%-12s %14.0f %14.0f %14.0f %14.3f %14d %10.1f\n", s.name(), r.rate, r.cpuRate, r.heapPerSeries, r.bytesPerSample, r.diskBytes, r.elapsed.Seconds())
		fmt.Printf("%-12s (heap %.0f B/series right after the last commit, %.0f once background work settled)\n", "", r.heapAtEnd, r.heapPerSeries)
		if r.note != "" {
			fmt.Printf("%-12s %s\n", "", r.note)
		}
	}
	return nil
}

// store is one engine under test.
type store interface {
	name() string
	// setLabels builds the store's label sets before the heap baseline, so
	// the harness' copies count for neither store.
	setLabels(lss [][]string) error
	open(dir string) error
	// appendScrape appends one sample per series and commits.
	appendScrape(ts []int64, vs []float64) error
	// closeAndSize closes the store and returns its on-disk bytes (and a
	// note on how they split).
	closeAndSize(dir string) (int64, string, error)
	// addSeries creates series with one sample each (for Select).
	addSeries(lss [][]string, t int64) error
	selectCount(ctx context.Context) (series, samples int, err error)
}

func stores(only string) []store {
	var out []store
	if only != "prom" {
		out = append(out, &ours{})
	}
	if only != "ours" {
		out = append(out, &prom{})
	}
	return out
}

type result struct {
	// cpuRate is samples over the process CPU time (every thread: the
	// store's background work counts) spent while Append and Commit ran;
	// unlike rate it holds steady when other processes load the machine.
	rate, cpuRate, heapPerSeries, bytesPerSample float64
	heapAtEnd                                    float64 // heap B/series right after the last commit
	diskBytes                                    int64
	elapsed                                      time.Duration
	note                                         string
}

func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// ingest runs the workload through s. With prof, the ingest loop (and
// whatever runs in the background meanwhile) is CPU-profiled into it; with
// both stores the profile holds the first one's loop only.
func ingest(ctx context.Context, s store, w *metricgen.Workload, prof *os.File) (result, error) {
	dir, err := os.MkdirTemp("", "tsdbcmp-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	if err := s.setLabels(w.Labels); err != nil {
		return result{}, err
	}
	base := heapNow()
	if err := s.open(dir); err != nil {
		return result{}, err
	}
	ts := make([]int64, w.NumSeries())
	vs := make([]float64, w.NumSeries())
	var busy, cpu time.Duration
	profiling := prof != nil && pprof.StartCPUProfile(prof) == nil
	for k := range w.Scrapes {
		w.Scrape(k, ts, vs)
		start, cpu0 := time.Now(), cpuTime()
		if err := s.appendScrape(ts, vs); err != nil {
			if profiling {
				pprof.StopCPUProfile()
			}
			return result{}, err
		}
		busy += time.Since(start)
		cpu += cpuTime() - cpu0
	}
	if profiling {
		pprof.StopCPUProfile()
	}
	// The store's standing heap is read once its background work (Pebble's
	// flushes and compactions, Prometheus' nothing) has settled; the
	// reading right after the last commit, which catches such work in
	// flight, is printed beside it.
	now := heapNow()
	heap := settledHeap(now)
	if heapProfile != "" {
		if err := writeHeapProfile(heapProfile); err != nil {
			return result{}, err
		}
		heapProfile = ""
	}
	n := float64(w.NumSeries()) * float64(w.Scrapes)
	size, note, err := s.closeAndSize(dir)
	if err != nil {
		return result{}, err
	}
	return result{
		rate:           n / busy.Seconds(),
		cpuRate:        n / cpu.Seconds(),
		heapPerSeries:  (float64(heap) - float64(base)) / float64(w.NumSeries()),
		heapAtEnd:      (float64(now) - float64(base)) / float64(w.NumSeries()),
		bytesPerSample: float64(size) / n,
		diskBytes:      size,
		elapsed:        busy,
		note:           note,
	}, nil
}

// settledHeap reads the heap every 250 ms, from first, until two readings
// are within 1 % of each other or five seconds have passed, and returns the
// last.
func settledHeap(first uint64) uint64 {
	prev := first
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		cur := heapNow()
		if diff := int64(cur) - int64(prev); diff < 0 && -diff*100 <= int64(prev) || diff >= 0 && diff*100 <= int64(prev) {
			return cur
		}
		prev = cur
	}
	return prev
}

// heapProfile is the -memprofile file, cleared once written.
var heapProfile string

func writeHeapProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// cpuTime returns the process' user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// dirSize sums the sizes of the regular files under dir whose path
// satisfies keep.
func dirSize(dir string, keep func(rel string) bool) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if keep != nil && !keep(rel) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	return n, err
}

func runSelect(ctx context.Context, n int, only string) error {
	lss := make([][]string, n)
	for i := range lss {
		lss[i] = []string{"__name__", "http_requests_total", "instance", fmt.Sprintf("inst-%d", i), "job", fmt.Sprintf("job-%d", i%100), "pod", fmt.Sprintf("pod-%d", i%1000)}
	}
	fmt.Printf("Select {job=\"job-7\", instance=~\"inst-1.*\"} over %d series (one sample each)\n", n)
	fmt.Printf("%-12s %10s %10s %14s %12s\n", "store", "series", "samples", "select µs/op", "load s")
	for _, s := range stores(only) {
		dir, err := os.MkdirTemp("", "tsdbcmp-")
		if err != nil {
			return err
		}
		if err := s.open(dir); err != nil {
			return err
		}
		if err := s.setLabels(lss); err != nil {
			return err
		}
		start := time.Now()
		if err := s.addSeries(lss, 1_700_000_000_000); err != nil {
			return err
		}
		load := time.Since(start)
		// Warm up once, then time enough runs for a stable figure.
		ns, nsm, err := s.selectCount(ctx)
		if err != nil {
			return err
		}
		runs := 0
		start = time.Now()
		for time.Since(start) < 3*time.Second {
			if _, _, err := s.selectCount(ctx); err != nil {
				return err
			}
			runs++
		}
		per := time.Since(start) / time.Duration(runs)
		fmt.Printf("%-12s %10d %10d %14.0f %12.1f\n", s.name(), ns, nsm, float64(per.Microseconds()), load.Seconds())
		if _, _, err := s.closeAndSize(dir); err != nil {
			return err
		}
		_ = os.RemoveAll(dir)
	}
	return nil
}
