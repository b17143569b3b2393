package query

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/pillar-db/pillar/tsdb"
)

// evaluator evaluates one query over the steps start, start+interval, …,
// ≤ end (a single step for an instant query). Every node evaluates to a
// Matrix holding, per output series, the points of the steps where it has a
// value; scalars are a Matrix of one unlabelled series.
type evaluator struct {
	ctx                  context.Context
	db                   *tsdb.DB
	start, end, interval int64
	// queryStart and queryEnd are the outer query's, which `@ start()` and
	// `@ end()` refer to even inside subqueries.
	queryStart, queryEnd int64
	lookback             int64
	maxSamples           int
	samples              int // samples currently held, checked against maxSamples
	subqStep             int64
	ctxCheck             int
	// noRollups and allowRollups are Options.NoRollups and AllowRollups.
	noRollups, allowRollups bool
	stats                   *Stats // shared with subquery evaluators
}

// evalError carries an error out of the evaluation through a panic that
// run recovers; the recursion stays free of error plumbing, and nothing
// but run ever sees the panic.
type evalError struct{ err error }

func (ev *evaluator) fail(err error) { panic(evalError{err}) }

func (ev *evaluator) failf(format string, args ...any) {
	ev.fail(fmt.Errorf(format, args...))
}

// run calls f, turning an evaluation failure back into an error.
func (ev *evaluator) run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			ee, ok := r.(evalError)
			if !ok {
				panic(r)
			}
			err = ee.err
		}
	}()
	f()
	return nil
}

// checkCtx fails the query when its context is done. It is called per
// series and per step, reading the context only every 64th call.
func (ev *evaluator) checkCtx() {
	ev.ctxCheck++
	if ev.ctxCheck&63 != 0 {
		return
	}
	if err := ev.ctx.Err(); err != nil {
		ev.fail(fmt.Errorf("query: evaluation stopped: %w", err))
	}
}

func (ev *evaluator) ctxNow() {
	if err := ev.ctx.Err(); err != nil {
		ev.fail(fmt.Errorf("query: evaluation stopped: %w", err))
	}
}

// addSamples accounts n more held samples (n may be negative).
func (ev *evaluator) addSamples(n int) {
	ev.samples += n
	if ev.samples > ev.maxSamples {
		ev.fail(fmt.Errorf("%w: more than %d", ErrTooManySamples, ev.maxSamples))
	}
}

func (ev *evaluator) numSteps() int { return int((ev.end-ev.start)/ev.interval) + 1 }

// eval evaluates expr to a Matrix (or a String for a string literal).
func (ev *evaluator) eval(expr parser.Expr) any {
	ev.ctxNow()
	switch e := expr.(type) {
	case *parser.ParenExpr:
		return ev.eval(e.Expr)
	case *parser.StepInvariantExpr:
		return ev.eval(e.Expr)
	case *parser.StringLiteral:
		return String{T: ev.start, V: e.Val}
	case *parser.NumberLiteral:
		return ev.rangeEval(func(_ []Vector, enh *evalHelper) Vector {
			return append(enh.out, Sample{F: e.Val})
		})
	case *parser.VectorSelector:
		return ev.vectorSelector(e)
	case *parser.MatrixSelector:
		if ev.start != ev.end {
			ev.failf("%w: a range vector cannot be evaluated at more than one step", ErrInvalidArgument)
		}
		return ev.matrixSelector(e)
	case *parser.SubqueryExpr:
		if ev.start != ev.end {
			ev.failf("%w: a subquery cannot be evaluated at more than one step outside a function", ErrInvalidArgument)
		}
		return ev.subqueryAsMatrix(e)
	case *parser.UnaryExpr:
		m := ev.eval(e.Expr).(Matrix)
		if e.Op == parser.SUB {
			for i := range m {
				m[i].Labels = dropName(m[i].Labels)
				for j := range m[i].Floats {
					m[i].Floats[j].F = -m[i].Floats[j].F
				}
				for j := range m[i].Histograms {
					m[i].Histograms[j].H = m[i].Histograms[j].H.Copy().Mul(-1)
				}
			}
			m = ev.mergeSameLabels(m)
		}
		return m
	case *parser.BinaryExpr:
		return ev.binary(e)
	case *parser.AggregateExpr:
		return ev.aggregate(e)
	case *parser.Call:
		return ev.call(e)
	}
	ev.fail(&UnsupportedError{What: fmt.Sprintf("expression %T", expr)})
	return nil
}

// evalHelper is what a per-step function gets besides its arguments.
type evalHelper struct {
	ts  int64
	out Vector // reusable output buffer, empty on entry
}

// rangeEval evaluates exprs (nil entries are skipped) and then calls fn once
// per step with each argument's vector at that step, collecting fn's output
// into series keyed by their labels. It fails if one step's output holds
// two samples with the same labels.
func (ev *evaluator) rangeEval(fn func(args []Vector, enh *evalHelper) Vector, exprs ...parser.Expr) Matrix {
	mats := make([]Matrix, len(exprs))
	for i, e := range exprs {
		if e == nil || e.Type() == parser.ValueTypeString {
			continue
		}
		mats[i] = ev.eval(e).(Matrix)
	}
	curF := make([][]int, len(exprs))
	curH := make([][]int, len(exprs))
	for i, m := range mats {
		curF[i] = make([]int, len(m))
		curH[i] = make([]int, len(m))
	}
	args := make([]Vector, len(exprs))
	enh := &evalHelper{}
	var out Matrix
	index := map[uint64]int{}
	seen := map[uint64]struct{}{}
	numSteps := ev.numSteps()
	held := 0
	for ts := ev.start; ts <= ev.end; ts += ev.interval {
		ev.checkCtx()
		for i, m := range mats {
			v := args[i][:0]
			for j := range m {
				s := &m[j]
				if k := curF[i][j]; k < len(s.Floats) && s.Floats[k].T == ts {
					v = append(v, Sample{Labels: s.Labels, T: ts, F: s.Floats[k].F})
					curF[i][j]++
				} else if k := curH[i][j]; k < len(s.Histograms) && s.Histograms[k].T == ts {
					v = append(v, Sample{Labels: s.Labels, T: ts, H: s.Histograms[k].H})
					curH[i][j]++
				}
			}
			args[i] = v
		}
		enh.ts = ts
		enh.out = enh.out[:0]
		res := fn(args, enh)
		enh.out = res
		if len(res) > 1 {
			clear(seen)
		}
		for _, s := range res {
			h := s.Labels.Hash()
			if len(res) > 1 {
				if _, dup := seen[h]; dup {
					ev.fail(ErrDuplicateLabelset)
				}
				seen[h] = struct{}{}
			}
			idx, ok := index[h]
			if !ok {
				idx = len(out)
				index[h] = idx
				out = append(out, Series{Labels: s.Labels})
			}
			os := &out[idx]
			if s.H != nil {
				if os.Histograms == nil {
					os.Histograms = make([]HPoint, 0, numSteps)
				}
				os.Histograms = append(os.Histograms, HPoint{T: ts, H: s.H})
			} else {
				if os.Floats == nil {
					os.Floats = make([]FPoint, 0, min(numSteps, 1024))
				}
				os.Floats = append(os.Floats, FPoint{T: ts, F: s.F})
			}
		}
		held += len(res)
		ev.addSamples(len(res))
	}
	// The arguments are no longer held.
	for _, m := range mats {
		ev.addSamples(-m.samples())
	}
	return out
}

func (m Matrix) samples() int {
	n := 0
	for _, s := range m {
		n += len(s.Floats) + len(s.Histograms)
	}
	return n
}

// mergeSameLabels merges series that ended up with equal labels (after the
// metric name was dropped, say) when their points do not overlap in time,
// and fails otherwise, as Prometheus does.
func (ev *evaluator) mergeSameLabels(m Matrix) Matrix {
	if len(m) < 2 {
		return m
	}
	index := make(map[uint64]int, len(m))
	out := m[:0]
	for _, s := range m {
		h := s.Labels.Hash()
		i, ok := index[h]
		if !ok {
			index[h] = len(out)
			out = append(out, s)
			continue
		}
		o := &out[i]
		o.Floats = mergeFPoints(ev, o.Floats, s.Floats)
		o.Histograms = mergeHPoints(ev, o.Histograms, s.Histograms)
	}
	return out
}

func mergeFPoints(ev *evaluator, a, b []FPoint) []FPoint {
	return mergePoints(ev, a, b, func(p FPoint) int64 { return p.T })
}

func mergeHPoints(ev *evaluator, a, b []HPoint) []HPoint {
	return mergePoints(ev, a, b, func(p HPoint) int64 { return p.T })
}

// mergePoints merges two time-ordered point lists of one label set; a
// timestamp in both means two series collided, which fails the query.
func mergePoints[P any](ev *evaluator, a, b []P, ts func(P) int64) []P {
	if len(b) == 0 {
		return a
	}
	r := make([]P, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && ts(a[i]) < ts(b[j])):
			r = append(r, a[i])
			i++
		case i == len(a) || ts(b[j]) < ts(a[i]):
			r = append(r, b[j])
			j++
		default:
			ev.fail(ErrDuplicateLabelset)
		}
	}
	return r
}

// dropName returns ls without __name__, sharing ls when it has none.
func dropName(ls tsdb.Labels) tsdb.Labels {
	for i, l := range ls {
		if l.Name == tsdb.MetricName {
			out := make(tsdb.Labels, 0, len(ls)-1)
			out = append(out, ls[:i]...)
			return append(out, ls[i+1:]...)
		}
	}
	return ls
}

// toMatchers converts the parser's matchers into the store's.
func (ev *evaluator) toMatchers(ms []*labels.Matcher) []*tsdb.Matcher {
	out := make([]*tsdb.Matcher, 0, len(ms))
	for _, m := range ms {
		var t tsdb.MatchType
		switch m.Type {
		case labels.MatchEqual:
			t = tsdb.MatchEqual
		case labels.MatchNotEqual:
			t = tsdb.MatchNotEqual
		case labels.MatchRegexp:
			t = tsdb.MatchRegexp
		case labels.MatchNotRegexp:
			t = tsdb.MatchNotRegexp
		default:
			ev.fail(&UnsupportedError{What: "matcher " + m.String()})
		}
		tm, err := tsdb.NewMatcher(t, m.Name, m.Value)
		if err != nil {
			ev.failf("%w: matcher %s: %w", ErrInvalidArgument, m.String(), err)
		}
		out = append(out, tm)
	}
	return out
}

// refTimes gives the sample time a selector with offset and @ modifiers
// reads at step ts.
type refTimes struct {
	at     *int64
	offset int64
}

func (ev *evaluator) selectorTimes(ts *int64, startOrEnd parser.ItemType, offset int64) refTimes {
	r := refTimes{offset: offset}
	switch startOrEnd {
	case parser.START:
		t := ev.queryStart
		r.at = &t
	case parser.END:
		t := ev.queryEnd
		r.at = &t
	default:
		r.at = ts
	}
	return r
}

func (r refTimes) at1(ts int64) int64 {
	if r.at != nil {
		return *r.at - r.offset
	}
	return ts - r.offset
}

// bounds returns the first and last reference time over the evaluator's steps.
func (r refTimes) bounds(ev *evaluator) (int64, int64) {
	if r.at != nil {
		t := *r.at - r.offset
		return t, t
	}
	return ev.start - r.offset, ev.end - r.offset
}

// selectSeries opens a querier over [mint, maxt] and selects vs's series.
// The caller closes the querier when done with the series.
func (ev *evaluator) selectSeries(vs *parser.VectorSelector, mint, maxt int64) (*tsdb.Querier, tsdb.SeriesSet) {
	q, err := ev.db.Querier(mint, maxt)
	if err != nil {
		ev.failf("query: open querier: %w", err)
	}
	return q, q.Select(ev.ctx, true, ev.toMatchers(vs.LabelMatchers)...)
}

func closeQuerier(ev *evaluator, q *tsdb.Querier, ss interface{ Err() error }) {
	err := ss.Err()
	if cerr := q.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			ev.fail(fmt.Errorf("query: evaluation stopped: %w", err))
		}
		ev.failf("query: select: %w", err)
	}
}

// vectorSelector evaluates an instant vector selector: at each step, each
// series' latest sample at or before the reference time and within the
// lookback delta, unless that sample is a staleness marker. One pass over
// each series' iterator serves all steps.
func (ev *evaluator) vectorSelector(vs *parser.VectorSelector) Matrix {
	rt := ev.selectorTimes(vs.Timestamp, vs.StartOrEnd, vs.OriginalOffset.Milliseconds())
	lo, hi := rt.bounds(ev)
	q, ss := ev.selectSeries(vs, lo-ev.lookback+1, hi)
	defer closeQuerier(ev, q, ss)
	var (
		out      Matrix
		it       tsdb.Iterator
		cur      tsdbCursor
		numSteps = ev.numSteps()
	)
	for ss.Next() {
		ev.checkCtx()
		s := ss.At()
		it = s.Iterator(it)
		cur.reset(it)
		series := Series{Labels: s.Labels()}
		ev.stepSamples(&cur, rt, numSteps, &series)
		if n := len(series.Floats) + len(series.Histograms); n > 0 {
			ev.addSamples(n)
			out = append(out, series)
		}
	}
	return out
}

// stepSamples fills series with the instant-vector value of cur at each step.
func (ev *evaluator) stepSamples(cur cursor, rt refTimes, numSteps int, series *Series) {
	var (
		vt              = cur.next()
		have            bool
		lastT           int64
		lastF           float64
		lastH           *FloatHistogram
		lastIsHistogram bool
	)
	for ts := ev.start; ts <= ev.end; ts += ev.interval {
		ref := rt.at1(ts)
		// Skip ahead when the next sample is too old to matter.
		if vt != tsdb.ValNone && cur.atT() <= ref-ev.lookback {
			vt = cur.seek(ref - ev.lookback + 1)
			have = false
		}
		for vt != tsdb.ValNone && cur.atT() <= ref {
			have = true
			if vt == tsdb.ValHistogram {
				lastT, lastH = cur.atH()
				lastIsHistogram = true
			} else {
				lastT, lastF = cur.atF()
				lastIsHistogram = false
			}
			vt = cur.next()
		}
		if err := cur.err(); err != nil {
			ev.failf("query: read series %s: %w", series.Labels, err)
		}
		if !have || lastT <= ref-ev.lookback {
			continue
		}
		if lastIsHistogram {
			if isStaleNaN(lastH.Sum) {
				continue
			}
			if series.Histograms == nil {
				series.Histograms = make([]HPoint, 0, numSteps)
			}
			series.Histograms = append(series.Histograms, HPoint{T: ts, H: lastH})
			continue
		}
		if isStaleNaN(lastF) {
			continue
		}
		if series.Floats == nil {
			series.Floats = make([]FPoint, 0, numSteps)
		}
		series.Floats = append(series.Floats, FPoint{T: ts, F: lastF})
	}
}

// matrixSelector evaluates a range vector selector at a single step: each
// series' samples in (t-range, t], staleness markers left out.
func (ev *evaluator) matrixSelector(ms *parser.MatrixSelector) Matrix {
	vs := ms.VectorSelector.(*parser.VectorSelector)
	rt := ev.selectorTimes(vs.Timestamp, vs.StartOrEnd, vs.OriginalOffset.Milliseconds())
	maxt := rt.at1(ev.start)
	mint := maxt - ms.Range.Milliseconds()
	q, ss := ev.selectSeries(vs, mint+1, maxt)
	defer closeQuerier(ev, q, ss)
	var (
		out Matrix
		it  tsdb.Iterator
		cur tsdbCursor
		w   window
	)
	for ss.Next() {
		ev.checkCtx()
		s := ss.At()
		it = s.Iterator(it)
		cur.reset(it)
		w.reset()
		w.fill(ev, &cur, mint, maxt)
		if w.len() == 0 {
			continue
		}
		series := Series{Labels: s.Labels()}
		series.Floats = append([]FPoint(nil), w.floats()...)
		series.Histograms = append([]HPoint(nil), w.hists()...)
		ev.addSamples(w.len())
		out = append(out, series)
	}
	return out
}
