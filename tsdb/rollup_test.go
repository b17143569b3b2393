package tsdb

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
)

// rollupSample is one raw sample of a rollup test series.
type rollupSample struct {
	t int64
	v float64
}

// genRollupSeries makes n samples starting at t0, every ~step ms with
// jitter and gaps, values a counter with resets, NaNs and staleness
// markers mixed in.
func genRollupSeries(r *rand.Rand, t0, step int64, n int) []rollupSample {
	out := make([]rollupSample, 0, n)
	t, v := t0, float64(r.IntN(100))
	for range n {
		t += step/2 + r.Int64N(step)
		if r.IntN(200) == 0 {
			t += step * int64(20+r.IntN(200)) // a gap of several windows
		}
		switch x := r.IntN(100); {
		case x < 3:
			v = float64(r.IntN(10)) // counter reset
		case x < 5:
			out = append(out, rollupSample{t, math.NaN()})
			continue
		case x < 7:
			out = append(out, rollupSample{t, math.Float64frombits(staleNaNBits)})
			continue
		case x < 9:
			v = -v * 1.5 // a gauge-like drop below zero
		default:
			v += r.Float64() * 10
		}
		out = append(out, rollupSample{t, v})
	}
	return out
}

// refRollups computes the windows of width ending in (from, to] directly
// from the samples, in the plainest way: group, then aggregate each group.
func refRollups(samples []rollupSample, width, from, to int64) []Rollup {
	var out []Rollup
	var group []rollupSample
	emit := func() {
		if len(group) == 0 {
			return
		}
		r := Rollup{End: windowEnd(group[0].t, width), Count: int64(len(group)),
			FirstT: group[0].t, First: group[0].v, LastT: group[len(group)-1].t, Last: group[len(group)-1].v}
		r.Min, r.Max = group[0].v, group[0].v
		for _, s := range group {
			if s.v > r.Max || math.IsNaN(r.Max) {
				r.Max = s.v
			}
			if s.v < r.Min || math.IsNaN(r.Min) {
				r.Min = s.v
			}
			r.Sum, r.SumC = kahanInc(s.v, r.Sum, r.SumC)
		}
		r.Increase = r.Last - r.First
		for i := 1; i < len(group); i++ {
			if group[i].v < group[i-1].v {
				r.Increase += group[i-1].v
			}
		}
		out = append(out, r)
		group = group[:0]
	}
	for _, s := range samples {
		if s.t <= from || s.t > to || math.Float64bits(s.v) == staleNaNBits {
			continue
		}
		if len(group) > 0 && windowEnd(s.t, width) != windowEnd(group[0].t, width) {
			emit()
		}
		group = append(group, s)
	}
	emit()
	return out
}

// requireSameRollups compares windows bit for bit (NaN equals NaN).
func requireSameRollups(t *testing.T, want, got []Rollup, msg string) {
	t.Helper()
	require.Equal(t, len(want), len(got), "%s: number of windows", msg)
	for i := range want {
		w, g := want[i], got[i]
		require.Equal(t, []int64{w.End, w.Count, w.FirstT, w.LastT}, []int64{g.End, g.Count, g.FirstT, g.LastT}, "%s: window %d", msg, i)
		wf := []float64{w.First, w.Last, w.Min, w.Max, w.Sum, w.SumC, w.Increase}
		gf := []float64{g.First, g.Last, g.Min, g.Max, g.Sum, g.SumC, g.Increase}
		for j := range wf {
			require.Equal(t, math.Float64bits(wf[j]), math.Float64bits(gf[j]), "%s: window %d ending %d, float field %d: %v vs %v", msg, i, w.End, j, wf[j], gf[j])
		}
	}
}

// readRollups returns every window of one series at res and its Complete.
func readRollups(t *testing.T, db *DB, res Resolution, name string) ([]Rollup, int64) {
	t.Helper()
	return readRollupsFrom(t, db, res, name, math.MinInt64)
}

// readRollupsFrom is readRollups through a querier from mint on.
func readRollupsFrom(t *testing.T, db *DB, res Resolution, name string, mint int64) ([]Rollup, int64) {
	t.Helper()
	q, err := db.Querier(mint, math.MaxInt64)
	require.NoError(t, err)
	defer q.Close()
	rs := q.SelectRollups(context.Background(), res, AllRollupFields, mustMatcher(t, MatchEqual, MetricName, name))
	require.True(t, rs.Next(), "series %s", name)
	it := rs.At().Iterator(nil)
	var out []Rollup
	for it.Next() {
		out = append(out, *it.At())
	}
	require.NoError(t, it.Err())
	require.False(t, rs.Next())
	require.NoError(t, rs.Err())
	return out, it.Complete()
}

func appendRollupSamples(t *testing.T, db *DB, name string, samples []rollupSample) {
	t.Helper()
	app := db.Appender(context.Background())
	ls := FromStrings(MetricName, name)
	var ref SeriesRef
	var err error
	for i, s := range samples {
		ref, err = app.Append(ref, ls, s.t, s.v)
		require.NoError(t, err)
		if i%500 == 499 {
			require.NoError(t, app.Commit())
			app = db.Appender(context.Background())
		}
	}
	require.NoError(t, app.Commit())
}

func TestRollupsMatchRaw(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), &Options{ChunkSamples: 60})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	r := rand.New(rand.NewPCG(1, 2))
	const nSeries = 8
	all := make([][]rollupSample, nSeries)
	t0 := int64(1_700_000_000_000) - 7 // not aligned to any window
	for i := range all {
		all[i] = genRollupSeries(r, t0, 15_000, 6000) // about a day at 15 s
	}
	// Append in four slices, downsampling after each, so passes extend
	// partly filled blocks; one pass stops short of the data by `before`.
	for part := range 4 {
		var hi int64
		for i, ss := range all {
			lo, end := len(ss)*part/4, len(ss)*(part+1)/4
			appendRollupSamples(t, db, "s"+strconv.Itoa(i), ss[lo:end])
			hi = max(hi, ss[end-1].t)
		}
		before := int64(math.MaxInt64)
		if part == 1 {
			before = hi - 3*3_600_000
		}
		st, err := db.Downsample(ctx, before)
		require.NoError(t, err)
		require.Positive(t, st.Items)
		require.Positive(t, st.BytesOut)
	}
	for i, ss := range all {
		name := "s" + strconv.Itoa(i)
		lastT := ss[len(ss)-1].t
		for _, res := range rollupResolutions {
			got, complete := readRollups(t, db, res, name)
			require.Equal(t, floorTo(lastT, res.Millis()), complete, "%s %v: rolled up through the newest sample's window", name, res)
			want := refRollups(ss, res.Millis(), math.MinInt64, complete)
			requireSameRollups(t, want, got, name+" "+res.String())
		}
	}

	// Idempotent: another pass writes nothing and changes nothing.
	st, err := db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	require.Zero(t, st.Items)
	got, _ := readRollups(t, db, Res5m, "s0")
	requireSameRollups(t, refRollups(all[0], Res5m.Millis(), math.MinInt64, floorTo(all[0][len(all[0])-1].t, Res5m.Millis())), got, "after a second pass")

	// A querier range selects only the windows wholly inside it.
	w := Res1h.Millis()
	mint, maxt := windowEnd(t0, w)+5*w+1, windowEnd(t0, w)+9*w+10
	q, err := db.Querier(mint, maxt)
	require.NoError(t, err)
	rs := q.SelectRollups(ctx, Res1h, AllRollupFields, mustMatcher(t, MatchEqual, MetricName, "s1"))
	require.True(t, rs.Next())
	it := rs.At().Iterator(nil)
	var ends []int64
	for it.Next() {
		ends = append(ends, it.At().End)
	}
	require.NoError(t, it.Err())
	require.Equal(t, []int64{mint - 1 + w, mint - 1 + 2*w, mint - 1 + 3*w, mint - 1 + 4*w}, ends)
	// Raw gives the same series' samples over the same range.
	rit := rs.At().Raw().Iterator(nil)
	require.Equal(t, ValFloat, rit.Next())
	require.GreaterOrEqual(t, rit.AtT(), mint)
	require.NoError(t, rs.Close())
	require.NoError(t, q.Close())

	// Asking for some fields decodes those and leaves the others zero.
	full, _ := readRollups(t, db, Res5m, "s2")
	q2, err := db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	rs = q2.SelectRollups(ctx, Res5m, FieldMax|FieldIncrease, mustMatcher(t, MatchEqual, MetricName, "s2"))
	require.True(t, rs.Next())
	it = rs.At().Iterator(it)
	for i := 0; it.Next(); i++ {
		w, g := full[i], *it.At()
		require.Equal(t, []int64{w.End, w.Count, 0, 0}, []int64{g.End, g.Count, g.FirstT, g.LastT})
		require.Equal(t, math.Float64bits(w.Max), math.Float64bits(g.Max))
		require.Equal(t, math.Float64bits(w.Increase), math.Float64bits(g.Increase))
		require.Zero(t, g.Min+g.Sum+g.SumC+g.First+g.Last)
	}
	require.NoError(t, it.Err())
	require.NoError(t, rs.Close())
	// A series' iterator still reads once its set is closed, through a
	// Pebble iterator of its own.
	it = rs.At().Iterator(it)
	n := 0
	for ; it.Next(); n++ {
		require.Equal(t, math.Float64bits(full[n].Max), math.Float64bits(it.At().Max))
	}
	require.NoError(t, it.Err())
	require.Len(t, full, n)
	require.NoError(t, q2.Close())

	bad := q.SelectRollups(ctx, Resolution(9), AllRollupFields)
	require.False(t, bad.Next())
	require.ErrorIs(t, bad.Err(), ErrUnknownResolution)
}

func TestRollupLateSample(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const hour = int64(time.Hour / time.Millisecond)
	t0 := 100 * hour
	var samples []rollupSample
	for i := range int64(8 * 60) {
		samples = append(samples, rollupSample{t0 + i*60_000, float64(i)})
	}
	lastT := samples[len(samples)-1].t

	// With an out-of-order window of one hour, windows are rolled up only
	// up to an hour before the newest sample; a late sample within the
	// window lands after what is rolled up, one beyond it is rejected.
	db, err := Open(dir, &Options{OutOfOrderWindow: time.Hour})
	require.NoError(t, err)
	appendRollupSamples(t, db, "late", samples)
	_, err = db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	_, complete := readRollups(t, db, Res5m, "late")
	require.Equal(t, floorTo(lastT-hour-1, 300_000), complete)
	app := db.Appender(ctx)
	_, err = app.Append(0, FromStrings(MetricName, "late"), complete-1, 1e6)
	require.ErrorIs(t, err, ErrOutOfOrderSample)
	require.NoError(t, app.Rollback())
	app = db.Appender(ctx)
	_, err = app.Append(0, FromStrings(MetricName, "late"), lastT-hour+1, 1e6)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	samples = append(samples, rollupSample{lastT - hour + 1, 1e6})
	require.NoError(t, db.Close())

	// Reopened with no out-of-order window, the rest is final and rolled up,
	// the late sample included.
	db, err = Open(dir, nil)
	require.NoError(t, err)
	_, err = db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	sorted := append([]rollupSample(nil), samples...)
	sortRollupSamples(sorted)
	got, complete := readRollups(t, db, Res5m, "late")
	require.Equal(t, floorTo(lastT, 300_000), complete)
	requireSameRollups(t, refRollups(sorted, 300_000, math.MinInt64, complete), got, "after the late sample")
	require.NoError(t, db.Close())

	// Reopened with a wider window than the rollups were written under, a
	// late sample may land in a rolled-up window: the reader stops trusting
	// the windows it can reach and the next pass recomputes them.
	db, err = Open(dir, &Options{OutOfOrderWindow: 2 * time.Hour})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	_, complete = readRollups(t, db, Res5m, "late")
	require.LessOrEqual(t, complete, lastT-2*hour)
	late := lastT - 90*60_000 - 30_000
	require.Greater(t, late, complete)
	app = db.Appender(ctx)
	_, err = app.Append(0, FromStrings(MetricName, "late"), late, -5)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	sorted = append(sorted, rollupSample{late, -5})
	sortRollupSamples(sorted)
	_, err = db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	for _, res := range rollupResolutions {
		got, complete = readRollups(t, db, res, "late")
		require.Equal(t, floorTo(lastT-2*hour-1, res.Millis()), complete)
		requireSameRollups(t, refRollups(sorted, res.Millis(), math.MinInt64, complete), got, "after the wider window "+res.String())
	}
}

func sortRollupSamples(s []rollupSample) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].t < s[j-1].t; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestDropRollupsBefore(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	r := rand.New(rand.NewPCG(3, 4))
	ss := genRollupSeries(r, 0, 60_000, 10_000) // about a week at 1 m
	appendRollupSamples(t, db, "d", ss)
	_, err = db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	before5, _ := readRollups(t, db, Res5m, "d")
	before1, complete1 := readRollups(t, db, Res1h, "d")

	cut := int64(3*86_400_000 + 17*60_000) // inside a 5m block and a 1h block
	st, err := db.DropRollupsBefore(ctx, cut)
	require.NoError(t, err)
	require.Equal(t, 1, st.Items)
	for _, c := range []struct {
		res    Resolution
		before []Rollup
	}{{Res5m, before5}, {Res1h, before1}} {
		got, _ := readRollups(t, db, c.res, "d")
		var want []Rollup
		for _, w := range c.before {
			if w.End >= cut {
				want = append(want, w)
			}
		}
		requireSameRollups(t, want, got, "after drop "+c.res.String())
	}
	// The mark stays: the dropped windows are not rolled up again.
	st, err = db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	require.Zero(t, st.Items)
	_, complete := readRollups(t, db, Res1h, "d")
	require.Equal(t, complete1, complete)
	got, _ := readRollups(t, db, Res1h, "d")
	require.Greater(t, got[0].End, cut-1)

	// Dropping everything leaves no window; a second drop finds nothing.
	_, err = db.DropRollupsBefore(ctx, math.MaxInt64)
	require.NoError(t, err)
	got, _ = readRollups(t, db, Res5m, "d")
	require.Empty(t, got)
	st, err = db.DropRollupsBefore(ctx, math.MaxInt64)
	require.NoError(t, err)
	require.Zero(t, st.Items)
}

func TestRollupsSkipHistogramSeries(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	app := db.Appender(ctx)
	ls := FromStrings(MetricName, "h")
	h := &Histogram{Count: 3, ZeroCount: 3, ZeroThreshold: 0.001, Sum: 1}
	for i := range int64(100) {
		_, err := app.AppendHistogram(0, ls, i*60_000, h)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	st, err := db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	require.Zero(t, st.Items)
	got, complete := readRollups(t, db, Res5m, "h")
	require.Empty(t, got)
	require.Equal(t, int64(math.MinInt64), complete)
}

func TestRollupBlockRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var c rollupCodec
	for _, res := range rollupResolutions {
		width := res.Millis()
		ss := genRollupSeries(r, -3*width*rollupBlockWindows, width/10, 20_000)
		rows := refRollups(ss, width, math.MinInt64, math.MaxInt64)
		for len(rows) > 0 {
			be := rollupBlockEnd(rows[0].End, width)
			n := 0
			for n < len(rows) && rows[n].End <= be {
				n++
			}
			b, err := c.encodeRollupBlock(nil, rows[:n], width, be)
			require.NoError(t, err)
			got, err := c.decodeRollupBlock(nil, b, width, be)
			require.NoError(t, err)
			requireSameRollups(t, rows[:n], got, "block")
			// An open span's block, integer columns not compared with a
			// chunk, reads the same.
			ob, err := c.encodeOpenBlock(nil, rows[:n], width, be)
			require.NoError(t, err)
			got, err = c.decodeRollupBlock(nil, ob, width, be)
			require.NoError(t, err)
			requireSameRollups(t, rows[:n], got, "open block")
			// Every truncation and bit flip is detected.
			for i := range len(b) {
				_, err := c.decodeRollupBlock(nil, b[:i], width, be)
				require.Error(t, err)
			}
			for i := 0; i < len(b); i += 7 {
				bad := append([]byte(nil), b...)
				bad[i] ^= 0x10
				_, err := c.decodeRollupBlock(nil, bad, width, be)
				require.Error(t, err)
			}
			rows = rows[n:]
		}
	}
	// A window outside the block is refused when writing.
	_, err := c.encodeRollupBlock(nil, []Rollup{{End: 600_000, Count: 1, FirstT: 600_000, LastT: 600_000}}, 300_000, 0)
	require.Error(t, err)
}

func TestRollupIteratorAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	ctx := context.Background()
	db, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	r := rand.New(rand.NewPCG(7, 8))
	appendRollupSamples(t, db, "a", genRollupSeries(r, 0, 30_000, 20_000))
	_, err = db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	rs := q.SelectRollups(ctx, Res5m, AllRollupFields)
	require.True(t, rs.Next())
	s := rs.At()
	it := s.Iterator(nil)
	n := 0
	for it.Next() {
		n++
	}
	require.Greater(t, n, 1000)
	// Walking the windows allocates nothing; reloading a warmed iterator
	// allocates only Pebble's iterator, not per window.
	allocs := testing.AllocsPerRun(20, func() {
		it = s.Iterator(it)
		sum := 0.0
		for it.Next() {
			sum += it.At().Max
		}
		_ = sum
	})
	require.Less(t, allocs, 8.0)
	require.Less(t, allocs/float64(n), 0.01)
	require.NoError(t, rs.Close())
}

func TestRollupConcurrent(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), &Options{ChunkSamples: 30})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	const nSeries, steps = 10, 600
	done := make(chan struct{})
	errs := make(chan error, 4)
	go func() { // the writer: one commit per minute of data
		defer close(done)
		refs := make([]SeriesRef, nSeries)
		for i := range int64(steps) {
			app := db.Appender(ctx)
			for j := range nSeries {
				var err error
				refs[j], err = app.Append(refs[j], FromStrings(MetricName, "c", "s", strconv.Itoa(j)), i*60_000, float64(i%97))
				if err != nil {
					errs <- err
					return
				}
			}
			if err := app.Commit(); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	for range 2 { // two downsamplers racing each other and the writer
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				if _, err := db.Downsample(ctx, math.MaxInt64); err != nil {
					errs <- err
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	go func() { // a reader checking that windows never go past Complete
		var it *RollupIterator
		for {
			select {
			case <-done:
				errs <- nil
				return
			default:
			}
			q, err := db.Querier(math.MinInt64, math.MaxInt64)
			if err != nil {
				errs <- err
				return
			}
			rs := q.SelectRollups(ctx, Res5m, AllRollupFields)
			for rs.Next() {
				it = rs.At().Iterator(it)
				for it.Next() {
					if r := it.At(); r.End > it.Complete() || r.Count > 5 {
						errs <- fmt.Errorf("window %d past %d or with %d samples", r.End, it.Complete(), r.Count)
						return
					}
				}
				if it.Err() != nil {
					errs <- it.Err()
					return
				}
			}
			_ = q.Close()
			time.Sleep(time.Millisecond)
		}
	}()
	for range 4 {
		require.NoError(t, <-errs)
	}
	<-done
	_, err = db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	for j := range nSeries {
		var samples []rollupSample
		for i := range int64(steps) {
			samples = append(samples, rollupSample{i * 60_000, float64(i % 97)})
		}
		q, err := db.Querier(math.MinInt64, math.MaxInt64)
		require.NoError(t, err)
		rs := q.SelectRollups(ctx, Res1h, AllRollupFields, mustMatcher(t, MatchEqual, "s", strconv.Itoa(j)))
		require.True(t, rs.Next())
		it := rs.At().Iterator(nil)
		var got []Rollup
		for it.Next() {
			got = append(got, *it.At())
		}
		require.NoError(t, it.Err())
		require.Equal(t, floorTo((steps-1)*60_000, Res1h.Millis()), it.Complete())
		requireSameRollups(t, refRollups(samples, Res1h.Millis(), math.MinInt64, it.Complete()), got, "series "+strconv.Itoa(j))
		require.NoError(t, rs.Close())
		require.NoError(t, q.Close())
	}
}

// rollupColumnCodecs returns the codec byte of each float column of block b.
func rollupColumnCodecs(t *testing.T, b []byte) []byte {
	t.Helper()
	var c rollupCodec
	payload, err := encoding.DecodeBlock(nil, b)
	require.NoError(t, err)
	d := encoding.NewDecoder(payload)
	require.Equal(t, byte(rollupBlockVersion), d.Byte())
	n := int(d.Uvarint())
	p := d.Rest()
	for range 4 {
		p, err = c.readInts(p, n, rollupBlockVersion)
		require.NoError(t, err)
	}
	d.Reset(p)
	var codecs []byte
	for range rollupFloatColumns {
		col := d.Bytes()
		require.NoError(t, d.Err())
		require.NotEmpty(t, col)
		codecs = append(codecs, col[0])
	}
	require.Zero(t, d.Len())
	return codecs
}

func TestRollupBlockIntColumns(t *testing.T) {
	var c rollupCodec
	width := Res1h.Millis()
	be := rollupBlockEnd(width, width)
	base := be - width*rollupBlockWindows
	// A counter: integer values, stored as deltas in an hourly block,
	// except SumC (all zero, which a chunk stores in fewer bytes).
	r := rand.New(rand.NewPCG(9, 10))
	var rows []Rollup
	v := 1000.0
	for i := int64(1); i <= rollupBlockWindows; i++ {
		e := base + i*width
		first := v + float64(r.IntN(100))
		v = first + float64(r.IntN(3000))
		rows = append(rows, Rollup{End: e, Count: 60, FirstT: e - width + 60_000, LastT: e, First: first, Last: v, Min: first, Max: v, Sum: 60 * first, Increase: v - first})
	}
	b, err := c.encodeRollupBlock(nil, rows, width, be)
	require.NoError(t, err)
	got, err := c.decodeRollupBlock(nil, b, width, be)
	require.NoError(t, err)
	requireSameRollups(t, rows, got, "counter")
	codecs := rollupColumnCodecs(t, b)
	for col, codec := range codecs {
		if col != 3 {
			require.Equal(t, byte(colIntDeltas), codec, "column %d", col)
		}
	}
	// Values an integer cannot hold to the bit keep a float chunk, each
	// column on its own: -0, NaN, infinities, fractions, beyond 2^53.
	for _, odd := range []float64{math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), 0.5, 1 << 54, -(1 << 54) - 2} {
		rows[7].Max = odd
		b, err := c.encodeRollupBlock(nil, rows, width, be)
		require.NoError(t, err)
		got, err := c.decodeRollupBlock(nil, b, width, be)
		require.NoError(t, err)
		requireSameRollups(t, rows, got, fmt.Sprint(odd))
		codecs := rollupColumnCodecs(t, b)
		require.Equal(t, byte(colChunk), codecs[1], "max with %v", odd)
		require.Equal(t, byte(colIntDeltas), codecs[0], "min with %v", odd)
	}
	// Only the wanted columns are decoded, whichever their codec.
	b, err = c.encodeRollupBlock(nil, rows, width, be)
	require.NoError(t, err)
	got, err = c.decodeRollupFields(nil, b, width, be, FieldMax|FieldFirst)
	require.NoError(t, err)
	for i := range rows {
		require.Equal(t, math.Float64bits(rows[i].Max), math.Float64bits(got[i].Max))
		require.Equal(t, rows[i].First, got[i].First)
		require.Zero(t, got[i].Min+got[i].Last+got[i].Increase+got[i].Sum)
	}
}

// BenchmarkDownsample times Downsample passes over 2,000 scraped series
// (15 s; counters, 2-decimal gauges, random walks and constants): "incremental" passes, each after 45 minutes more of samples (the
// clock is stopped while they go in), so each rolls up nine new 5-minute
// windows per series, the shape of a background pass; and "first" passes
// over an hour of samples not rolled up at all, the first pass after a
// fresh start. It reports each pass's cost per series.
func BenchmarkDownsample(b *testing.B) {
	const nSeries, step = 2000, int64(15_000)
	ctx := context.Background()
	lss := make([]Labels, nSeries)
	for i := range lss {
		lss[i] = FromStrings(MetricName, fmt.Sprintf("m%d", i%4), "id", strconv.Itoa(i))
	}
	type feed struct {
		db   *DB
		refs []SeriesRef
		vals []float64
		r    *rand.Rand
		t    int64
	}
	open := func(b *testing.B) *feed {
		db, err := Open(b.TempDir(), nil)
		require.NoError(b, err)
		return &feed{db: db, refs: make([]SeriesRef, nSeries), vals: make([]float64, nSeries), r: rand.New(rand.NewPCG(11, 12)), t: 1_700_000_000_000}
	}
	scrapes := func(b *testing.B, f *feed, n int) {
		for range n {
			app := f.db.Appender(ctx)
			for i := range lss {
				switch i % 4 { // counters, 2-decimal gauges, random walks, constants
				case 0:
					f.vals[i] += float64(f.r.IntN(100))
				case 1:
					f.vals[i] = math.Round(f.r.Float64()*10000) / 100
				case 2:
					f.vals[i] += f.r.NormFloat64()
				}
				var err error
				f.refs[i], err = app.Append(f.refs[i], lss[i], f.t+f.r.Int64N(51)-25, f.vals[i])
				require.NoError(b, err)
			}
			require.NoError(b, app.Commit())
			f.t += step
		}
	}
	pass := func(b *testing.B, f *feed, took *time.Duration) {
		start := time.Now()
		st, err := f.db.Downsample(ctx, math.MaxInt64)
		*took += time.Since(start)
		require.NoError(b, err)
		require.Positive(b, st.Items)
	}
	report := func(b *testing.B, took time.Duration) {
		b.ReportMetric(float64(took.Nanoseconds())/float64(b.N*nSeries)/1e3, "µs/series")
	}
	b.Run("incremental", func(b *testing.B) {
		f := open(b)
		defer func() { require.NoError(b, f.db.Close()) }()
		scrapes(b, f, 240) // an hour, rolled up before the clock starts
		_, err := f.db.Downsample(ctx, math.MaxInt64)
		require.NoError(b, err)
		var took time.Duration
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			scrapes(b, f, 180)
			b.StartTimer()
			pass(b, f, &took)
		}
		report(b, took)
	})
	b.Run("first", func(b *testing.B) {
		var took time.Duration
		for range b.N {
			b.StopTimer()
			f := open(b)
			scrapes(b, f, 240)
			b.StartTimer()
			pass(b, f, &took)
			b.StopTimer()
			require.NoError(b, f.db.Close())
			b.StartTimer()
		}
		report(b, took)
	})
}

// rollupBlockKeys returns the block ends of series id at res, in key order.
func rollupBlockKeys(t *testing.T, db *DB, res Resolution, id uint32) []int64 {
	t.Helper()
	lo := keys.AppendMetricRollupBlock(nil, uint8(res), id, math.MinInt64)
	pit, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(keys.AppendMetricRollupPrefix(nil, uint8(res), id))})
	require.NoError(t, err)
	defer func() { require.NoError(t, pit.Close()) }()
	var ends []int64
	for pit.First(); pit.Valid(); pit.Next() {
		_, _, end, isMark, err := keys.ParseMetricRollup(pit.Key())
		require.NoError(t, err)
		require.False(t, isMark)
		ends = append(ends, end)
	}
	return ends
}

// Frequent small passes append tail blocks instead of rewriting a span's
// windows; a span never holds more than maxTailBlocks blocks, a complete
// span ends up as one, and every read, whole or from inside a span, and
// every drop, gives the windows the samples give.
func TestRollupTailBlocks(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), &Options{ChunkSamples: 50})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	r := rand.New(rand.NewPCG(13, 14))
	ss := genRollupSeries(r, 1_700_000_000_000+3, 15_000, 12_000) // about two days
	const part = 80                                               // 20 minutes a pass
	s := func() *memSeries { return db.reg.get(1) }
	most, between := 0, false
	for lo := 0; lo < len(ss); lo += part {
		appendRollupSamples(t, db, "tail", ss[lo:min(lo+part, len(ss))])
		_, err := db.Downsample(ctx, math.MaxInt64)
		require.NoError(t, err)
		ends := rollupBlockKeys(t, db, Res5m, s().id)
		open := rollupBlockEnd(ends[len(ends)-1], Res5m.Millis())
		n := 0
		for _, e := range ends {
			if rollupBlockEnd(e, Res5m.Millis()) == open {
				n++
			}
		}
		require.LessOrEqual(t, n, maxTailBlocks)
		if n >= 4 && most < 4 {
			// A range starting inside the open span, between its tails.
			mint := ends[len(ends)-2] - 7*Res5m.Millis() + 1
			got, complete := readRollupsFrom(t, db, Res5m, "tail", mint)
			requireSameRollups(t, refRollups(ss[:lo+part], Res5m.Millis(), mint-1, complete), got, "from inside the open span")
			between = true
		}
		most = max(most, n)
	}
	require.True(t, between, "passes appended tails")
	lastT := ss[len(ss)-1].t
	for _, res := range rollupResolutions {
		width := res.Millis()
		got, complete := readRollups(t, db, res, "tail")
		require.Equal(t, floorTo(lastT, width), complete)
		requireSameRollups(t, refRollups(ss, width, math.MinInt64, complete), got, "tails "+res.String())
		perSpan := map[int64]int{}
		for _, e := range rollupBlockKeys(t, db, res, s().id) {
			perSpan[rollupBlockEnd(e, width)]++
		}
		for span, n := range perSpan {
			require.LessOrEqual(t, n, maxTailBlocks, "%v span %d", res, span)
			if span <= floorTo(lastT, width) {
				require.Equal(t, 1, n, "%v: complete span %d is one block", res, span)
			}
		}
	}
	ends := rollupBlockKeys(t, db, Res5m, s().id)

	// A drop inside the open span trims the tail it cuts; a second drop at
	// the same point rewrites nothing.
	before, _ := readRollups(t, db, Res5m, "tail")
	cut := ends[len(ends)-3] - 2*Res5m.Millis() + 1
	st, err := db.DropRollupsBefore(ctx, cut)
	require.NoError(t, err)
	require.Equal(t, 1, st.Items)
	require.Positive(t, st.BytesOut)
	var want []Rollup
	for _, w := range before {
		if w.End >= cut {
			want = append(want, w)
		}
	}
	got, _ := readRollups(t, db, Res5m, "tail")
	requireSameRollups(t, want, got, "after the drop")
	st, err = db.DropRollupsBefore(ctx, cut)
	require.NoError(t, err)
	require.Zero(t, st.Items)
	require.Zero(t, st.BytesOut)
	got, _ = readRollups(t, db, Res5m, "tail")
	requireSameRollups(t, want, got, "after the second drop")
}

// Blocks of the earlier layout, each keyed by its span's end, still read,
// and a pass that continues them rewrites them into the current one.
func TestRollupWholeSpanBlocks(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	r := rand.New(rand.NewPCG(15, 16))
	ss := genRollupSeries(r, 1_700_000_000_000, 15_000, 8000)
	half := len(ss) / 2
	appendRollupSamples(t, db, "old", ss[:half])
	_, err = db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	id := db.reg.get(1).id
	// Re-key every block at its span's end, as the earlier layout did.
	var c rollupCodec
	b := db.p.NewBatch()
	for _, res := range rollupResolutions {
		width := res.Millis()
		for _, e := range rollupBlockKeys(t, db, res, id) {
			key := keys.AppendMetricRollupBlock(nil, uint8(res), id, e)
			v, closer, err := db.p.Get(key)
			require.NoError(t, err)
			rows, err := c.decodeRollupBlock(nil, v, width, e)
			require.NoError(t, closer.Close())
			require.NoError(t, err)
			span := rollupBlockEnd(e, width)
			enc, err := c.encodeRollupBlock(nil, rows, width, span)
			require.NoError(t, err)
			require.NoError(t, b.Delete(key, nil))
			require.NoError(t, b.Set(keys.AppendMetricRollupBlock(nil, uint8(res), id, span), enc, nil))
		}
	}
	require.NoError(t, b.Commit(pebble.Sync))
	require.NoError(t, b.Close())
	for _, res := range rollupResolutions {
		got, complete := readRollups(t, db, res, "old")
		requireSameRollups(t, refRollups(ss[:half], res.Millis(), math.MinInt64, complete), got, "whole-span blocks "+res.String())
	}
	appendRollupSamples(t, db, "old", ss[half:])
	_, err = db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	for _, res := range rollupResolutions {
		width := res.Millis()
		got, complete := readRollups(t, db, res, "old")
		require.Equal(t, floorTo(ss[len(ss)-1].t, width), complete)
		requireSameRollups(t, refRollups(ss, width, math.MinInt64, complete), got, "continued "+res.String())
		for _, e := range rollupBlockKeys(t, db, res, id) {
			require.LessOrEqual(t, e, complete, "%v: no block keyed past the mark", res)
		}
	}
}

// Tails that a wider out-of-order window makes untrusted are recomputed,
// with the late sample that lands in them, and merged with the trusted
// ones.
func TestRollupTailsRecomputed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const hour = int64(time.Hour / time.Millisecond)
	db, err := Open(dir, &Options{ChunkSamples: 40})
	require.NoError(t, err)
	var samples []rollupSample
	t0 := 200*hour + 1_000
	for i := range int64(6 * 60) {
		samples = append(samples, rollupSample{t0 + i*60_000, float64(i % 50)})
	}
	for lo := 0; lo < len(samples); lo += 20 {
		appendRollupSamples(t, db, "late", samples[lo:lo+20])
		_, err := db.Downsample(ctx, math.MaxInt64)
		require.NoError(t, err)
	}
	id := db.reg.get(1).id
	require.Greater(t, len(rollupBlockKeys(t, db, Res5m, id)), 3, "tails")
	require.NoError(t, db.Close())

	db, err = Open(dir, &Options{OutOfOrderWindow: time.Hour})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	lastT := samples[len(samples)-1].t
	late := lastT - 40*60_000 - 30_000 // in a window that was rolled up
	app := db.Appender(ctx)
	_, err = app.Append(0, FromStrings(MetricName, "late"), late, -7)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	samples = append(samples, rollupSample{late, -7})
	sortRollupSamples(samples)
	// Two more hours, so the pass has final windows past the untrusted ones.
	var more []rollupSample
	for i := range int64(120) {
		more = append(more, rollupSample{lastT + (i+1)*60_000, float64(i % 50)})
	}
	appendRollupSamples(t, db, "late", more)
	samples = append(samples, more...)
	lastT = more[len(more)-1].t
	_, err = db.Downsample(ctx, math.MaxInt64)
	require.NoError(t, err)
	for _, res := range rollupResolutions {
		got, complete := readRollups(t, db, res, "late")
		require.Equal(t, floorTo(lastT-hour-1, res.Millis()), complete)
		requireSameRollups(t, refRollups(samples, res.Millis(), math.MinInt64, complete), got, "recomputed "+res.String())
		ends := rollupBlockKeys(t, db, res, id)
		require.True(t, slices.IsSorted(ends))
		for _, e := range ends {
			require.LessOrEqual(t, e, complete, "%v: no block keyed past the mark", res)
		}
	}
}
