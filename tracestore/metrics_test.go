package tracestore

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/internal/kv"
	"github.com/pillar-db/pillar/tsdb"
)

func TestBucketIndex(t *testing.T) {
	// Bucket i holds (2^((i-1)/8), 2^(i/8)].
	for _, v := range []float64{1e-6, 0.001, 0.0123, 0.5, 1, 1.0905, 1.1, 3, 1234.5} {
		i := bucketIndex(v)
		lo, hi := math.Exp2(float64(i-1)/8), math.Exp2(float64(i)/8)
		require.True(t, v > lo*(1-1e-12) && v <= hi*(1+1e-12), "v=%v i=%d (%v, %v]", v, i, lo, hi)
	}
	require.Equal(t, int32(0), bucketIndex(1))
	require.Equal(t, int32(8), bucketIndex(2))
}

func TestSpanMetricsAndExemplars(t *testing.T) {
	db, err := kv.Open(t.TempDir(), kv.Options{})
	require.NoError(t, err)
	defer db.Close()
	mdb, err := tsdb.OpenPebble(db, nil)
	require.NoError(t, err)
	defer mdb.Close()
	now := time.Unix(0, t0)
	st, err := OpenPebble(db, &Options{Metrics: mdb, ExemplarInterval: time.Second, Now: func() time.Time { return now }})
	require.NoError(t, err)
	defer st.Close()
	ctx := t.Context()

	// 3 writes of 100 spans of one operation, one of them a slow error.
	var slow Span
	for w := range 3 {
		batch := make([]Span, 100)
		for i := range batch {
			start := t0 + int64(w)*int64(5*time.Second) + int64(i)*int64(time.Millisecond)
			dur := int64(10*time.Millisecond) + int64(i)*int64(10*time.Microsecond)
			batch[i] = Span{TraceID: tid(uint64(w*1000 + i + 1)), SpanID: sid(1), Name: "GET /r", StartTime: start, EndTime: start + dur, Resource: res("redirect")}
		}
		if w == 1 {
			batch[50].EndTime = batch[50].StartTime + int64(2*time.Second)
			batch[50].Status = Status{Code: StatusError}
			slow = batch[50]
		}
		require.NoError(t, st.Write(ctx, batch))
		now = now.Add(time.Second)
	}

	q, err := mdb.Querier(0, math.MaxInt64)
	require.NoError(t, err)
	defer q.Close()
	name, err := tsdb.NewMatcher(tsdb.MatchEqual, tsdb.MetricName, CallsMetric)
	require.NoError(t, err)
	ss := q.Select(ctx, true, name)
	got := map[string]float64{}
	for ss.Next() {
		s := ss.At()
		it := s.Iterator(nil)
		var last float64
		n := 0
		for it.Next() != tsdb.ValNone {
			_, last = it.At()
			n++
		}
		require.NoError(t, it.Err())
		status := ""
		for _, l := range s.Labels() {
			if l.Name == LabelStatusCode {
				status = l.Value
			}
		}
		got[status] = last
	}
	require.NoError(t, ss.Err())
	require.Equal(t, map[string]float64{"STATUS_CODE_UNSET": 299, "STATUS_CODE_ERROR": 1}, got)

	hname, err := tsdb.NewMatcher(tsdb.MatchEqual, tsdb.MetricName, DurationMetric)
	require.NoError(t, err)
	unset, err := tsdb.NewMatcher(tsdb.MatchEqual, LabelStatusCode, "STATUS_CODE_UNSET")
	require.NoError(t, err)
	ss = q.Select(ctx, true, hname, unset)
	require.True(t, ss.Next())
	it := ss.At().Iterator(nil)
	var h *tsdb.Histogram
	for it.Next() == tsdb.ValHistogram {
		_, h = it.AtHistogram(nil)
	}
	require.NoError(t, it.Err())
	require.NotNil(t, h)
	require.Equal(t, uint64(299), h.Count)
	require.InDelta(t, 299*0.0105, h.Sum, 0.01)
	require.NoError(t, h.Validate())
	require.False(t, ss.Next())

	// The slow error span is an exemplar of its operation.
	ex, err := st.Exemplars(ctx, "redirect", "GET /r", 0, 0)
	require.NoError(t, err)
	require.NotEmpty(t, ex)
	var seen bool
	for _, e := range ex {
		if e.TraceID == slow.TraceID {
			seen = true
			require.Equal(t, 2*time.Second, e.Duration)
			require.Equal(t, StatusError, e.Status)
			require.Equal(t, slow.SpanID, e.SpanID)
		}
		tr, err := st.Trace(ctx, e.TraceID)
		require.NoError(t, err, "an exemplar leads to its trace")
		require.NotEmpty(t, tr.Spans)
	}
	require.True(t, seen, "exemplars: %+v", ex)
	// A window after every span has none.
	ex, err = st.Exemplars(ctx, "redirect", "GET /r", t0+int64(time.Hour), 0)
	require.NoError(t, err)
	require.Empty(t, ex)
}

func TestRetentionDropsExemplars(t *testing.T) {
	db, err := kv.Open(t.TempDir(), kv.Options{})
	require.NoError(t, err)
	defer db.Close()
	mdb, err := tsdb.OpenPebble(db, nil)
	require.NoError(t, err)
	defer mdb.Close()
	now := time.Unix(0, t0).Add(time.Hour)
	st, err := OpenPebble(db, &Options{Metrics: mdb, Retention: 2 * time.Hour, Now: func() time.Time { return now }})
	require.NoError(t, err)
	defer st.Close()
	ctx := t.Context()
	for h := range 4 {
		start := t0 + int64(h)*int64(time.Hour)
		require.NoError(t, st.Write(ctx, []Span{{TraceID: tid(uint64(h + 1)), SpanID: sid(1), Name: "op", StartTime: start, EndTime: start + 10, Resource: res("s")}}))
	}
	ex, err := st.Exemplars(ctx, "s", "op", 0, 0)
	require.NoError(t, err)
	require.Len(t, ex, 4)
	now = now.Add(3 * time.Hour) // cutoff t0+2h
	n, err := st.EnforceRetention(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	ex, err = st.Exemplars(ctx, "s", "op", 0, 0)
	require.NoError(t, err)
	require.Len(t, ex, 2)
	require.Equal(t, tid(3), ex[0].TraceID)
}
