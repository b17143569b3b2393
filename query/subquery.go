package query

import (
	"github.com/prometheus/prometheus/promql/parser"
)

// subqueryTimes returns the evaluator a subquery's inner expression runs
// in: steps aligned to multiples of the subquery step, from the first one
// after (start − offset − range) to (end − offset), where start and end are
// the outer evaluator's (or the @ time).
func (ev *evaluator) subqueryEvaluator(sq *parser.SubqueryExpr) (*evaluator, refTimes) {
	rt := ev.selectorTimes(sq.Timestamp, sq.StartOrEnd, sq.OriginalOffset.Milliseconds())
	step := sq.Step.Milliseconds()
	if step <= 0 {
		step = ev.subqStep
	}
	rangeMs := sq.Range.Milliseconds()
	lo, hi := rt.bounds(ev)
	// Align the last outer step, as Prometheus does for range queries.
	if rt.at == nil && ev.interval > 0 {
		hi = ev.start + ((ev.end-ev.start)/ev.interval)*ev.interval - rt.offset
	}
	start := step * ((lo - rangeMs) / step)
	if start <= lo-rangeMs {
		start += step
	}
	child := *ev
	child.start = start
	child.end = hi
	child.interval = step
	return &child, rt
}

// runSubquery evaluates the subquery's inner expression on its own grid.
func (ev *evaluator) runSubquery(sq *parser.SubqueryExpr) (Matrix, refTimes) {
	child, rt := ev.subqueryEvaluator(sq)
	if child.end < child.start {
		return nil, rt
	}
	m := child.eval(sq.Expr).(Matrix)
	ev.samples = child.samples
	ev.ctxCheck = child.ctxCheck
	// Counter-reset hints of native histograms cannot be trusted on a
	// resampled series (the subquery may skip or repeat the sample that
	// carried them), so they go back to unknown.
	for i := range m {
		for j, hp := range m[i].Histograms {
			if hp.H.CounterResetHint == 1 || hp.H.CounterResetHint == 2 {
				h := *hp.H
				h.CounterResetHint = 0
				m[i].Histograms[j].H = &h
			}
		}
	}
	return m, rt
}

// subqueryAsMatrix is a subquery evaluated as the whole result of an
// instant query: the inner points in (t−range, t].
func (ev *evaluator) subqueryAsMatrix(sq *parser.SubqueryExpr) Matrix {
	m, rt := ev.runSubquery(sq)
	maxt := rt.at1(ev.start)
	mint := maxt - sq.Range.Milliseconds()
	out := m[:0]
	var (
		cur seriesCursor
		w   window
	)
	for i := range m {
		cur.reset(&m[i])
		w.reset()
		w.fill(ev, &cur, mint, maxt)
		if w.len() == 0 {
			continue
		}
		out = append(out, Series{
			Labels:     m[i].Labels,
			Floats:     append([]FPoint(nil), w.floats()...),
			Histograms: append([]HPoint(nil), w.hists()...),
		})
	}
	return out
}
