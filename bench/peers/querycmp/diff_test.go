package querycmp

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/query"
	"github.com/pillar-db/pillar/tsdb"
)

// t0 is where the generated data starts (a whole hour, like real scrapes
// are not, so step alignment is exercised by the ranges below).
const t0 = int64(1_700_000_000_000)

// engines holds the same data in both stores and an engine over each.
type engines struct {
	prom   *promql.Engine
	promDB *promtsdb.DB
	pillar *query.Engine
}

func openEngines(tb testing.TB, d *dataset) *engines {
	tb.Helper()
	opts := promtsdb.DefaultOptions()
	opts.OutOfOrderTimeWindow = 0
	pdb, err := promtsdb.Open(tb.TempDir(), nil, nil, opts, nil)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = pdb.Close() })
	require.NoError(tb, d.loadPrometheus(pdb))

	xdb, err := tsdb.Open(tb.TempDir(), nil)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = xdb.Close() })
	require.NoError(tb, d.loadPillar(xdb))

	return &engines{
		prom: promql.NewEngine(promql.EngineOpts{
			MaxSamples:               50_000_000,
			Timeout:                  time.Minute,
			LookbackDelta:            5 * time.Minute,
			NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
			EnableAtModifier:         true,
			EnableNegativeOffset:     true,
		}),
		promDB: pdb,
		pillar: query.NewEngine(xdb, query.Options{}),
	}
}

// diffExpressions are the expressions compared: every supported function,
// aggregation and operator, over counters, gauges, classic and native
// histograms, with offset, @ and subqueries.
func diffExpressions() []string {
	at := fmt.Sprintf("%d", (t0+40*60*1000)/1000)
	var ex []string
	add := func(s ...string) { ex = append(ex, s...) }
	add(`c_total`, `c_total{job="a"}`, `c_total{job!="a"}`, `c_total{instance=~"1|2"}`,
		`c_total{instance!~"1"}`, `g offset 5m`, `g offset -2m`, `g @ `+at, `g @ start()`, `g @ end()`,
		`h_bucket{le="+Inf"}`, `{__name__=~"c_total|g", job="b"}`, `nh`, `nhg`, `const`)
	for _, f := range []string{"rate", "increase", "irate", "delta", "idelta", "deriv", "resets", "changes"} {
		for _, sel := range []string{`c_total[1m]`, `c_total[5m]`, `g[5m]`, `c_total[5m] offset 10m`, `c_total[5m] @ ` + at} {
			add(fmt.Sprintf("%s(%s)", f, sel))
		}
	}
	for _, f := range []string{"rate", "increase", "delta", "irate", "idelta", "resets", "changes"} {
		add(fmt.Sprintf("%s(nh[5m])", f))
	}
	add(`delta(nhg[5m])`, `idelta(nhg[2m])`)
	add(`predict_linear(g[10m], 600)`, `predict_linear(c_total[5m], 60)`, `deriv(g[1m])`)
	for _, f := range []string{"avg", "min", "max", "sum", "count", "last", "stddev", "stdvar", "present"} {
		for _, sel := range []string{`g[5m]`, `g[1m]`, `c_total[10m]`, `g[5m:1m]`} {
			add(fmt.Sprintf("%s_over_time(%s)", f, sel))
		}
	}
	add(`sum_over_time(nh[5m])`, `avg_over_time(nh[5m])`, `last_over_time(nh[5m])`, `count_over_time(nh[5m])`)
	for _, q := range []string{"0", "0.25", "0.5", "0.9", "0.99", "1", "-1", "2"} {
		add(fmt.Sprintf("quantile_over_time(%s, g[5m])", q))
	}
	add(`absent(nope)`, `absent(g{job="zz"})`, `absent(g)`, `absent_over_time(nope[5m])`,
		`absent_over_time(c_total{instance="1"}[1m])`, `absent_over_time(g{job="a"}[5m])`)
	for _, q := range []string{"0", "0.5", "0.9", "0.99", "1", "-0.5", "1.5"} {
		add(fmt.Sprintf("histogram_quantile(%s, rate(h_bucket[5m]))", q))
		add(fmt.Sprintf("histogram_quantile(%s, sum by (le) (rate(h_bucket[5m])))", q))
		add(fmt.Sprintf("histogram_quantile(%s, rate(nh[5m]))", q))
	}
	add(`histogram_quantile(0.9, sum by (job, le) (rate(h_bucket[10m])))`,
		`histogram_quantile(0.5, h_bucket)`, `histogram_quantile(0.5, sum(rate(nh[5m])))`,
		`histogram_quantile(0.8, nhg)`, `histogram_quantile(0.9, h_bucket{le=~"0.1|\\+Inf"})`,
		`histogram_count(rate(nh[5m]))`, `histogram_sum(rate(nh[5m]))`, `histogram_count(nh)`, `histogram_sum(nhg)`,
		`histogram_fraction(0, 0.5, rate(nh[5m]))`, `histogram_fraction(-1, 1, nhg)`,
		`histogram_fraction(0, 0.1, rate(h_bucket[5m]))`, `histogram_fraction(0.01, 1, sum by (le) (h_bucket))`,
		`sum(rate(nh[5m]))`, `sum by (job) (nh)`, `avg(nhg)`, `rate(nh[5m]) * 2`, `nh / 2`)
	for _, a := range []string{"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"} {
		add(fmt.Sprintf("%s(g)", a), fmt.Sprintf("%s by (job) (rate(c_total[5m]))", a),
			fmt.Sprintf("%s without (instance) (g)", a), fmt.Sprintf("%s by (instance) (c_total)", a))
	}
	add(`quantile(0.5, g)`, `quantile by (job) (0.9, g)`, `quantile(0, g)`, `quantile(1.5, g)`,
		`topk(2, g)`, `bottomk(2, g)`, `topk by (job) (1, rate(c_total[5m]))`, `bottomk without (instance) (1, g)`,
		`topk(0, g)`, `topk(100, g)`, `count_values("v", const)`, `count_values by (job) ("v", round(g))`,
		`count_values without (instance) ("v", ceil(g))`, `sum by (__name__) ({__name__=~"c_total|g"})`)
	for _, op := range []string{"+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<="} {
		add(fmt.Sprintf("g %s 1", op), fmt.Sprintf("2 %s g", op), fmt.Sprintf("g %s g", op))
	}
	add(`g > bool 0`, `0 < bool g`, `g == bool g`, `1 > bool 2`, `1 + 2 * 3`, `2 ^ 3 ^ 2`, `-g`, `- - g`, `g atan2 1`,
		`rate(c_total[5m]) / on (job, instance) g`, `rate(c_total[5m]) / ignoring (job) g{job="a"}`,
		`g - ignoring (instance) group_left sum by (job) (g)`, `sum by (job) (g) / ignoring (instance) group_right g`,
		`g * on (job) group_left (x) label_replace(const, "x", "y", "job", ".*")`,
		`c_total > on (job, instance) g`, `c_total > bool on (job, instance) g`,
		`g and g > 0`, `g or c_total`, `g unless g < 0`, `g and on (job) const`, `g unless on (job) const{job="a"}`,
		`c_total or on (job) g`, `(g > 0) or (g < -1)`, `time()`, `vector(1)`, `vector(time())`,
		`scalar(const{job="a"})`, `scalar(g)`, `g * scalar(sum(const))`, `time() - timestamp(g)`)
	for _, f := range []string{"abs", "ceil", "floor", "round", "exp", "ln", "log2", "log10", "sqrt", "sgn", "timestamp"} {
		add(fmt.Sprintf("%s(g)", f))
	}
	add(`round(g, 0.1)`, `round(g, 5)`, `clamp(g, -1, 1)`, `clamp(g, 1, -1)`, `clamp_min(g, 0)`, `clamp_max(g, 0)`,
		`timestamp(rate(c_total[5m]))`, `timestamp(g @ `+at+`)`, `timestamp(g offset 1m)`,
		`label_replace(g, "dst", "x-$1", "instance", "(.*)")`, `label_replace(g, "job", "", "job", "a")`,
		`label_replace(g, "dst", "$1", "nope", "(.*)")`, `label_join(g, "dst", "-", "job", "instance")`,
		`label_join(c_total, "job", "", "instance")`, `sort(g)`, `sort_desc(g)`, `sort(rate(c_total[5m]))`)
	add(`rate(c_total[5m:1m])`, `max_over_time(rate(c_total[1m])[10m:30s])`, `avg_over_time(g[10m:])`,
		`min_over_time(g[5m:1m] offset 5m)`, `sum_over_time((g > 0)[5m:45s])`, `deriv(sum(g)[10m:1m])`,
		`quantile_over_time(0.9, rate(c_total[2m])[15m:1m])`, `max_over_time(g[5m:1m] @ `+at+`)`,
		`rate(h_bucket{le="1"}[5m:1m])`)
	return ex
}

// window is one evaluation range (an instant query when step is 0).
type window struct {
	name       string
	start, end int64
	step       time.Duration
}

func diffWindows() []window {
	m := int64(60 * 1000)
	if raceEnabled {
		return []window{
			{"range odd 17s", t0 + 31*m + 3000, t0 + 47*m, 17 * time.Second},
			{"instant mid", t0 + 45*m, t0 + 45*m, 0},
		}
	}
	return []window{
		{"range 1h/15s", t0 + 10*m, t0 + 70*m, 15 * time.Second},
		{"range 2h/1m", t0, t0 + 125*m, time.Minute},
		{"range odd 17s", t0 + 31*m + 3000, t0 + 47*m, 17 * time.Second},
		{"instant mid", t0 + 45*m, t0 + 45*m, 0},
		{"instant after end", t0 + 122*m, t0 + 122*m, 0},
		{"instant at stale gap", t0 + 40*m + 7000, t0 + 40*m + 7000, 0},
	}
}

func TestDifferential(t *testing.T) {
	d := randomDataset(seedFromEnv(), t0, 2*60*60*1000)
	e := openEngines(t, d)
	exprs := diffExpressions()
	require.GreaterOrEqual(t, len(exprs), 200)
	ctx := context.Background()
	passed, comparisons, bothErr, empty := 0, 0, 0, 0
	for _, ex := range exprs {
		ok := true
		for _, w := range diffWindows() {
			if w.step != 0 && !isInstantVectorOrScalar(ex) {
				continue
			}
			comparisons++
			want, werr := e.runProm(ctx, ex, w)
			got, gerr := e.runPillar(ctx, ex, w)
			if (werr != nil) != (gerr != nil) {
				t.Errorf("%s [%s]: prometheus error %v, pillar error %v", ex, w.name, werr, gerr)
				ok = false
				continue
			}
			if werr != nil {
				bothErr++
				t.Logf("%s [%s]: both fail: prometheus %v; pillar %v", ex, w.name, werr, gerr)
				continue
			}
			if len(want.series) == 0 {
				empty++
			}
			if diff := compareResults(want, got, keepsOrder(ex)); diff != "" {
				t.Errorf("%s [%s]: %s", ex, w.name, diff)
				ok = false
			}
		}
		if ok {
			passed++
		}
	}
	t.Logf("differential: %d expressions, %d passed; %d evaluations compared, %d of them failing in both engines, %d empty in both",
		len(exprs), passed, comparisons, bothErr, empty)
}

func isInstantVectorOrScalar(ex string) bool {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(ex)
	if err != nil {
		return false
	}
	t := expr.Type()
	return t == parser.ValueTypeVector || t == parser.ValueTypeScalar
}

func keepsOrder(ex string) bool {
	return strings.HasPrefix(ex, "sort") || strings.HasPrefix(ex, "topk") || strings.HasPrefix(ex, "bottomk")
}

// result is either engine's answer in one comparable form.
type result struct {
	series []resSeries
}

type resSeries struct {
	labels string
	floats []query.FPoint
	hists  []query.HPoint
}

func (e *engines) runProm(ctx context.Context, ex string, w window) (result, error) {
	var (
		q   promql.Query
		err error
	)
	if w.step == 0 {
		q, err = e.prom.NewInstantQuery(ctx, e.promDB, nil, ex, time.UnixMilli(w.start))
	} else {
		q, err = e.prom.NewRangeQuery(ctx, e.promDB, nil, ex, time.UnixMilli(w.start), time.UnixMilli(w.end), w.step)
	}
	if err != nil {
		return result{}, err
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return result{}, res.Err
	}
	var out result
	switch v := res.Value.(type) {
	case promql.Matrix:
		for _, s := range v {
			rs := resSeries{labels: promLabels(s.Metric)}
			for _, p := range s.Floats {
				rs.floats = append(rs.floats, query.FPoint{T: p.T, F: p.F})
			}
			for _, p := range s.Histograms {
				rs.hists = append(rs.hists, query.HPoint{T: p.T, H: p.H})
			}
			out.series = append(out.series, rs)
		}
	case promql.Vector:
		for _, s := range v {
			rs := resSeries{labels: promLabels(s.Metric)}
			if s.H != nil {
				rs.hists = []query.HPoint{{T: s.T, H: s.H}}
			} else {
				rs.floats = []query.FPoint{{T: s.T, F: s.F}}
			}
			out.series = append(out.series, rs)
		}
	case promql.Scalar:
		out.series = []resSeries{{labels: "scalar", floats: []query.FPoint{{T: v.T, F: v.V}}}}
	case promql.String:
		out.series = []resSeries{{labels: "string:" + v.V}}
	}
	return out, nil
}

func (e *engines) runPillar(ctx context.Context, ex string, w window) (result, error) {
	var out result
	if w.step != 0 {
		m, err := e.pillar.Range(ctx, ex, time.UnixMilli(w.start), time.UnixMilli(w.end), w.step)
		if err != nil {
			return out, err
		}
		for _, s := range m {
			out.series = append(out.series, resSeries{labels: pillarLabels(s.Labels), floats: s.Floats, hists: s.Histograms})
		}
		return out, nil
	}
	v, err := e.pillar.Instant(ctx, ex, time.UnixMilli(w.start))
	if err != nil {
		return out, err
	}
	switch v := v.(type) {
	case query.Matrix:
		for _, s := range v {
			out.series = append(out.series, resSeries{labels: pillarLabels(s.Labels), floats: s.Floats, hists: s.Histograms})
		}
	case query.Vector:
		for _, s := range v {
			rs := resSeries{labels: pillarLabels(s.Labels)}
			if s.H != nil {
				rs.hists = []query.HPoint{{T: s.T, H: s.H}}
			} else {
				rs.floats = []query.FPoint{{T: s.T, F: s.F}}
			}
			out.series = append(out.series, rs)
		}
	case query.Scalar:
		out.series = []resSeries{{labels: "scalar", floats: []query.FPoint{{T: v.T, F: v.F}}}}
	case query.String:
		out.series = []resSeries{{labels: "string:" + v.V}}
	}
	return out, nil
}

func promLabels(ls labels.Labels) string {
	var b strings.Builder
	ls.Range(func(l labels.Label) { fmt.Fprintf(&b, "%s=%q,", l.Name, l.Value) })
	return b.String()
}

func pillarLabels(ls tsdb.Labels) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "%s=%q,", l.Name, l.Value)
	}
	return b.String()
}

// compareResults returns "" when got equals want: the same series (in the
// same order when ordered), the same timestamps, values within 1e-9
// relative, NaN equal to NaN.
func compareResults(want, got result, ordered bool) string {
	if !ordered {
		sortSeries(want.series)
		sortSeries(got.series)
	}
	if len(want.series) != len(got.series) {
		return fmt.Sprintf("%d series, want %d:\nwant %s\ngot  %s", len(got.series), len(want.series), summary(want), summary(got))
	}
	for i := range want.series {
		w, g := want.series[i], got.series[i]
		if w.labels != g.labels {
			return fmt.Sprintf("series %d labels %s, want %s", i, g.labels, w.labels)
		}
		if len(w.floats) != len(g.floats) || len(w.hists) != len(g.hists) {
			return fmt.Sprintf("series %s: %d floats %d histograms, want %d and %d\nwant %v\ngot  %v", w.labels, len(g.floats), len(g.hists), len(w.floats), len(w.hists), w.floats, g.floats)
		}
		for j := range w.floats {
			if w.floats[j].T != g.floats[j].T || !closeEnough(w.floats[j].F, g.floats[j].F) {
				return fmt.Sprintf("series %s point %d: got %v, want %v", w.labels, j, g.floats[j], w.floats[j])
			}
		}
		for j := range w.hists {
			if w.hists[j].T != g.hists[j].T || !histClose(w.hists[j].H, g.hists[j].H) {
				return fmt.Sprintf("series %s histogram %d at %d: got %v, want %v", w.labels, j, w.hists[j].T, g.hists[j].H, w.hists[j].H)
			}
		}
	}
	return ""
}

func summary(r result) string {
	var names []string
	for _, s := range r.series {
		names = append(names, s.labels)
	}
	return strings.Join(names, " ")
}

func sortSeries(s []resSeries) {
	slices.SortFunc(s, func(a, b resSeries) int { return strings.Compare(a.labels, b.labels) })
}

func closeEnough(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func histClose(a, b *histogram.FloatHistogram) bool {
	if !closeEnough(a.Count, b.Count) || !closeEnough(a.Sum, b.Sum) || !closeEnough(a.ZeroCount, b.ZeroCount) {
		return false
	}
	ab, bb := nonEmptyBuckets(a), nonEmptyBuckets(b)
	if len(ab) != len(bb) {
		return false
	}
	for i := range ab {
		if ab[i].Lower != bb[i].Lower || ab[i].Upper != bb[i].Upper || !closeEnough(ab[i].Count, bb[i].Count) {
			return false
		}
	}
	return true
}

func nonEmptyBuckets(h *histogram.FloatHistogram) []histogram.Bucket[float64] {
	var out []histogram.Bucket[float64]
	it := h.AllBucketIterator()
	for it.Next() {
		if b := it.At(); b.Count != 0 {
			out = append(out, b)
		}
	}
	return out
}

// seedFromEnv is the data seed: QUERYCMP_SEED when set, else 42.
func seedFromEnv() uint64 {
	s, _ := strconv.ParseUint(os.Getenv("QUERYCMP_SEED"), 10, 64)
	if s == 0 {
		return 42
	}
	return s
}
