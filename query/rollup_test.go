package query

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/tsdb"
)

const (
	minute = int64(time.Minute / time.Millisecond)
	hour   = 60 * minute
)

// rollupTestDB loads series of every shape rollups must handle (counters
// with resets, gauges crossing zero, NaN, staleness markers, gaps, jittered
// timestamps, a histogram series) over two days from t0 and downsamples
// through before.
func rollupTestDB(t *testing.T, before int64, opts *tsdb.Options) (*tsdb.DB, int64, int64) {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	r := rand.New(rand.NewPCG(11, 12))
	t0 := int64(1_750_000_000_000) / hour * hour
	end := t0 + 48*hour
	ctx := context.Background()
	type st struct {
		ls  tsdb.Labels
		t   int64
		v   float64
		ref tsdb.SeriesRef
	}
	var ss []*st
	for i := range 12 {
		kind := []string{"counter", "gauge", "int_counter"}[i%3]
		ss = append(ss, &st{ls: tsdb.FromStrings("__name__", "m_"+kind, "i", strconv.Itoa(i)), t: t0 + r.Int64N(30_000)})
	}
	for {
		app := db.Appender(ctx)
		progressed := false
		for i, s := range ss {
			if s.t > end {
				continue
			}
			progressed = true
			v := s.v
			switch x := r.IntN(200); {
			case x < 2:
				v = math.NaN()
			case x < 4:
				v = staleNaN
			case x < 6 && i%3 != 1:
				s.v = float64(r.IntN(5)) // reset
				v = s.v
			default:
				switch i % 3 {
				case 0:
					s.v += r.Float64() * 3
				case 1:
					s.v = math.Sin(float64(s.t)/3e6)*100 + r.Float64()
				default:
					s.v += float64(r.IntN(7))
				}
				v = s.v
			}
			var err error
			s.ref, err = app.Append(s.ref, s.ls, s.t, v)
			require.NoError(t, err)
			s.t += 10_000 + r.Int64N(20_000)
			if r.IntN(1000) == 0 {
				s.t += hour + r.Int64N(3*hour) // a gap
			}
		}
		require.NoError(t, app.Commit())
		if !progressed {
			break
		}
	}
	app := db.Appender(ctx)
	for i := int64(0); i < 48*60; i += 5 {
		_, err := app.AppendHistogram(0, tsdb.FromStrings("__name__", "m_hist"), t0+i*minute,
			&tsdb.Histogram{Count: uint64(i), ZeroCount: uint64(i), ZeroThreshold: 0.001, Sum: float64(i)})
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	_, err = db.Downsample(ctx, before)
	require.NoError(t, err)
	return db, t0, end
}

// requireSameMatrix compares two results bit for bit.
func requireSameMatrix(t *testing.T, want, got Matrix, msg string) {
	t.Helper()
	require.Equal(t, len(want), len(got), "%s: series", msg)
	for i := range want {
		require.Equal(t, want[i].Labels, got[i].Labels, msg)
		require.Equal(t, len(want[i].Floats), len(got[i].Floats), "%s: %s points", msg, want[i].Labels)
		for j, p := range want[i].Floats {
			g := got[i].Floats[j]
			require.Equal(t, p.T, g.T, msg)
			require.Equal(t, math.Float64bits(p.F), math.Float64bits(g.F), "%s: %s at %d: raw %v, rollups %v", msg, want[i].Labels, p.T, p.F, g.F)
		}
		require.Equal(t, len(want[i].Histograms), len(got[i].Histograms), msg)
	}
}

func TestRollupQueriesMatchRaw(t *testing.T) {
	ctx := context.Background()
	db, t0, end := rollupTestDB(t, math.MaxInt64, nil)
	raw := NewEngine(db, Options{NoRollups: true})
	eng := NewEngine(db, Options{})
	exact := []string{"max_over_time", "min_over_time", "count_over_time", "last_over_time"}
	oneWindow := []string{"sum_over_time", "avg_over_time", "rate", "increase", "delta"}
	type tc struct {
		q       string
		step    time.Duration
		wantRes time.Duration
	}
	var cases []tc
	for _, f := range exact {
		cases = append(cases,
			tc{f + "({__name__=~\"m_.*\"}[1h])", time.Hour, time.Hour},
			tc{f + "({__name__=~\"m_.*\"}[3h])", time.Hour, time.Hour},
			tc{f + "({__name__=~\"m_.*\"}[15m])", 5 * time.Minute, 5 * time.Minute},
			tc{f + "({__name__=~\"m_.*\"}[1h] offset 2h)", time.Hour, time.Hour},
			tc{f + "({__name__=~\"m_.*\"}[10m])", time.Minute, 0}, // steps off the window grid
		)
	}
	for _, f := range oneWindow {
		cases = append(cases,
			tc{f + "({__name__=~\"m_.*\"}[1h])", time.Hour, time.Hour},
			tc{f + "({__name__=~\"m_.*\"}[5m])", 15 * time.Minute, 5 * time.Minute},
			tc{f + "({__name__=~\"m_.*\"}[2h])", time.Hour, 0}, // several windows: raw unless allowed
		)
	}
	cases = append(cases,
		tc{"sum by (__name__) (max_over_time({__name__=~\"m_.*\"}[1h]))", time.Hour, time.Hour},
		tc{"max_over_time(m_gauge[1h]) - min_over_time(m_gauge[1h])", time.Hour, time.Hour},
		tc{"quantile_over_time(0.5, m_gauge[1h])", time.Hour, 0},
	)
	start, stop := time.UnixMilli(t0), time.UnixMilli(end+2*hour)
	for _, c := range cases {
		want, err := raw.Range(ctx, c.q, start, stop, c.step)
		require.NoError(t, err, c.q)
		got, st, err := eng.RangeWithStats(ctx, c.q, start, stop, c.step)
		require.NoError(t, err, c.q)
		require.NotEmpty(t, want, c.q)
		requireSameMatrix(t, want, got, c.q)
		require.Equal(t, c.wantRes, st.Resolution, "%s: resolution", c.q)
		if c.wantRes != 0 {
			require.Positive(t, st.RollupWindows, c.q)
		}
		// Instant queries too, at a step inside the data.
		ts := time.UnixMilli(t0 + 30*hour)
		wv, err := raw.Instant(ctx, c.q, ts)
		require.NoError(t, err)
		gv, _, err := eng.InstantWithStats(ctx, c.q, ts)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(wv), fmt.Sprint(gv), c.q)
	}
}

func TestRollupQueriesAllowRollups(t *testing.T) {
	ctx := context.Background()
	db, t0, end := rollupTestDB(t, math.MaxInt64, nil)
	raw := NewEngine(db, Options{NoRollups: true})
	eng := NewEngine(db, Options{AllowRollups: true})
	start, stop := time.UnixMilli(t0), time.UnixMilli(end)
	for _, q := range []string{
		`sum_over_time({__name__=~"m_.*"}[6h])`, `avg_over_time({__name__=~"m_.*"}[6h])`,
		`rate({__name__=~"m_.*"}[6h])`, `increase({__name__=~"m_.*"}[2h])`, `delta({__name__=~"m_.*"}[2h])`,
		`increase(m_int_counter[6h])`,
	} {
		want, err := raw.Range(ctx, q, start, stop, time.Hour)
		require.NoError(t, err, q)
		got, st, err := eng.RangeWithStats(ctx, q, start, stop, time.Hour)
		require.NoError(t, err, q)
		require.Equal(t, time.Hour, st.Resolution, q)
		require.Equal(t, len(want), len(got), q)
		for i := range want {
			require.Equal(t, want[i].Labels, got[i].Labels)
			require.Equal(t, len(want[i].Floats), len(got[i].Floats), "%s %s", q, want[i].Labels)
			for j, p := range want[i].Floats {
				g := got[i].Floats[j]
				require.Equal(t, p.T, g.T)
				if math.IsNaN(p.F) {
					require.True(t, math.IsNaN(g.F), "%s at %d", q, p.T)
					continue
				}
				// The documented bound: rounding of a sum of a few hundred terms.
				require.InDelta(t, p.F, g.F, 1e-12*max(1, math.Abs(p.F)), "%s %s at %d", q, want[i].Labels, p.T)
				if q == `increase(m_int_counter[6h])` {
					require.Equal(t, p.F, g.F, "integer counters are exact")
				}
			}
		}
	}
}

func TestRollupQueriesPartlyRolledUp(t *testing.T) {
	// Rollups only through the first day: later steps read raw samples.
	ctx := context.Background()
	first := int64(1_750_000_000_000)/hour*hour + 24*hour
	db, t0, end := rollupTestDB(t, first, nil)
	raw := NewEngine(db, Options{NoRollups: true})
	eng := NewEngine(db, Options{})
	for _, q := range []string{`max_over_time({__name__=~"m_.*"}[1h])`, `avg_over_time({__name__=~"m_.*"}[1h])`, `rate({__name__=~"m_.*"}[1h])`} {
		want, err := raw.Range(ctx, q, time.UnixMilli(t0), time.UnixMilli(end), time.Hour)
		require.NoError(t, err)
		got, st, err := eng.RangeWithStats(ctx, q, time.UnixMilli(t0), time.UnixMilli(end), time.Hour)
		require.NoError(t, err)
		requireSameMatrix(t, want, got, q)
		require.Equal(t, time.Hour, st.Resolution)
		require.Positive(t, st.RawSteps, q)
		require.Positive(t, st.RollupWindows, q)
	}
}

func TestRollupQueriesAfterWiderOutOfOrderWindow(t *testing.T) {
	// Rollups written with no out-of-order window; the store reopened with
	// one accepts a late sample into a rolled-up window. Queries must see it.
	ctx := context.Background()
	dir := t.TempDir()
	db, err := tsdb.Open(dir, nil)
	require.NoError(t, err)
	app := db.Appender(ctx)
	ls := tsdb.FromStrings("__name__", "late")
	for i := range int64(24 * 60) {
		_, err := app.Append(0, ls, i*minute, float64(i%50))
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	_, err = db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	db, err = tsdb.Open(dir, &tsdb.Options{OutOfOrderWindow: 3 * time.Hour})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	app = db.Appender(ctx)
	_, err = app.Append(0, ls, 22*hour+30_000, 1e9)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	raw := NewEngine(db, Options{NoRollups: true})
	eng := NewEngine(db, Options{})
	q := `max_over_time(late[1h])`
	want, err := raw.Range(ctx, q, time.UnixMilli(hour), time.UnixMilli(24*hour), time.Hour)
	require.NoError(t, err)
	require.Equal(t, 1e9, want[0].Floats[22].F)
	got, _, err := eng.RangeWithStats(ctx, q, time.UnixMilli(hour), time.UnixMilli(24*hour), time.Hour)
	require.NoError(t, err)
	requireSameMatrix(t, want, got, "before the next pass")
	_, err = db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	got, st, err := eng.RangeWithStats(ctx, q, time.UnixMilli(hour), time.UnixMilli(24*hour), time.Hour)
	require.NoError(t, err)
	requireSameMatrix(t, want, got, "after the next pass")
	require.Positive(t, st.RollupWindows)
}
