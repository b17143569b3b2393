package logindex

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/pillar-db/pillar/internal/keys"
)

// Listings of the field index: which fields, and which values of one field,
// the records of a time range have, for label browsers and autocompletion.
// They read the field postings of the partitions the range overlaps — keys
// only for a partition wholly inside the range, postings intersected with
// the range's ordinals for one cut by it — and never the records
// themselves, except FieldExamples, which reads one record per value.

// FieldNames returns the names of the fields (as indexed: canonical and
// lowercased, so the service is "service" and the severity "level") that
// at least one record in [t0, t1) has, sorted.
func (ix *Index) FieldNames(ctx context.Context, t0, t1 int64) ([]string, error) {
	l, err := ix.beginListing(ctx, t0, t1)
	if err != nil {
		return nil, err
	}
	defer l.close()
	names := map[string]struct{}{}
	for pi := range l.parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := &l.parts[pi]
		inRange := l.inRange(p)
		if inRange != nil && inRange.IsEmpty() {
			continue
		}
		lo := keys.AppendLogPartition(nil, keys.LogField, p.id)
		hi := keys.PrefixEnd(lo)
		valid := l.it.SeekGE(lo)
		for valid && bytes.Compare(l.it.Key(), hi) < 0 {
			_, field, _, _, err := keys.ParseLogField(nil, l.it.Key())
			if err != nil {
				return nil, fmt.Errorf("logindex: field names: %w", err)
			}
			_, seen := names[string(field)]
			if !seen {
				has, err := l.keyInRange(p, inRange)
				if err != nil {
					return nil, err
				}
				if !has {
					valid = l.it.Next()
					continue
				}
				names[string(field)] = struct{}{}
			}
			// The rest of this field's values cannot add a name.
			l.key = keys.PrefixEnd(keys.AppendLogFieldName(l.key[:0], p.id, field))
			valid = l.it.SeekGE(l.key)
		}
		if err := l.it.Error(); err != nil {
			return nil, fmt.Errorf("logindex: field names: %w", err)
		}
		ix.mu.RLock()
		for f, vals := range p.fields {
			if _, ok := names[f]; ok {
				continue
			}
			for _, bm := range vals {
				if inRange == nil && hasBelow(bm, p.next) || inRange != nil && bm.Intersects(inRange) {
					names[f] = struct{}{}
					break
				}
			}
		}
		ix.mu.RUnlock()
	}
	delete(names, fieldStream)
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// FieldValues returns the values of field (as indexed: lowercased) that
// at least one record in [t0, t1) has, sorted, the first limit of them
// when limit is positive.
func (ix *Index) FieldValues(ctx context.Context, field string, t0, t1 int64, limit int) ([]string, error) {
	vals, err := ix.fieldValues(ctx, field, t0, t1, false)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(vals))
	for v := range vals {
		out = append(out, v)
	}
	slices.Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// FieldExample is one value of a field with the newest record in the
// listed range that has it.
type FieldExample struct {
	Value string
	Hit   Hit
}

// FieldExamples is FieldValues with, for each value, the newest record in
// [t0, t1) that has it (the first in ordinal order among records with the
// same timestamp), so a caller can see the value as written (indexed
// values are lowercased) and the record's other fields.
func (ix *Index) FieldExamples(ctx context.Context, field string, t0, t1 int64, limit int) ([]FieldExample, error) {
	l, err := ix.beginListing(ctx, t0, t1)
	if err != nil {
		return nil, err
	}
	defer l.close()
	vals, err := l.values(ctx, canonicalField(field), true)
	if err != nil {
		return nil, err
	}
	out := make([]FieldExample, 0, len(vals))
	for v := range vals {
		out = append(out, FieldExample{Value: v})
	}
	slices.SortFunc(out, func(a, b FieldExample) int { return strings.Compare(a.Value, b.Value) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	for i := range out {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ref := vals[out[i].Value]
		h, err := l.record(ref.part, ref.ord)
		if err != nil {
			return nil, err
		}
		out[i].Hit = h
	}
	return out, nil
}

// StreamExamples returns the newest record in [t0, t1) of each stream
// (service and severity text, as Write groups records) that has records
// there, ordered by stream, at most limit of them when limit is positive.
// The records keep service and severity as written.
func (ix *Index) StreamExamples(ctx context.Context, t0, t1 int64, limit int) ([]Hit, error) {
	ex, err := ix.FieldExamples(ctx, fieldStream, t0, t1, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Hit, len(ex))
	for i := range ex {
		out[i] = ex[i].Hit
	}
	return out, nil
}

// recordRef names the newest record seen for a value.
type recordRef struct {
	part, ord uint32
	ts        int64
}

func (ix *Index) fieldValues(ctx context.Context, field string, t0, t1 int64, newest bool) (map[string]recordRef, error) {
	l, err := ix.beginListing(ctx, t0, t1)
	if err != nil {
		return nil, err
	}
	defer l.close()
	return l.values(ctx, canonicalField(field), newest)
}

// listing is a search over the field index; it reuses search's snapshot,
// iterator and record reading.
type listing struct {
	*search
	all *roaring.Bitmap
	buf []byte
}

// hasBelow reports whether bm holds an ordinal below n: pending postings
// may hold ordinals written after the listing's snapshot.
func hasBelow(bm *roaring.Bitmap, n uint32) bool {
	return n > 0 && bm.Rank(n-1) > 0
}

func (ix *Index) beginListing(ctx context.Context, t0, t1 int64) (*listing, error) {
	s, err := ix.begin(ctx, "*", t0, t1)
	if err != nil {
		return nil, err
	}
	return &listing{search: s, all: roaring.New()}, nil
}

// inRange returns the ordinals of p's snapshot in the listing's time range,
// or nil when that is all of them (p lies wholly inside the range) and a
// key's presence is enough.
func (l *listing) inRange(p *partSnap) *roaring.Bitmap {
	if l.t0 <= p.start && p.start+l.ix.partDur <= l.t1 {
		return nil
	}
	bm := roaring.New()
	bm.AddRange(0, uint64(p.next))
	l.search.inTime(p, bm)
	return bm
}

// keyInRange reports whether the field postings at the iterator hold an
// ordinal in inRange (nil: any ordinal of the snapshot).
func (l *listing) keyInRange(p *partSnap, inRange *roaring.Bitmap) (bool, error) {
	if inRange == nil {
		return true, nil
	}
	if err := l.postingsAt(); err != nil {
		return false, err
	}
	return l.tmp.Intersects(inRange), nil
}

// postingsAt decodes the field postings at the iterator into l.tmp.
func (l *listing) postingsAt() error {
	v, err := l.it.ValueAndErr()
	if err != nil {
		return fmt.Errorf("logindex: field postings: %w", err)
	}
	l.tmp.Clear()
	if err := l.orPostings(l.tmp, v); err != nil {
		return fmt.Errorf("logindex: postings of %q: %w", l.it.Key(), err)
	}
	return nil
}

// values collects the values of field with a record in range; with newest
// set it also finds each value's newest record, which needs every value's
// postings, not only its presence.
func (l *listing) values(ctx context.Context, field string, newest bool) (map[string]recordRef, error) {
	vals := map[string]recordRef{}
	note := func(p *partSnap, v string, bm *roaring.Bitmap, inRange *roaring.Bitmap) {
		ref, seen := vals[v]
		if seen && !newest {
			return
		}
		var m *roaring.Bitmap
		if inRange == nil {
			m = bm
		} else {
			m = l.all
			m.Clear()
			m.Or(bm)
			m.And(inRange)
		}
		if !newest {
			if !m.IsEmpty() {
				vals[v] = ref
			}
			return
		}
		it := m.Iterator()
		for it.HasNext() {
			o := it.Next()
			if o >= p.next {
				break
			}
			if t := p.ts[o]; !seen || t > ref.ts {
				ref, seen = recordRef{part: p.id, ord: o, ts: t}, true
			}
		}
		if seen {
			vals[v] = ref
		}
	}
	for pi := range l.parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := &l.parts[pi]
		inRange := l.inRange(p)
		if inRange != nil && inRange.IsEmpty() {
			continue
		}
		if inRange == nil && newest {
			// Snapshot ordinals only: pending postings may be ahead.
			inRange = roaring.New()
			inRange.AddRange(0, uint64(p.next))
		}
		l.key = keys.AppendLogFieldName(l.key[:0], p.id, unsafeBytes(field))
		for valid := l.it.SeekGE(l.key); valid && bytes.HasPrefix(l.it.Key(), l.key); valid = l.it.Next() {
			_, _, val, _, err := keys.ParseLogField(l.buf, l.it.Key())
			if err != nil {
				return nil, fmt.Errorf("logindex: field values: %w", err)
			}
			if _, seen := vals[string(val)]; seen && !newest {
				continue
			}
			if inRange == nil {
				vals[string(val)] = recordRef{}
				continue
			}
			if err := l.postingsAt(); err != nil {
				return nil, err
			}
			note(p, string(val), l.tmp, inRange)
		}
		if err := l.it.Error(); err != nil {
			return nil, fmt.Errorf("logindex: field values: %w", err)
		}
		l.ix.mu.RLock()
		for v, bm := range p.fields[field] {
			if inRange == nil {
				if hasBelow(bm, p.next) {
					vals[v] = recordRef{}
				}
				continue
			}
			note(p, v, bm, inRange)
		}
		l.ix.mu.RUnlock()
	}
	return vals, nil
}
