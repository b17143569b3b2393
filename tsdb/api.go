package tsdb

import (
	"errors"
	"time"

	"github.com/pillar-db/pillar/encoding"
)

// Sentinel errors. Every error the package returns for bad input wraps one of
// them, so callers test with errors.Is.
var (
	// ErrOutOfOrderSample: a sample older than the series' newest sample by
	// more than Options.OutOfOrderWindow.
	ErrOutOfOrderSample = errors.New("tsdb: out of order sample")
	// ErrDuplicateSampleForTimestamp: a sample at a timestamp the series
	// already has, with a different value.
	ErrDuplicateSampleForTimestamp = errors.New("tsdb: duplicate sample for timestamp")
	// ErrInvalidLabels: a label set that breaks a rule (see LabelError).
	ErrInvalidLabels = errors.New("tsdb: invalid labels")
	// ErrInvalidMatcher: a matcher with a bad regex or an unknown type.
	ErrInvalidMatcher = errors.New("tsdb: invalid matcher")
	// ErrNotFound: a series reference that names no series.
	ErrNotFound = errors.New("tsdb: not found")
	// ErrClosed: the DB, appender or querier was used after Close, Commit or Rollback.
	ErrClosed = errors.New("tsdb: closed")
	// ErrInvalidSample: a nil or malformed histogram.
	ErrInvalidSample = errors.New("tsdb: invalid sample")
)

// ValueType says what kind of sample an iterator is positioned on.
type ValueType uint8

// Sample kinds.
const (
	ValNone      ValueType = iota // no sample: the iterator is exhausted or failed
	ValFloat                      // a float sample: read it with At
	ValHistogram                  // a native histogram sample: read it with AtHistogram
)

// String names the value type.
func (v ValueType) String() string {
	switch v {
	case ValFloat:
		return "float"
	case ValHistogram:
		return "histogram"
	}
	return "none"
}

// Histogram is a native exponential histogram with integer counts and
// delta-coded buckets, as Prometheus models it.
type Histogram = encoding.Histogram

// SeriesRef is a handle on a series returned by Append. Passing it back to
// the next Append skips the label lookup. Refs stay valid for the DB's life
// and across restarts.
type SeriesRef uint64

// Iterator walks one series' samples in time order within the querier's
// [mint, maxt]. It is not safe for concurrent use.
type Iterator interface {
	// Next advances to the next sample and says its type; ValNone at the end
	// or on error (see Err).
	Next() ValueType
	// SeekTo advances to the first sample with timestamp >= t and says its type.
	// It only moves forward: when the current sample already has timestamp >=
	// t it stays there.
	SeekTo(t int64) ValueType
	// At returns the current float sample.
	At() (int64, float64)
	// AtHistogram returns the current histogram sample, decoding into h when
	// h is non-nil (reusing its slices) and into a new Histogram otherwise.
	AtHistogram(h *Histogram) (int64, *Histogram)
	// AtT returns the current timestamp, for either type.
	AtT() int64
	// Err returns the first error met, if any.
	Err() error
}

// Series is one series of a query result.
type Series interface {
	// Labels returns the series' labels. The caller must not modify them.
	Labels() Labels
	// Iterator returns an iterator over the series' samples, reusing reuse
	// when it came from this package; it allocates nothing per sample.
	Iterator(reuse Iterator) Iterator
}

// SeriesSet is a cursor over the series of a Select.
type SeriesSet interface {
	Next() bool
	At() Series
	Err() error
}

// Options configure a DB. A nil *Options means all defaults.
type Options struct {
	// SyncWrites fsyncs every commit so it survives power loss; without it a
	// commit survives a process crash (kill -9). Default false. Only used by
	// Open; with OpenPebble the caller's Pebble decides.
	SyncWrites bool
	// OutOfOrderWindow accepts samples up to this much older than the
	// series' newest sample. Default 0: any older sample is
	// ErrOutOfOrderSample.
	OutOfOrderWindow time.Duration
	// AllowUTF8Names accepts any valid UTF-8 label name. Default false:
	// names must match [a-zA-Z_][a-zA-Z0-9_]*.
	AllowUTF8Names bool
	// ChunkSamples is the number of samples after which an open chunk is
	// sealed into Pebble. Default 120.
	ChunkSamples int
	// MaxWALLag bounds the write-ahead log: a series whose oldest unsealed
	// sample is this many commits old has its open chunk sealed early, so
	// the log entries it pins can be deleted. Default 1024.
	MaxWALLag int
	// CacheSize is Pebble's block cache in bytes when Open creates the
	// Pebble instance. Default 64 MiB.
	CacheSize int64
}

// chunkRange is the time span chunks are aligned to: a chunk never crosses a
// multiple of it, so a chunk overlapping [mint, maxt] starts at or after
// mint rounded down to it. It is part of the on-disk layout, not an option.
const chunkRange = int64(2 * time.Hour / time.Millisecond)

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.ChunkSamples <= 0 {
		r.ChunkSamples = 120
	}
	if r.MaxWALLag <= 0 {
		r.MaxWALLag = 1024
	}
	return r
}
