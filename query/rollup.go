package query

import (
	"math"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/pillar-db/pillar/tsdb"
)

// Range functions over a plain selector read the store's rollups (see
// tsdb.DB.Downsample) instead of raw samples when that gives the same
// answer:
//
//   - the range is a whole number of rollup windows and every step's
//     reference time (after offset or @) falls on a window boundary, so
//     each step's range (t-r, t] is exactly a run of whole windows;
//   - the function is one whose value the windows' fields determine to the
//     bit: max_over_time, min_over_time, count_over_time and
//     last_over_time over any number of windows; sum_over_time,
//     avg_over_time, rate, increase and delta over one window (each
//     window keeps the compensated sum and the reset-corrected increase
//     computed in the raw order);
//   - the step's windows are all rolled up and final; later steps, the
//     steps whose average overflowed and (for rate and increase over
//     several windows) those with a window whose first or last value is
//     NaN, are computed from raw samples.
//
// With Options.AllowRollups, sum_over_time, avg_over_time, rate, increase
// and delta also read rollups over ranges of several windows. The result
// then differs from the raw one only by rounding: sums add the windows'
// compensated sums in a compensated sum; rate and increase are exact when
// no counter resets in the range (the reset-corrected difference is then
// last-first, as from raw), and otherwise add each window's resets as one
// term, which for integer-valued counters below 2^53 is still exact.
//
// The coarsest resolution that qualifies is used; Stats says which.

// rollupKind says how a function is computed from windows.
type rollupKind uint8

const (
	rollupMax rollupKind = iota
	rollupMin
	rollupCount
	rollupLast
	rollupSum
	rollupAvg
	rollupRate
	rollupIncrease
	rollupDelta
)

// rollupFuncs are the range functions rollups can answer.
var rollupFuncs = map[string]rollupKind{
	"max_over_time":   rollupMax,
	"min_over_time":   rollupMin,
	"count_over_time": rollupCount,
	"last_over_time":  rollupLast,
	"sum_over_time":   rollupSum,
	"avg_over_time":   rollupAvg,
	"rate":            rollupRate,
	"increase":        rollupIncrease,
	"delta":           rollupDelta,
}

// exactOverMany says whether a kind is exact over any number of windows.
func (k rollupKind) exactOverMany() bool { return k <= rollupLast }

// fields returns the rollup fields a kind reads over ranges of one
// window (single) or several.
func (k rollupKind) fields(single bool) tsdb.RollupFields {
	switch k {
	case rollupMax:
		return tsdb.FieldMax
	case rollupMin:
		return tsdb.FieldMin
	case rollupCount:
		return 0
	case rollupLast:
		return tsdb.FieldLast
	case rollupSum, rollupAvg:
		return tsdb.FieldSum
	case rollupDelta:
		return tsdb.FieldFirst | tsdb.FieldLast | tsdb.FieldTimes
	}
	if single {
		// One window's increase is already reset-corrected; the first
		// value is still needed for the extrapolation towards zero.
		return tsdb.FieldFirst | tsdb.FieldIncrease | tsdb.FieldTimes
	}
	return tsdb.FieldFirst | tsdb.FieldLast | tsdb.FieldIncrease | tsdb.FieldTimes
}

// Stats says how a query was answered.
type Stats struct {
	// Resolution is the coarsest rollup resolution a range selector read,
	// 0 when every one read raw samples.
	Resolution time.Duration
	// RollupSelectors counts range selectors answered from rollups (with
	// raw samples for the steps the rollups do not cover); RawSelectors
	// those answered from raw samples alone.
	RollupSelectors, RawSelectors int
	// RollupWindows counts the rollup windows read.
	RollupWindows int
	// RawSteps counts series steps of rollup-answered selectors that were
	// computed from raw samples: windows not rolled up yet, an average
	// whose sum overflowed, or a NaN hiding a window's counter resets.
	RawSteps int
}

// rollupResolution picks the resolution to answer a range function over a
// selector with, 0 for raw samples.
func (ev *evaluator) rollupResolution(name string, rt refTimes, rangeMs int64) tsdb.Resolution {
	kind, ok := rollupFuncs[name]
	if !ok || ev.noRollups {
		return 0
	}
	lo, _ := rt.bounds(ev)
	for _, res := range [...]tsdb.Resolution{tsdb.Res1h, tsdb.Res5m} {
		w := res.Millis()
		switch {
		case rangeMs < w || rangeMs%w != 0:
			continue
		case lo%w != 0:
			continue
		case rt.at == nil && ev.start != ev.end && ev.interval%w != 0:
			continue
		case rangeMs != w && !kind.exactOverMany() && !ev.allowRollups:
			continue
		}
		return res
	}
	return 0
}

// rollupSelect selects vs's series with their rollups at res over [mint,
// maxt] and calls each for every series with ru loaded.
func (ev *evaluator) rollupSelect(vs *parser.VectorSelector, res tsdb.Resolution, mint, maxt int64, ru *rollupEval, each func(tsdb.Labels)) {
	q, err := ev.db.Querier(mint, maxt)
	if err != nil {
		ev.failf("query: open querier: %w", err)
	}
	ev.stats.RollupSelectors++
	ev.stats.Resolution = max(ev.stats.Resolution, res.Duration())
	rs := q.SelectRollups(ev.ctx, res, ru.fn.fields(ru.rangeMs == ru.width), ev.toMatchers(vs.LabelMatchers)...)
	// The set holds a Pebble iterator until its end; a failed step
	// unwinds before that.
	defer func() { _ = rs.Close() }()
	var it *tsdb.RollupIterator
	for rs.Next() {
		s := rs.At()
		it = s.Iterator(it)
		ru.rows = it.Windows()
		if err := it.Err(); err != nil {
			_ = q.Close()
			ev.failf("query: read rollups: %w", err)
		}
		ev.addSamples(len(ru.rows))
		ev.stats.RollupWindows += len(ru.rows)
		ru.complete, ru.series, ru.lo, ru.hi = it.Complete(), s, 0, 0
		each(s.Labels())
	}
	closeQuerier(ev, q, rs)
}

// rollupEval computes one range function from one series' windows, step
// by step (steps move forward).
type rollupEval struct {
	fn           rollupKind
	width        int64
	rangeMs      int64
	rangeSeconds float64

	series   *tsdb.RollupSeries
	rows     []tsdb.Rollup // the iterator's windows, not copied
	complete int64
	lo, hi   int // rows[lo:hi] are the current step's windows
	rawIt    tsdb.Iterator
}

// step returns the function's value over the windows in (mint, maxt]: ok
// is false when it has none, exact false when the windows cannot give the
// raw answer (the caller computes the step from raw samples).
func (r *rollupEval) step(mint, maxt int64) (f float64, ok, exact bool) {
	for r.lo < len(r.rows) && r.rows[r.lo].End <= mint {
		r.lo++
	}
	r.hi = max(r.hi, r.lo)
	for r.hi < len(r.rows) && r.rows[r.hi].End <= maxt {
		r.hi++
	}
	ws := r.rows[r.lo:r.hi]
	if len(ws) == 0 {
		return 0, false, true
	}
	switch r.fn {
	case rollupMax:
		v := ws[0].Max
		for i := range ws {
			if ws[i].Max > v || math.IsNaN(v) {
				v = ws[i].Max
			}
		}
		return v, true, true
	case rollupMin:
		v := ws[0].Min
		for i := range ws {
			if ws[i].Min < v || math.IsNaN(v) {
				v = ws[i].Min
			}
		}
		return v, true, true
	case rollupCount:
		n := int64(0)
		for i := range ws {
			n += ws[i].Count
		}
		return float64(n), true, true
	case rollupLast:
		return ws[len(ws)-1].Last, true, true
	case rollupSum:
		if len(ws) == 1 {
			return ws[0].SumValue(), true, true
		}
		sum, _, _ := sumWindows(ws)
		return sum, true, true
	case rollupAvg:
		if len(ws) == 1 {
			m, fine := ws[0].Mean()
			return m, fine, fine
		}
		sum, n, fine := sumWindows(ws)
		if !fine {
			return 0, false, false
		}
		return sum / float64(n), true, true
	}
	// rate, increase, delta
	n := int64(0)
	for i := range ws {
		n += ws[i].Count
	}
	if n < 2 {
		return 0, false, true
	}
	isCounter := r.fn != rollupDelta
	first, last := &ws[0], &ws[len(ws)-1]
	var result float64
	switch {
	case !isCounter:
		result = last.Last - first.First
	case len(ws) == 1:
		result = first.Increase
	default:
		result = last.Last - first.First
		for i := range ws {
			if math.IsNaN(ws[i].Increase) {
				// A NaN first or last value hides the window's resets:
				// only the raw samples can tell them.
				return 0, false, false
			}
			if i > 0 && ws[i].First < ws[i-1].Last {
				result += ws[i-1].Last
			}
			if resets := ws[i].Increase - (ws[i].Last - ws[i].First); resets != 0 {
				result += resets
			}
		}
	}
	return extrapolate(result, first.FirstT, last.LastT, first.First, int(n-1), mint, maxt, r.rangeSeconds, isCounter, r.fn == rollupRate), true, true
}

// sumWindows is the compensated sum of the windows' sums and their total
// count; fine is false when the sum is not finite.
func sumWindows(ws []tsdb.Rollup) (sum float64, n int64, fine bool) {
	var c float64
	for i := range ws {
		sum, c = kahanInc(ws[i].SumValue(), sum, c)
		n += ws[i].Count
	}
	if math.IsInf(sum, 0) || math.IsNaN(sum) {
		return sum, n, false
	}
	return sum + c, n, true
}

// run answers the leading steps of a series from its windows, appending
// their points to dst, and returns the first step it left (the index and
// its timestamp): a step past the rolled-up windows or one the windows
// cannot answer exactly, which the caller computes from raw samples. It is
// step in a loop, with the common one-window range read straight from its
// window instead, so that a step costs a comparison and a field load.
func (r *rollupEval) run(ev *evaluator, rt refTimes, dst *[]FPoint, numSteps int) (step int, ts int64) {
	single := r.rangeMs == r.width
	j := 0
	for ts = ev.start; ts <= ev.end; ts, step = ts+ev.interval, step+1 {
		maxt := rt.at1(ts)
		if maxt > r.complete {
			return step, ts
		}
		var (
			f         float64
			ok, exact bool
		)
		if single {
			for j < len(r.rows) && r.rows[j].End < maxt {
				j++
			}
			if j == len(r.rows) || r.rows[j].End != maxt {
				continue
			}
			f, ok, exact = r.one(&r.rows[j], maxt)
		} else {
			f, ok, exact = r.step(maxt-r.rangeMs, maxt)
		}
		if !exact {
			return step, ts
		}
		if ok {
			if *dst == nil {
				*dst = make([]FPoint, 0, numSteps)
			}
			*dst = append(*dst, FPoint{T: ts, F: f})
		}
	}
	return step, ts
}

// one is step over the single window w ending at maxt, the range (maxt-width, maxt].
func (r *rollupEval) one(w *tsdb.Rollup, maxt int64) (f float64, ok, exact bool) {
	switch r.fn {
	case rollupMax:
		return w.Max, true, true
	case rollupMin:
		return w.Min, true, true
	case rollupCount:
		return float64(w.Count), true, true
	case rollupLast:
		return w.Last, true, true
	case rollupSum:
		return w.SumValue(), true, true
	case rollupAvg:
		m, fine := w.Mean()
		return m, fine, fine
	}
	if w.Count < 2 {
		return 0, false, true
	}
	isCounter := r.fn != rollupDelta
	result := w.Increase
	if !isCounter {
		result = w.Last - w.First
	}
	return extrapolate(result, w.FirstT, w.LastT, w.First, int(w.Count-1), maxt-r.width, maxt, r.rangeSeconds, isCounter, r.fn == rollupRate), true, true
}
