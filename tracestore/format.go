package tracestore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

// formatVersion is the index layout this version reads and writes, stored
// under `t f`. Version 1 had no `t f` key.
const formatVersion = 2

// checkFormat refuses a store written with another index layout and
// stamps a store without trace data with the current one.
func (s *Store) checkFormat() error {
	k := keys.AppendTraceFormatKey(nil)
	v, closer, err := s.db.Get(k)
	switch {
	case err == nil:
		defer closer.Close()
		if len(v) != 4 {
			return corruptf("index format value of %d bytes", len(v))
		}
		if ver := binary.BigEndian.Uint32(v); ver != formatVersion {
			return &FormatError{Version: ver, Want: formatVersion}
		}
		return nil
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("tracestore: read index format: %w", err)
	}
	for _, kind := range []byte{keys.KindTraceSpans, keys.KindTracePostings} {
		has, err := s.hasPrefix(keys.AppendPrefix(nil, keys.StoreTraces, kind))
		if err != nil {
			return err
		}
		if has {
			return &FormatError{Version: 1, Want: formatVersion}
		}
	}
	if err := s.db.Set(k, binary.BigEndian.AppendUint32(nil, formatVersion), kv.WriteOptions); err != nil {
		return fmt.Errorf("tracestore: write index format: %w", err)
	}
	return nil
}

// hasPrefix reports whether any key starts with prefix.
func (s *Store) hasPrefix(prefix []byte) (bool, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keys.PrefixEnd(prefix)})
	if err != nil {
		return false, fmt.Errorf("tracestore: read index format: %w", err)
	}
	has := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return false, fmt.Errorf("tracestore: read index format: %w", err)
	}
	return has, nil
}
