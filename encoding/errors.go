package encoding

import (
	"errors"
	"fmt"
)

// ErrCorrupt marks bytes that do not decode: a truncated chunk or block, a
// checksum mismatch, an impossible field. Every decoder in this package
// returns an error for which errors.Is(err, ErrCorrupt) holds rather than
// decoding garbage.
var ErrCorrupt = errors.New("encoding: corrupt data")

// ErrOutOfOrder is returned by chunk appenders when a timestamp is not
// strictly greater than the previous one.
var ErrOutOfOrder = errors.New("encoding: timestamp not strictly increasing")

// corruptf wraps ErrCorrupt with a description of what was found where.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}
