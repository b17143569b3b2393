package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pillar-db/pillar"
	"github.com/pillar-db/pillar/bench/urlshortener"
	"github.com/pillar-db/pillar/query"
	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tsdb"
)

// demoStart is the fixed start of the demo's hour, so every run tells the
// same story.
var demoStart = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

// demoReport is what the walk found, for tests to check.
type demoReport struct {
	AlertFrom, AlertTo time.Time // zero when p99 never crossed the threshold
	SlowestTrace       tracestore.TraceID
	Culprit            string // "<service> · <span name>" where the time went
	CulpritStatement   string
	TraceLogs          int
	ErrorRatioBefore   float64
	ErrorRatioDuring   float64
}

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "store directory (default: a temporary directory, removed afterwards)")
	dur := fs.Duration("duration", time.Hour, "how much system time to generate")
	rate := fs.Float64("rate", 5, "mean requests per second")
	incStart := fs.Duration("incident-start", 30*time.Minute, "offset of the slow-query window")
	incLen := fs.Duration("incident-len", 10*time.Minute, "length of the slow-query window")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: pillar demo [flags]\n\nGenerates an hour of a URL shortener's telemetry with a slow-query incident\nand walks it from the latency alert to the guilty query.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := urlshortener.DefaultConfig(demoStart)
	cfg.Duration, cfg.RatePerSecond, cfg.IncidentStart, cfg.IncidentLen = *dur, *rate, *incStart, *incLen
	_, err := runDemo(ctx, *dir, cfg, stdout)
	return err
}

// step records how long one step's queries took.
type step struct {
	name string
	took time.Duration
}

func runDemo(ctx context.Context, dir string, cfg urlshortener.Config, w io.Writer) (*demoReport, error) {
	if cfg.IncidentStart+cfg.IncidentLen > cfg.Duration {
		return nil, fmt.Errorf("incident window ends after the generated time")
	}
	temp := dir == ""
	if temp {
		d, err := os.MkdirTemp("", "pillar-demo-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	db, err := pillar.Open(dir, nil)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rep := &demoReport{}
	var steps []step
	timed := func(name string, f func() error) error {
		t := time.Now()
		err := f()
		steps = append(steps, step{name, time.Since(t)})
		return err
	}

	fmt.Fprintf(w, "Pillar demo: a URL shortener's bad hour\n")
	where := dir
	if temp {
		where += " (temporary)"
	}
	fmt.Fprintf(w, "store: %s\n\n", where)

	// 1. Data.
	fmt.Fprintf(w, "1. The system: edge → redirect → cache → db, clicks to analytics\n")
	genStart := time.Now()
	existing, err := hasDemoData(ctx, db)
	if err != nil {
		return nil, err
	}
	if existing {
		fmt.Fprintf(w, "   the store already holds the demo's data; walking it as it is\n\n")
	} else {
		sum, err := urlshortener.Generate(ctx, db, cfg)
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		fmt.Fprintf(w, "   %s of traffic written in %s:\n   %s requests, %s spans, %s log lines, %s metric samples\n\n",
			fmtDur(cfg.Duration), fmtDur(time.Since(genStart)), thousands(sum.Requests), thousands(sum.Spans),
			thousands(sum.Logs), thousands(sum.Samples))
	}

	eng := query.NewEngine(db.Metrics(), query.Options{})
	start, end := cfg.Start, cfg.Start.Add(cfg.Duration)

	// 2. Latency percentiles per minute.
	fmt.Fprintf(w, "2. Latency of redirect per minute (histogram_quantile over %s)\n", urlshortener.DurationMetric)
	quantiles := []float64{0.5, 0.95, 0.99}
	series := make([][]query.FPoint, len(quantiles))
	err = timed("latency percentiles", func() error {
		for i, q := range quantiles {
			qs := fmt.Sprintf(`histogram_quantile(%g, sum by (le) (rate(%s_bucket{service="redirect"}[1m])))`, q, urlshortener.DurationMetric)
			m, err := eng.Range(ctx, qs, start.Add(time.Minute), end, time.Minute)
			if err != nil {
				return err
			}
			if len(m) > 0 {
				series[i] = m[0].Floats
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, q := range quantiles {
		lo, hi := minMax(series[i])
		fmt.Fprintf(w, "   p%-3s %s  %s … %s\n", trimFloat(q*100), sparkline(series[i]), fmtSeconds(lo), fmtSeconds(hi))
	}
	const threshold = 0.5
	from, to := alertWindow(series[2], threshold)
	if from == 0 {
		fmt.Fprintf(w, "   p99 stayed under %s: no alert\n\n", fmtSeconds(threshold))
		return rep, printSteps(w, steps)
	}
	// A point covers the minute before it (the rate window).
	rep.AlertFrom, rep.AlertTo = time.UnixMilli(from).Add(-time.Minute).UTC(), time.UnixMilli(to).UTC()
	fmt.Fprintf(w, "   ALERT p99 > %s from %s to %s (%s)\n\n", fmtSeconds(threshold),
		rep.AlertFrom.Format("15:04"), rep.AlertTo.Format("15:04"), fmtDur(rep.AlertTo.Sub(rep.AlertFrom)))

	// 3. Slowest traces in the window.
	fmt.Fprintf(w, "3. Slowest redirect traces in the alert window (duration ≥ %s)\n", fmtSeconds(threshold))
	var found []tracestore.TraceSummary
	err = timed("find slow traces", func() error {
		var err error
		found, err = db.Traces().Find(ctx, tracestore.Query{
			Service: "redirect", MinDuration: time.Duration(threshold * float64(time.Second)),
			Start: rep.AlertFrom.UnixNano(), End: rep.AlertTo.UnixNano(), Limit: 1000,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		fmt.Fprintf(w, "   none found\n\n")
		return rep, printSteps(w, steps)
	}
	slices.SortStableFunc(found, func(a, b tracestore.TraceSummary) int { return cmp.Compare(b.Duration, a.Duration) })
	fmt.Fprintf(w, "   %d traces; the ten slowest:\n", len(found))
	fmt.Fprintf(w, "   %-32s  %-12s  %8s  %5s  %-22s  %s\n", "TRACE ID", "START", "DURATION", "SPANS", "ROOT", "ERROR")
	for _, s := range found[:min(10, len(found))] {
		e := ""
		if s.Error {
			e = "yes"
		}
		fmt.Fprintf(w, "   %-32s  %-12s  %8s  %5d  %-22s  %s\n", s.TraceID, time.Unix(0, s.Start).UTC().Format("15:04:05.000"),
			fmtDur(s.Duration), s.SpanCount, clip(s.RootService+" "+s.RootOperation, 22), e)
	}
	fmt.Fprintln(w)

	// 4. The slowest trace as a tree.
	rep.SlowestTrace = found[0].TraceID
	var tr *tracestore.Trace
	err = timed("fetch trace", func() error {
		var err error
		tr, err = db.Traces().Trace(ctx, rep.SlowestTrace)
		return err
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "4. Trace %s: where the time went (* = on the critical path)\n", rep.SlowestTrace)
	culprit := printTree(w, tr)
	sp := &tr.Spans[culprit.span]
	rep.Culprit = sp.Service() + " · " + sp.Name
	rep.CulpritStatement = statementOf(tr, culprit.span)
	total := traceDuration(tr)
	fmt.Fprintf(w, "   → %s of the %s on the critical path was spent in %s: %s\n", fmtDur(culprit.d), fmtDur(total),
		sp.Service(), sp.Name)
	if rep.CulpritStatement != "" {
		fmt.Fprintf(w, "     inside the query %q\n", rep.CulpritStatement)
	}
	fmt.Fprintln(w)

	// 5. The trace's logs.
	fmt.Fprintf(w, "5. Its log lines (trace_id:%s), newest first\n", rep.SlowestTrace)
	err = timed("trace logs", func() error {
		hits, err := db.Logs().Search(ctx, "trace_id:"+rep.SlowestTrace.String(), start.UnixNano(), end.Add(time.Hour).UnixNano(), 50)
		if err != nil {
			return err
		}
		rep.TraceLogs = len(hits)
		for _, h := range hits {
			fmt.Fprintf(w, "   %s  %-5s  %-9s  %s\n", time.Unix(0, h.Timestamp).UTC().Format("15:04:05.000"),
				h.SeverityText, h.Service(), logSummary(h.Body.Str))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(w)

	// 6. Rates before and during.
	before := start.Add(cfg.IncidentStart - 5*time.Minute)
	during := start.Add(cfg.IncidentStart + cfg.IncidentLen - time.Minute)
	fmt.Fprintf(w, "6. Request and error rates of redirect (rate over 5m)\n")
	fmt.Fprintf(w, "   %-14s  %14s  %14s\n", "", "before "+before.Format("15:04"), "during "+during.Format("15:04"))
	var vals [2][3]float64
	err = timed("rates", func() error {
		for i, at := range []time.Time{before, during} {
			req, err := scalarAt(ctx, eng, fmt.Sprintf(`sum(rate(%s{service="redirect"}[5m]))`, urlshortener.RequestsMetric), at)
			if err != nil {
				return err
			}
			errs, err := scalarAt(ctx, eng, fmt.Sprintf(`sum(rate(%s{service="redirect",code=~"5.."}[5m]))`, urlshortener.RequestsMetric), at)
			if err != nil {
				return err
			}
			vals[i] = [3]float64{req, errs, errs / req}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep.ErrorRatioBefore, rep.ErrorRatioDuring = vals[0][2], vals[1][2]
	fmt.Fprintf(w, "   %-14s  %14.2f  %14.2f\n", "requests/s", vals[0][0], vals[1][0])
	fmt.Fprintf(w, "   %-14s  %14.3f  %14.3f\n", "errors/s", vals[0][1], vals[1][1])
	fmt.Fprintf(w, "   %-14s  %13.2f%%  %13.2f%%\n\n", "error ratio", 100*vals[0][2], 100*vals[1][2])
	return rep, printSteps(w, steps)
}

// hasDemoData reports whether the store already holds the demo's metrics.
func hasDemoData(ctx context.Context, db *pillar.DB) (bool, error) {
	q, err := db.Metrics().Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return false, err
	}
	defer q.Close()
	names, err := q.LabelValues(ctx, tsdb.MetricName)
	if err != nil {
		return false, err
	}
	return slices.Contains(names, urlshortener.RequestsMetric), nil
}

func scalarAt(ctx context.Context, eng *query.Engine, qs string, at time.Time) (float64, error) {
	v, err := eng.Instant(ctx, qs, at)
	if err != nil {
		return 0, err
	}
	vec, ok := v.(query.Vector)
	if !ok {
		return 0, fmt.Errorf("%s: want a vector, got %T", qs, v)
	}
	if len(vec) == 0 {
		return 0, nil
	}
	return vec[0].F, nil
}

func printSteps(w io.Writer, steps []step) error {
	var total time.Duration
	for _, s := range steps {
		total += s.took
	}
	fmt.Fprintf(w, "Query time, %s in all:\n", fmtDur(total))
	for _, s := range steps {
		fmt.Fprintf(w, "   %-22s %9s\n", s.name, fmtDur(s.took))
	}
	return nil
}

// alertWindow returns the first run of points above threshold as
// [first point's time, last point's time], or zeros.
func alertWindow(pts []query.FPoint, threshold float64) (from, to int64) {
	for _, p := range pts {
		if p.F > threshold && !math.IsNaN(p.F) {
			if from == 0 {
				from = p.T
			}
			to = p.T
		} else if from != 0 {
			break
		}
	}
	return from, to
}

// critical is the span that took the largest share of the critical path.
type critical struct {
	span int
	d    time.Duration
}

// printTree draws the trace as an indented tree with a time bar per span
// and returns the span with the most time on the critical path.
func printTree(w io.Writer, tr *tracestore.Trace) critical {
	tree := tr.Tree()
	onPath := make([]time.Duration, len(tr.Spans))
	for _, seg := range tr.CriticalPath() {
		onPath[seg.Span] += time.Duration(seg.End - seg.Start)
	}
	t0, t1 := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range tr.Spans {
		t0, t1 = min(t0, s.StartTime), max(t1, s.EndTime)
	}
	const barWidth = 36
	scale := float64(barWidth) / float64(max(t1-t0, 1))
	var walk func(i, depth int)
	walk = func(i, depth int) {
		s := &tr.Spans[i]
		mark := " "
		if onPath[i] > 0 {
			mark = "*"
		}
		name := clip(strings.Repeat("  ", depth)+s.Service()+" "+s.Name, 40)
		a := int(float64(s.StartTime-t0) * scale)
		b := max(a+1, int(math.Ceil(float64(s.EndTime-t0)*scale)))
		b = min(b, barWidth)
		bar := strings.Repeat(" ", a) + strings.Repeat("█", b-a) + strings.Repeat(" ", barWidth-b)
		fmt.Fprintf(w, "   %s %-40s %9s |%s|\n", mark, name, fmtDur(time.Duration(s.Duration())), bar)
		for _, c := range tree.Children[i] {
			walk(c, depth+1)
		}
	}
	for _, r := range tree.Roots {
		walk(r, 0)
	}
	best := critical{span: tree.Roots[0]}
	for i, d := range onPath {
		if d > best.d {
			best = critical{i, d}
		}
	}
	return best
}

// statementOf returns the db.statement of span i or of its nearest
// ancestor that has one.
func statementOf(tr *tracestore.Trace, i int) string {
	tree := tr.Tree()
	for ; i >= 0; i = tree.Parent[i] {
		for _, kv := range tr.Spans[i].Attributes {
			if kv.Key == "db.statement" {
				return kv.Value.String()
			}
		}
	}
	return ""
}

func traceDuration(tr *tracestore.Trace) time.Duration {
	t0, t1 := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range tr.Spans {
		t0, t1 = min(t0, s.StartTime), max(t1, s.EndTime)
	}
	return time.Duration(t1 - t0)
}

// logSummary shows a JSON log body as its message and its other fields.
func logSummary(body string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return clip(body, 60)
	}
	msg, _ := m["msg"].(string)
	keys := make([]string, 0, len(m))
	for k := range m {
		switch k {
		case "msg", "ts", "level", "service", "trace_id", "span_id":
		default:
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(msg)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, m[k])
	}
	return clip(b.String(), 60)
}

var sparks = []rune("▁▂▃▄▅▆▇█")

// sparkline draws values on a log scale, so milliseconds and seconds both
// show; NaN (no data) is a space.
func sparkline(pts []query.FPoint) string {
	lo, hi := minMax(pts)
	if lo <= 0 {
		lo = 1e-4
	}
	var b strings.Builder
	for _, p := range pts {
		if math.IsNaN(p.F) {
			b.WriteRune(' ')
			continue
		}
		f := 0.0
		if hi > lo {
			f = (math.Log(max(p.F, lo)) - math.Log(lo)) / (math.Log(hi) - math.Log(lo))
		}
		b.WriteRune(sparks[min(len(sparks)-1, int(f*float64(len(sparks))))])
	}
	return b.String()
}

func minMax(pts []query.FPoint) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		if !math.IsNaN(p.F) {
			lo, hi = min(lo, p.F), max(hi, p.F)
		}
	}
	if math.IsInf(lo, 1) {
		return math.NaN(), math.NaN()
	}
	return lo, hi
}

func fmtSeconds(s float64) string {
	if math.IsNaN(s) {
		return "-"
	}
	return fmtDur(time.Duration(s * float64(time.Second)))
}

// fmtDur prints a duration with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)), ".0") + "ms"
	default:
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
}

func trimFloat(f float64) string { return strings.TrimSuffix(fmt.Sprintf("%g", f), ".0") }

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
