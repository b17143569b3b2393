package tracestore

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by the store wrap these; test with errors.Is.
var (
	// ErrNotFound is returned by Trace when no span of the trace is stored.
	ErrNotFound = errors.New("tracestore: trace not found")
	// ErrZeroTraceID rejects a span whose trace ID is all zero bytes.
	ErrZeroTraceID = errors.New("tracestore: zero trace ID")
	// ErrZeroSpanID rejects a span whose span ID is all zero bytes.
	ErrZeroSpanID = errors.New("tracestore: zero span ID")
	// ErrEndBeforeStart rejects a span that ends before it starts.
	ErrEndBeforeStart = errors.New("tracestore: span ends before it starts")
	// ErrTraceTooLarge rejects the spans of one trace in one Write whose
	// encoded size exceeds Options.MaxTraceBytes.
	ErrTraceTooLarge = errors.New("tracestore: trace too large")
	// ErrBadID is returned when a trace or span ID does not parse.
	ErrBadID = errors.New("tracestore: malformed ID")
	// ErrBadTraceParent is returned when a W3C traceparent header does not parse.
	ErrBadTraceParent = errors.New("tracestore: malformed traceparent")
	// ErrClosed is returned by calls on a closed Store.
	ErrClosed = errors.New("tracestore: store closed")
	// ErrBadOptions is returned by Open when an option is out of range.
	ErrBadOptions = errors.New("tracestore: invalid options")
)

// SpanError names the span of a Write batch that was rejected and why. It
// wraps one of ErrZeroTraceID, ErrZeroSpanID, ErrEndBeforeStart or
// ErrTraceTooLarge. When Write returns a SpanError nothing of the batch was
// stored.
type SpanError struct {
	Index   int     // position of the span in the batch
	TraceID TraceID // the span's trace ID
	SpanID  SpanID  // the span's ID
	Err     error   // the reason, one of the sentinels above
}

func (e *SpanError) Error() string {
	return fmt.Sprintf("%v: span %d (trace %s, span %s)", e.Err, e.Index, e.TraceID, e.SpanID)
}

// Unwrap returns the reason.
func (e *SpanError) Unwrap() error { return e.Err }

// ErrFormat is wrapped by a *FormatError when a store's index layout is
// not the one this version reads.
var ErrFormat = errors.New("tracestore: unsupported index format")

// FormatError reports a store written with an index layout this version
// does not read. Version 1 (no `t f` key) had no start-time buckets, no
// whole-trace durations and no trace extents, which Find relies on since
// version 2. Nothing is changed on disk when Open returns it.
type FormatError struct {
	Version uint32 // the store's layout version
	Want    uint32 // the layout this version reads and writes
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%v: the store's index layout is version %d, this version reads %d (write the spans into a new store)", ErrFormat, e.Version, e.Want)
}

// Unwrap returns ErrFormat.
func (e *FormatError) Unwrap() error { return ErrFormat }
