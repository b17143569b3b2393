package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/pillar-db/pillar/tsdb"
)

// Options configures an Engine. The zero value gives the defaults.
type Options struct {
	// LookbackDelta is how far back from an evaluation time an instant
	// vector selector looks for a series' latest sample. Default 5m, as in
	// Prometheus.
	LookbackDelta time.Duration
	// MaxSamples bounds the number of samples a query may hold in memory at
	// once (selected points, range windows and intermediate results);
	// exceeding it fails the query with ErrTooManySamples. Default
	// 50,000,000, Prometheus' default.
	MaxSamples int
	// Timeout bounds each query's evaluation; the query then fails with
	// context.DeadlineExceeded. Default 2m; negative means none.
	Timeout time.Duration
	// SubqueryStep is the resolution of a subquery written without a step
	// (`x[1h:]`). Default 1m, Prometheus' default evaluation interval.
	SubqueryStep time.Duration
	// NoRollups makes every range function read raw samples, never the
	// store's rollups. Default false: rollups are read where they give the
	// raw answer to the bit (see rollup.go).
	NoRollups bool
	// AllowRollups also reads rollups where the answer may differ from the
	// raw one by rounding: sum_over_time, avg_over_time, rate, increase and
	// delta over ranges of several rollup windows. Default false.
	AllowRollups bool
}

const (
	defaultLookbackDelta = 5 * time.Minute
	defaultMaxSamples    = 50_000_000
	defaultTimeout       = 2 * time.Minute
	defaultSubqueryStep  = time.Minute
)

// Engine evaluates PromQL over one metrics store. It holds no per-query
// state and is safe for concurrent use.
type Engine struct {
	db     *tsdb.DB
	opts   Options
	parser parser.Parser
}

// NewEngine returns an engine reading from db with options o (zero fields
// take their defaults).
func NewEngine(db *tsdb.DB, o Options) *Engine {
	if o.LookbackDelta <= 0 {
		o.LookbackDelta = defaultLookbackDelta
	}
	if o.MaxSamples <= 0 {
		o.MaxSamples = defaultMaxSamples
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	if o.SubqueryStep <= 0 {
		o.SubqueryStep = defaultSubqueryStep
	}
	return &Engine{db: db, opts: o, parser: parser.NewParser(parser.Options{})}
}

// Parse parses qs and checks that the engine supports everything in it. The
// error is a *ParseError (with the position) or wraps ErrUnsupported.
func (e *Engine) Parse(qs string) (parser.Expr, error) {
	expr, err := e.parser.ParseExpr(qs)
	if err != nil {
		return nil, newParseError(qs, err)
	}
	if err := checkSupported(expr); err != nil {
		return nil, err
	}
	return expr, nil
}

func newParseError(qs string, err error) error {
	pe := &ParseError{Query: qs, Msg: err.Error(), Err: err, Line: 1, Column: 1}
	var one *parser.ParseErr
	var many parser.ParseErrors
	switch {
	case errors.As(err, &many) && len(many) > 0:
		pe.Pos = int(many[0].PositionRange.Start)
		pe.Msg = many[0].Err.Error()
	case errors.As(err, &one):
		pe.Pos = int(one.PositionRange.Start)
		pe.Msg = one.Err.Error()
	}
	if pe.Pos > len(qs) {
		pe.Pos = len(qs)
	}
	if pe.Pos < 0 {
		pe.Pos = 0
	}
	before := qs[:pe.Pos]
	pe.Line = strings.Count(before, "\n") + 1
	pe.Column = pe.Pos - (strings.LastIndexByte(before, '\n') + 1) + 1
	return pe
}

// Instant evaluates qs at ts. The result is a Vector, Scalar, String or (for
// a range-vector expression) Matrix.
func (e *Engine) Instant(ctx context.Context, qs string, ts time.Time) (Value, error) {
	v, _, err := e.InstantWithStats(ctx, qs, ts)
	return v, err
}

// InstantWithStats is Instant, also saying how the query was answered.
func (e *Engine) InstantWithStats(ctx context.Context, qs string, ts time.Time) (Value, Stats, error) {
	var st Stats
	v, err := e.instant(ctx, qs, ts, &st)
	return v, st, err
}

func (e *Engine) instant(ctx context.Context, qs string, ts time.Time, st *Stats) (Value, error) {
	expr, err := e.Parse(qs)
	if err != nil {
		return nil, err
	}
	t := ts.UnixMilli()
	ctx, cancel := e.withTimeout(ctx)
	defer cancel()
	ev := e.newEvaluator(ctx, t, t, 0)
	ev.stats = st
	var v Value
	err = ev.run(func() {
		v = ev.instantResult(expr, ev.eval(expr))
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Range evaluates qs at every step from start to end (inclusive, as far as
// a whole step fits). qs must be a scalar or instant-vector expression. The
// result's series are sorted by labels.
func (e *Engine) Range(ctx context.Context, qs string, start, end time.Time, step time.Duration) (Matrix, error) {
	m, _, err := e.RangeWithStats(ctx, qs, start, end, step)
	return m, err
}

// RangeWithStats is Range, also saying how the query was answered (which
// rollup resolution it read, if any).
func (e *Engine) RangeWithStats(ctx context.Context, qs string, start, end time.Time, step time.Duration) (Matrix, Stats, error) {
	var st Stats
	m, err := e.rangeQuery(ctx, qs, start, end, step, &st)
	return m, st, err
}

func (e *Engine) rangeQuery(ctx context.Context, qs string, start, end time.Time, step time.Duration, st *Stats) (Matrix, error) {
	if step <= 0 {
		return nil, fmt.Errorf("%w: step %v must be positive", ErrInvalidArgument, step)
	}
	if end.Before(start) {
		return nil, fmt.Errorf("%w: end %v before start %v", ErrInvalidArgument, end, start)
	}
	expr, err := e.Parse(qs)
	if err != nil {
		return nil, err
	}
	if t := expr.Type(); t != parser.ValueTypeVector && t != parser.ValueTypeScalar {
		return nil, fmt.Errorf("%w: range query over a %s expression, must be scalar or instant vector", ErrInvalidArgument, t)
	}
	ctx, cancel := e.withTimeout(ctx)
	defer cancel()
	ev := e.newEvaluator(ctx, start.UnixMilli(), end.UnixMilli(), step.Milliseconds())
	ev.stats = st
	var m Matrix
	err = ev.run(func() {
		m = ev.eval(expr).(Matrix)
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(m, func(a, b Series) int { return tsdb.Compare(a.Labels, b.Labels) })
	return m, nil
}

func (e *Engine) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if e.opts.Timeout > 0 {
		return context.WithTimeout(ctx, e.opts.Timeout)
	}
	return context.WithCancel(ctx)
}

func (e *Engine) newEvaluator(ctx context.Context, start, end, interval int64) *evaluator {
	if interval <= 0 {
		interval = 1
	}
	return &evaluator{
		ctx:          ctx,
		db:           e.db,
		start:        start,
		end:          end,
		interval:     interval,
		queryStart:   start,
		queryEnd:     end,
		lookback:     e.opts.LookbackDelta.Milliseconds(),
		maxSamples:   e.opts.MaxSamples,
		subqStep:     e.opts.SubqueryStep.Milliseconds(),
		noRollups:    e.opts.NoRollups,
		allowRollups: e.opts.AllowRollups,
		stats:        &Stats{},
	}
}

// instantResult turns the one-step matrix of an instant evaluation into the
// value the expression's type calls for.
func (ev *evaluator) instantResult(expr parser.Expr, v any) Value {
	switch r := v.(type) {
	case String:
		return r
	case Matrix:
		switch expr.Type() {
		case parser.ValueTypeScalar:
			if len(r) == 0 || len(r[0].Floats) == 0 {
				return Scalar{T: ev.start}
			}
			return Scalar{T: ev.start, F: r[0].Floats[0].F}
		case parser.ValueTypeMatrix:
			slices.SortFunc(r, func(a, b Series) int { return tsdb.Compare(a.Labels, b.Labels) })
			return r
		}
		vec := make(Vector, 0, len(r))
		for _, s := range r {
			for _, p := range s.Floats {
				vec = append(vec, Sample{Labels: s.Labels, T: p.T, F: p.F})
			}
			for _, p := range s.Histograms {
				vec = append(vec, Sample{Labels: s.Labels, T: p.T, H: p.H})
			}
		}
		if !keepsOrder(expr) {
			slices.SortFunc(vec, func(a, b Sample) int { return tsdb.Compare(a.Labels, b.Labels) })
		}
		return vec
	}
	panic(evalError{fmt.Errorf("query: unexpected result type %T", v)})
}

// keepsOrder reports whether expr's outermost operation defines the order
// of its result (sort, sort_desc, topk, bottomk).
func keepsOrder(expr parser.Expr) bool {
	switch e := expr.(type) {
	case *parser.ParenExpr:
		return keepsOrder(e.Expr)
	case *parser.Call:
		return e.Func.Name == "sort" || e.Func.Name == "sort_desc"
	case *parser.AggregateExpr:
		return e.Op == parser.TOPK || e.Op == parser.BOTTOMK
	}
	return false
}
