package query

import (
	"errors"
	"fmt"
)

var (
	// ErrUnsupported is wrapped by every error about a function, operator
	// or modifier the engine does not implement; the error text names it.
	ErrUnsupported = errors.New("query: unsupported")
	// ErrTooManySamples is returned when evaluating a query would hold
	// more samples in memory than Options.MaxSamples.
	ErrTooManySamples = errors.New("query: too many samples")
	// ErrDuplicateLabelset is returned when an operation produces two
	// series with the same labels at one step (for example rate() over two
	// series that differ only in their metric name), as in Prometheus.
	ErrDuplicateLabelset = errors.New("query: vector cannot contain metrics with the same labelset")
	// ErrInvalidArgument is wrapped by errors about a query argument that is
	// well-formed but not acceptable (a bad regex in label_replace, an
	// invalid label name, a step that is not positive).
	ErrInvalidArgument = errors.New("query: invalid argument")
)

// ParseError is a query text that does not parse. Pos is the 0-based byte
// offset of the problem in Query, Line and Column are 1-based.
type ParseError struct {
	Query  string
	Pos    int
	Line   int
	Column int
	Msg    string
	// Err is the parser's own error.
	Err error
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("query: parse error at line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// Unwrap returns the parser's error.
func (e *ParseError) Unwrap() error { return e.Err }

// UnsupportedError names a function, aggregation, operator or modifier the
// engine does not evaluate. It matches ErrUnsupported with errors.Is.
type UnsupportedError struct {
	// What is the unsupported thing as written in the query, e.g.
	// "function holt_winters" or "aggregation limitk".
	What string
}

// Error implements error.
func (e *UnsupportedError) Error() string { return "query: unsupported " + e.What }

// Is reports whether target is ErrUnsupported.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }
