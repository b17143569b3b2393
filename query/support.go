package query

import (
	"github.com/prometheus/prometheus/promql/parser"
)

// supportedFuncs, supportedAggs and supportedBinops are what the engine
// evaluates; anything else in a query is rejected before evaluation.
var supportedFuncs = map[string]bool{
	"rate": true, "increase": true, "irate": true, "delta": true, "idelta": true,
	"deriv": true, "predict_linear": true, "resets": true, "changes": true,
	"avg_over_time": true, "min_over_time": true, "max_over_time": true,
	"sum_over_time": true, "count_over_time": true, "last_over_time": true,
	"stddev_over_time": true, "stdvar_over_time": true, "quantile_over_time": true,
	"present_over_time": true, "absent": true, "absent_over_time": true,
	"histogram_quantile": true, "histogram_count": true, "histogram_sum": true,
	"histogram_fraction": true,
	"abs":                true, "ceil": true, "floor": true, "round": true, "clamp": true,
	"clamp_min": true, "clamp_max": true, "exp": true, "ln": true, "log2": true,
	"log10": true, "sqrt": true, "sgn": true, "timestamp": true, "time": true,
	"vector": true, "scalar": true, "label_replace": true, "label_join": true,
	"sort": true, "sort_desc": true,
}

var supportedAggs = map[parser.ItemType]bool{
	parser.SUM: true, parser.AVG: true, parser.MIN: true, parser.MAX: true,
	parser.COUNT: true, parser.GROUP: true, parser.STDDEV: true, parser.STDVAR: true,
	parser.QUANTILE: true, parser.TOPK: true, parser.BOTTOMK: true, parser.COUNT_VALUES: true,
}

var supportedBinops = map[parser.ItemType]bool{
	parser.ADD: true, parser.SUB: true, parser.MUL: true, parser.DIV: true,
	parser.MOD: true, parser.POW: true, parser.ATAN2: true,
	parser.EQLC: true, parser.NEQ: true, parser.GTR: true, parser.LSS: true,
	parser.GTE: true, parser.LTE: true,
	parser.LAND: true, parser.LOR: true, parser.LUNLESS: true,
}

// checkSupported walks expr and returns an *UnsupportedError for the first
// function, aggregation, operator or modifier the engine cannot evaluate.
func checkSupported(expr parser.Expr) error {
	var err error
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if err != nil {
			return err
		}
		switch e := n.(type) {
		case *parser.Call:
			if !supportedFuncs[e.Func.Name] {
				err = &UnsupportedError{What: "function " + e.Func.Name}
			}
		case *parser.AggregateExpr:
			if !supportedAggs[e.Op] {
				err = &UnsupportedError{What: "aggregation " + e.Op.String()}
			}
		case *parser.BinaryExpr:
			if !supportedBinops[e.Op] {
				err = &UnsupportedError{What: "operator " + e.Op.String()}
			}
			if vm := e.VectorMatching; vm != nil && (vm.FillValues.LHS != nil || vm.FillValues.RHS != nil) {
				err = &UnsupportedError{What: "fill modifier"}
			}
		case *parser.UnaryExpr:
			if e.Op != parser.SUB && e.Op != parser.ADD {
				err = &UnsupportedError{What: "unary operator " + e.Op.String()}
			}
		case *parser.VectorSelector:
			if e.Anchored || e.Smoothed {
				err = &UnsupportedError{What: "anchored/smoothed modifier"}
			}
		}
		return err
	})
	return err
}
