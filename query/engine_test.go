package query

import (
	"context"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/tsdb"
)

var staleNaN = math.Float64frombits(staleNaNBits)

// sample is one float sample to load.
type sample struct {
	ls []string
	t  int64
	v  float64
}

func openDB(t testing.TB, samples []sample) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	app := db.Appender(context.Background())
	for _, s := range samples {
		_, err := app.Append(0, tsdb.FromStrings(s.ls...), s.t, s.v)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	return db
}

// series builds samples of one series every step ms from t0.
func series(ls []string, t0, step int64, vs ...float64) []sample {
	out := make([]sample, len(vs))
	for i, v := range vs {
		out[i] = sample{ls: ls, t: t0 + int64(i)*step, v: v}
	}
	return out
}

func instantVector(t *testing.T, eng *Engine, q string, ts int64) Vector {
	t.Helper()
	v, err := eng.Instant(context.Background(), q, time.UnixMilli(ts))
	require.NoError(t, err, q)
	vec, ok := v.(Vector)
	require.True(t, ok, "%s: got %T", q, v)
	return vec
}

func TestLookbackAndStaleness(t *testing.T) {
	var data []sample
	data = append(data, series([]string{"__name__", "up", "job", "a"}, 0, 15000, 1, 1, 1, staleNaN)...)
	data = append(data, series([]string{"__name__", "up", "job", "b"}, 0, 15000, 1, 1)...)
	eng := NewEngine(openDB(t, data), Options{})

	// At 40 s both are present (job="a" last at 30 s, job="b" at 15 s).
	require.Len(t, instantVector(t, eng, "up", 40000), 2)
	// At 45 s job="a" has a staleness marker: it is gone at once, while
	// job="b" stays until its last sample is 5 m old.
	vec := instantVector(t, eng, "up", 45000)
	require.Len(t, vec, 1)
	require.Equal(t, "b", vec[0].Labels.Get("job"))
	require.Len(t, instantVector(t, eng, "up", 15000+5*60000-1), 1)
	require.Empty(t, instantVector(t, eng, "up", 15000+5*60000), "lookback window is left-open")
	// Range functions skip the marker itself.
	vec = instantVector(t, eng, `count_over_time(up{job="a"}[1m])`, 50000)
	require.Equal(t, 3.0, vec[0].F)
	// A custom lookback delta.
	short := NewEngine(eng.db, Options{LookbackDelta: time.Minute})
	require.Empty(t, instantVector(t, short, `up{job="b"}`, 15000+60000))
}

func TestRangeQueryOffsetAndAt(t *testing.T) {
	var vs []float64
	for i := range 41 {
		vs = append(vs, float64(i))
	}
	eng := NewEngine(openDB(t, series([]string{"__name__", "x"}, 0, 15000, vs...)), Options{})
	ctx := context.Background()
	m, err := eng.Range(ctx, "x", time.UnixMilli(60000), time.UnixMilli(120000), 30*time.Second)
	require.NoError(t, err)
	require.Len(t, m, 1)
	require.Equal(t, []FPoint{{60000, 4}, {90000, 6}, {120000, 8}}, m[0].Floats)

	m, err = eng.Range(ctx, "x offset 1m", time.UnixMilli(60000), time.UnixMilli(120000), 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, []FPoint{{60000, 0}, {90000, 2}, {120000, 4}}, m[0].Floats)

	m, err = eng.Range(ctx, "x @ 300", time.UnixMilli(60000), time.UnixMilli(120000), 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, []FPoint{{60000, 20}, {90000, 20}, {120000, 20}}, m[0].Floats)

	m, err = eng.Range(ctx, "x @ end()", time.UnixMilli(60000), time.UnixMilli(120000), 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, 8.0, m[0].Floats[0].F)

	// The metric name is dropped by functions and arithmetic, kept by
	// comparisons without bool.
	vec := instantVector(t, eng, "rate(x[1m])", 300000)
	require.False(t, vec[0].Labels.Has(tsdb.MetricName))
	require.InDelta(t, 1.0/15, vec[0].F, 1e-12)
	require.False(t, instantVector(t, eng, "x * 2", 300000)[0].Labels.Has(tsdb.MetricName))
	require.True(t, instantVector(t, eng, "x > 2", 300000)[0].Labels.Has(tsdb.MetricName))
	require.False(t, instantVector(t, eng, "x > bool 2", 300000)[0].Labels.Has(tsdb.MetricName))
	require.True(t, instantVector(t, eng, "last_over_time(x[1m])", 300000)[0].Labels.Has(tsdb.MetricName))
}

func TestResultValueTypes(t *testing.T) {
	eng := NewEngine(openDB(t, series([]string{"__name__", "x", "a", "1"}, 0, 15000, 1, 2, 3)), Options{})
	ctx := context.Background()
	v, err := eng.Instant(ctx, "1 + 2", time.UnixMilli(1000))
	require.NoError(t, err)
	require.Equal(t, Scalar{T: 1000, F: 3}, v)
	v, err = eng.Instant(ctx, `"hello"`, time.UnixMilli(1000))
	require.NoError(t, err)
	require.Equal(t, String{T: 1000, V: "hello"}, v)
	v, err = eng.Instant(ctx, "x[1m]", time.UnixMilli(30000))
	require.NoError(t, err)
	m := v.(Matrix)
	require.Equal(t, []FPoint{{0, 1}, {15000, 2}, {30000, 3}}, m[0].Floats)
	_, err = eng.Range(ctx, "x[1m]", time.UnixMilli(0), time.UnixMilli(60000), time.Minute)
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = eng.Range(ctx, "x", time.UnixMilli(0), time.UnixMilli(60000), 0)
	require.ErrorIs(t, err, ErrInvalidArgument)
}

func TestClassicHistogramQuantile(t *testing.T) {
	var data []sample
	bounds := []string{"0.1", "0.5", "1", "+Inf"}
	// Per 15 s: 1 observation ≤ 0.1, 2 more ≤ 0.5, 1 more ≤ 1, 0 above.
	per := []float64{1, 3, 4, 4}
	for i, le := range bounds {
		var vs []float64
		for k := range 21 {
			vs = append(vs, per[i]*float64(k))
		}
		data = append(data, series([]string{"__name__", "lat_bucket", "svc", "api", "le", le}, 0, 15000, vs...)...)
	}
	eng := NewEngine(openDB(t, data), Options{})
	vec := instantVector(t, eng, `histogram_quantile(0.5, sum by (le) (rate(lat_bucket[5m])))`, 300000)
	require.Len(t, vec, 1)
	require.Empty(t, vec[0].Labels)
	// Rank 2 of 4 lies in (0.1, 0.5], one of its two observations in.
	require.InDelta(t, 0.3, vec[0].F, 1e-12)
	vec = instantVector(t, eng, `histogram_quantile(0.99, rate(lat_bucket[5m]))`, 300000)
	require.Equal(t, "api", vec[0].Labels.Get("svc"))
	require.InDelta(t, 0.5+0.5*(0.96/1), vec[0].F, 1e-12)

	res, err := eng.Percentiles(context.Background(), PercentileQuery{
		Metric: "lat", By: []string{"svc"}, Quantiles: []float64{0.5, 0.99},
		Start: time.UnixMilli(240000), End: time.UnixMilli(300000), Step: time.Minute,
	})
	require.NoError(t, err)
	require.Len(t, res, 2)
	require.Equal(t, "0.5", res[0].Labels.Get("quantile"))
	require.Equal(t, "api", res[0].Labels.Get("svc"))
	require.Len(t, res[0].Floats, 2)
	require.InDelta(t, 0.3, res[0].Floats[1].F, 1e-12)
	_, err = eng.Percentiles(context.Background(), PercentileQuery{Metric: "lat", Quantiles: []float64{1.5}})
	require.ErrorIs(t, err, ErrInvalidArgument)
}

func TestNativeHistogramQuantile(t *testing.T) {
	db, err := tsdb.Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	app := db.Appender(context.Background())
	ls := tsdb.FromStrings("__name__", "lat", "svc", "api")
	for k := range 21 {
		n := int64(k)
		// Schema 0: bucket index i covers (2^(i-1), 2^i]. Buckets 0..2,
		// counts n, 2n, n (deltas n, n, -n).
		h := &encoding.Histogram{
			Schema: 0, Count: uint64(4 * n), Sum: float64(6 * n),
			PositiveSpans:   []encoding.BucketSpan{{Offset: 0, Length: 3}},
			PositiveBuckets: []int64{n, n, -n},
		}
		_, err := app.AppendHistogram(0, ls, int64(k)*15000, h)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	eng := NewEngine(db, Options{})
	vec := instantVector(t, eng, `histogram_quantile(0.5, rate(lat[5m]))`, 300000)
	require.Len(t, vec, 1)
	// Rank 2 of 4: one observation in (0.5, 1], then half of the two in
	// (1, 2], interpolated exponentially: 2^0.5.
	require.InDelta(t, math.Sqrt2, vec[0].F, 1e-9)
	vec = instantVector(t, eng, `histogram_count(rate(lat[5m]))`, 300000)
	require.InDelta(t, 4.0/15, vec[0].F, 1e-12)
	vec = instantVector(t, eng, `histogram_sum(sum(lat))`, 300000)
	require.Equal(t, 120.0, vec[0].F)
	vec = instantVector(t, eng, `histogram_fraction(0, 1, lat)`, 300000)
	require.InDelta(t, 0.25, vec[0].F, 1e-12)
}

func TestParseErrorHasPosition(t *testing.T) {
	eng := NewEngine(openDB(t, nil), Options{})
	_, err := eng.Instant(context.Background(), "sum(rate(x[5m])\n  + )", time.Now())
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, 2, pe.Line)
	require.Positive(t, pe.Column)
	require.Contains(t, pe.Error(), "line 2")
}

func TestUnsupportedIsNamed(t *testing.T) {
	eng := NewEngine(openDB(t, nil), Options{})
	for q, what := range map[string]string{
		`holt_winters(x[5m], 0.5, 0.5)`: "holt_winters",
		`limitk(2, x)`:                  "limitk",
		`mad_over_time(x[5m])`:          "mad_over_time",
		`day_of_week()`:                 "day_of_week",
	} {
		_, err := eng.Instant(context.Background(), q, time.Now())
		if errors.As(err, new(*ParseError)) {
			continue // not even in the grammar without experimental features
		}
		require.ErrorIs(t, err, ErrUnsupported, q)
		require.Contains(t, err.Error(), what)
	}
}

func TestMaxSamples(t *testing.T) {
	var data []sample
	for i := range 20 {
		data = append(data, series([]string{"__name__", "x", "i", strconv.Itoa(i)}, 0, 15000, 1, 2, 3, 4)...)
	}
	db := openDB(t, data)
	_, err := NewEngine(db, Options{MaxSamples: 10}).Instant(context.Background(), "sum(x)", time.UnixMilli(45000))
	require.ErrorIs(t, err, ErrTooManySamples)
	v, err := NewEngine(db, Options{MaxSamples: 100}).Instant(context.Background(), "sum(x)", time.UnixMilli(45000))
	require.NoError(t, err)
	require.Equal(t, 80.0, v.(Vector)[0].F)
}

func TestCancellation(t *testing.T) {
	var data []sample
	for i := range 50 {
		var vs []float64
		for k := range 240 {
			vs = append(vs, float64(k))
		}
		data = append(data, series([]string{"__name__", "x", "i", strconv.Itoa(i)}, 0, 15000, vs...)...)
	}
	eng := NewEngine(openDB(t, data), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := eng.Range(ctx, "rate(x[5m])", time.UnixMilli(0), time.UnixMilli(3600000), time.Second)
	require.ErrorIs(t, err, context.Canceled)
	_, err = NewEngine(eng.db, Options{Timeout: time.Nanosecond}).Range(context.Background(), "sum(rate(x[5m]))", time.UnixMilli(0), time.UnixMilli(3600000), time.Second)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestDuplicateLabelsetError(t *testing.T) {
	var data []sample
	data = append(data, series([]string{"__name__", "a_total", "job", "x"}, 0, 15000, 1, 2, 3)...)
	data = append(data, series([]string{"__name__", "b_total", "job", "x"}, 0, 15000, 1, 2, 3)...)
	eng := NewEngine(openDB(t, data), Options{})
	_, err := eng.Instant(context.Background(), `rate({job="x"}[1m])`, time.UnixMilli(30000))
	require.ErrorIs(t, err, ErrDuplicateLabelset)
}

func TestBinaryMatching(t *testing.T) {
	var data []sample
	for _, inst := range []string{"1", "2"} {
		data = append(data, series([]string{"__name__", "req", "job", "api", "instance", inst}, 0, 15000, 10)...)
	}
	data = append(data, series([]string{"__name__", "limit", "job", "api"}, 0, 15000, 40)...)
	eng := NewEngine(openDB(t, data), Options{})
	vec := instantVector(t, eng, `req / on (job) group_left limit`, 0)
	require.Len(t, vec, 2)
	require.Equal(t, 0.25, vec[0].F)
	require.Equal(t, "1", vec[0].Labels.Get("instance"))
	_, err := eng.Instant(context.Background(), `req / on (job) limit`, time.UnixMilli(0))
	require.ErrorIs(t, err, ErrInvalidArgument, "one-to-one with two matches on the left")
	require.Len(t, instantVector(t, eng, `req and on (job) limit`, 0), 2)
	require.Empty(t, instantVector(t, eng, `req unless on (job) limit`, 0))
	vec = instantVector(t, eng, `topk(1, req)`, 0)
	require.Len(t, vec, 1)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"rate(x[5m])", `sum by (a) (x{b=~"c.*"} offset 5m)`, "histogram_quantile(0.9, x)", "1 +", "x[5m:1m] @ start()"} {
		f.Add(s)
	}
	eng := NewEngine(nil, Options{})
	f.Fuzz(func(t *testing.T, qs string) {
		_, err := eng.Parse(qs)
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				if pe.Pos < 0 || pe.Pos > len(qs) || pe.Line < 1 || pe.Column < 1 {
					t.Fatalf("bad position %+v for %q", pe, qs)
				}
			} else if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
		}
	})
}
