// Package compaction runs Pillar's background maintenance: the passes that
// re-encode sealed metric chunks, write rollups, rewrite the postings of
// closed partitions and drop data past retention. Each pass is a Job that
// works on a store through the store's own exported maintenance method;
// this package knows nothing of keys or formats, only when to run what,
// how many at once, and what each run cost.
//
//	s, err := compaction.New([]compaction.Job{
//		{Name: "metrics.retention", Run: func(ctx context.Context) (compaction.Result, error) { … }},
//	}, &compaction.Options{Interval: time.Minute})
//	s.Start()
//	defer s.Close()
//	s.Metrics() // runs, items, bytes in/out, time and errors per job
//
// A Scheduler runs every job once per Options.Interval, at most
// Options.Concurrency at a time, in the order given (a job starts only
// after every job before it has started); a job with a Job.MinInterval
// runs in background passes only once that long has passed since its last
// run began. In background passes each job
// slot rests after a job in proportion to its run time (Options.Share),
// so a pass of heavy jobs spreads out instead of taking a CPU from
// ingestion for as long as it lasts. A job that fails is recorded and
// runs again at the next interval; no job error stops the scheduler or the
// process. Close cancels the context of the running jobs and waits for
// them, so a job must return promptly when its context ends, and must
// leave the store consistent whenever it stops (each store's maintenance
// methods commit their changes in atomic batches).
package compaction

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
)

// Errors returned by a Scheduler.
var (
	// ErrClosed is returned by RunOnce after Close.
	ErrClosed = errors.New("compaction: scheduler closed")
	// ErrOptions is returned by New for invalid options or jobs.
	ErrOptions = errors.New("compaction: invalid options")
)

// Result is what one run of a job did.
type Result struct {
	// Items counts what the run changed (chunks re-encoded, segments
	// merged, partitions dropped, …); what an item is depends on the job.
	Items int64
	// BytesIn is the encoded size of what the run read or removed.
	BytesIn int64
	// BytesOut is the encoded size of what the run wrote.
	BytesOut int64
}

// Job is one kind of maintenance pass.
type Job struct {
	// Name identifies the job in Metrics; names must be unique.
	Name string
	// Run does one pass. It must return promptly, leaving the store
	// consistent, once ctx is done; it may return partial Result with an
	// error.
	Run func(ctx context.Context) (Result, error)
	// MinInterval is how long, by Options.Now, after the start of the
	// job's last run a background pass leaves the job out: for a job whose
	// work only accumulates at that pace (a pass that rolls up five-minute
	// windows finds nothing new more often than every five minutes), a
	// run sooner would pay its fixed cost for little or nothing. RunOnce
	// runs the job regardless. Default 0: every pass runs it.
	MinInterval time.Duration
}

// Options configure a Scheduler. A nil *Options means all defaults.
type Options struct {
	// Concurrency is how many jobs may run at once. Default: a quarter of
	// the CPUs, at least 1, so maintenance leaves most of a small machine
	// to ingestion and queries.
	Concurrency int
	// Interval is the time from the end of one background pass to the
	// start of the next. Default one minute.
	Interval time.Duration
	// Now is the clock run times are stamped with. Default time.Now.
	Now func() time.Time
	// NormalPriority runs background passes' jobs at the process's own CPU
	// priority. Default false: on Linux each background job runs on a
	// thread of its own at the lowest priority (niceness 19), so when CPU
	// is short ingestion and queries get it and maintenance waits; RunOnce
	// always runs at normal priority. Elsewhere there is no difference.
	NormalPriority bool
	// Share is the fraction of wall time a background job slot may spend
	// running jobs: after a job that ran for d, its slot rests for
	// d×(1−Share)/Share before the next job may take it, so a pass of
	// heavy jobs leaves ingestion most of a CPU even while it runs (the
	// Go scheduler has no priorities: a running job holds one of the
	// process's Ps, whatever its thread's niceness). 1 means no rest;
	// RunOnce never rests. Default 0.25.
	Share float64
}

func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	var errs []error
	if r.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("%w: negative Concurrency %d", ErrOptions, r.Concurrency))
	}
	if r.Interval < 0 {
		errs = append(errs, fmt.Errorf("%w: negative Interval %v", ErrOptions, r.Interval))
	}
	if r.Share < 0 || r.Share > 1 || math.IsNaN(r.Share) {
		errs = append(errs, fmt.Errorf("%w: Share %v outside (0, 1]", ErrOptions, r.Share))
	}
	if r.Share == 0 {
		r.Share = 0.25
	}
	if r.Concurrency == 0 {
		r.Concurrency = max(1, runtime.NumCPU()/4)
	}
	if r.Interval == 0 {
		r.Interval = time.Minute
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r, errors.Join(errs...)
}

// JobMetrics is what a job has done since the scheduler was created.
type JobMetrics struct {
	Name string
	// Runs counts finished runs, failed ones included.
	Runs uint64
	// Errors counts runs that returned an error (cancellation by Close
	// included).
	Errors uint64
	// Items, BytesIn and BytesOut add up the runs' Results.
	Items    int64
	BytesIn  int64
	BytesOut int64
	// Duration is the total time spent in runs; LastDuration that of the
	// last finished run.
	Duration     time.Duration
	LastDuration time.Duration
	// LastRun is when the last finished run started; zero before any.
	LastRun time.Time
	// LastError is the last failed run's error, or "" after a success.
	LastError string
	// Running says whether a run is under way.
	Running bool
	// Skips counts background passes that left the job out because its
	// last run started less than Job.MinInterval before.
	Skips uint64
}

// Metrics is a snapshot of a scheduler's work.
type Metrics struct {
	// Passes counts finished passes over every job (background and forced).
	Passes uint64
	// Paused says whether background passes are paused.
	Paused bool
	// Jobs holds each job's figures, in the order the jobs were given.
	Jobs []JobMetrics
}

// Job returns the metrics of the named job and whether it exists.
func (m Metrics) Job(name string) (JobMetrics, bool) {
	for _, j := range m.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return JobMetrics{}, false
}

// Scheduler runs jobs in the background. It is safe for concurrent use.
type Scheduler struct {
	jobs []Job
	opts Options

	// ctx is cancelled by Close; every run's context derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	// sem bounds the jobs running at once across all passes.
	sem chan struct{}
	// jobMu[i] keeps two passes from running job i at once.
	jobMu []sync.Mutex
	// passMu serialises passes, so a forced pass and a background one
	// do not interleave their jobs.
	passMu sync.Mutex

	mu      sync.Mutex // guards what follows
	metrics []JobMetrics
	passes  uint64
	paused  bool
	started bool
	closed  bool
	wake    chan struct{} // a pending request for a pass now (capacity 1)
	done    chan struct{} // closed when the background loop exits
}

// New returns a scheduler of jobs; Start begins the background passes.
func New(jobs []Job, o *Options) (*Scheduler, error) {
	opts, err := o.withDefaults()
	seen := map[string]bool{}
	for i, j := range jobs {
		switch {
		case j.Name == "":
			err = errors.Join(err, fmt.Errorf("%w: job %d has no name", ErrOptions, i))
		case seen[j.Name]:
			err = errors.Join(err, fmt.Errorf("%w: two jobs named %q", ErrOptions, j.Name))
		case j.Run == nil:
			err = errors.Join(err, fmt.Errorf("%w: job %q has no Run", ErrOptions, j.Name))
		case j.MinInterval < 0:
			err = errors.Join(err, fmt.Errorf("%w: job %q has a negative MinInterval %v", ErrOptions, j.Name, j.MinInterval))
		}
		seen[j.Name] = true
	}
	if err != nil {
		return nil, err
	}
	s := &Scheduler{
		jobs:    append([]Job(nil), jobs...),
		opts:    opts,
		sem:     make(chan struct{}, opts.Concurrency),
		jobMu:   make([]sync.Mutex, len(jobs)),
		metrics: make([]JobMetrics, len(jobs)),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	for i, j := range jobs {
		s.metrics[i].Name = j.Name
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Start begins background passes, the first one Interval from now. Calling
// it again, or after Close, does nothing.
func (s *Scheduler) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return
	}
	s.started = true
	go s.loop()
}

// loop runs a pass every Interval until Close.
func (s *Scheduler) loop() {
	defer close(s.done)
	t := time.NewTimer(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		s.mu.Lock()
		paused := s.paused
		s.mu.Unlock()
		if !paused {
			_ = s.pass(s.ctx)
		}
		t.Reset(s.opts.Interval)
	}
}

// Trigger asks the background loop to start a pass now rather than at the
// end of the interval (or, when one is under way, once it ends), without
// waiting for it. It does nothing while paused; before Start the request
// waits for Start.
func (s *Scheduler) Trigger() {
	s.mu.Lock()
	paused := s.paused
	s.mu.Unlock()
	if !paused {
		s.kick()
	}
}

// kick records a request for a pass; requests made while one is pending
// are the same request.
func (s *Scheduler) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Pause stops background passes from starting jobs: a pass under way
// finishes the jobs it has started and starts no more. RunOnce still runs.
func (s *Scheduler) Pause() {
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
}

// Resume lets background passes run again and starts one now.
func (s *Scheduler) Resume() {
	s.mu.Lock()
	s.paused = false
	s.mu.Unlock()
	s.kick()
}

// RunOnce runs a pass over every job now, even while paused, and waits for
// it. It returns the jobs' errors joined (each also recorded in Metrics).
// Cancelling ctx cancels the pass's jobs.
func (s *Scheduler) RunOnce(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	// The run stops on either ctx or Close.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	unhook := context.AfterFunc(s.ctx, stop)
	defer unhook()
	return s.pass(ctx)
}

// pass runs every job once, at most Concurrency at a time, in order.
// Background passes stop starting jobs when paused.
func (s *Scheduler) pass(ctx context.Context) error {
	background := ctx == s.ctx
	s.passMu.Lock()
	defer s.passMu.Unlock()
	var (
		wg   sync.WaitGroup
		emu  sync.Mutex
		errs []error
	)
	for i := range s.jobs {
		if background {
			s.mu.Lock()
			paused := s.paused
			skip := !paused && s.notDue(i)
			s.mu.Unlock()
			if paused {
				break
			}
			if skip {
				continue
			}
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return errors.Join(append(errs, ctx.Err())...)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-s.sem }()
			took, err := s.run(ctx, i, background && !s.opts.NormalPriority)
			if err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
			if background {
				s.rest(ctx, took)
			}
		}()
	}
	wg.Wait()
	s.mu.Lock()
	s.passes++
	s.mu.Unlock()
	return errors.Join(errs...)
}

// notDue reports whether job i's last run started less than its
// MinInterval ago, counting the skip if so. Callers hold mu.
func (s *Scheduler) notDue(i int) bool {
	d := s.jobs[i].MinInterval
	m := &s.metrics[i]
	if d <= 0 || m.LastRun.IsZero() || s.opts.Now().Sub(m.LastRun) >= d {
		return false
	}
	m.Skips++
	return true
}

// rest holds a job slot idle after a background job that ran for took,
// so that background jobs run at most Share of the time (see
// Options.Share); it returns early when ctx ends.
func (s *Scheduler) rest(ctx context.Context, took time.Duration) {
	d := time.Duration(float64(took) * (1 - s.opts.Share) / s.opts.Share)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// run runs job i once, at low CPU priority when low is set, records it
// and returns how long it ran. A panic in a job is recovered and recorded
// as its error: maintenance must never take the process down.
func (s *Scheduler) run(ctx context.Context, i int, low bool) (d time.Duration, err error) {
	s.jobMu[i].Lock()
	defer s.jobMu[i].Unlock()
	if err := ctx.Err(); err != nil {
		return 0, err // stopped before it began: not a run
	}
	j := &s.jobs[i]
	s.mu.Lock()
	s.metrics[i].Running = true
	s.mu.Unlock()
	start := s.opts.Now()
	began := time.Now()
	var res Result
	call := func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("compaction: job %s panicked: %v", j.Name, r)
			}
		}()
		res, err = j.Run(ctx)
	}
	if low {
		runLowPriority(call)
	} else {
		call()
	}
	d = time.Since(began)
	if err != nil {
		err = fmt.Errorf("compaction: job %s: %w", j.Name, err)
	}
	s.mu.Lock()
	m := &s.metrics[i]
	m.Running = false
	m.Runs++
	m.Items += res.Items
	m.BytesIn += res.BytesIn
	m.BytesOut += res.BytesOut
	m.Duration += d
	m.LastDuration = d
	m.LastRun = start
	if err != nil {
		m.Errors++
		m.LastError = err.Error()
	} else {
		m.LastError = ""
	}
	s.mu.Unlock()
	return d, err
}

// Metrics returns a snapshot of what every job has done.
func (s *Scheduler) Metrics() Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Metrics{Passes: s.passes, Paused: s.paused, Jobs: append([]JobMetrics(nil), s.metrics...)}
}

// Close cancels the running jobs, waits for them and stops the background
// loop. Later calls return ErrClosed.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	s.cancel()
	if started {
		<-s.done
	}
	// Wait for forced passes too: each holds passMu while its jobs run.
	s.passMu.Lock()
	defer s.passMu.Unlock()
	return nil
}
