package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pillar-db/pillar"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/query"
	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tsdb"
)

// errNoDir is returned by tools run without --dir.
var errNoDir = errors.New("--dir is required")

// toolFlags are the flags every store tool shares.
type toolFlags struct {
	fs  *flag.FlagSet
	dir *string
}

func newToolFlags(name, usage string, stderr io.Writer) toolFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pillar %s\n\n", usage)
		fs.PrintDefaults()
	}
	return toolFlags{fs: fs, dir: fs.String("dir", "", "store directory (required)")}
}

// open parses args, checks that want positional arguments (each a what)
// remain, and opens the store, which must already exist.
func (tf toolFlags) open(args []string, want int, what string) (*pillar.DB, error) {
	if err := tf.fs.Parse(args); err != nil {
		return nil, err
	}
	if *tf.dir == "" {
		return nil, errNoDir
	}
	if tf.fs.NArg() != want {
		tf.fs.Usage()
		return nil, fmt.Errorf("want %d %s, got %d arguments", want, what, tf.fs.NArg())
	}
	if _, err := os.Stat(*tf.dir); err != nil {
		return nil, fmt.Errorf("no store at %s: %w", *tf.dir, err)
	}
	return pillar.Open(*tf.dir, nil)
}

// parseTime reads RFC 3339 or Unix seconds (fractions allowed).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is neither RFC 3339 nor Unix seconds", s)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// timeRange parses optional --start/--end flags; zero times stay zero.
func timeRange(start, end string) (t0, t1 time.Time, err error) {
	if start != "" {
		if t0, err = parseTime(start); err != nil {
			return
		}
	}
	if end != "" {
		if t1, err = parseTime(end); err != nil {
			return
		}
	}
	return
}

func queryCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	tf := newToolFlags("query", "query --dir D [--time T | --start T --end T --step D] 'promql'", stderr)
	at := tf.fs.String("time", "", "evaluation time of an instant query (RFC 3339 or Unix seconds; default now)")
	start := tf.fs.String("start", "", "start of a range query")
	end := tf.fs.String("end", "", "end of a range query")
	step := tf.fs.Duration("step", time.Minute, "step of a range query")
	db, err := tf.open(args, 1, "PromQL expression")
	if err != nil {
		return err
	}
	defer db.Close()
	qs := tf.fs.Arg(0)
	eng := query.NewEngine(db.Metrics(), query.Options{})
	if *start != "" || *end != "" {
		t0, t1, err := timeRange(*start, *end)
		if err != nil {
			return err
		}
		if t0.IsZero() || t1.IsZero() {
			return errors.New("a range query needs both --start and --end")
		}
		m, err := eng.Range(ctx, qs, t0, t1, *step)
		if err != nil {
			return err
		}
		for _, s := range m {
			fmt.Fprintln(stdout, s.Labels.String())
			for _, p := range s.Floats {
				fmt.Fprintf(stdout, "  %s  %s\n", time.UnixMilli(p.T).UTC().Format(time.RFC3339), strconv.FormatFloat(p.F, 'g', -1, 64))
			}
			for _, p := range s.Histograms {
				fmt.Fprintf(stdout, "  %s  %s\n", time.UnixMilli(p.T).UTC().Format(time.RFC3339), p.H.String())
			}
		}
		return nil
	}
	ts := time.Now()
	if *at != "" {
		if ts, err = parseTime(*at); err != nil {
			return err
		}
	}
	v, err := eng.Instant(ctx, qs, ts)
	if err != nil {
		return err
	}
	switch v := v.(type) {
	case query.Vector:
		for _, s := range v {
			val := strconv.FormatFloat(s.F, 'g', -1, 64)
			if s.H != nil {
				val = s.H.String()
			}
			fmt.Fprintf(stdout, "%s => %s @ %s\n", s.Labels.String(), val, time.UnixMilli(s.T).UTC().Format(time.RFC3339))
		}
	case query.Scalar:
		fmt.Fprintf(stdout, "scalar: %s @ %s\n", strconv.FormatFloat(v.F, 'g', -1, 64), time.UnixMilli(v.T).UTC().Format(time.RFC3339))
	case query.String:
		fmt.Fprintf(stdout, "string: %q\n", v.V)
	case query.Matrix:
		fmt.Fprint(stdout, v.String())
	}
	return nil
}

// attrFlag collects repeated --attr key=value flags.
type attrFlag map[string]string

func (a attrFlag) String() string { return fmt.Sprint(map[string]string(a)) }
func (a attrFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("attribute %q is not key=value", s)
	}
	a[k] = v
	return nil
}

func tracesCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	tf := newToolFlags("traces", "traces --dir D [--service S] [--operation O] [--attr k=v]... [--min-duration D]", stderr)
	q := tracestore.Query{Attributes: attrFlag{}}
	tf.fs.StringVar(&q.Service, "service", "", "service of the matching span")
	tf.fs.StringVar(&q.Operation, "operation", "", "operation (span name) of the matching span")
	tf.fs.Var(attrFlag(q.Attributes), "attr", "key=value the matching span must carry (repeatable)")
	tf.fs.DurationVar(&q.MinDuration, "min-duration", 0, "shortest matching span")
	tf.fs.DurationVar(&q.MaxDuration, "max-duration", 0, "longest matching span")
	start := tf.fs.String("start", "", "earliest span start (RFC 3339 or Unix seconds)")
	end := tf.fs.String("end", "", "latest span start")
	tf.fs.IntVar(&q.Limit, "limit", 20, "most traces shown")
	db, err := tf.open(args, 0, "arguments")
	if err != nil {
		return err
	}
	defer db.Close()
	t0, t1, err := timeRange(*start, *end)
	if err != nil {
		return err
	}
	if !t0.IsZero() {
		q.Start = t0.UnixNano()
	}
	if !t1.IsZero() {
		q.End = t1.UnixNano()
	}
	found, err := db.Traces().Find(ctx, q)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%-32s  %-23s  %9s  %5s  %-5s  %s\n", "TRACE ID", "START", "DURATION", "SPANS", "ERROR", "ROOT")
	for _, s := range found {
		e := ""
		if s.Error {
			e = "yes"
		}
		fmt.Fprintf(stdout, "%-32s  %-23s  %9s  %5d  %-5s  %s\n", s.TraceID, time.Unix(0, s.Start).UTC().Format("2006-01-02 15:04:05.000"),
			fmtDur(s.Duration), s.SpanCount, e, clip(s.RootService+" "+s.RootOperation, 40))
	}
	return nil
}

func traceCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	tf := newToolFlags("trace", "trace --dir D <trace-id>", stderr)
	db, err := tf.open(args, 1, "trace ID")
	if err != nil {
		return err
	}
	defer db.Close()
	id, err := tracestore.ParseTraceID(tf.fs.Arg(0))
	if err != nil {
		return err
	}
	tr, err := db.Traces().Trace(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "trace %s: %d spans, %s (* = on the critical path)\n", id, len(tr.Spans), fmtDur(traceDuration(tr)))
	c := printTree(stdout, tr)
	sp := &tr.Spans[c.span]
	fmt.Fprintf(stdout, "most time on the critical path: %s %s (%s)\n", sp.Service(), sp.Name, fmtDur(c.d))
	return nil
}

func logsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	tf := newToolFlags("logs", "logs --dir D [--start T] [--end T] [--limit N] 'query'", stderr)
	start := tf.fs.String("start", "", "earliest record (RFC 3339 or Unix seconds; default: the beginning)")
	end := tf.fs.String("end", "", "latest record (default: now)")
	limit := tf.fs.Int("limit", 50, "most records shown, newest first")
	db, err := tf.open(args, 1, "query")
	if err != nil {
		return err
	}
	defer db.Close()
	t0, t1, err := timeRange(*start, *end)
	if err != nil {
		return err
	}
	lo, hi := int64(0), time.Now().Add(24*time.Hour).UnixNano()
	if !t0.IsZero() {
		lo = t0.UnixNano()
	}
	if !t1.IsZero() {
		hi = t1.UnixNano()
	}
	hits, err := db.Logs().Search(ctx, tf.fs.Arg(0), lo, hi, *limit)
	if err != nil {
		return err
	}
	for _, h := range hits {
		body := h.Body.Str
		if body == "" && len(h.Body.Bytes) > 0 {
			body = string(h.Body.Bytes)
		}
		fmt.Fprintf(stdout, "%s  %-5s  %-10s  %s\n", time.Unix(0, h.Timestamp).UTC().Format("2006-01-02 15:04:05.000"),
			h.SeverityText, h.Service(), body)
	}
	return nil
}

func inspectCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	tf := newToolFlags("inspect", "inspect --dir D", stderr)
	db, err := tf.open(args, 0, "arguments")
	if err != nil {
		return err
	}
	defer db.Close()
	ms := db.Metrics().Stats()
	ls := db.Logs().Stats()
	svcs, err := db.Traces().Services(ctx)
	if err != nil {
		return err
	}
	q, err := db.Metrics().Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return err
	}
	defer q.Close()
	samples, err := countSamples(ctx, q)
	if err != nil {
		return err
	}
	p := db.Pebble()
	size := func(store byte) uint64 {
		n, err := p.EstimateDiskUsage([]byte{store}, []byte{store + 1})
		if err != nil {
			return 0
		}
		return n
	}
	mb, tb, lb := size(keys.StoreMetrics), size(keys.StoreTraces), size(keys.StoreLogs)
	fmt.Fprintf(stdout, "store %s: %s on disk\n\n", *tf.dir, fmtBytes(db.DiskUsage()))
	fmt.Fprintf(stdout, "%-8s  %-52s  %10s\n", "STORE", "CONTENTS", "ON DISK")
	perSample := "-"
	if samples > 0 {
		perSample = fmt.Sprintf("%.2f B/sample", float64(mb)/float64(samples))
	}
	fmt.Fprintf(stdout, "%-8s  %-52s  %10s\n", "metrics", fmt.Sprintf("%s series, %s samples, %s", thousands(int(ms.Series)),
		thousands(int(samples)), perSample), fmtBytes(mb))
	fmt.Fprintf(stdout, "%-8s  %-52s  %10s\n", "traces", fmt.Sprintf("%d services: %s", len(svcs), clip(strings.Join(svcs, ", "), 36)), fmtBytes(tb))
	fmt.Fprintf(stdout, "%-8s  %-52s  %10s\n", "logs", fmt.Sprintf("%s records in %d partitions", thousands(int(ls.Records)), ls.Partitions), fmtBytes(lb))
	return nil
}

// countSamples walks every series once; inspection is rare and exact
// counts beat estimates here.
func countSamples(ctx context.Context, q *tsdb.Querier) (uint64, error) {
	m, err := tsdb.NewMatcher(tsdb.MatchRegexp, tsdb.MetricName, ".+")
	if err != nil {
		return 0, err
	}
	var n uint64
	var it tsdb.Iterator
	ss := q.Select(ctx, false, m)
	for ss.Next() {
		it = ss.At().Iterator(it)
		for it.Next() != tsdb.ValNone {
			n++
		}
		if err := it.Err(); err != nil {
			return n, err
		}
	}
	return n, ss.Err()
}

func fmtBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
