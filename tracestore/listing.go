package tracestore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/internal/keys"
)

// AttributeKeys returns, sorted, the attribute keys (of spans, resources,
// scopes, events and links alike) on spans that start in a partition
// overlapping [start, end] (Unix ns, inclusive; zero is open). It reads the
// attribute postings terms, seeking past the values of each key, so it
// costs one seek per (partition, key), not a read of any trace.
func (s *Store) AttributeKeys(ctx context.Context, start, end int64) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	seen := make(map[string]struct{})
	var term []byte
	for _, p := range s.partitionsIn(start, end) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		lo := keys.AppendTracePostingsTermStart(nil, p, []byte{termAttr})
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
		if err != nil {
			return nil, fmt.Errorf("tracestore: attribute keys: %w", err)
		}
		for valid := it.First(); valid; {
			var key string
			_, term, _, err = keys.ParseTracePostingsKey(term[:0], it.Key())
			if err == nil {
				key, _, err = parseAttrTerm(term)
			}
			if err != nil {
				it.Close()
				return nil, fmt.Errorf("tracestore: attribute keys: %w", err)
			}
			seen[key] = struct{}{}
			valid = it.SeekGE(keys.PrefixEnd(keys.AppendTracePostingsTermStart(nil, p, appendAttrKeyTerm(nil, key))))
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return nil, fmt.Errorf("tracestore: attribute keys: %w", err)
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

// AttributeValues returns, sorted, the first limit canonical values
// ("500", "true", "GET") of attribute key on spans that start in a
// partition overlapping [start, end] (Unix ns, inclusive; zero is open).
// limit <= 0 means no limit. It reads the attribute postings terms of key,
// at most limit values per partition, never a trace.
func (s *Store) AttributeValues(ctx context.Context, key string, start, end int64, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	seen := make(map[string]struct{})
	var term []byte
	for _, p := range s.partitionsIn(start, end) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		lo := keys.AppendTracePostingsTermStart(nil, p, appendAttrKeyTerm(nil, key))
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
		if err != nil {
			return nil, fmt.Errorf("tracestore: attribute values: %w", err)
		}
		// Values come in byte order, so the smallest limit of this
		// partition are all the answer can need from it.
		n := 0
		var last []byte
		for it.First(); it.Valid() && (limit <= 0 || n < limit); it.Next() {
			var val []byte
			_, term, _, err = keys.ParseTracePostingsKey(term[:0], it.Key())
			if err == nil {
				_, val, err = parseAttrTerm(term)
			}
			if err != nil {
				it.Close()
				return nil, fmt.Errorf("tracestore: attribute values: %w", err)
			}
			if n > 0 && string(val) == string(last) { // another segment of the same term
				continue
			}
			last = append(last[:0], val...)
			n++
			seen[string(val)] = struct{}{}
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return nil, fmt.Errorf("tracestore: attribute values: %w", err)
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// parseAttrTerm splits an attribute postings term.
func parseAttrTerm(term []byte) (key string, value []byte, err error) {
	if len(term) == 0 || term[0] != termAttr {
		return "", nil, corruptf("attribute term %x", term)
	}
	if key, value, err = keys.String(term[1:]); err != nil {
		return "", nil, corruptf("attribute term %x: %v", term, err)
	}
	return key, value, nil
}
