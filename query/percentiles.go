package query

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pillar-db/pillar/tsdb"
)

// PercentileQuery asks for latency percentiles of a histogram metric over
// a rate window, grouped by labels, as a range result: the incident
// question "what were p50/p95/p99 per service over the last hour".
type PercentileQuery struct {
	// Metric is the histogram's base name: a classic histogram's buckets
	// are Metric+"_bucket" with an `le` label; a native histogram is Metric
	// itself. Both kinds are looked up and reported.
	Metric string
	// Matchers restrict the series (they must not match __name__ or le).
	Matchers []*tsdb.Matcher
	// By are the labels the percentiles are grouped by; none means one
	// group over all series.
	By []string
	// Quantiles are the φ values, each in [0, 1], e.g. 0.5, 0.95, 0.99.
	Quantiles []float64
	// Window is the rate window; default 5m.
	Window time.Duration
	// Start, End and Step are the evaluation range, as for Range.
	Start, End time.Time
	Step       time.Duration
}

// Percentiles evaluates pq as histogram_quantile(φ, sum by (le, By…)
// (rate(Metric_bucket[Window]))) for classic buckets and
// histogram_quantile(φ, sum by (By…) (rate(Metric[Window]))) for native
// histograms, for every φ. Each result series carries a `quantile` label
// with φ; series are sorted by labels.
func (e *Engine) Percentiles(ctx context.Context, pq PercentileQuery) (Matrix, error) {
	if pq.Metric == "" {
		return nil, fmt.Errorf("%w: percentile query without a metric", ErrInvalidArgument)
	}
	if len(pq.Quantiles) == 0 {
		return nil, fmt.Errorf("%w: percentile query without quantiles", ErrInvalidArgument)
	}
	for _, q := range pq.Quantiles {
		if math.IsNaN(q) || q < 0 || q > 1 {
			return nil, fmt.Errorf("%w: quantile %v outside [0, 1]", ErrInvalidArgument, q)
		}
	}
	for _, n := range pq.By {
		if !validLabelName(n) || n == "le" || n == "quantile" {
			return nil, fmt.Errorf("%w: cannot group percentiles by %q", ErrInvalidArgument, n)
		}
	}
	window := pq.Window
	if window <= 0 {
		window = 5 * time.Minute
	}
	var sel strings.Builder
	for _, m := range pq.Matchers {
		if m.Name == tsdb.MetricName || m.Name == "le" {
			return nil, fmt.Errorf("%w: percentile matcher on %q", ErrInvalidArgument, m.Name)
		}
		op := map[tsdb.MatchType]string{tsdb.MatchEqual: "=", tsdb.MatchNotEqual: "!=", tsdb.MatchRegexp: "=~", tsdb.MatchNotRegexp: "!~"}[m.Type]
		fmt.Fprintf(&sel, ", %s%s%s", strconv.Quote(m.Name), op, strconv.Quote(m.Value))
	}
	by := strings.Join(quoteAll(pq.By), ", ")
	leBy := `"le"`
	if by != "" {
		leBy += ", " + by
	}
	rng := strconv.FormatInt(window.Milliseconds(), 10) + "ms"
	var out Matrix
	for _, q := range pq.Quantiles {
		qs := strconv.FormatFloat(q, 'g', -1, 64)
		for _, expr := range []string{
			fmt.Sprintf(`histogram_quantile(%s, sum by (%s) (rate({__name__=%s%s}[%s])))`, qs, leBy, strconv.Quote(pq.Metric+"_bucket"), sel.String(), rng),
			fmt.Sprintf(`histogram_quantile(%s, sum by (%s) (rate({__name__=%s%s}[%s])))`, qs, by, strconv.Quote(pq.Metric), sel.String(), rng),
		} {
			m, err := e.Range(ctx, expr, pq.Start, pq.End, pq.Step)
			if err != nil {
				return nil, err
			}
			for _, s := range m {
				s.Labels = tsdb.NewBuilder(s.Labels).Set("quantile", qs).Labels()
				out = append(out, s)
			}
		}
	}
	slices.SortFunc(out, func(a, b Series) int { return tsdb.Compare(a.Labels, b.Labels) })
	return out, nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
