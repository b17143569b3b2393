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
package pillar

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/internal/kv"
	"github.com/pillar-db/pillar/logindex"
	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tsdb"
)

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
}

// DB is an open Pillar store. It is safe for concurrent use.
type DB struct {
	kv      *pebble.DB
	metrics *tsdb.DB
	traces  *tracestore.Store
	logs    *logindex.Index
}

// Open opens, creating if needed, the store in dir.
func Open(dir string, o *Options) (*DB, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	p, err := kv.Open(dir, kv.Options{SyncWrites: opts.SyncWrites, CacheSize: opts.CacheSize})
	if err != nil {
		return nil, fmt.Errorf("pillar: %w", err)
	}
	db := &DB{kv: p}
	if db.metrics, err = tsdb.OpenPebble(p, &opts.Metrics); err != nil {
		return nil, db.abort(fmt.Errorf("pillar: metrics: %w", err))
	}
	topts := opts.Traces
	if !opts.DisableSpanMetrics {
		topts.Metrics = db.metrics
	}
	if db.traces, err = tracestore.OpenPebble(p, &topts); err != nil {
		return nil, db.abort(fmt.Errorf("pillar: traces: %w", err))
	}
	if db.logs, err = logindex.OpenPebble(p, &opts.Logs); err != nil {
		return nil, db.abort(fmt.Errorf("pillar: logs: %w", err))
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

// Close flushes and closes the three stores, then Pebble. It is safe to
// call once; the DB must not be used afterwards.
func (db *DB) Close() error {
	var errs []error
	// Traces first: its span metrics write into Metrics.
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
