package query

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/grafana/regexp"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/tsdb"
)

// rangeFunc computes one range-vector function over one series' window at
// one step. args are the function's scalar arguments at that step.
type rangeFunc func(w *windowArgs) (float64, *FloatHistogram, bool)

// windowArgs is what a rangeFunc sees: the window's samples, its bounds and
// the scalar arguments.
type windowArgs struct {
	f            []FPoint
	h            []HPoint
	ts           int64 // evaluation time
	rangeStart   int64 // exclusive
	rangeEnd     int64 // inclusive
	rangeSeconds float64
	args         []float64
	scratch      []float64
	noDrops      bool // no float in f is lower than the one before it

	// series changes with every series evaluated, so state kept across
	// the steps of one series (the sorted window below) is never carried
	// into the next.
	series uint64
	sorted slidingSorted
}

var rangeFuncs = map[string]rangeFunc{
	"rate":     func(w *windowArgs) (float64, *FloatHistogram, bool) { return rateFunc(w, true, true) },
	"increase": func(w *windowArgs) (float64, *FloatHistogram, bool) { return rateFunc(w, true, false) },
	"delta":    func(w *windowArgs) (float64, *FloatHistogram, bool) { return rateFunc(w, false, false) },
	"irate":    func(w *windowArgs) (float64, *FloatHistogram, bool) { return irateFunc(w, true) },
	"idelta":   func(w *windowArgs) (float64, *FloatHistogram, bool) { return irateFunc(w, false) },
	"deriv": func(w *windowArgs) (float64, *FloatHistogram, bool) {
		if len(w.f) < 2 {
			return 0, nil, false
		}
		slope, _ := linearRegression(w.f, w.f[0].T)
		return slope, nil, true
	},
	"predict_linear": func(w *windowArgs) (float64, *FloatHistogram, bool) {
		if len(w.f) < 2 {
			return 0, nil, false
		}
		slope, intercept := linearRegression(w.f, w.ts)
		return slope*w.args[0] + intercept, nil, true
	},
	"resets":  resetsFunc,
	"changes": changesFunc,
	"avg_over_time": func(w *windowArgs) (float64, *FloatHistogram, bool) {
		switch {
		case len(w.f) > 0 && len(w.h) > 0:
			return 0, nil, false
		case len(w.f) > 0:
			return avgOverTime(w.f), nil, true
		}
		h, ok := avgHistograms(w.h)
		return 0, h, ok
	},
	"sum_over_time": func(w *windowArgs) (float64, *FloatHistogram, bool) {
		switch {
		case len(w.f) > 0 && len(w.h) > 0:
			return 0, nil, false
		case len(w.f) > 0:
			return sumOverTime(w.f), nil, true
		}
		h, ok := sumHistograms(w.h)
		return 0, h, ok
	},
	"min_over_time": func(w *windowArgs) (float64, *FloatHistogram, bool) {
		if len(w.f) == 0 {
			return 0, nil, false
		}
		return extremeOverTime(w.f, false), nil, true
	},
	"max_over_time": func(w *windowArgs) (float64, *FloatHistogram, bool) {
		if len(w.f) == 0 {
			return 0, nil, false
		}
		return extremeOverTime(w.f, true), nil, true
	},
	"count_over_time": func(w *windowArgs) (float64, *FloatHistogram, bool) {
		return float64(len(w.f) + len(w.h)), nil, true
	},
	"last_over_time": func(w *windowArgs) (float64, *FloatHistogram, bool) {
		switch {
		case len(w.h) == 0:
			return w.f[len(w.f)-1].F, nil, true
		case len(w.f) > 0 && w.h[len(w.h)-1].T < w.f[len(w.f)-1].T:
			return w.f[len(w.f)-1].F, nil, true
		}
		return 0, w.h[len(w.h)-1].H.Copy(), true
	},
	"stddev_over_time": func(w *windowArgs) (float64, *FloatHistogram, bool) {
		if len(w.f) == 0 {
			return 0, nil, false
		}
		return math.Sqrt(varianceOverTime(w.f)), nil, true
	},
	"stdvar_over_time": func(w *windowArgs) (float64, *FloatHistogram, bool) {
		if len(w.f) == 0 {
			return 0, nil, false
		}
		return varianceOverTime(w.f), nil, true
	},
	"quantile_over_time": func(w *windowArgs) (float64, *FloatHistogram, bool) {
		if len(w.f) == 0 {
			return 0, nil, false
		}
		return quantileOfSorted(w.args[0], w.sorted.slide(w.series, w.f)), nil, true
	},
	"present_over_time": func(w *windowArgs) (float64, *FloatHistogram, bool) { return 1, nil, true },
	"absent_over_time":  func(w *windowArgs) (float64, *FloatHistogram, bool) { return 1, nil, true },
}

func rateFunc(w *windowArgs, isCounter, isRate bool) (float64, *FloatHistogram, bool) {
	switch {
	case len(w.f) > 0 && len(w.h) > 0:
		return 0, nil, false
	case len(w.h) > 0:
		h, ok := histogramRate(w, isCounter, isRate)
		return 0, h, ok
	}
	f, ok := extrapolatedRate(w.f, w.rangeStart, w.rangeEnd, w.rangeSeconds, isCounter, isRate, w.noDrops)
	return f, nil, ok
}

func irateFunc(w *windowArgs, isRate bool) (float64, *FloatHistogram, bool) {
	if len(w.h) == 0 {
		f, ok := instantRate(w.f, isRate)
		return f, nil, ok
	}
	if len(w.f) > 0 {
		// Mixed floats and histograms in the last two samples are not
		// evaluated; only the all-histogram case is.
		return 0, nil, false
	}
	h, ok := instantHistogramRate(w.h, isRate)
	return 0, h, ok
}

// mergedSample walks floats and histograms of a window in time order.
func mergedSamples(f []FPoint, h []HPoint, fn func(isH bool, fv float64, hv *FloatHistogram)) {
	i, j := 0, 0
	for i < len(f) || j < len(h) {
		if j >= len(h) || (i < len(f) && f[i].T < h[j].T) {
			fn(false, f[i].F, nil)
			i++
		} else {
			fn(true, 0, h[j].H)
			j++
		}
	}
}

func resetsFunc(w *windowArgs) (float64, *FloatHistogram, bool) {
	return countTransitions(w, func(f, prev float64) bool { return f < prev },
		func(h, prev *FloatHistogram) bool { return h.DetectReset(prev) })
}

func changesFunc(w *windowArgs) (float64, *FloatHistogram, bool) {
	return countTransitions(w, func(f, prev float64) bool { return f != prev && !(math.IsNaN(f) && math.IsNaN(prev)) },
		func(h, prev *FloatHistogram) bool { return !h.Equals(prev) })
}

// countTransitions counts the consecutive pairs of the window's samples
// that floatStep or histStep says differ; a switch between a float and a
// histogram always counts, as in Prometheus' resets and changes.
func countTransitions(w *windowArgs, floatStep func(f, prev float64) bool, histStep func(h, prev *FloatHistogram) bool) (float64, *FloatHistogram, bool) {
	if len(w.f) == 0 && len(w.h) == 0 {
		return 0, nil, false
	}
	n := 0
	first := true
	var prevH *FloatHistogram
	var prevF float64
	mergedSamples(w.f, w.h, func(isH bool, fv float64, hv *FloatHistogram) {
		if !first {
			switch {
			case prevH == nil && !isH:
				if floatStep(fv, prevF) {
					n++
				}
			case (prevH == nil) != !isH:
				n++
			default:
				if histStep(hv, prevH) {
					n++
				}
			}
		}
		first = false
		prevF, prevH = fv, hv
	})
	return float64(n), nil, true
}

// call evaluates a function call.
func (ev *evaluator) call(e *parser.Call) Matrix {
	name := e.Func.Name
	switch name {
	case "label_replace":
		return ev.labelReplace(e)
	case "label_join":
		return ev.labelJoin(e)
	case "timestamp":
		if vs, ok := unwrapParens(e.Args[0]).(*parser.VectorSelector); ok {
			return ev.timestampOfSelector(vs)
		}
	}
	if fn, ok := rangeFuncs[name]; ok {
		return ev.rangeFunction(e, fn, nil)
	}
	if name == "absent" {
		return ev.rangeEval(func(args []Vector, enh *evalHelper) Vector {
			if len(args[0]) > 0 {
				return enh.out
			}
			return append(enh.out, Sample{Labels: absentLabels(e.Args[0]), F: 1})
		}, e.Args[0])
	}
	fn := instantFuncs[name]
	return ev.rangeEval(func(args []Vector, enh *evalHelper) Vector {
		return fn(ev, e, args, enh)
	}, e.Args...)
}

func unwrapParens(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// absentLabels are the labels absent() reports: those of the selector's
// equality matchers, except a label matched for equality more than once.
func absentLabels(arg parser.Expr) tsdb.Labels {
	var lm []*labels.Matcher
	switch n := arg.(type) {
	case *parser.VectorSelector:
		lm = n.LabelMatchers
	case *parser.MatrixSelector:
		lm = n.VectorSelector.(*parser.VectorSelector).LabelMatchers
	default:
		return nil
	}
	b := tsdb.NewBuilder(nil)
	has := make(map[string]bool, len(lm))
	for _, m := range lm {
		if m.Name == tsdb.MetricName {
			continue
		}
		if m.Type == labels.MatchEqual && !has[m.Name] {
			b.Set(m.Name, m.Value)
			has[m.Name] = true
		} else {
			b.Del(m.Name)
		}
	}
	return b.Labels()
}

// rangeFunction evaluates a function over a range vector: one pass per
// series, with a window that slides along the steps. With a sink, each
// output series is handed to it instead of collected (its point slices are
// reused for the next series, so the sink must not keep them) and nil is
// returned.
func (ev *evaluator) rangeFunction(e *parser.Call, fn rangeFunc, sink func(*Series)) Matrix {
	name := e.Func.Name
	matrixIdx := -1
	for i, a := range e.Args {
		switch unwrapParens(a).(type) {
		case *parser.MatrixSelector, *parser.SubqueryExpr:
			matrixIdx = i
		}
		if matrixIdx >= 0 {
			break
		}
	}
	if matrixIdx < 0 {
		ev.fail(&UnsupportedError{What: "range argument of " + name + " that is not a selector or subquery"})
	}
	// Scalar arguments, one value per step.
	var scalars []Matrix
	for i, a := range e.Args {
		if i != matrixIdx {
			scalars = append(scalars, ev.eval(a).(Matrix))
		}
	}
	keepName := name == "last_over_time"
	numSteps := ev.numSteps()
	var (
		out     Matrix
		w       window
		wa      = windowArgs{args: make([]float64, len(scalars))}
		rangeMs int64
		rt      refTimes
	)
	// With a sink, point buffers are reused across series and label
	// uniqueness is checked as series go by.
	var (
		fbuf []FPoint
		hbuf []HPoint
		seen map[uint64]struct{}
	)
	if sink != nil {
		fbuf = make([]FPoint, 0, numSteps)
		seen = map[uint64]struct{}{}
	}
	// perSeries evaluates one series read from it (a store iterator) or,
	// when it is nil, from cur.
	var scratch encoding.Histogram
	// ru, when set, answers the steps its series' rollups cover; the other
	// steps read the series' raw samples (it is then made on first use).
	var ru *rollupEval
	perSeries := func(labels tsdb.Labels, it tsdb.Iterator, cur cursor) {
		ev.checkCtx()
		w.reset()
		wa.series++
		series := Series{Labels: labels}
		if !keepName {
			series.Labels = dropName(labels)
		}
		if sink != nil {
			series.Floats, series.Histograms = fbuf[:0], hbuf[:0]
		}
		step, ts := 0, ev.start
		if ru != nil {
			step, ts = ru.run(ev, rt, &series.Floats, numSteps)
		}
		for ; ts <= ev.end; ts, step = ts+ev.interval, step+1 {
			maxt := rt.at1(ts)
			mint := maxt - rangeMs
			if ru != nil {
				if maxt <= ru.complete {
					f, ok, exact := ru.step(mint, maxt)
					if exact {
						if ok {
							if series.Floats == nil {
								series.Floats = make([]FPoint, 0, numSteps)
							}
							series.Floats = append(series.Floats, FPoint{T: ts, F: f})
						}
						continue
					}
				}
				ev.stats.RawSteps++
				if it == nil {
					ru.rawIt = ru.series.Raw().Iterator(ru.rawIt)
					it = ru.rawIt
				}
			}
			prev := w.len()
			if it != nil {
				w.fillIter(ev, it, &scratch, mint, maxt)
			} else {
				w.fill(ev, cur, mint, maxt)
			}
			if d := w.len() - prev; d != 0 {
				ev.addSamples(d)
			}
			if w.len() == 0 {
				continue
			}
			for i, s := range scalars {
				wa.args[i] = s[0].Floats[step].F
			}
			wa.f, wa.h = w.floats(), w.hists()
			wa.noDrops = w.drops == 0
			wa.ts = ts
			wa.rangeStart, wa.rangeEnd = mint, maxt
			f, h, ok := fn(&wa)
			if !ok {
				continue
			}
			if h != nil {
				if series.Histograms == nil {
					series.Histograms = make([]HPoint, 0, numSteps)
				}
				series.Histograms = append(series.Histograms, HPoint{T: ts, H: h})
			} else {
				if series.Floats == nil {
					series.Floats = make([]FPoint, 0, numSteps)
				}
				series.Floats = append(series.Floats, FPoint{T: ts, F: f})
			}
		}
		ev.addSamples(-w.len())
		if ru != nil {
			ev.addSamples(-len(ru.rows))
		}
		n := len(series.Floats) + len(series.Histograms)
		switch {
		case n == 0:
		case sink != nil:
			if !keepName {
				h := series.Labels.Hash()
				if _, dup := seen[h]; dup {
					ev.fail(ErrDuplicateLabelset)
				}
				seen[h] = struct{}{}
			}
			sink(&series)
			fbuf, hbuf = series.Floats[:0], series.Histograms[:0]
			clear(hbuf[:cap(hbuf)])
		default:
			ev.addSamples(n)
			out = append(out, series)
		}
	}
	switch a := unwrapParens(e.Args[matrixIdx]).(type) {
	case *parser.MatrixSelector:
		vs := a.VectorSelector.(*parser.VectorSelector)
		rt = ev.selectorTimes(vs.Timestamp, vs.StartOrEnd, vs.OriginalOffset.Milliseconds())
		rangeMs = a.Range.Milliseconds()
		wa.rangeSeconds = a.Range.Seconds()
		lo, hi := rt.bounds(ev)
		if res := ev.rollupResolution(name, rt, rangeMs); res != 0 {
			ru = &rollupEval{fn: rollupFuncs[name], width: res.Millis(), rangeMs: rangeMs, rangeSeconds: wa.rangeSeconds}
			ev.rollupSelect(vs, res, lo-rangeMs+1, hi, ru, func(labels tsdb.Labels) { perSeries(labels, nil, nil) })
			break
		}
		ev.stats.RawSelectors++
		q, ss := ev.selectSeries(vs, lo-rangeMs+1, hi)
		var it tsdb.Iterator
		for ss.Next() {
			s := ss.At()
			it = s.Iterator(it)
			perSeries(s.Labels(), it, nil)
		}
		closeQuerier(ev, q, ss)
	case *parser.SubqueryExpr:
		var m Matrix
		m, rt = ev.runSubquery(a)
		rangeMs = a.Range.Milliseconds()
		wa.rangeSeconds = a.Range.Seconds()
		var cur seriesCursor
		for i := range m {
			cur.reset(&m[i])
			perSeries(m[i].Labels, nil, &cur)
		}
		ev.addSamples(-m.samples())
	}
	for _, s := range scalars {
		ev.addSamples(-s.samples())
	}
	if name == "absent_over_time" {
		return ev.absentOverTime(e, out)
	}
	if !keepName {
		ev.checkUniqueLabels(out)
	}
	return out
}

// absentOverTime turns the series present per step into a single series
// with value 1 at the steps where none was.
func (ev *evaluator) absentOverTime(e *parser.Call, present Matrix) Matrix {
	steps := ev.numSteps()
	found := make(map[int64]struct{})
	for _, s := range present {
		if len(s.Floats)+len(s.Histograms) == steps {
			return nil
		}
		for _, p := range s.Floats {
			found[p.T] = struct{}{}
		}
		for _, p := range s.Histograms {
			found[p.T] = struct{}{}
		}
	}
	if len(found) == steps {
		return nil
	}
	pts := make([]FPoint, 0, steps-len(found))
	for ts := ev.start; ts <= ev.end; ts += ev.interval {
		if _, ok := found[ts]; !ok {
			pts = append(pts, FPoint{T: ts, F: 1})
		}
	}
	return Matrix{{Labels: absentLabels(e.Args[0]), Floats: pts}}
}

func (ev *evaluator) checkUniqueLabels(m Matrix) {
	if len(m) < 2 {
		return
	}
	seen := make(map[uint64]struct{}, len(m))
	for _, s := range m {
		h := s.Labels.Hash()
		if _, dup := seen[h]; dup {
			ev.fail(ErrDuplicateLabelset)
		}
		seen[h] = struct{}{}
	}
}

// timestampOfSelector is timestamp(selector): the time of the sample each
// series' instant value comes from, not the step time.
func (ev *evaluator) timestampOfSelector(vs *parser.VectorSelector) Matrix {
	rt := ev.selectorTimes(vs.Timestamp, vs.StartOrEnd, vs.OriginalOffset.Milliseconds())
	lo, hi := rt.bounds(ev)
	q, ss := ev.selectSeries(vs, lo-ev.lookback+1, hi)
	defer closeQuerier(ev, q, ss)
	var (
		out Matrix
		it  tsdb.Iterator
		cur tsdbCursor
	)
	numSteps := ev.numSteps()
	for ss.Next() {
		ev.checkCtx()
		s := ss.At()
		it = s.Iterator(it)
		cur.reset(it)
		series := Series{Labels: dropName(s.Labels())}
		vt := cur.next()
		have := false
		var lastT int64
		var lastStale bool
		for ts := ev.start; ts <= ev.end; ts += ev.interval {
			ref := rt.at1(ts)
			for vt != tsdb.ValNone && cur.atT() <= ref {
				have = true
				if vt == tsdb.ValHistogram {
					var h *FloatHistogram
					lastT, h = cur.atH()
					lastStale = isStaleNaN(h.Sum)
				} else {
					var f float64
					lastT, f = cur.atF()
					lastStale = isStaleNaN(f)
				}
				vt = cur.next()
			}
			if !have || lastT <= ref-ev.lookback || lastStale {
				continue
			}
			if series.Floats == nil {
				series.Floats = make([]FPoint, 0, numSteps)
			}
			series.Floats = append(series.Floats, FPoint{T: ts, F: float64(lastT) / 1000})
		}
		if err := cur.err(); err != nil {
			ev.failf("query: read series: %w", err)
		}
		if len(series.Floats) > 0 {
			ev.addSamples(len(series.Floats))
			out = append(out, series)
		}
	}
	ev.checkUniqueLabels(out)
	return out
}

// instantFunc computes a function over instant vectors and scalars at one step.
type instantFunc func(ev *evaluator, e *parser.Call, args []Vector, enh *evalHelper) Vector

func simpleFunc(f func(float64) float64) instantFunc {
	return func(_ *evaluator, _ *parser.Call, args []Vector, enh *evalHelper) Vector {
		for _, s := range args[0] {
			if s.H == nil {
				enh.out = append(enh.out, Sample{Labels: dropName(s.Labels), F: f(s.F)})
			}
		}
		return enh.out
	}
}

func histogramFunc(f func(*FloatHistogram) float64) instantFunc {
	return func(_ *evaluator, _ *parser.Call, args []Vector, enh *evalHelper) Vector {
		for _, s := range args[0] {
			if s.H != nil {
				enh.out = append(enh.out, Sample{Labels: dropName(s.Labels), F: f(s.H)})
			}
		}
		return enh.out
	}
}

func scalarArg(args []Vector, i int) (float64, bool) {
	if len(args) <= i || len(args[i]) == 0 {
		return 0, false
	}
	return args[i][0].F, true
}

var instantFuncs map[string]instantFunc

func init() {
	instantFuncs = map[string]instantFunc{
		"abs":   simpleFunc(math.Abs),
		"ceil":  simpleFunc(math.Ceil),
		"floor": simpleFunc(math.Floor),
		"exp":   simpleFunc(math.Exp),
		"sqrt":  simpleFunc(math.Sqrt),
		"ln":    simpleFunc(math.Log),
		"log2":  simpleFunc(math.Log2),
		"log10": simpleFunc(math.Log10),
		"sgn": simpleFunc(func(v float64) float64 {
			switch {
			case v < 0:
				return -1
			case v > 0:
				return 1
			}
			return v
		}),
		"round": func(_ *evaluator, _ *parser.Call, args []Vector, enh *evalHelper) Vector {
			toNearest := 1.0
			if len(args) > 1 {
				v, ok := scalarArg(args, 1)
				if !ok {
					return enh.out
				}
				toNearest = v
			}
			inv := 1.0 / toNearest
			return simpleFunc(func(f float64) float64 { return math.Floor(f*inv+0.5) / inv })(nil, nil, args[:1], enh)
		},
		"clamp": func(_ *evaluator, _ *parser.Call, args []Vector, enh *evalHelper) Vector {
			lo, ok1 := scalarArg(args, 1)
			hi, ok2 := scalarArg(args, 2)
			if !ok1 || !ok2 || hi < lo {
				return enh.out
			}
			return simpleFunc(func(f float64) float64 { return math.Max(lo, math.Min(hi, f)) })(nil, nil, args[:1], enh)
		},
		"clamp_min": func(_ *evaluator, _ *parser.Call, args []Vector, enh *evalHelper) Vector {
			lo, ok := scalarArg(args, 1)
			if !ok {
				return enh.out
			}
			return simpleFunc(func(f float64) float64 { return math.Max(lo, f) })(nil, nil, args[:1], enh)
		},
		"clamp_max": func(_ *evaluator, _ *parser.Call, args []Vector, enh *evalHelper) Vector {
			hi, ok := scalarArg(args, 1)
			if !ok {
				return enh.out
			}
			return simpleFunc(func(f float64) float64 { return math.Min(hi, f) })(nil, nil, args[:1], enh)
		},
		"timestamp": func(_ *evaluator, _ *parser.Call, args []Vector, enh *evalHelper) Vector {
			for _, s := range args[0] {
				enh.out = append(enh.out, Sample{Labels: dropName(s.Labels), F: float64(s.T) / 1000})
			}
			return enh.out
		},
		"time": func(_ *evaluator, _ *parser.Call, _ []Vector, enh *evalHelper) Vector {
			return append(enh.out, Sample{F: float64(enh.ts) / 1000})
		},
		"vector": func(_ *evaluator, _ *parser.Call, args []Vector, enh *evalHelper) Vector {
			v, _ := scalarArg(args, 0)
			return append(enh.out, Sample{F: v})
		},
		"scalar": func(_ *evaluator, _ *parser.Call, args []Vector, enh *evalHelper) Vector {
			v := args[0]
			if len(v) != 1 || v[0].H != nil {
				return append(enh.out, Sample{F: math.NaN()})
			}
			return append(enh.out, Sample{F: v[0].F})
		},
		"sort":            sortFunc(false),
		"sort_desc":       sortFunc(true),
		"histogram_count": histogramFunc(func(h *FloatHistogram) float64 { return h.Count }),
		"histogram_sum":   histogramFunc(func(h *FloatHistogram) float64 { return h.Sum }),
		"histogram_quantile": func(ev *evaluator, _ *parser.Call, args []Vector, enh *evalHelper) Vector {
			q, ok := scalarArg(args, 0)
			if !ok {
				return enh.out
			}
			return ev.histogramQuantile(q, args[1], enh)
		},
		"histogram_fraction": func(ev *evaluator, _ *parser.Call, args []Vector, enh *evalHelper) Vector {
			lower, ok1 := scalarArg(args, 0)
			upper, ok2 := scalarArg(args, 1)
			if !ok1 || !ok2 {
				return enh.out
			}
			return ev.histogramFraction(lower, upper, args[2], enh)
		},
	}
}

func sortFunc(desc bool) instantFunc {
	return func(_ *evaluator, _ *parser.Call, args []Vector, enh *evalHelper) Vector {
		for _, s := range args[0] {
			if s.H == nil {
				enh.out = append(enh.out, s)
			}
		}
		// Prometheus' order: NaN first either way, then by value.
		slices.SortStableFunc(enh.out, func(a, b Sample) int {
			an, bn := math.IsNaN(a.F), math.IsNaN(b.F)
			switch {
			case an && bn:
				return 0
			case an:
				return -1
			case bn:
				return 1
			case a.F == b.F:
				return 0
			case (a.F < b.F) != desc:
				return -1
			}
			return 1
		})
		return enh.out
	}
}

// labelReplace is label_replace(v, dst, replacement, src, regex), applied to
// each series once (labels do not change between steps).
func (ev *evaluator) labelReplace(e *parser.Call) Matrix {
	dst := stringArg(e.Args[1])
	repl := stringArg(e.Args[2])
	src := stringArg(e.Args[3])
	reStr := stringArg(e.Args[4])
	re, err := regexp.Compile("^(?s:" + reStr + ")$")
	if err != nil {
		ev.failf("%w: label_replace regex %q: %w", ErrInvalidArgument, reStr, err)
	}
	if !validLabelName(dst) {
		ev.failf("%w: label_replace destination %q is not a valid label name", ErrInvalidArgument, dst)
	}
	m := ev.eval(e.Args[0]).(Matrix)
	for i := range m {
		v := m[i].Labels.Get(src)
		idx := re.FindStringSubmatchIndex(v)
		if idx == nil {
			continue
		}
		res := re.ExpandString(nil, repl, v, idx)
		m[i].Labels = tsdb.NewBuilder(m[i].Labels).Set(dst, string(res)).Labels()
	}
	return ev.mergeSameLabels(m)
}

// labelJoin is label_join(v, dst, sep, src...).
func (ev *evaluator) labelJoin(e *parser.Call) Matrix {
	dst := stringArg(e.Args[1])
	sep := stringArg(e.Args[2])
	var srcs []string
	for _, a := range e.Args[3:] {
		srcs = append(srcs, stringArg(a))
	}
	if !validLabelName(dst) {
		ev.failf("%w: label_join destination %q is not a valid label name", ErrInvalidArgument, dst)
	}
	m := ev.eval(e.Args[0]).(Matrix)
	vals := make([]string, len(srcs))
	for i := range m {
		for j, s := range srcs {
			vals[j] = m[i].Labels.Get(s)
		}
		m[i].Labels = tsdb.NewBuilder(m[i].Labels).Set(dst, strings.Join(vals, sep)).Labels()
	}
	return ev.mergeSameLabels(m)
}

func stringArg(e parser.Expr) string {
	return unwrapParens(e).(*parser.StringLiteral).Val
}

func validLabelName(s string) bool {
	// Prometheus 3 accepts any UTF-8 label name.
	return s != "" && utf8.ValidString(s)
}

// formatValue renders a value as count_values labels it.
func formatValue(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
