package query

import (
	"fmt"
	"math"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/pillar-db/pillar/tsdb"
)

// binary evaluates a binary expression.
func (ev *evaluator) binary(e *parser.BinaryExpr) Matrix {
	lt, rt := e.LHS.Type(), e.RHS.Type()
	switch {
	case lt == parser.ValueTypeScalar && rt == parser.ValueTypeScalar:
		return ev.rangeEval(func(args []Vector, enh *evalHelper) Vector {
			f, _, _ := scalarBinop(e.Op, args[0][0].F, args[1][0].F)
			return append(enh.out, Sample{F: f})
		}, e.LHS, e.RHS)
	case lt == parser.ValueTypeVector && rt == parser.ValueTypeVector:
		m := e.VectorMatching
		switch e.Op {
		case parser.LAND:
			return ev.rangeEval(func(args []Vector, enh *evalHelper) Vector {
				return vectorAnd(args[0], args[1], m, enh)
			}, e.LHS, e.RHS)
		case parser.LOR:
			return ev.rangeEval(func(args []Vector, enh *evalHelper) Vector {
				return vectorOr(args[0], args[1], m, enh)
			}, e.LHS, e.RHS)
		case parser.LUNLESS:
			return ev.rangeEval(func(args []Vector, enh *evalHelper) Vector {
				return vectorUnless(args[0], args[1], m, enh)
			}, e.LHS, e.RHS)
		}
		return ev.rangeEval(func(args []Vector, enh *evalHelper) Vector {
			return ev.vectorBinop(e.Op, args[0], args[1], m, e.ReturnBool, enh)
		}, e.LHS, e.RHS)
	case lt == parser.ValueTypeVector && rt == parser.ValueTypeScalar:
		return ev.rangeEval(func(args []Vector, enh *evalHelper) Vector {
			return vectorScalarBinop(e.Op, args[0], args[1][0].F, false, e.ReturnBool, enh)
		}, e.LHS, e.RHS)
	case lt == parser.ValueTypeScalar && rt == parser.ValueTypeVector:
		return ev.rangeEval(func(args []Vector, enh *evalHelper) Vector {
			return vectorScalarBinop(e.Op, args[1], args[0][0].F, true, e.ReturnBool, enh)
		}, e.LHS, e.RHS)
	}
	ev.fail(&UnsupportedError{What: fmt.Sprintf("operator %s between %s and %s", e.Op, lt, rt)})
	return nil
}

// scalarBinop applies op to two floats; for comparisons keep says whether
// the comparison holds and the value is lhs (or 1/0 between scalars).
func scalarBinop(op parser.ItemType, lhs, rhs float64) (float64, bool, bool) {
	switch op {
	case parser.ADD:
		return lhs + rhs, true, true
	case parser.SUB:
		return lhs - rhs, true, true
	case parser.MUL:
		return lhs * rhs, true, true
	case parser.DIV:
		return lhs / rhs, true, true
	case parser.POW:
		return math.Pow(lhs, rhs), true, true
	case parser.MOD:
		return math.Mod(lhs, rhs), true, true
	case parser.ATAN2:
		return math.Atan2(lhs, rhs), true, true
	case parser.EQLC:
		return btof(lhs == rhs), lhs == rhs, false
	case parser.NEQ:
		return btof(lhs != rhs), lhs != rhs, false
	case parser.GTR:
		return btof(lhs > rhs), lhs > rhs, false
	case parser.LSS:
		return btof(lhs < rhs), lhs < rhs, false
	case parser.GTE:
		return btof(lhs >= rhs), lhs >= rhs, false
	case parser.LTE:
		return btof(lhs <= rhs), lhs <= rhs, false
	}
	return math.NaN(), false, true
}

func btof(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// elemBinop applies op to one pair of vector elements. It returns the
// value (float or histogram) and whether the element is kept.
func elemBinop(op parser.ItemType, lf, rf float64, lh, rh *FloatHistogram) (float64, *FloatHistogram, bool) {
	switch {
	case lh == nil && rh == nil:
		if op.IsComparisonOperator() {
			_, keep, _ := scalarBinop(op, lf, rf)
			return lf, nil, keep
		}
		f, _, _ := scalarBinop(op, lf, rf)
		return f, nil, true
	case lh != nil && rh != nil:
		switch op {
		case parser.ADD:
			r, _, _, err := lh.Copy().Add(rh)
			if err != nil {
				return 0, nil, false
			}
			return 0, r.Compact(0), true
		case parser.SUB:
			r, _, _, err := lh.Copy().Sub(rh)
			if err != nil {
				return 0, nil, false
			}
			return 0, r.Compact(0), true
		case parser.EQLC:
			return 0, lh, lh.Equals(rh)
		case parser.NEQ:
			return 0, lh, !lh.Equals(rh)
		}
	case lh != nil: // histogram op float
		switch op {
		case parser.MUL:
			return 0, lh.Copy().Mul(rf), true
		case parser.DIV:
			return 0, lh.Copy().Div(rf), true
		}
	default: // float op histogram
		if op == parser.MUL {
			return 0, rh.Copy().Mul(lf), true
		}
	}
	return 0, nil, false
}

// signature hashes the labels that decide which elements match.
func signature(ls tsdb.Labels, m *parser.VectorMatching) uint64 {
	if m == nil {
		return ls.HashWithoutLabels()
	}
	if m.On {
		return ls.HashForLabels(m.MatchingLabels...)
	}
	return ls.HashWithoutLabels(m.MatchingLabels...)
}

func vectorAnd(lhs, rhs Vector, m *parser.VectorMatching, enh *evalHelper) Vector {
	if len(lhs) == 0 || len(rhs) == 0 {
		return enh.out
	}
	right := make(map[uint64]struct{}, len(rhs))
	for _, s := range rhs {
		right[signature(s.Labels, m)] = struct{}{}
	}
	for _, s := range lhs {
		if _, ok := right[signature(s.Labels, m)]; ok {
			enh.out = append(enh.out, s)
		}
	}
	return enh.out
}

func vectorOr(lhs, rhs Vector, m *parser.VectorMatching, enh *evalHelper) Vector {
	switch {
	case len(lhs) == 0:
		return append(enh.out, rhs...)
	case len(rhs) == 0:
		return append(enh.out, lhs...)
	}
	left := make(map[uint64]struct{}, len(lhs))
	for _, s := range lhs {
		left[signature(s.Labels, m)] = struct{}{}
		enh.out = append(enh.out, s)
	}
	for _, s := range rhs {
		if _, ok := left[signature(s.Labels, m)]; !ok {
			enh.out = append(enh.out, s)
		}
	}
	return enh.out
}

func vectorUnless(lhs, rhs Vector, m *parser.VectorMatching, enh *evalHelper) Vector {
	if len(lhs) == 0 || len(rhs) == 0 {
		return append(enh.out, lhs...)
	}
	right := make(map[uint64]struct{}, len(rhs))
	for _, s := range rhs {
		right[signature(s.Labels, m)] = struct{}{}
	}
	for _, s := range lhs {
		if _, ok := right[signature(s.Labels, m)]; !ok {
			enh.out = append(enh.out, s)
		}
	}
	return enh.out
}

// vectorBinop applies an arithmetic or comparison operator between two
// vectors, matching elements one-to-one or, with group_left/group_right,
// many-to-one, with Prometheus' errors for ambiguous matches.
func (ev *evaluator) vectorBinop(op parser.ItemType, lhs, rhs Vector, m *parser.VectorMatching, returnBool bool, enh *evalHelper) Vector {
	if len(lhs) == 0 || len(rhs) == 0 {
		return enh.out
	}
	if m.Card == parser.CardOneToMany {
		lhs, rhs = rhs, lhs
	}
	right := make(map[uint64]Sample, len(rhs))
	for _, s := range rhs {
		sig := signature(s.Labels, m)
		if _, dup := right[sig]; dup {
			side := "right"
			if m.Card == parser.CardOneToMany {
				side = "left"
			}
			ev.failf("%w: found duplicate series for the match group on the %s hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side", ErrInvalidArgument, side)
		}
		right[sig] = s
	}
	matched := map[uint64]map[uint64]struct{}{}
	for _, ls := range lhs {
		sig := signature(ls.Labels, m)
		rs, ok := right[sig]
		if !ok {
			continue
		}
		fl, fr, hl, hr := ls.F, rs.F, ls.H, rs.H
		if m.Card == parser.CardOneToMany {
			fl, fr, hl, hr = fr, fl, hr, hl
		}
		f, h, keep := elemBinop(op, fl, fr, hl, hr)
		switch {
		case returnBool:
			h = nil
			f = btof(keep)
			if hl != nil || hr != nil {
				if !(hl != nil && hr != nil && (op == parser.EQLC || op == parser.NEQ)) {
					continue
				}
			}
		case !keep:
			continue
		}
		metric := resultLabels(ls.Labels, rs.Labels, op, m)
		if returnBool {
			metric = dropName(metric)
		}
		inserted, exists := matched[sig]
		if m.Card == parser.CardOneToOne {
			if exists {
				ev.failf("%w: multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)", ErrInvalidArgument)
			}
			matched[sig] = nil
		} else {
			ins := metric.Hash()
			if !exists {
				inserted = map[uint64]struct{}{}
				matched[sig] = inserted
			} else if _, dup := inserted[ins]; dup {
				ev.failf("%w: multiple matches for labels: grouping labels must ensure unique matches", ErrInvalidArgument)
			}
			inserted[ins] = struct{}{}
		}
		enh.out = append(enh.out, Sample{Labels: metric, F: f, H: h})
	}
	return enh.out
}

// resultLabels are the labels of a vector-vector result element: the
// "many" side's, without the metric name for arithmetic, restricted to the
// matching labels for one-to-one matching, plus group_x's included labels
// from the "one" side.
func resultLabels(lhs, rhs tsdb.Labels, op parser.ItemType, m *parser.VectorMatching) tsdb.Labels {
	b := tsdb.NewBuilder(lhs)
	if !op.IsComparisonOperator() {
		b.Del(tsdb.MetricName)
	}
	if m.Card == parser.CardOneToOne {
		if m.On {
			b.Keep(m.MatchingLabels...)
		} else {
			b.Del(m.MatchingLabels...)
		}
	}
	for _, ln := range m.Include {
		b.Set(ln, rhs.Get(ln))
	}
	return b.Labels()
}

// vectorScalarBinop applies op between each vector element and a scalar;
// swap means the scalar is on the left.
func vectorScalarBinop(op parser.ItemType, v Vector, scalar float64, swap, returnBool bool, enh *evalHelper) Vector {
	for _, s := range v {
		lf, rf := s.F, scalar
		lh, rh := s.H, (*FloatHistogram)(nil)
		if swap {
			lf, rf = rf, lf
			lh, rh = rh, lh
		}
		f, h, keep := elemBinop(op, lf, rf, lh, rh)
		if op.IsComparisonOperator() && swap {
			f, h = rf, rh
		}
		if returnBool {
			if s.H != nil {
				continue
			}
			f = btof(keep)
			keep = true
			h = nil
		}
		if !keep {
			continue
		}
		ls := s.Labels
		if !op.IsComparisonOperator() || returnBool {
			ls = dropName(ls)
		}
		enh.out = append(enh.out, Sample{Labels: ls, F: f, H: h})
	}
	return enh.out
}
