package query

import (
	"container/heap"
	"math"
	"slices"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/pillar-db/pillar/tsdb"
)

// groupLabels returns the labels of the group a series with labels ls
// falls in: only the `by` labels, or all but the `without` labels and the
// metric name.
func groupLabels(ls tsdb.Labels, grouping []string, without bool) tsdb.Labels {
	out := make(tsdb.Labels, 0, len(ls))
	for _, l := range ls {
		in := slices.Contains(grouping, l.Name)
		if without {
			if in || l.Name == tsdb.MetricName {
				continue
			}
			out = append(out, l)
		} else if in {
			out = append(out, l)
		}
	}
	return out
}

// aggState is one group's running aggregation at one step.
type aggState struct {
	seen                   bool
	hasFloat, hasHistogram bool
	incompatible           bool
	f, c                   float64 // value and Kahan compensation
	mean                   float64
	incrementalMean        bool
	count                  float64
	h, hc                  *FloatHistogram
	heap                   valueHeap
}

// aggregate evaluates sum, avg, min, max, count, group, stddev, stdvar,
// quantile, topk, bottomk and count_values. Group membership is computed
// once per input series; each step is then one pass over the inputs.
func (ev *evaluator) aggregate(e *parser.AggregateExpr) Matrix {
	grouping := slices.Clone(e.Grouping)
	slices.Sort(grouping)
	if e.Op == parser.COUNT_VALUES {
		return ev.countValues(e, grouping)
	}
	if m, ok := ev.fusedAggregate(e, grouping); ok {
		return m
	}
	var param Matrix
	if e.Param != nil {
		param = ev.eval(e.Param).(Matrix)
	}
	in := ev.eval(e.Expr).(Matrix)
	if e.Op == parser.TOPK || e.Op == parser.BOTTOMK {
		return ev.aggregateK(e, in, param, grouping)
	}
	// Group index of each input series.
	groupOf := make([]int, len(in))
	var groups []tsdb.Labels
	index := map[uint64]int{}
	for i, s := range in {
		gl := groupLabels(s.Labels, grouping, e.Without)
		h := gl.Hash()
		g, ok := index[h]
		if !ok {
			g = len(groups)
			index[h] = g
			groups = append(groups, gl)
		}
		groupOf[i] = g
	}
	out := make(Matrix, len(groups))
	for i := range out {
		out[i].Labels = groups[i]
	}
	states := make([]aggState, len(groups))
	curF := make([]int, len(in))
	curH := make([]int, len(in))
	step := 0
	var qvals []float64
	for ts := ev.start; ts <= ev.end; ts, step = ts+ev.interval, step+1 {
		ev.checkCtx()
		var q float64
		if param != nil {
			q = param[0].Floats[step].F
		}
		for g := range states {
			states[g].seen = false
		}
		for si := range in {
			s := &in[si]
			var (
				f  float64
				h  *FloatHistogram
				ok bool
			)
			if k := curF[si]; k < len(s.Floats) && s.Floats[k].T == ts {
				f, ok = s.Floats[k].F, true
				curF[si]++
			} else if k := curH[si]; k < len(s.Histograms) && s.Histograms[k].T == ts {
				h, ok = s.Histograms[k].H, true
				curH[si]++
			}
			if !ok {
				continue
			}
			aggAdd(e.Op, &states[groupOf[si]], f, h)
		}
		for g := range states {
			st := &states[g]
			if !st.seen {
				continue
			}
			f, h, ok := aggResult(e.Op, st, q, &qvals)
			if !ok {
				continue
			}
			if h != nil {
				out[g].Histograms = append(out[g].Histograms, HPoint{T: ts, H: h})
			} else {
				if out[g].Floats == nil {
					out[g].Floats = make([]FPoint, 0, ev.numSteps())
				}
				out[g].Floats = append(out[g].Floats, FPoint{T: ts, F: f})
			}
		}
	}
	ev.addSamples(-in.samples() - param.samples())
	res := out[:0]
	for _, s := range out {
		if len(s.Floats)+len(s.Histograms) > 0 {
			res = append(res, s)
		}
	}
	ev.addSamples(res.samples())
	return res
}

// fusedAggregate evaluates an aggregation directly over a range-vector
// function (sum by (x) (rate(m[5m])), say) without materialising the
// function's output: each input series' points are folded into per-group,
// per-step states as soon as they are computed. Inputs are folded in the
// same order as the step-wise aggregation folds them, so the result is the
// same to the bit. It reports false when expr is not of that shape.
func (ev *evaluator) fusedAggregate(e *parser.AggregateExpr, grouping []string) (Matrix, bool) {
	switch e.Op {
	case parser.SUM, parser.AVG, parser.COUNT, parser.MIN, parser.MAX, parser.GROUP, parser.STDDEV, parser.STDVAR:
	default:
		return nil, false
	}
	// `without` usually leaves about as many groups as series, where
	// per-group step states would cost more than the materialised input.
	if e.Without {
		return nil, false
	}
	call, ok := unwrapParens(e.Expr).(*parser.Call)
	if !ok || call.Func.Name == "absent_over_time" {
		return nil, false
	}
	fn, ok := rangeFuncs[call.Func.Name]
	if !ok {
		return nil, false
	}
	numSteps := ev.numSteps()
	var (
		groups []tsdb.Labels
		states [][]aggState // per group, per step
		index  = map[uint64]int{}
	)
	ev.rangeFunction(call, fn, func(s *Series) {
		gl := groupLabels(s.Labels, grouping, e.Without)
		h := gl.Hash()
		g, ok := index[h]
		if !ok {
			g = len(groups)
			index[h] = g
			groups = append(groups, gl)
			states = append(states, make([]aggState, numSteps))
		}
		st := states[g]
		for _, p := range s.Floats {
			aggAdd(e.Op, &st[(p.T-ev.start)/ev.interval], p.F, nil)
		}
		for _, p := range s.Histograms {
			aggAdd(e.Op, &st[(p.T-ev.start)/ev.interval], 0, p.H)
		}
	})
	out := make(Matrix, 0, len(groups))
	for g, gl := range groups {
		series := Series{Labels: gl}
		st := states[g]
		for i := range st {
			if !st[i].seen {
				continue
			}
			f, h, ok := aggResult(e.Op, &st[i], 0, nil)
			if !ok {
				continue
			}
			ts := ev.start + int64(i)*ev.interval
			if h != nil {
				series.Histograms = append(series.Histograms, HPoint{T: ts, H: h})
			} else {
				if series.Floats == nil {
					series.Floats = make([]FPoint, 0, numSteps-i)
				}
				series.Floats = append(series.Floats, FPoint{T: ts, F: f})
			}
		}
		if len(series.Floats)+len(series.Histograms) > 0 {
			out = append(out, series)
		}
	}
	ev.addSamples(out.samples())
	return out, true
}

// aggAdd folds one input value into its group's state, as Prometheus does
// (histograms are ignored by min, max, stddev, stdvar and quantile).
func aggAdd(op parser.ItemType, st *aggState, f float64, h *FloatHistogram) {
	if !st.seen {
		hq := st.heap[:0]
		*st = aggState{seen: true, f: f, mean: f, count: 1, heap: hq}
		switch op {
		case parser.AVG, parser.SUM:
			if h == nil {
				st.hasFloat = true
			} else {
				st.h = h.Copy()
				st.hasHistogram = true
			}
		case parser.STDVAR, parser.STDDEV:
			switch {
			case h != nil:
				st.seen = false
			case math.IsNaN(f), math.IsInf(f, 0):
				st.f = math.NaN()
			default:
				st.f = 0
			}
		case parser.QUANTILE:
			if h != nil {
				st.seen = false
			}
			st.heap = append(st.heap, Sample{F: f})
		case parser.GROUP:
			st.f = 1
		case parser.MIN, parser.MAX:
			if h != nil {
				st.seen = false
			}
		}
		return
	}
	if st.incompatible {
		return
	}
	switch op {
	case parser.SUM:
		if h != nil {
			st.addHistogram(h)
		} else {
			st.hasFloat = true
			st.f, st.c = kahanInc(f, st.f, st.c)
		}
	case parser.AVG:
		st.count++
		if h != nil {
			// Mean of histograms: sum then divide (overflow is not a
			// practical concern for bucket counts).
			st.addHistogram(h)
		} else {
			st.hasFloat = true
			if !st.incrementalMean {
				newV, newC := kahanInc(f, st.f, st.c)
				if !math.IsInf(newV, 0) {
					st.f, st.c = newV, newC
					break
				}
				st.incrementalMean = true
				st.mean = st.f / (st.count - 1)
				st.c /= st.count - 1
			}
			q := (st.count - 1) / st.count
			st.mean, st.c = kahanInc(f/st.count, q*st.mean, q*st.c)
		}
	case parser.GROUP:
	case parser.MAX:
		if h == nil && (st.f < f || math.IsNaN(st.f)) {
			st.f = f
		}
	case parser.MIN:
		if h == nil && (st.f > f || math.IsNaN(st.f)) {
			st.f = f
		}
	case parser.COUNT:
		st.count++
	case parser.STDVAR, parser.STDDEV:
		if h == nil {
			st.count++
			delta := f - st.mean
			st.mean += delta / st.count
			st.f += delta * (f - st.mean)
		}
	case parser.QUANTILE:
		if h == nil {
			st.heap = append(st.heap, Sample{F: f})
		}
	}
}

func aggResult(op parser.ItemType, st *aggState, q float64, scratch *[]float64) (float64, *FloatHistogram, bool) {
	switch op {
	case parser.AVG:
		if st.hasFloat && st.hasHistogram || st.incompatible {
			return 0, nil, false
		}
		if st.hasHistogram {
			h := st.h
			if st.hc != nil {
				h, _, _, _ = h.Add(st.hc)
			}
			h.Div(st.count)
			return 0, h.Compact(0), true
		}
		if st.incrementalMean {
			return st.mean + st.c, nil, true
		}
		return st.f/st.count + st.c/st.count, nil, true
	case parser.COUNT:
		return st.count, nil, true
	case parser.STDVAR:
		return st.f / st.count, nil, true
	case parser.STDDEV:
		return math.Sqrt(st.f / st.count), nil, true
	case parser.QUANTILE:
		vals := (*scratch)[:0]
		for _, s := range st.heap {
			vals = append(vals, s.F)
		}
		*scratch = vals
		return quantileOf(q, vals), nil, true
	case parser.SUM:
		if st.hasFloat && st.hasHistogram || st.incompatible {
			return 0, nil, false
		}
		if st.hasHistogram {
			h := st.h
			if st.hc != nil {
				h, _, _, _ = h.Add(st.hc)
			}
			return 0, h.Compact(0), true
		}
		return st.f + st.c, nil, true
	}
	return st.f, nil, true
}

// valueHeap orders samples by value with NaN lowest; topk keeps a min-heap
// of the k largest, bottomk (through reverseHeap) a max-heap of the k
// smallest, exactly as Prometheus does so ties resolve the same way.
type valueHeap []Sample

func (s valueHeap) Len() int { return len(s) }
func (s valueHeap) Less(i, j int) bool {
	if math.IsNaN(s[i].F) {
		return true
	}
	return s[i].F < s[j].F
}
func (s valueHeap) Swap(i, j int) { s[i], s[j] = s[j], s[i] }
func (s *valueHeap) Push(x any)   { *s = append(*s, *(x.(*Sample))) }
func (s *valueHeap) Pop() any {
	old := *s
	n := len(old)
	el := old[n-1]
	*s = old[0 : n-1]
	return el
}

type reverseHeap []Sample

func (s reverseHeap) Len() int { return len(s) }
func (s reverseHeap) Less(i, j int) bool {
	if math.IsNaN(s[i].F) {
		return true
	}
	return s[i].F > s[j].F
}
func (s reverseHeap) Swap(i, j int) { s[i], s[j] = s[j], s[i] }
func (s *reverseHeap) Push(x any)   { *s = append(*s, *(x.(*Sample))) }
func (s *reverseHeap) Pop() any {
	old := *s
	n := len(old)
	el := old[n-1]
	*s = old[0 : n-1]
	return el
}

// aggregateK is topk and bottomk: per step and group, the k input series
// with the largest (smallest) values, keeping their own labels.
func (ev *evaluator) aggregateK(e *parser.AggregateExpr, in, param Matrix, grouping []string) Matrix {
	groupOf := make([]int, len(in))
	index := map[uint64]int{}
	n := 0
	for i, s := range in {
		h := groupLabels(s.Labels, grouping, e.Without).Hash()
		g, ok := index[h]
		if !ok {
			g = n
			n++
			index[h] = g
		}
		groupOf[i] = g
	}
	heaps := make([]valueHeap, n)
	seen := make([]bool, n)
	curF := make([]int, len(in))
	curH := make([]int, len(in))
	outIdx := make([]int, len(in))
	for i := range outIdx {
		outIdx[i] = -1
	}
	var out Matrix
	step := 0
	numSteps := ev.numSteps()
	for ts := ev.start; ts <= ev.end; ts, step = ts+ev.interval, step+1 {
		ev.checkCtx()
		kf := param[0].Floats[step].F
		if math.IsNaN(kf) {
			ev.failf("%w: parameter k of %s is NaN", ErrInvalidArgument, e.Op)
		}
		var k int64
		switch {
		case kf >= math.MaxInt64:
			k = math.MaxInt64
		case kf < 1:
			k = 0
		default:
			k = int64(kf)
		}
		for g := range heaps {
			heaps[g] = heaps[g][:0]
			seen[g] = false
		}
		for si := range in {
			s := &in[si]
			var f float64
			ok := false
			if c := curF[si]; c < len(s.Floats) && s.Floats[c].T == ts {
				f, ok = s.Floats[c].F, true
				curF[si]++
			} else if c := curH[si]; c < len(s.Histograms) && s.Histograms[c].T == ts {
				curH[si]++ // histograms are ignored by topk/bottomk
			}
			if !ok || k == 0 {
				continue
			}
			g := groupOf[si]
			smp := Sample{Labels: s.Labels, F: f, T: int64(si)}
			hp := &heaps[g]
			if !seen[g] {
				seen[g] = true
				*hp = append((*hp)[:0], smp)
				continue
			}
			if e.Op == parser.TOPK {
				switch {
				case int64(len(*hp)) < k:
					heap.Push(hp, &smp)
				case (*hp)[0].F < f || (math.IsNaN((*hp)[0].F) && !math.IsNaN(f)):
					(*hp)[0] = smp
					if k > 1 {
						heap.Fix(hp, 0)
					}
				}
			} else {
				rh := (*reverseHeap)(hp)
				switch {
				case int64(len(*hp)) < k:
					heap.Push(rh, &smp)
				case (*hp)[0].F > f || (math.IsNaN((*hp)[0].F) && !math.IsNaN(f)):
					(*hp)[0] = smp
					if k > 1 {
						heap.Fix(rh, 0)
					}
				}
			}
		}
		for g := range heaps {
			if !seen[g] {
				continue
			}
			hp := heaps[g]
			// Emit in result order: topk largest first, bottomk smallest first.
			if e.Op == parser.TOPK {
				slices.SortStableFunc(hp, func(a, b Sample) int { return cmpDesc(a.F, b.F) })
			} else {
				slices.SortStableFunc(hp, func(a, b Sample) int { return -cmpDesc(a.F, b.F) })
			}
			for _, smp := range hp {
				si := int(smp.T)
				oi := outIdx[si]
				if oi < 0 {
					oi = len(out)
					outIdx[si] = oi
					out = append(out, Series{Labels: in[si].Labels, Floats: make([]FPoint, 0, min(numSteps, 1024))})
				}
				out[oi].Floats = append(out[oi].Floats, FPoint{T: ts, F: smp.F})
			}
		}
	}
	ev.addSamples(-in.samples() - param.samples() + out.samples())
	return out
}

// cmpDesc orders larger values first and NaN last.
func cmpDesc(a, b float64) int {
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// countValues is count_values("label", v): per step, the number of series
// with each distinct value, the value as a label.
func (ev *evaluator) countValues(e *parser.AggregateExpr, grouping []string) Matrix {
	valueLabel := stringArg(e.Param)
	if !validLabelName(valueLabel) {
		ev.failf("%w: count_values label %q is not a valid label name", ErrInvalidArgument, valueLabel)
	}
	if !e.Without {
		grouping = append(grouping, valueLabel)
		slices.Sort(grouping)
	}
	type groupCount struct {
		labels tsdb.Labels
		count  int
	}
	return ev.rangeEval(func(args []Vector, enh *evalHelper) Vector {
		result := map[uint64]*groupCount{}
		var ordered []*groupCount
		for _, s := range args[0] {
			var v string
			if s.H != nil {
				v = s.H.String()
			} else {
				v = formatValue(s.F)
			}
			metric := tsdb.NewBuilder(s.Labels).Set(valueLabel, v).Labels()
			gl := groupLabels(metric, grouping, e.Without)
			key := gl.Hash()
			g, ok := result[key]
			if !ok {
				g = &groupCount{labels: gl}
				result[key] = g
				ordered = append(ordered, g)
			}
			g.count++
		}
		for _, g := range ordered {
			enh.out = append(enh.out, Sample{Labels: g.labels, F: float64(g.count)})
		}
		return enh.out
	}, e.Expr)
}

// addHistogram adds h to the group's running histogram sum; a histogram
// that cannot be added (an incompatible schema or layout) marks the group.
func (st *aggState) addHistogram(h *FloatHistogram) {
	st.hasHistogram = true
	if st.h == nil {
		return
	}
	var err error
	st.hc, _, _, err = st.h.KahanAdd(h, st.hc)
	if err != nil {
		st.incompatible = true
	}
}
