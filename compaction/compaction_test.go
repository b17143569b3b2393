package compaction

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOptionsValidated(t *testing.T) {
	_, err := New(nil, &Options{Concurrency: -1, Interval: -time.Second})
	require.ErrorIs(t, err, ErrOptions)
	noop := func(context.Context) (Result, error) { return Result{}, nil }
	_, err = New([]Job{{Name: "a", Run: noop}, {Name: "a", Run: noop}}, nil)
	require.ErrorIs(t, err, ErrOptions)
	_, err = New([]Job{{Name: "", Run: noop}}, nil)
	require.ErrorIs(t, err, ErrOptions)
	_, err = New([]Job{{Name: "b"}}, nil)
	require.ErrorIs(t, err, ErrOptions)
	s, err := New([]Job{{Name: "a", Run: noop}}, nil)
	require.NoError(t, err)
	require.GreaterOrEqual(t, s.opts.Concurrency, 1)
	require.Equal(t, time.Minute, s.opts.Interval)
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Close(), ErrClosed)
}

func TestBackgroundPassesRecordMetrics(t *testing.T) {
	var runs atomic.Int64
	boom := errors.New("boom")
	s, err := New([]Job{
		{Name: "ok", Run: func(context.Context) (Result, error) {
			runs.Add(1)
			return Result{Items: 2, BytesIn: 100, BytesOut: 40}, nil
		}},
		{Name: "fails", Run: func(context.Context) (Result, error) { return Result{Items: 1}, boom }},
		{Name: "panics", Run: func(context.Context) (Result, error) { panic("bad state") }},
	}, &Options{Interval: 5 * time.Millisecond})
	require.NoError(t, err)
	s.Start()
	require.Eventually(t, func() bool { return runs.Load() >= 3 }, 5*time.Second, time.Millisecond)
	require.NoError(t, s.Close())

	m := s.Metrics()
	require.GreaterOrEqual(t, m.Passes, uint64(2))
	ok, found := m.Job("ok")
	require.True(t, found)
	require.Equal(t, uint64(runs.Load()), ok.Runs)
	require.Equal(t, int64(ok.Runs)*2, ok.Items)
	require.Equal(t, int64(ok.Runs)*100, ok.BytesIn)
	require.Equal(t, int64(ok.Runs)*40, ok.BytesOut)
	require.Zero(t, ok.Errors)
	require.Empty(t, ok.LastError)
	require.False(t, ok.LastRun.IsZero())
	require.GreaterOrEqual(t, ok.Duration, ok.LastDuration)
	require.False(t, ok.Running)

	// A failing job is recorded and retried at every pass; a panic is an error.
	fails, _ := m.Job("fails")
	require.GreaterOrEqual(t, fails.Runs, uint64(2))
	require.Equal(t, fails.Runs, fails.Errors)
	require.Contains(t, fails.LastError, "boom")
	require.Equal(t, int64(fails.Runs), fails.Items, "a failed run's partial result still counts")
	p, _ := m.Job("panics")
	require.Equal(t, p.Runs, p.Errors)
	require.Contains(t, p.LastError, "bad state")
	_, found = m.Job("absent")
	require.False(t, found)
}

func TestRunOnceJoinsErrors(t *testing.T) {
	boom := errors.New("boom")
	s, err := New([]Job{
		{Name: "a", Run: func(context.Context) (Result, error) { return Result{}, boom }},
		{Name: "b", Run: func(context.Context) (Result, error) { return Result{Items: 1}, nil }},
	}, &Options{Interval: time.Hour})
	require.NoError(t, err)
	defer s.Close()
	err = s.RunOnce(t.Context())
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "job a")
	m := s.Metrics()
	require.Equal(t, uint64(1), m.Passes)
	b, _ := m.Job("b")
	require.Equal(t, uint64(1), b.Runs)
	require.Equal(t, int64(1), b.Items)
}

func TestConcurrencyIsBounded(t *testing.T) {
	const limit = 2
	var cur, peak atomic.Int32
	var jobs []Job
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		jobs = append(jobs, Job{Name: name, Run: func(context.Context) (Result, error) {
			n := cur.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			cur.Add(-1)
			return Result{}, nil
		}})
	}
	s, err := New(jobs, &Options{Concurrency: limit, Interval: time.Hour})
	require.NoError(t, err)
	defer s.Close()
	var wg sync.WaitGroup
	for range 3 { // forced passes from several callers share the bound
		wg.Go(func() { require.NoError(t, s.RunOnce(t.Context())) })
	}
	wg.Wait()
	require.LessOrEqual(t, peak.Load(), int32(limit))
	require.Equal(t, int32(limit), peak.Load(), "the bound should be reached with six jobs")
	require.Equal(t, uint64(3), s.Metrics().Passes)
}

func TestPauseAndResume(t *testing.T) {
	var runs atomic.Int64
	s, err := New([]Job{{Name: "a", Run: func(context.Context) (Result, error) {
		runs.Add(1)
		return Result{}, nil
	}}}, &Options{Interval: time.Hour})
	require.NoError(t, err)
	defer s.Close()
	s.Start()
	s.Pause()
	require.True(t, s.Metrics().Paused)
	s.Trigger() // ignored while paused
	time.Sleep(20 * time.Millisecond)
	require.Zero(t, runs.Load())
	// A forced pass runs while paused.
	require.NoError(t, s.RunOnce(t.Context()))
	require.Equal(t, int64(1), runs.Load())
	s.Resume() // starts a pass at once, not in an hour
	require.Eventually(t, func() bool { return runs.Load() == 2 }, 5*time.Second, time.Millisecond)
	require.False(t, s.Metrics().Paused)
	s.Trigger()
	require.Eventually(t, func() bool { return runs.Load() == 3 }, 5*time.Second, time.Millisecond)
}

func TestCloseCancelsRunningJobs(t *testing.T) {
	started := make(chan struct{})
	s, err := New([]Job{{Name: "slow", Run: func(ctx context.Context) (Result, error) {
		close(started)
		<-ctx.Done()
		return Result{Items: 1}, ctx.Err()
	}}}, &Options{Interval: time.Millisecond})
	require.NoError(t, err)
	s.Start()
	<-started
	begin := time.Now()
	require.NoError(t, s.Close())
	require.Less(t, time.Since(begin), time.Second)
	j, _ := s.Metrics().Job("slow")
	require.Equal(t, uint64(1), j.Runs)
	require.Equal(t, uint64(1), j.Errors)
	require.Contains(t, j.LastError, context.Canceled.Error())
	require.ErrorIs(t, s.RunOnce(t.Context()), ErrClosed)
}

func TestRunOnceStopsOnClose(t *testing.T) {
	started := make(chan struct{})
	s, err := New([]Job{{Name: "slow", Run: func(ctx context.Context) (Result, error) {
		close(started)
		<-ctx.Done()
		return Result{}, ctx.Err()
	}}}, &Options{Interval: time.Hour})
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- s.RunOnce(context.Background()) }()
	<-started
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-errc, context.Canceled)
}

func TestRunOnceHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var runs atomic.Int64
	s, err := New([]Job{{Name: "a", Run: func(context.Context) (Result, error) {
		runs.Add(1)
		return Result{}, nil
	}}}, &Options{Interval: time.Hour})
	require.NoError(t, err)
	defer s.Close()
	require.ErrorIs(t, s.RunOnce(ctx), context.Canceled)
	require.Zero(t, runs.Load())
}

// A background job's slot rests after it in proportion to its run time,
// so the next job starts only once the jobs have had their Share of the
// time; a forced pass does not rest.
func TestBackgroundJobsRestAfterRunning(t *testing.T) {
	const work = 30 * time.Millisecond
	var mu sync.Mutex
	var starts []time.Time
	job := func(context.Context) (Result, error) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		time.Sleep(work)
		return Result{}, nil
	}
	s, err := New([]Job{{Name: "a", Run: job}, {Name: "b", Run: job}},
		&Options{Interval: time.Hour, Concurrency: 1, Share: 0.25, NormalPriority: true})
	require.NoError(t, err)
	s.Start()
	s.Trigger()
	require.Eventually(t, func() bool { return s.Metrics().Passes == 1 }, 5*time.Second, time.Millisecond)
	mu.Lock()
	require.Len(t, starts, 2)
	// a ran for work, then its slot rested 3×work.
	require.GreaterOrEqual(t, starts[1].Sub(starts[0]), 4*work)
	starts = starts[:0]
	mu.Unlock()

	require.NoError(t, s.RunOnce(t.Context()))
	mu.Lock()
	require.Len(t, starts, 2)
	require.Less(t, starts[1].Sub(starts[0]), 4*work, "a forced pass does not rest")
	mu.Unlock()
	require.NoError(t, s.Close())

	_, err = New(nil, &Options{Share: 1.5})
	require.ErrorIs(t, err, ErrOptions)
}

func TestMinIntervalSkipsBackgroundRuns(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	var slow, every atomic.Int64
	s, err := New([]Job{
		{Name: "slow", MinInterval: 5 * time.Minute, Run: func(context.Context) (Result, error) {
			slow.Add(1)
			return Result{}, nil
		}},
		{Name: "every", Run: func(context.Context) (Result, error) {
			every.Add(1)
			return Result{}, nil
		}},
	}, &Options{Interval: time.Millisecond, Share: 1, Now: func() time.Time { return time.Unix(0, now.Load()) }})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	s.Start()
	// The first pass runs both; later ones, with the clock still, only the
	// job without a MinInterval.
	require.Eventually(t, func() bool { return every.Load() >= 5 }, 5*time.Second, time.Millisecond)
	require.Equal(t, int64(1), slow.Load())
	m, _ := s.Metrics().Job("slow")
	require.Positive(t, m.Skips)
	// A forced pass runs it regardless.
	require.NoError(t, s.RunOnce(context.Background()))
	require.Equal(t, int64(2), slow.Load())
	// Once the clock has moved on by MinInterval, a background pass runs it.
	now.Add(int64(5 * time.Minute))
	require.Eventually(t, func() bool { return slow.Load() == 3 }, 5*time.Second, time.Millisecond)

	_, err = New([]Job{{Name: "neg", MinInterval: -time.Second, Run: func(context.Context) (Result, error) { return Result{}, nil }}}, nil)
	require.ErrorIs(t, err, ErrOptions)
}
