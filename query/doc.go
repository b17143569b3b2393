// Package query evaluates PromQL over a Pillar metrics store (*tsdb.DB).
//
// Text is parsed by Prometheus' own parser (so the grammar, including
// operator precedence, durations, @ and offset modifiers and subqueries, is
// exactly Prometheus'); planning and evaluation are Pillar's and read samples
// straight from tsdb iterators through db.Querier(mint, maxt).Select.
//
// The numbers are Prometheus' numbers: the same lookback delta and staleness
// handling for instant vectors, the same left-open (t-range, t] windows for
// range vectors, the same rate extrapolation and counter-reset handling, the
// same bucket interpolation and monotonicity fix in histogram_quantile, the
// same quantile definition, Kahan-compensated sums and label-dropping rules.
// Anything the engine does not implement is rejected up front with an error
// wrapping ErrUnsupported that names the function or feature, so a query
// never silently gets a wrong answer.
//
// Evaluation is step-wise over the whole query range, as in Prometheus: each
// node yields a Matrix with one point per step. Range-vector functions run
// one pass per series over its iterator with a sliding window buffer that is
// reused across steps and series, so nothing is materialised beyond the
// largest window.
package query
