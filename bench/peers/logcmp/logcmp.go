// Package logcmp runs the log store side by side with Bleve on the same
// corpus (loghub replicas from logindex/loggen) in one process: ingest rate
// with every batch acknowledged, bytes on disk, warm query latencies, peak
// RSS, and the record count after a reopen.
package logcmp

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pillar-db/pillar/logindex/loggen"
)

// Config sizes a run.
type Config struct {
	// Sets are the loghub logs to replicate.
	Sets []loggen.Dataset
	// Replicas of the whole set (×32 is 1,024,000 lines).
	Replicas int
	// Batch is the lines per acknowledged write, as a shipper sends them.
	Batch int
	// Span is the time the corpus covers.
	Span time.Duration
	// Reps is how many times each query runs after a warm-up; the p50 is
	// reported.
	Reps int
	// Dir is where each engine gets a fresh directory.
	Dir string
}

// Start is the corpus' first timestamp.
var Start = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// Line is one corpus line as both engines ingest it.
type Line struct {
	Seq     int
	Service string // lowercased dataset name
	Level   string
	Body    string
	Time    int64
	TraceID [16]byte // set on 5 lines of every 100
}

// Lines yields the corpus in batches, reusing nothing the callee may keep.
func Lines(cfg Config, fn func([]Line) error) (lines int, raw int64, err error) {
	g := loggen.NewGenerator(cfg.Sets, cfg.Replicas, Start, cfg.Span)
	batch := make([]Line, 0, cfg.Batch)
	var l loggen.Line
	for g.Next(&l) {
		ln := Line{Seq: lines, Service: strings.ToLower(l.Dataset), Level: l.Level, Body: string(l.Text), Time: l.Time}
		if lines%100 < 5 {
			ln.TraceID = TraceID(lines / 100)
		}
		raw += int64(len(l.Text)) + 1
		lines++
		batch = append(batch, ln)
		if len(batch) == cfg.Batch {
			if err := fn(batch); err != nil {
				return lines, raw, err
			}
			batch = make([]Line, 0, cfg.Batch)
		}
	}
	if len(batch) > 0 {
		err = fn(batch)
	}
	return lines, raw, err
}

// TraceID is the trace of the n-th group of 100 lines.
func TraceID(n int) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], 0x4bf92f3577b34da6)
	binary.BigEndian.PutUint64(id[8:], uint64(n)+1)
	return id
}

// TraceHex is TraceID as lowercase hex.
func TraceHex(n int) string { id := TraceID(n); return hex.EncodeToString(id[:]) }

// RareToken returns a token of a late line that occurs in few lines: the
// longest whitespace-separated word of letters, digits and '_' holding a
// digit, so both engines' tokenizers agree on it.
func RareToken(cfg Config) string {
	g := loggen.NewGenerator(cfg.Sets, cfg.Replicas, Start, cfg.Span)
	target := g.Total() - 7777
	var l loggen.Line
	best := ""
	for i := 0; g.Next(&l); i++ {
		if i < target {
			continue
		}
		for _, w := range strings.Fields(string(l.Text)) {
			ok, digit := true, false
			for _, c := range w {
				switch {
				case c >= '0' && c <= '9':
					digit = true
				case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_':
				default:
					ok = false
				}
			}
			if ok && digit && len(w) > len(best) && len(w) >= 8 {
				best = strings.ToLower(w)
			}
		}
		if best != "" {
			return best
		}
	}
	return "0"
}

// Query is one measured query; Run returns the number of hits or buckets
// it produced.
type Query struct {
	Name string
	Run  func(ctx context.Context) (int, error)
}

// Result is one engine's measurements.
type Result struct {
	Engine    string
	Lines     int
	RawBytes  int64
	Ingest    time.Duration
	IngestCPU time.Duration // user + system CPU of the process while ingesting
	DiskBytes int64
	// TableBytes counts only the engine's data files (Pebble's .sst and
	// MANIFEST; for Bleve every file), not write-ahead logs kept for reuse.
	TableBytes int64
	Queries    []QueryResult
	PeakRSS    int64
	Reopened   uint64
	Note       string
}

// QueryResult is a query's p50 latency and its result size.
type QueryResult struct {
	Name string
	P50  time.Duration
	N    int
}

// LinesPerSec is the ingest rate.
func (r *Result) LinesPerSec() float64 { return float64(r.Lines) / r.Ingest.Seconds() }

// Measure runs each query once to warm up, then Reps times, keeping p50.
func Measure(ctx context.Context, reps int, qs []Query) ([]QueryResult, error) {
	var out []QueryResult
	for _, q := range qs {
		n, err := q.Run(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.Name, err)
		}
		ds := make([]time.Duration, reps)
		for i := range ds {
			t := time.Now()
			if _, err := q.Run(ctx); err != nil {
				return nil, fmt.Errorf("%s: %w", q.Name, err)
			}
			ds[i] = time.Since(t)
		}
		slices.Sort(ds)
		out = append(out, QueryResult{q.Name, ds[len(ds)/2], n})
	}
	return out, nil
}

// DirSize sums the sizes of the files under dir whose name keep accepts
// (nil: all).
func DirSize(dir string, keep func(name string) bool) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || keep != nil && !keep(d.Name()) {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	return n, err
}

// CPUTime returns the process's user + system CPU time so far.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ResetPeakRSS returns memory to the OS and resets the kernel's high-water
// mark of this process, so the next PeakRSS covers one engine's phase.
func ResetPeakRSS() {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// PeakRSS reads VmHWM from /proc/self/status, in bytes (0 if unknown).
func PeakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// Format prints results side by side.
func Format(rs ...*Result) string {
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 4, 2, ' ', tabwriter.AlignRight)
	row := func(name string, f func(r *Result) string) {
		fmt.Fprintf(w, "%s\t", name)
		for _, r := range rs {
			fmt.Fprintf(w, "%s\t", f(r))
		}
		fmt.Fprintln(w)
	}
	row("", func(r *Result) string { return r.Engine })
	row("lines", func(r *Result) string { return strconv.Itoa(r.Lines) })
	row("raw MB", func(r *Result) string { return fmt.Sprintf("%.1f", float64(r.RawBytes)/1e6) })
	row("ingest lines/s", func(r *Result) string { return fmt.Sprintf("%.0f", r.LinesPerSec()) })
	row("ingest lines/CPU-s", func(r *Result) string { return fmt.Sprintf("%.0f", float64(r.Lines)/r.IngestCPU.Seconds()) })
	row("disk MB (whole dir)", func(r *Result) string { return fmt.Sprintf("%.1f", float64(r.DiskBytes)/1e6) })
	row("disk / raw (whole dir)", func(r *Result) string { return fmt.Sprintf("%.3f", float64(r.DiskBytes)/float64(r.RawBytes)) })
	row("disk / raw (data files)", func(r *Result) string { return fmt.Sprintf("%.3f", float64(r.TableBytes)/float64(r.RawBytes)) })
	for i := range rs[0].Queries {
		name := rs[0].Queries[i].Name
		row(name+" p50", func(r *Result) string {
			if i >= len(r.Queries) {
				return "-"
			}
			q := r.Queries[i]
			return fmt.Sprintf("%.3f ms (%d)", float64(q.P50.Microseconds())/1000, q.N)
		})
	}
	row("peak RSS MiB", func(r *Result) string { return fmt.Sprintf("%.0f", float64(r.PeakRSS)/(1<<20)) })
	row("records after reopen", func(r *Result) string { return strconv.FormatUint(r.Reopened, 10) })
	_ = w.Flush()
	for _, r := range rs {
		if r.Note != "" {
			fmt.Fprintf(&sb, "%s: %s\n", r.Engine, r.Note)
		}
	}
	return sb.String()
}
