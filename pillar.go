// Package pillar is an embeddable storage engine for observability data:
// metric series, distributed-trace spans and log records in one directory,
// on one Pebble instance.
//
//	db, err := pillar.Open(dir, nil)
//	if err != nil { … }
//	defer db.Close()
//	db.Metrics()  // *tsdb.DB: Appender, Querier; query.NewEngine(db.Metrics(), …) for PromQL
//	db.Traces()   // *tracestore.Store: Write, Trace, Find
//	db.Logs()     // *logindex.Index: Write, Search, Count
//
// The three stores share one Pebble instance — one block cache, one
// write-ahead log, one set of background compactions — and each owns its
// own part of the key space. Spans written through Traces also record
// call counts and duration histograms per service, operation and status
// (RED metrics) into Metrics, so a latency query can lead to traces.
//
// # Maintenance
//
// A background scheduler (package compaction) keeps the stores compact and
// within retention, one job per kind of pass, each working through the
// store's own maintenance method:
//
//	metrics.compact           tsdb CompactChunks: a closed window's chunks merged and re-encoded
//	metrics.downsample        tsdb Downsample: 5 m and 1 h rollups of final windows;
//	                          in background passes at most every five minutes
//	metrics.retention         tsdb DropBefore(now − Retention): chunks past retention
//	metrics.rollup_retention  tsdb DropRollupsBefore(now − DownsampleRetention)
//	traces.close              tracestore ClosePartitions(now − LateWindow): postings
//	                          of closed partitions merged, with a term filter
//	traces.compact            tracestore Compact: each term's postings segments merged
//	traces.retention          tracestore EnforceRetention, then the freed range compacted
//	logs.seal                 logindex SealPartitions(now − LateWindow): postings of
//	                          closed partitions merged into one segment with a term
//	                          filter, runs of small blocks merged
//	logs.retention            logindex EnforceRetention, which compacts the dropped range
//
// Options CompactionInterval, CompactionConcurrency and CompactionShare
// (the fraction of time a job slot may be busy) pace it,
// DisableMaintenance turns the background passes off, Compact runs a pass
// now, and Maintenance reports what each job has done and can pause it.
package pillar

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/compaction"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
	"github.com/pillar-db/pillar/logindex"
	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tsdb"
)

// ErrOptions is returned by Open for invalid options.
var ErrOptions = errors.New("pillar: invalid options")

// Options configure a DB. A nil *Options means all defaults.
type Options struct {
	// SyncWrites makes every acknowledged write fsync, so it survives power
	// loss as well as a process crash. Default false: acknowledged writes
	// survive a process crash (kill -9).
	SyncWrites bool
	// CacheSize is the block cache shared by the three stores, in bytes.
	// Default 64 MiB.
	CacheSize int64
	// Metrics configures the metric store. Its SyncWrites and CacheSize
	// are ignored in favour of the fields above. Default: tsdb's defaults.
	Metrics tsdb.Options
	// Traces configures the trace store, likewise. Default: tracestore's defaults.
	Traces tracestore.Options
	// Logs configures the log store, likewise. Default: logindex's defaults.
	Logs logindex.Options
	// DisableSpanMetrics stops Traces().Write from recording RED metrics
	// (tracestore.CallsMetric, tracestore.DurationMetric) into Metrics().
	// Default false: span metrics are recorded, with slow spans kept as
	// exemplars (Traces().Exemplars).
	DisableSpanMetrics bool

	// Retention is how long data is kept: metric chunks, trace partitions
	// and log partitions whose samples, spans or records are all older
	// than Now()-Retention are dropped by maintenance, and their disk
	// space returned. It is also the Retention of Traces and Logs where
	// those are unset. Default 0: keep everything.
	Retention time.Duration
	// DownsampleRetention is how long the 5 m and 1 h metric rollups are
	// kept, usually longer than Retention. Default 0: as long as Retention.
	DownsampleRetention time.Duration
	// CompactionInterval is the pause between two background maintenance
	// passes. Default one minute.
	CompactionInterval time.Duration
	// CompactionConcurrency is how many maintenance jobs may run at once.
	// Default: a quarter of the CPUs, at least 1.
	CompactionConcurrency int
	// CompactionNormalPriority runs background maintenance jobs at the
	// process's own CPU priority. Default false: on Linux they run at the
	// lowest priority, so ingestion and queries win when CPU is short
	// (see compaction.Options.NormalPriority).
	CompactionNormalPriority bool
	// CompactionShare is the fraction of time a background maintenance
	// slot may spend running jobs; after each job it rests for the rest
	// (see compaction.Options.Share). Default 0.25.
	CompactionShare float64
	// DisableMaintenance stops the background maintenance passes; Compact
	// still runs one. Default false: a pass runs every CompactionInterval.
	DisableMaintenance bool
	// LateWindow is how long after a log partition ends its records may
	// still arrive in the normal course; maintenance seals the partition
	// after that. Records that arrive later are still stored and found.
	// Default five minutes.
	LateWindow time.Duration
	// Now is the clock retention and sealing are measured against. Default
	// time.Now. It is also the clock of Traces and Logs where those are unset.
	Now func() time.Time
}

func (o *Options) validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Retention", o.Retention}, {"DownsampleRetention", o.DownsampleRetention},
		{"CompactionInterval", o.CompactionInterval}, {"LateWindow", o.LateWindow}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%w: negative %s %v", ErrOptions, d.name, d.v))
		}
	}
	if o.CompactionConcurrency < 0 {
		errs = append(errs, fmt.Errorf("%w: negative CompactionConcurrency %d", ErrOptions, o.CompactionConcurrency))
	}
	return errors.Join(errs...)
}

func (o *Options) fillDefaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LateWindow == 0 {
		o.LateWindow = 5 * time.Minute
	}
	if o.DownsampleRetention == 0 {
		o.DownsampleRetention = o.Retention
	}
}

// DB is an open Pillar store. It is safe for concurrent use.
type DB struct {
	kv      *pebble.DB
	opts    Options
	metrics *tsdb.DB
	traces  *tracestore.Store
	logs    *logindex.Index
	maint   *compaction.Scheduler
	// The retention cutoffs of the last drops that compacted what they
	// dropped: chunks, rollups, and the traces' key range.
	chunkCut, rollupCut, traceCut cutoff
}

// cutoff remembers the retention cutoff of the last drop of one kind, so
// drops that make Pebble rewrite a whole key range run only once the
// cutoff has moved on by a step: series-first (metrics) and trace-first
// (spans) keys spread a time range's data over the whole range, so each
// such drop rewrites the live data too. A step of an eighth of the
// retention bounds the dropped data still on disk to about an eighth of
// the retained, and rewrites the live data about eight times per
// retention period.
type cutoff struct {
	mu sync.Mutex
	at time.Time // zero before the first drop
}

// due reports whether a drop at cut is due: the first one, or cut is at
// least step past the last. The caller calls done after a drop.
func (c *cutoff) due(cut time.Time, step time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at.IsZero() || cut.Sub(c.at) >= step
}

func (c *cutoff) done(cut time.Time) {
	c.mu.Lock()
	c.at = cut
	c.mu.Unlock()
}

// Open opens, creating if needed, the store in dir.
func Open(dir string, o *Options) (*DB, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts.fillDefaults()
	p, err := kv.Open(dir, kv.Options{SyncWrites: opts.SyncWrites, CacheSize: opts.CacheSize})
	if err != nil {
		return nil, fmt.Errorf("pillar: %w", err)
	}
	db := &DB{kv: p, opts: opts}
	if db.metrics, err = tsdb.OpenPebble(p, &opts.Metrics); err != nil {
		return nil, db.abort(fmt.Errorf("pillar: metrics: %w", err))
	}
	topts := opts.Traces
	if !opts.DisableSpanMetrics {
		topts.Metrics = db.metrics
	}
	if topts.Retention == 0 {
		topts.Retention = opts.Retention
	}
	if topts.Now == nil {
		topts.Now = opts.Now
	}
	if db.traces, err = tracestore.OpenPebble(p, &topts); err != nil {
		return nil, db.abort(fmt.Errorf("pillar: traces: %w", err))
	}
	lopts := opts.Logs
	if lopts.Retention == 0 {
		lopts.Retention = opts.Retention
	}
	if lopts.Now == nil {
		lopts.Now = opts.Now
	}
	if db.logs, err = logindex.OpenPebble(p, &lopts); err != nil {
		return nil, db.abort(fmt.Errorf("pillar: logs: %w", err))
	}
	db.maint, err = compaction.New(db.jobs(), &compaction.Options{
		Concurrency:    opts.CompactionConcurrency,
		Interval:       opts.CompactionInterval,
		Now:            opts.Now,
		NormalPriority: opts.CompactionNormalPriority,
		Share:          opts.CompactionShare,
	})
	if err != nil {
		return nil, db.abort(fmt.Errorf("pillar: %w", err))
	}
	if !opts.DisableMaintenance {
		db.maint.Start()
	}
	return db, nil
}

// abort closes what Open had opened and returns err joined with any
// error from closing.
func (db *DB) abort(err error) error { return errors.Join(err, db.Close()) }

// Metrics returns the metric store.
func (db *DB) Metrics() *tsdb.DB { return db.metrics }

// Traces returns the trace store.
func (db *DB) Traces() *tracestore.Store { return db.traces }

// Logs returns the log store.
func (db *DB) Logs() *logindex.Index { return db.logs }

// Pebble returns the underlying Pebble instance, for inspection and
// maintenance tools. Writing to it directly voids every guarantee.
func (db *DB) Pebble() *pebble.DB { return db.kv }

// DiskUsage returns the bytes the store occupies on disk.
func (db *DB) DiskUsage() uint64 { return db.kv.Metrics().DiskSpaceUsage() }

// Compact runs a maintenance pass over every store now, even when
// background maintenance is disabled or paused, and waits for it. It
// returns the jobs' errors joined; each is also recorded in
// Maintenance().Metrics().
func (db *DB) Compact(ctx context.Context) error { return db.maint.RunOnce(ctx) }

// Maintenance returns the background maintenance scheduler: its Metrics
// (runs, items, bytes, time and errors per job), Pause, Resume and Trigger.
func (db *DB) Maintenance() *compaction.Scheduler { return db.maint }

// Close stops maintenance, flushes and closes the three stores, then
// Pebble. It is safe to call once; the DB must not be used afterwards.
func (db *DB) Close() error {
	var errs []error
	// Maintenance first: its jobs use the stores.
	if db.maint != nil {
		errs = append(errs, db.maint.Close())
	}
	// Traces next: its span metrics write into Metrics.
	if db.traces != nil {
		errs = append(errs, db.traces.Close())
	}
	if db.logs != nil {
		errs = append(errs, db.logs.Close())
	}
	if db.metrics != nil {
		errs = append(errs, db.metrics.Close())
	}
	if db.kv != nil {
		errs = append(errs, db.kv.Close())
	}
	return errors.Join(errs...)
}

// jobs lists the maintenance passes in the order a pass runs them: within
// a store, rewriting before dropping, so a pass never rewrites what it is
// about to drop. A tsdb pass returning MaintenanceStats is one line:
// statsJob(name, func(ctx) { return db.metrics.Pass(ctx, …) }).
func (db *DB) jobs() []compaction.Job {
	return []compaction.Job{
		statsJob("metrics.compact", func(ctx context.Context) (tsdb.MaintenanceStats, error) {
			// A window is final once the out-of-order window has passed.
			return db.metrics.CompactChunks(ctx, db.opts.Now().Add(-db.opts.Metrics.OutOfOrderWindow).UnixMilli())
		}),
		withMinInterval(statsJob("metrics.downsample", func(ctx context.Context) (tsdb.MaintenanceStats, error) {
			return db.metrics.Downsample(ctx, db.opts.Now().UnixMilli())
		}), tsdb.Res5m.Duration()), // a new window can be final only once per window
		statsJob("metrics.retention", func(ctx context.Context) (tsdb.MaintenanceStats, error) {
			return stepDrop(ctx, &db.chunkCut, db.opts.Now(), db.opts.Retention, db.metrics.DropBefore)
		}),
		statsJob("metrics.rollup_retention", func(ctx context.Context) (tsdb.MaintenanceStats, error) {
			return stepDrop(ctx, &db.rollupCut, db.opts.Now(), db.opts.DownsampleRetention, db.metrics.DropRollupsBefore)
		}),
		{Name: "traces.close", Run: func(ctx context.Context) (compaction.Result, error) {
			n, err := db.traces.ClosePartitions(ctx, db.opts.Now().Add(-db.opts.LateWindow).UnixNano())
			return compaction.Result{Items: int64(n)}, err
		}},
		{Name: "traces.compact", Run: func(ctx context.Context) (compaction.Result, error) {
			n, err := db.traces.Compact(ctx)
			return compaction.Result{Items: int64(n)}, err
		}},
		{Name: "traces.retention", Run: db.tracesRetention},
		{Name: "logs.seal", Run: func(ctx context.Context) (compaction.Result, error) {
			st, err := db.logs.SealPartitions(ctx, db.opts.Now().Add(-db.opts.LateWindow).UnixNano())
			return compaction.Result{Items: int64(st.Partitions), BytesIn: st.BytesIn, BytesOut: st.BytesOut}, err
		}},
		{Name: "logs.retention", Run: func(ctx context.Context) (compaction.Result, error) {
			n, err := db.logs.EnforceRetention(ctx)
			return compaction.Result{Items: int64(n)}, err
		}},
	}
}

// tracesRetention drops trace partitions past retention and returns their
// disk space. The spans of a partition are range deletes spread over every
// trace's keys, so Pebble would reclaim them only as it happens to rewrite
// the tables: the job has it compact the traces' key range, which rewrites
// the live spans too. It does so when this pass dropped partitions, and
// when a step of the retention cutoff is due (see cutoff): the store also
// drops partitions by itself, on Open and when a Write opens a new one.
func (db *DB) tracesRetention(ctx context.Context) (compaction.Result, error) {
	if db.opts.Traces.Retention == 0 && db.opts.Retention == 0 {
		return compaction.Result{}, nil
	}
	n, err := db.traces.EnforceRetention(ctx)
	res := compaction.Result{Items: int64(n)}
	if err != nil {
		return res, err
	}
	retention := db.opts.Traces.Retention
	if retention == 0 {
		retention = db.opts.Retention
	}
	cut := db.opts.Now().Add(-retention)
	if n == 0 && !db.traceCut.due(cut, retention/8) {
		return res, nil
	}
	freed, err := db.compactStore(ctx, keys.StoreTraces)
	res.BytesIn = freed
	if err == nil {
		db.traceCut.done(cut)
	}
	return res, err
}

// stepDrop runs a tsdb drop (of chunks or rollups) at now-retention when
// it is due (see cutoff); with no retention it does nothing.
func stepDrop(ctx context.Context, c *cutoff, now time.Time, retention time.Duration,
	drop func(context.Context, int64) (tsdb.MaintenanceStats, error)) (tsdb.MaintenanceStats, error) {
	if retention <= 0 {
		return tsdb.MaintenanceStats{}, nil
	}
	cut := now.Add(-retention)
	if !c.due(cut, retention/8) {
		return tsdb.MaintenanceStats{}, nil
	}
	st, err := drop(ctx, cut.UnixMilli())
	if err == nil {
		c.done(cut)
	}
	return st, err
}

// withMinInterval returns j with its MinInterval set to d.
func withMinInterval(j compaction.Job, d time.Duration) compaction.Job {
	j.MinInterval = d
	return j
}

// statsJob adapts a tsdb maintenance pass to a compaction job.
func statsJob(name string, run func(context.Context) (tsdb.MaintenanceStats, error)) compaction.Job {
	return compaction.Job{Name: name, Run: func(ctx context.Context) (compaction.Result, error) {
		st, err := run(ctx)
		return compaction.Result{Items: int64(st.Items), BytesIn: st.BytesIn, BytesOut: st.BytesOut}, err
	}}
}

// compactStore has Pebble compact one store's whole key range and returns
// by how much its estimated disk usage fell.
func (db *DB) compactStore(ctx context.Context, store byte) (int64, error) {
	lo := []byte{store}
	hi := keys.PrefixEnd(lo)
	before, _ := db.kv.EstimateDiskUsage(lo, hi)
	if err := db.kv.Compact(ctx, lo, hi, true); err != nil {
		return 0, fmt.Errorf("pillar: compact store %q: %w", store, err)
	}
	after, _ := db.kv.EstimateDiskUsage(lo, hi)
	return int64(before) - int64(after), nil
}
