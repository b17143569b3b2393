package tracestore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

// Trace is every stored span of one trace, in the order they were written
// (by partition, then Write, then position in the batch).
type Trace struct {
	ID    TraceID
	Spans []Span
}

// Trace reads every span of trace id with one prefix scan. It returns an
// error wrapping ErrNotFound when no span is stored, and one wrapping
// encoding.ErrCorrupt when a block fails its checks.
func (s *Store) Trace(ctx context.Context, id TraceID) (*Trace, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	rb := readBuf{dec: blockDecoder{g: s.dict}}
	spans, err := s.readTrace(&rb, id, nil)
	if err != nil {
		return nil, err
	}
	if len(spans) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return &Trace{ID: id, Spans: spans}, nil
}

// readBuf holds the buffers a read reuses across traces.
type readBuf struct {
	key     []byte
	payload []byte
	dec     blockDecoder
}

func (s *Store) readTrace(rb *readBuf, id TraceID, dst []Span) ([]Span, error) {
	rb.key = keys.AppendTraceSpansPrefix(rb.key[:0], id)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: rb.key, UpperBound: keys.PrefixEnd(rb.key)})
	if err != nil {
		return nil, fmt.Errorf("tracestore: read trace %s: %w", id, err)
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("tracestore: read trace %s: %w", id, err)
		}
		rb.payload, err = encoding.DecodeBlock(rb.payload[:0], v)
		if err == nil {
			dst, err = rb.dec.decode(dst, id, rb.payload)
		}
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("tracestore: trace %s block %x: %w", id, it.Key(), err)
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("tracestore: read trace %s: %w", id, err)
	}
	return dst, nil
}

// Query selects traces for Find. Every field is optional. Operation,
// Attributes, MinDuration/MaxDuration and the Start/End window must all
// hold on one and the same span (as in Jaeger); Service is that span's
// service.
type Query struct {
	// Service is the span's resource service.name. Empty: any service.
	Service string
	// Operation is the span name. Empty: any.
	Operation string
	// Attributes must all be found on the span, its resource, its scope,
	// one of its events or one of its links; a typed value matches by its
	// canonical string ("123", "72.5", "true").
	Attributes map[string]string
	// MinDuration and MaxDuration bound the span's duration, inclusive.
	// Zero: no bound.
	MinDuration, MaxDuration time.Duration
	// MinTraceDuration and MaxTraceDuration bound the duration of the
	// whole trace (latest span end minus earliest span start, over every
	// stored span of it), inclusive. Zero: no bound.
	MinTraceDuration, MaxTraceDuration time.Duration
	// Start and End bound the span's start time (Unix ns), inclusive.
	// Zero: no bound.
	Start, End int64
	// Limit is the most traces returned. Default 20.
	Limit int
}

// TraceSummary describes a trace found by Find.
type TraceSummary struct {
	TraceID       TraceID
	RootService   string
	RootOperation string
	Start         int64         // earliest span start, Unix ns
	Duration      time.Duration // latest span end minus Start
	SpanCount     int
	Error         bool     // some span has StatusError
	Services      []string // sorted, distinct
}

// Find returns summaries of the Limit newest traces (by trace start, ties
// by trace ID) that have a span matching q and, with trace-duration
// bounds, whose whole duration is within them. In each partition of the
// window, newest first, it intersects the postings of q's terms once, then
// walks the partition's start-time buckets from the end of the window back,
// reading and checking span by span only the candidates the postings leave
// in each bucket; it stops as soon as it holds Limit matches and the
// oldest of them starts no earlier than the bucket it just finished, since
// every trace not yet read starts before that bucket. Closed partitions
// whose filter lacks a term q needs are skipped unread.
func (s *Store) Find(ctx context.Context, q Query) ([]TraceSummary, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	f := s.finders.Get().(*finder)
	defer s.putFinder(f)
	f.q, f.limit = &q, q.Limit
	f.ts.setQuery(&q)
	if f.limit <= 0 {
		f.limit = 20
	}
	clauses := q.clauses()
	parts := s.partitionsIn(q.Start, q.End)
	for pi := len(parts) - 1; pi >= 0; pi-- {
		p := parts[pi]
		if flt := s.filter(p); flt != nil && !flt.admits(clauses) {
			continue
		}
		acc, err := s.candidates(p, clauses)
		if err != nil {
			return nil, err
		}
		if acc != nil && acc.IsEmpty() {
			continue
		}
		lo, hi := uint16(0), uint16(timeBuckets-1)
		if q.Start != 0 {
			lo = s.timeBucket(p, q.Start)
		}
		if q.End != 0 {
			hi = s.timeBucket(p, q.End)
		}
		if lo > hi {
			continue
		}
		done, err := s.scanBuckets(ctx, p, lo, hi, acc, f)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
	}
	sortSummaries(f.out)
	if len(f.out) > f.limit {
		f.out = f.out[:f.limit]
	}
	return slices.Clip(f.out), nil
}

// putFinder returns a finder's buffers to the pool: the decoded spans and
// attribute slab of a large trace are kept for the next Find instead of
// being allocated again. The caller keeps out.
func (s *Store) putFinder(f *finder) {
	f.spans = f.spans[:0]
	f.rb.dec.reuseSlab()
	clear(f.seen)
	f.q, f.out, f.n = nil, nil, 0
	f.ts.q = nil
	s.finders.Put(f)
}

func sortSummaries(out []TraceSummary) {
	slices.SortFunc(out, func(a, b TraceSummary) int {
		if c := cmp.Compare(b.Start, a.Start); c != 0 {
			return c
		}
		return bytes.Compare(a.TraceID[:], b.TraceID[:])
	})
}

// finder is the state of one Find: the matches so far and the buffers it
// reuses across candidates.
type finder struct {
	q     *Query
	limit int
	seen  map[TraceID]struct{}
	out   []TraceSummary
	rb    readBuf
	ts    *traceScan
	spans []Span
	m     matcher
	n     int
}

// consider reads the trace of ordinal ord of partition p, unless already
// read, and keeps its summary if it matches.
func (f *finder) consider(ctx context.Context, s *Store, p, ord uint32) error {
	if f.n++; f.n%64 == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	id, ok, err := s.traceByOrdinal(&f.rb, p, ord)
	if err != nil || !ok {
		return err
	}
	if _, dup := f.seen[id]; dup {
		return nil
	}
	f.seen[id] = struct{}{}
	// The previous candidate's attributes are dropped (a summary holds
	// none), so their memory can be reused.
	f.rb.dec.reuseSlab()
	var sum TraceSummary
	if len(f.q.Attributes) <= maxScanAttrs {
		// Check and summarize straight from the blocks.
		matched, err := s.scanTrace(&f.rb, id, f.ts)
		if err != nil || !matched {
			return err
		}
		sum = f.ts.summary(id)
	} else {
		if f.spans, err = s.readTrace(&f.rb, id, f.spans[:0]); err != nil {
			return err
		}
		if !f.m.matchAny(f.q, f.spans) {
			return nil
		}
		sum = summarize(id, f.spans)
	}
	if !f.q.traceDurationHolds(sum.Duration) {
		return nil
	}
	f.out = append(f.out, sum)
	return nil
}

// certain reports whether the matches held already are the final ones,
// given that every trace not yet read starts before start. It trims the
// matches to the limit.
func (f *finder) certain(start int64) bool {
	if len(f.out) < f.limit {
		return false
	}
	sortSummaries(f.out)
	f.out = f.out[:f.limit]
	return f.out[f.limit-1].Start >= start
}

// scanBuckets walks the start-time buckets lo..hi of partition p from the
// newest back, considering the candidates of each (those in acc, or all
// when acc is nil). It reports whether the matches became certain.
func (s *Store) scanBuckets(ctx context.Context, p uint32, lo, hi uint16, acc *roaring.Bitmap, f *finder) (bool, error) {
	lower := keys.AppendTracePostingsTermStart(nil, p, binary.BigEndian.AppendUint16([]byte{termTime}, lo))
	upper := keys.PrefixEnd(keys.AppendTracePostingsTermStart(nil, p, binary.BigEndian.AppendUint16([]byte{termTime}, hi)))
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return false, fmt.Errorf("tracestore: find: %w", err)
	}
	defer it.Close()
	var (
		term, cur []byte
		bm        = roaring.New()
		seg       = roaring.New()
	)
	process := func() (bool, error) {
		if acc != nil {
			bm.And(acc)
		}
		ords := bm.ReverseIterator()
		for ords.HasNext() {
			if err := f.consider(ctx, s, p, ords.Next()); err != nil {
				return false, err
			}
		}
		bm.Clear()
		if len(cur) != 3 {
			return false, corruptf("time bucket term %x in partition %d", cur, p)
		}
		return f.certain(s.bucketStart(p, binary.BigEndian.Uint16(cur[1:]))), nil
	}
	for it.Last(); it.Valid(); it.Prev() {
		if _, term, _, err = keys.ParseTracePostingsKey(term[:0], it.Key()); err != nil {
			return false, fmt.Errorf("tracestore: find: %w", err)
		}
		if cur != nil && !bytes.Equal(term, cur) {
			if done, err := process(); done || err != nil {
				return done, err
			}
		}
		cur = append(cur[:0], term...)
		v, err := it.ValueAndErr()
		if err != nil {
			return false, fmt.Errorf("tracestore: find: %w", err)
		}
		seg.Clear()
		if err := seg.UnmarshalBinary(v); err != nil {
			return false, corruptf("postings segment %x: %v", it.Key(), err)
		}
		bm.Or(seg)
	}
	if err := it.Error(); err != nil {
		return false, fmt.Errorf("tracestore: find: %w", err)
	}
	if cur == nil {
		return false, nil
	}
	return process()
}

// clause is one condition of a query on a partition's postings: the union
// of the postings of terms, or, when lo is set, of every term in
// [lo, hi] (a range of fixed-length bucket terms).
type clause struct {
	terms  [][]byte
	lo, hi []byte
}

// clauses returns the conditions of q that postings decide, to be
// intersected.
func (q *Query) clauses() []clause {
	var out []clause
	if q.Service != "" {
		out = append(out, clause{terms: [][]byte{append([]byte{termService}, q.Service...)}})
	}
	if q.Operation != "" {
		out = append(out, clause{terms: [][]byte{append([]byte{termOperation}, q.Operation...)}})
	}
	ks := make([]string, 0, len(q.Attributes))
	for k := range q.Attributes {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	for _, k := range ks {
		v := StringValue(q.Attributes[k])
		out = append(out, clause{terms: [][]byte{appendAttrTerm(nil, k, &v)}})
	}
	if q.MinDuration > 0 || q.MaxDuration > 0 {
		hi := byte(64)
		if q.MaxDuration > 0 {
			hi = durationBucket(int64(q.MaxDuration))
		}
		out = append(out, clause{
			lo: []byte{termDuration, durationBucket(int64(q.MinDuration))},
			hi: []byte{termDuration, hi},
		})
	}
	if q.MinTraceDuration > 0 || q.MaxTraceDuration > 0 {
		hi := uint16(maxTraceDurBucket)
		if q.MaxTraceDuration > 0 {
			hi = traceDurBucket(int64(q.MaxTraceDuration))
		}
		out = append(out, clause{
			lo: binary.BigEndian.AppendUint16([]byte{termTraceDur}, traceDurBucket(int64(q.MinTraceDuration))),
			hi: binary.BigEndian.AppendUint16([]byte{termTraceDur}, hi),
		})
	}
	return out
}

// traceDurationHolds checks the whole-trace duration bounds of q.
func (q *Query) traceDurationHolds(d time.Duration) bool {
	return (q.MinTraceDuration <= 0 || d >= q.MinTraceDuration) && (q.MaxTraceDuration <= 0 || d <= q.MaxTraceDuration)
}

// admits reports whether a partition with this filter may match every
// clause; range clauses are not checked.
func (f *termFilter) admits(clauses []clause) bool {
	for _, c := range clauses {
		if c.lo != nil {
			continue
		}
		found := false
		for _, t := range c.terms {
			if f.mayContain(t) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// candidates intersects the clauses in partition p; nil means no clause
// (every trace of the partition).
func (s *Store) candidates(p uint32, clauses []clause) (*roaring.Bitmap, error) {
	var acc *roaring.Bitmap
	for _, c := range clauses {
		var (
			bm  *roaring.Bitmap
			err error
		)
		if c.lo != nil {
			bm, err = s.rangePostings(p, c.lo, c.hi)
		} else {
			bm = roaring.New()
			for _, t := range c.terms {
				one, err := s.postings(p, t)
				if err != nil {
					return nil, err
				}
				bm.Or(one)
			}
		}
		if err != nil {
			return nil, err
		}
		if acc == nil {
			acc = bm
		} else {
			acc.And(bm)
		}
		if acc.IsEmpty() {
			return acc, nil
		}
	}
	return acc, nil
}

// rangePostings returns the union of the postings of every term in
// [lo, hi] in partition p, with one scan.
func (s *Store) rangePostings(p uint32, lo, hi []byte) (*roaring.Bitmap, error) {
	lower := keys.AppendTracePostingsTermStart(nil, p, lo)
	upper := keys.PrefixEnd(keys.AppendTracePostingsTermStart(nil, p, hi))
	return s.unionScan(lower, upper)
}

// unionScan ORs every postings segment with a key in [lower, upper).
func (s *Store) unionScan(lower, upper []byte) (*roaring.Bitmap, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("tracestore: postings: %w", err)
	}
	acc, seg := roaring.New(), roaring.New()
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("tracestore: postings: %w", err)
		}
		seg.Clear()
		if err := seg.UnmarshalBinary(v); err != nil {
			it.Close()
			return nil, corruptf("postings segment %x: %v", it.Key(), err)
		}
		acc.Or(seg)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("tracestore: postings: %w", err)
	}
	return acc, nil
}

// postings returns the union of every segment of term in partition p.
func (s *Store) postings(p uint32, term []byte) (*roaring.Bitmap, error) {
	lo := keys.AppendTracePostingsTermPrefix(nil, p, term)
	return s.unionScan(lo, keys.PrefixEnd(lo))
}

func (s *Store) traceByOrdinal(rb *readBuf, p, ord uint32) (TraceID, bool, error) {
	var id TraceID
	rb.key = keys.AppendTraceByOrdinalKey(rb.key[:0], p, ord)
	v, closer, err := s.db.Get(rb.key)
	if errors.Is(err, pebble.ErrNotFound) {
		return id, false, nil
	}
	if err != nil {
		return id, false, fmt.Errorf("tracestore: trace of ordinal %d/%d: %w", p, ord, err)
	}
	defer closer.Close()
	if len(v) != len(id) {
		return id, false, corruptf("ordinal %d/%d maps to %d bytes", p, ord, len(v))
	}
	copy(id[:], v)
	return id, true, nil
}

// partitionsIn returns, ascending, the partitions with data that overlap
// [start, end] (zero bounds are open).
func (s *Store) partitionsIn(start, end int64) []uint32 {
	s.pmu.RLock()
	defer s.pmu.RUnlock()
	lo, hi := uint32(0), ^uint32(0)
	if start > 0 {
		lo = s.partitionOf(start)
	}
	if end > 0 {
		hi = s.partitionOf(end)
	}
	i, _ := slices.BinarySearch(s.partList, lo)
	var out []uint32
	for ; i < len(s.partList) && s.partList[i] <= hi; i++ {
		out = append(out, s.partList[i])
	}
	return out
}

// matcher checks query conditions on spans; it keeps a scratch buffer for
// canonical strings.
type matcher struct{ buf []byte }

func (m *matcher) matchAny(q *Query, spans []Span) bool {
	for i := range spans {
		if m.matchSpan(q, &spans[i]) {
			return true
		}
	}
	return false
}

func (m *matcher) matchSpan(q *Query, sp *Span) bool {
	if q.Service != "" && sp.Service() != q.Service {
		return false
	}
	if q.Operation != "" && sp.Name != q.Operation {
		return false
	}
	d := sp.Duration()
	if q.MinDuration > 0 && d < int64(q.MinDuration) {
		return false
	}
	if q.MaxDuration > 0 && d > int64(q.MaxDuration) {
		return false
	}
	if q.Start != 0 && sp.StartTime < q.Start {
		return false
	}
	if q.End != 0 && sp.StartTime > q.End {
		return false
	}
	for k, v := range q.Attributes {
		if !m.hasAttr(sp, k, v) {
			return false
		}
	}
	return true
}

func (m *matcher) hasAttr(sp *Span, k, v string) bool {
	if m.in(sp.Attributes, k, v) || m.in(sp.Resource.Attributes, k, v) || m.in(sp.Scope.Attributes, k, v) {
		return true
	}
	for i := range sp.Events {
		if m.in(sp.Events[i].Attributes, k, v) {
			return true
		}
	}
	for i := range sp.Links {
		if m.in(sp.Links[i].Attributes, k, v) {
			return true
		}
	}
	return false
}

func (m *matcher) in(kvs []KeyValue, k, v string) bool {
	for i := range kvs {
		if kvs[i].Key != k {
			continue
		}
		val := &kvs[i].Value
		if val.kind == ValueString {
			if val.str == v {
				return true
			}
			continue
		}
		m.buf = val.appendCanonical(m.buf[:0])
		if string(m.buf) == v {
			return true
		}
	}
	return false
}

// summarize builds the summary of a trace from its spans.
func summarize(id TraceID, spans []Span) TraceSummary {
	sum := TraceSummary{TraceID: id, SpanCount: len(spans)}
	if len(spans) == 0 {
		return sum
	}
	ids := make(map[SpanID]struct{}, len(spans))
	for i := range spans {
		ids[spans[i].SpanID] = struct{}{}
	}
	start, end := spans[0].StartTime, spans[0].EndTime
	root := -1
	svcs := make(map[string]struct{})
	for i := range spans {
		sp := &spans[i]
		start, end = min(start, sp.StartTime), max(end, sp.EndTime)
		if sp.Status.Code == StatusError {
			sum.Error = true
		}
		svcs[sp.Service()] = struct{}{}
		_, hasParent := ids[sp.ParentSpanID]
		isRoot := sp.ParentSpanID.IsZero() || !hasParent
		if isRoot && (root < 0 || rootBefore(sp, &spans[root])) {
			root = i
		}
	}
	if root < 0 { // every span has a parent in the trace: a cycle
		root = 0
	}
	sum.RootService, sum.RootOperation = spans[root].Service(), spans[root].Name
	sum.Start, sum.Duration = start, time.Duration(end-start)
	for svc := range svcs {
		sum.Services = append(sum.Services, svc)
	}
	slices.Sort(sum.Services)
	return sum
}

// rootBefore orders root candidates: true roots (zero parent) before
// orphans, then earlier start.
func rootBefore(a, b *Span) bool {
	az, bz := a.ParentSpanID.IsZero(), b.ParentSpanID.IsZero()
	if az != bz {
		return az
	}
	return a.StartTime < b.StartTime
}

// Services returns every service with stored spans, sorted.
func (s *Store) Services(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	return s.serviceList()
}

// serviceList reads the `t v` keys.
func (s *Store) serviceList() ([]string, error) {
	lo := keys.AppendPrefix(nil, keys.StoreTraces, keys.KindTraceService)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	if err != nil {
		return nil, fmt.Errorf("tracestore: services: %w", err)
	}
	var out []string
	for it.First(); it.Valid(); it.Next() {
		svc, err := keys.ParseTraceServiceKey(it.Key())
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("tracestore: services: %w", err)
		}
		out = append(out, svc)
	}
	return out, errors.Join(it.Error(), it.Close())
}

// Operation is a span name used by a service, with its span kind.
type Operation struct {
	Name string
	Kind SpanKind
}

// Operations returns the operations of service, sorted by name then kind.
func (s *Store) Operations(ctx context.Context, service string) ([]Operation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	lo := keys.AppendTraceOperationPrefix(nil, service)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	if err != nil {
		return nil, fmt.Errorf("tracestore: operations: %w", err)
	}
	var out []Operation
	for it.First(); it.Valid(); it.Next() {
		_, name, kind, err := keys.ParseTraceOperationKey(it.Key())
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("tracestore: operations: %w", err)
		}
		out = append(out, Operation{Name: name, Kind: SpanKind(kind)})
	}
	return out, errors.Join(it.Error(), it.Close())
}

// EnforceRetention drops every partition whose whole time range is older
// than Now()-Retention: its index with range deletes, and each of its
// traces' blocks of that partition with one range delete per trace, and
// the exemplars of spans older than the cutoff. A block is filed under the
// partition of its earliest span, so a Write whose spans of one trace
// straddle a partition boundary is dropped with the older partition. It
// returns how many partitions were dropped; with Retention 0 it does
// nothing.
func (s *Store) EnforceRetention(ctx context.Context) (int, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	defer s.end()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.enforceRetentionLocked(ctx)
}

func (s *Store) enforceRetentionLocked(ctx context.Context) (int, error) {
	if s.opts.Retention <= 0 {
		return 0, nil
	}
	cutoff := s.opts.Now().Add(-s.opts.Retention).UnixNano()
	s.pmu.RLock()
	var drop []uint32
	for _, p := range s.partList {
		if (int64(p)+1)*s.partDur <= cutoff {
			drop = append(drop, p)
		}
	}
	s.pmu.RUnlock()
	for _, p := range drop {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := s.dropPartition(p); err != nil {
			return 0, err
		}
	}
	if len(drop) > 0 {
		if err := s.dropExemplars(cutoff); err != nil {
			return len(drop), err
		}
	}
	return len(drop), nil
}

// dropExemplars deletes every exemplar of a span that started before
// cutoff, one range delete per operation.
func (s *Store) dropExemplars(cutoff int64) error {
	lo := keys.AppendPrefix(nil, keys.StoreTraces, keys.KindTraceOperation)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("tracestore: drop exemplars: %w", err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	var prev []byte
	for it.First(); it.Valid(); it.Next() {
		svc, name, _, err := keys.ParseTraceOperationKey(it.Key())
		if err != nil {
			it.Close()
			return fmt.Errorf("tracestore: drop exemplars: %w", err)
		}
		p := keys.AppendTraceExemplarPrefix(nil, svc, name)
		if bytes.Equal(p, prev) { // the same operation with another kind
			continue
		}
		prev = p
		start := keys.AppendInt64(append([]byte(nil), p...), math.MinInt64)
		end := keys.AppendInt64(append([]byte(nil), p...), cutoff)
		if err := b.DeleteRange(start, end, nil); err != nil {
			it.Close()
			return err
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("tracestore: drop exemplars: %w", err)
	}
	return b.Commit(kv.WriteOptions)
}

// dropPartition deletes partition p; wmu must be held.
func (s *Store) dropPartition(p uint32) error {
	b := s.db.NewBatch()
	defer b.Close()
	lo := keys.AppendTracePartitionPrefix(nil, keys.KindTraceByOrdinal, p)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("tracestore: drop partition %d: %w", p, err)
	}
	var k []byte
	for it.First(); it.Valid(); it.Next() {
		var id TraceID
		if len(it.Value()) != len(id) {
			it.Close()
			return corruptf("ordinal key %x maps to %d bytes", it.Key(), len(it.Value()))
		}
		copy(id[:], it.Value())
		k = keys.AppendTraceSpansPartitionPrefix(k[:0], id, p)
		if err := b.DeleteRange(k, keys.PrefixEnd(k), nil); err != nil {
			it.Close()
			return err
		}
		// A trace whose every span started before the next partition has
		// nothing left once this one (and every older one) is gone.
		k = keys.AppendTraceExtentKey(k[:0], id)
		_, last, found, err := s.readExtent(k)
		if err != nil {
			it.Close()
			return err
		}
		if found && last < (int64(p)+1)*s.partDur {
			if err := b.Delete(k, nil); err != nil {
				it.Close()
				return err
			}
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("tracestore: drop partition %d: %w", p, err)
	}
	for _, kind := range []byte{keys.KindTracePostings, keys.KindTraceOrdinal, keys.KindTraceByOrdinal, keys.KindTracePartition, keys.KindTraceFilter} {
		k = keys.AppendTracePartitionPrefix(k[:0], kind, p)
		if err := b.DeleteRange(k, keys.PrefixEnd(k), nil); err != nil {
			return err
		}
	}
	if err := b.Commit(kv.WriteOptions); err != nil {
		return fmt.Errorf("tracestore: drop partition %d: %w", p, err)
	}
	delete(s.parts, p)
	delete(s.partGen, p)
	s.pmu.Lock()
	if i, ok := slices.BinarySearch(s.partList, p); ok {
		s.partList = slices.Delete(s.partList, i, i+1)
	}
	delete(s.filters, p)
	s.pmu.Unlock()
	return nil
}
