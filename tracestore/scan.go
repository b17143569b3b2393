package tracestore

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
)

// traceScan checks a query against a trace and summarizes it straight from
// its span blocks, without building spans: Find reads many candidate
// traces, most of which it drops, and keeps only a summary of the rest.
// Its verdict and summary equal matcher.matchAny and summarize on the
// decoded spans; it rejects exactly the blocks decode rejects.
type traceScan struct {
	q      *Query
	qk, qv []string // the query's attributes, sorted by key
	all    uint64   // one bit per query attribute
	buf    []byte   // canonical strings

	// Per block: each resource's service and the query attributes each
	// resource and scope holds.
	resSvc  []string
	resMask []uint64
	scMask  []uint64
	// strQ maps each entry of the block's string table to 1 + the index
	// of the query attribute key it spells, or 0.
	strQ []uint8

	// Per trace.
	recs    []scanSpan
	ids     map[SpanID]struct{}
	svcs    map[string]struct{}
	matched bool
	errored bool
	start   int64
	end     int64
}

// scanSpan is what the summary needs of one span.
type scanSpan struct {
	id, parent SpanID
	start      int64
	svc, name  string
}

// maxScanAttrs is the most query attributes traceScan handles (one bit
// each); Find decodes spans for a query with more.
const maxScanAttrs = 64

func newTraceScan() *traceScan {
	return &traceScan{ids: make(map[SpanID]struct{}), svcs: make(map[string]struct{})}
}

// setQuery prepares for q, which has at most maxScanAttrs attributes.
func (ts *traceScan) setQuery(q *Query) {
	ts.q = q
	ts.qk, ts.qv = ts.qk[:0], ts.qv[:0]
	for k := range q.Attributes {
		ts.qk = append(ts.qk, k)
	}
	slices.Sort(ts.qk)
	for _, k := range ts.qk {
		ts.qv = append(ts.qv, q.Attributes[k])
	}
	ts.all = 1<<len(ts.qk) - 1
	if len(ts.qk) == 64 {
		ts.all = ^uint64(0)
	}
}

// reset forgets the previous trace.
func (ts *traceScan) reset() {
	ts.recs = ts.recs[:0]
	clear(ts.svcs)
	ts.matched, ts.errored = false, false
}

// kvMask returns the query attributes found in kvs.
func (ts *traceScan) kvMask(kvs []KeyValue) uint64 {
	var m uint64
	for i := range kvs {
		j, ok := slices.BinarySearch(ts.qk, kvs[i].Key)
		if !ok {
			continue
		}
		v := &kvs[i].Value
		if v.kind == ValueString {
			if v.str == ts.qv[j] {
				m |= 1 << j
			}
			continue
		}
		ts.buf = v.appendCanonical(ts.buf[:0])
		if string(ts.buf) == ts.qv[j] {
			m |= 1 << j
		}
	}
	return m
}

// scanAttrs reads an attribute list and returns the query attributes in it.
func (bd *blockDecoder) scanAttrs(ts *traceScan) uint64 {
	n := bd.count("attribute", 1)
	var m uint64
	for range n {
		head := bd.d.Uvarint()
		k := ValueKind(head & 7)
		j, ok := -1, false
		if si := head >> 3; si < uint64(len(ts.strQ)) {
			j = int(ts.strQ[si]) - 1
			ok = j >= 0
		} else {
			bd.strAt(si) // fails: outside the table
		}
		switch {
		case !ok:
			bd.skipBody(k, 0)
		case k == ValueString:
			if bd.str() == ts.qv[j] {
				m |= 1 << j
			}
		default:
			v := bd.valueBody(k, 0)
			if !bd.failed() {
				ts.buf = v.appendCanonical(ts.buf[:0])
				if string(ts.buf) == ts.qv[j] {
					m |= 1 << j
				}
			}
		}
		if bd.failed() {
			return 0
		}
	}
	return m
}

// skipBody reads a value body as valueBody does, keeping nothing.
func (bd *blockDecoder) skipBody(k ValueKind, depth int) {
	if depth > maxValueDepth {
		bd.fail(corruptf("values nested deeper than %d", maxValueDepth))
		return
	}
	switch k {
	case ValueEmpty:
	case ValueString:
		bd.str()
	case ValueBool:
		if b := bd.d.Byte(); b > 1 {
			bd.fail(corruptf("bool value byte %d", b))
		}
	case ValueInt64:
		bd.d.Varint()
	case ValueFloat64:
		bd.float()
	case ValueBytes:
		bd.d.Bytes()
	case ValueArray:
		n := bd.count("array element", 1)
		for range n {
			bd.skipBody(ValueKind(bd.d.Byte()), depth+1)
			if bd.failed() {
				return
			}
		}
	case ValueMap:
		n := bd.count("attribute", 1)
		for range n {
			head := bd.d.Uvarint()
			bd.strAt(head >> 3)
			bd.skipBody(ValueKind(head&7), depth+1)
			if bd.failed() {
				return
			}
		}
	default:
		bd.fail(corruptf("unknown value kind %d", k))
	}
}

// scanBlock adds the spans of one block payload to ts.
func (bd *blockDecoder) scanBlock(ts *traceScan, payload []byte) error {
	n, base, err := bd.header(payload)
	if err != nil {
		return err
	}
	ts.resSvc, ts.resMask, ts.scMask = ts.resSvc[:0], ts.resMask[:0], ts.scMask[:0]
	ts.strQ = slices.Grow(ts.strQ[:0], len(bd.strs))[:len(bd.strs)]
	clear(ts.strQ)
	if len(ts.qk) > 0 {
		for i, str := range bd.strs {
			if j, ok := slices.BinarySearch(ts.qk, str); ok {
				ts.strQ[i] = uint8(j + 1)
			}
		}
	}
	for i := range bd.res {
		svc := ""
		for _, kv := range bd.res[i].Attributes {
			if kv.Key == ServiceNameKey {
				svc = kv.Value.String()
				break
			}
		}
		ts.resSvc = append(ts.resSvc, svc)
		ts.resMask = append(ts.resMask, ts.kvMask(bd.res[i].Attributes))
	}
	for i := range bd.scopes {
		ts.scMask = append(ts.scMask, ts.kvMask(bd.scopes[i].Attributes))
	}
	first := len(ts.recs)
	var skip [16]byte
	for i := range n {
		var rec scanSpan
		bd.id(rec.id[:])
		if ref := bd.parent(i, rec.parent[:]); ref >= 0 {
			rec.parent = ts.recs[first+ref].id
		}
		mask := bd.d.Byte()
		head := bd.d.Uvarint()
		rec.name = bd.strAt(head >> 3)
		if head&7 == kindEscape {
			bd.d.Byte()
		}
		rec.start = base + bd.d.Varint()
		end := rec.start + bd.d.Varint()
		ri, si := bd.d.Uvarint(), bd.d.Uvarint()
		if bd.failed() {
			break
		}
		if ri >= uint64(len(bd.res)) || si >= uint64(len(bd.scopes)) {
			bd.fail(corruptf("span %d refers to resource %d / scope %d of %d / %d", i, ri, si, len(bd.res), len(bd.scopes)))
			break
		}
		am := ts.resMask[ri] | ts.scMask[si] | bd.scanAttrs(ts)
		if mask&hasTraceState != 0 {
			bd.str()
		}
		if mask&hasFlags != 0 {
			bd.u32()
		}
		if mask&hasDroppedAttrs != 0 {
			bd.u32()
		}
		if mask&hasEvents != 0 {
			ne := bd.count("event", 4)
			for range ne {
				bd.d.Varint()
				bd.str()
				am |= bd.scanAttrs(ts)
				bd.u32()
			}
		}
		if mask&hasDroppedEvents != 0 {
			bd.u32()
		}
		if mask&hasLinks != 0 {
			nl := bd.count("link", 13)
			for j := range nl {
				switch bd.d.Byte() {
				case 0:
				case 1:
					bd.id(skip[:16])
				default:
					bd.fail(corruptf("span %d link %d has an unknown trace tag", i, j))
				}
				bd.id(skip[:8])
				bd.str()
				bd.u32()
				am |= bd.scanAttrs(ts)
				bd.u32()
			}
		}
		if mask&hasDroppedLinks != 0 {
			bd.u32()
		}
		var status byte
		if mask&hasStatus != 0 {
			status = bd.d.Byte()
			bd.str()
		}
		if bd.failed() {
			break
		}
		rec.svc = ts.resSvc[ri]
		if !ts.matched && am == ts.all && ts.spanMatches(&rec, end) {
			ts.matched = true
		}
		if len(ts.recs) == 0 {
			ts.start, ts.end = rec.start, end
		} else {
			ts.start, ts.end = min(ts.start, rec.start), max(ts.end, end)
		}
		if StatusCode(status) == StatusError {
			ts.errored = true
		}
		ts.svcs[rec.svc] = struct{}{}
		ts.recs = append(ts.recs, rec)
	}
	if bd.failed() {
		ts.recs = ts.recs[:first]
		return bd.error()
	}
	if bd.d.Len() != 0 {
		ts.recs = ts.recs[:first]
		return corruptf("%d bytes after the last span", bd.d.Len())
	}
	return nil
}

// spanMatches checks the query's span conditions other than attributes,
// as matcher.matchSpan does.
func (ts *traceScan) spanMatches(r *scanSpan, end int64) bool {
	q := ts.q
	if q.Service != "" && r.svc != q.Service {
		return false
	}
	if q.Operation != "" && r.name != q.Operation {
		return false
	}
	d := end - r.start
	if q.MinDuration > 0 && d < int64(q.MinDuration) {
		return false
	}
	if q.MaxDuration > 0 && d > int64(q.MaxDuration) {
		return false
	}
	if q.Start != 0 && r.start < q.Start {
		return false
	}
	if q.End != 0 && r.start > q.End {
		return false
	}
	return true
}

// summary summarizes the trace scanned, as summarize does.
func (ts *traceScan) summary(id TraceID) TraceSummary {
	sum := TraceSummary{TraceID: id, SpanCount: len(ts.recs)}
	if len(ts.recs) == 0 {
		return sum
	}
	clear(ts.ids)
	for i := range ts.recs {
		ts.ids[ts.recs[i].id] = struct{}{}
	}
	root := -1
	for i := range ts.recs {
		r := &ts.recs[i]
		_, hasParent := ts.ids[r.parent]
		if (r.parent.IsZero() || !hasParent) && (root < 0 || recRootBefore(r, &ts.recs[root])) {
			root = i
		}
	}
	if root < 0 {
		root = 0
	}
	sum.RootService, sum.RootOperation = ts.recs[root].svc, ts.recs[root].name
	sum.Start, sum.Duration = ts.start, time.Duration(ts.end-ts.start)
	sum.Error = ts.errored
	sum.Services = make([]string, 0, len(ts.svcs))
	for svc := range ts.svcs {
		sum.Services = append(sum.Services, svc)
	}
	slices.Sort(sum.Services)
	return sum
}

// recRootBefore is rootBefore for scanned spans.
func recRootBefore(a, b *scanSpan) bool {
	az, bz := a.parent.IsZero(), b.parent.IsZero()
	if az != bz {
		return az
	}
	return a.start < b.start
}

// scanTrace runs ts over every block of trace id and reports whether a
// span matched.
func (s *Store) scanTrace(rb *readBuf, id TraceID, ts *traceScan) (bool, error) {
	ts.reset()
	rb.key = keys.AppendTraceSpansPrefix(rb.key[:0], id)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: rb.key, UpperBound: keys.PrefixEnd(rb.key)})
	if err != nil {
		return false, fmt.Errorf("tracestore: read trace %s: %w", id, err)
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return false, fmt.Errorf("tracestore: read trace %s: %w", id, err)
		}
		rb.payload, err = encoding.DecodeBlock(rb.payload[:0], v)
		if err == nil {
			err = rb.dec.scanBlock(ts, rb.payload)
		}
		if err != nil {
			it.Close()
			return false, fmt.Errorf("tracestore: trace %s block %x: %w", id, it.Key(), err)
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return false, fmt.Errorf("tracestore: read trace %s: %w", id, err)
	}
	return ts.matched, nil
}
