package logindex

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
)

// RecordID names a stored record: its partition and its ordinal there.
type RecordID struct {
	Partition uint32
	Ordinal   uint32
}

// Hit is a record a query found, with where it is stored.
type Hit struct {
	Record
	ID RecordID
}

// Bucket is the number of matches in [Start, Start+step).
type Bucket struct {
	Start int64
	Count uint64
}

// ValueCount is one value of a field and how many matches carry it.
type ValueCount struct {
	Value string
	Count uint64
}

// maxBuckets bounds Count's result size.
const maxBuckets = 1 << 20

// partSnap is what a query sees of a partition: the ordinals committed when
// it started and their timestamps.
type partSnap struct {
	id        uint32
	next      uint32
	ts        []int64
	monotonic bool
	pend      map[string]*roaring.Bitmap
	fields    map[string]map[string]*roaring.Bitmap
	start     int64
	firstSeg  uint32 // flushed segments are [firstSeg, segs)
	segs      uint32
	filter    *bloom // segment firstSeg's term filter, when sealed
}

// search is the state of one query: a consistent view of the partitions it
// covers and of Pebble, and reusable buffers.
type search struct {
	ix     *Index
	it     *pebble.Iterator
	parts  []partSnap // ascending by id
	root   *node
	t0, t1 int64
	budget int // records a non-narrowing query may still examine; -1 = unbounded
	key    []byte
	keyHi  []byte
	fkey   []byte // a filter key
	tmp    *roaring.Bitmap
	u      *roaring.Bitmap // every ordinal of the current partition, lazily
	drop   []uint32

	// the block last read
	blkOK      bool
	blkPart    uint32
	blkFirst   uint32
	br         *blockReader // current block; shared with the cache, read only
	tokz       Tokenizer
	cr         chunkReader
	psc        postingsScratch
	ftok       []byte
	arena      []byte
	offs       []int
	leaves     map[*node]*roaring.Bitmap
	needVerify bool
}

func (ix *Index) begin(ctx context.Context, query string, t0, t1 int64) (*search, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if t1 <= t0 {
		return nil, fmt.Errorf("%w: [%d, %d) is empty", ErrBadRange, t0, t1)
	}
	q, err := ParseQuery(query)
	if err != nil {
		return nil, err
	}
	s := &search{ix: ix, root: q.root, t0: t0, t1: t1, budget: -1, tmp: roaring.New(),
		leaves: map[*node]*roaring.Bitmap{}, needVerify: q.root.hasPhrase()}
	if !q.root.narrows() {
		s.budget = ix.opts.MaxScan
	}
	lo, hi := ix.partitionOf(t0), ix.partitionOf(t1-1)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return nil, ErrClosed
	}
	for id, p := range ix.parts {
		if id < lo || id > hi || p.next == 0 {
			continue
		}
		s.parts = append(s.parts, partSnap{id: id, next: p.next, ts: p.ts[:p.next:p.next],
			monotonic: p.monotonic, pend: p.pend, fields: p.pendFields, start: ix.partitionStart(id),
			firstSeg: p.firstSeg, segs: p.nextSeg, filter: p.filter})
	}
	slices.SortFunc(s.parts, func(a, b partSnap) int { return cmp.Compare(a.id, b.id) })
	// The iterator is created under the same lock as the snapshot, so a
	// flush is either wholly before it (postings in Pebble) or after it
	// (postings in the snapshotted pending map).
	it, err := ix.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{keys.StoreLogs},
		UpperBound: []byte{keys.StoreLogs + 1},
	})
	if err != nil {
		return nil, fmt.Errorf("logindex: query: %w", err)
	}
	s.it = it
	return s, nil
}

func (s *search) close() { _ = s.it.Close() }

// all returns every ordinal of p's snapshot, built once per partition and
// only for the queries that need it (NOT, *).
func (s *search) all(p *partSnap) *roaring.Bitmap {
	if s.u == nil {
		s.u = roaring.New()
		s.u.AddRange(0, uint64(p.next))
	}
	return s.u
}

// inTime keeps the ordinals of c whose timestamps lie in [t0, t1). Querying
// the whole partition first and filtering by time last gives the same
// answer (intersection distributes over AND, OR and NOT) and costs only
// the candidates, not the partition.
func (s *search) inTime(p *partSnap, c *roaring.Bitmap) {
	if s.t0 <= p.start && p.start+s.ix.partDur <= s.t1 || c.IsEmpty() {
		return
	}
	if p.monotonic {
		lo := sort.Search(len(p.ts), func(i int) bool { return p.ts[i] >= s.t0 })
		hi := sort.Search(len(p.ts), func(i int) bool { return p.ts[i] >= s.t1 })
		c.RemoveRange(0, uint64(lo))
		c.RemoveRange(uint64(hi), 1<<32)
		return
	}
	s.drop = s.drop[:0]
	it := c.Iterator()
	for it.HasNext() {
		o := it.Next()
		if t := p.ts[o]; t < s.t0 || t >= s.t1 {
			s.drop = append(s.drop, o)
		}
	}
	for _, o := range s.drop {
		c.Remove(o)
	}
}

// postings returns the exact postings of a leaf in partition p: the union
// of its flushed segments and its pending in-memory postings.
func (s *search) postings(p *partSnap, n *node) (*roaring.Bitmap, error) {
	out := roaring.New()
	var prefix bool
	switch n.kind {
	case nodeTerm, nodePrefix:
		prefix = n.kind == nodePrefix
		seg := p.firstSeg
		if !prefix && p.filter != nil && !p.filter.mayContain(s.termHash('t', n.value, "")) {
			seg++ // the sealed segment does not hold the token
		}
		for ; seg < p.segs; seg++ {
			if err := s.tokenPostings(out, p.id, seg, n.value, prefix); err != nil {
				return nil, err
			}
		}
	case nodeField, nodeFieldPrefix:
		prefix = n.kind == nodeFieldPrefix
		if !prefix && p.filter != nil && p.firstSeg+1 == p.segs &&
			!p.filter.mayContain(s.termHash('f', n.field, n.value)) {
			break // the partition's one segment does not hold the value
		}
		if prefix {
			s.key = keys.AppendLogFieldRange(s.key[:0], p.id, unsafeBytes(n.field), n.value)
		} else {
			s.key = keys.AppendLogFieldPrefix(s.key[:0], p.id, unsafeBytes(n.field), unsafeBytes(n.value))
		}
		for valid := s.it.SeekGE(s.key); valid && bytes.HasPrefix(s.it.Key(), s.key); valid = s.it.Next() {
			v, err := s.it.ValueAndErr()
			if err != nil {
				return nil, fmt.Errorf("logindex: postings: %w", err)
			}
			if err := s.orPostings(out, v); err != nil {
				return nil, fmt.Errorf("logindex: postings of %q in partition %d: %w", s.it.Key(), p.id, err)
			}
		}
		if err := s.it.Error(); err != nil {
			return nil, fmt.Errorf("logindex: postings: %w", err)
		}
	}
	// Pending postings, keyed as the builder keys them.
	s.keyHi = s.keyHi[:0]
	switch n.kind {
	case nodeTerm, nodePrefix:
		s.keyHi = append(append(s.keyHi, 't'), n.value...)
	default:
		s.keyHi = append(append(s.keyHi, 'f'), n.field...)
		s.keyHi = append(append(s.keyHi, 0), n.value...)
	}
	s.ix.mu.RLock()
	if !prefix {
		if bm := p.pend[unsafeString(s.keyHi)]; bm != nil {
			out.Or(bm)
		}
	} else if n.kind == nodeFieldPrefix {
		for v, bm := range p.fields[n.field] {
			if strings.HasPrefix(v, n.value) {
				out.Or(bm)
			}
		}
	} else {
		pfx := unsafeString(s.keyHi)
		for k, bm := range p.pend {
			if strings.HasPrefix(k, pfx) {
				out.Or(bm)
			}
		}
	}
	s.ix.mu.RUnlock()
	return out, nil
}

// termHash returns the filter hash of a term spelled as the postings
// builder keys it: kind 't' and a token, or kind 'f', a field and a value.
func (s *search) termHash(kind byte, a, b string) uint64 {
	s.fkey = append(append(s.fkey[:0], kind), a...)
	if kind == 'f' {
		s.fkey = append(append(s.fkey, 0), b...)
	}
	return bloomHash(s.fkey)
}

// orPostings ORs the postings value v into out; the first value of a
// leaf, the common case, is decoded in place rather than copied.
func (s *search) orPostings(out *roaring.Bitmap, v []byte) error {
	if out.IsEmpty() {
		return decodePostings(out, v, &s.psc)
	}
	if err := decodePostings(s.tmp, v, &s.psc); err != nil {
		return err
	}
	out.Or(s.tmp)
	return nil
}

// tokenPostings ORs into out the postings of token tok (every token
// starting with tok if prefix) in segment seg of part: one seek to the
// chunk that would hold it, then, for a prefix, the chunks after it.
func (s *search) tokenPostings(out *roaring.Bitmap, part, seg uint32, tok string, prefix bool) error {
	segKey := keys.AppendLogTokenSegment(s.keyHi[:0], part, seg)
	s.keyHi = segKey
	s.key = keys.AppendLogTokenChunk(s.key[:0], part, seg, unsafeBytes(tok))
	valid := s.it.SeekGE(s.key)
	if !valid || !bytes.Equal(s.it.Key(), s.key) {
		// The chunk holding tok starts before it.
		valid = s.it.Prev()
	}
	if !valid || !bytes.HasPrefix(s.it.Key(), segKey) {
		// tok sorts before the segment's first chunk.
		valid = s.it.SeekGE(segKey)
	}
	for first := true; valid && bytes.HasPrefix(s.it.Key(), segKey); valid, first = s.it.Next(), false {
		if !first {
			// A later chunk can only hold tok's prefix matches if its
			// first token starts with tok.
			_, _, ft, err := keys.ParseLogTokenChunk(s.ftok[:0], s.it.Key())
			if err != nil {
				return fmt.Errorf("logindex: token chunk key: %w", err)
			}
			s.ftok = ft
			if !prefix || !bytes.HasPrefix(ft, unsafeBytes(tok)) {
				break
			}
		}
		v, err := s.it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("logindex: postings: %w", err)
		}
		s.cr.reset(v)
		for s.cr.next() {
			c := bytes.Compare(s.cr.tok, unsafeBytes(tok))
			if prefix && bytes.HasPrefix(s.cr.tok, unsafeBytes(tok)) || !prefix && c == 0 {
				if err := s.orPostings(out, s.cr.postings); err != nil {
					return fmt.Errorf("logindex: postings of %q in partition %d: %w", s.cr.tok, part, err)
				}
				if !prefix {
					return nil
				}
			} else if c > 0 {
				if !prefix || !bytes.HasPrefix(s.cr.tok, unsafeBytes(tok)) {
					return s.cr.err
				}
			}
		}
		if s.cr.err != nil {
			return fmt.Errorf("logindex: token chunk in partition %d: %w", part, s.cr.err)
		}
		if !prefix {
			return nil
		}
	}
	if err := s.it.Error(); err != nil {
		return fmt.Errorf("logindex: postings: %w", err)
	}
	return nil
}

// eval returns, for partition p with universe u, a superset of n's matches
// when positive and a subset when not; both are exact unless n holds a
// phrase. Leaves' exact postings are kept in s.leaves for verification.
func (s *search) eval(p *partSnap, n *node, positive bool) (*roaring.Bitmap, error) {
	switch n.kind {
	case nodeAll:
		return s.all(p).Clone(), nil
	case nodeTerm, nodePrefix, nodeField, nodeFieldPrefix:
		bm, err := s.postings(p, n)
		if err != nil {
			return nil, err
		}
		// Pending postings may hold ordinals written after the snapshot.
		bm.RemoveRange(uint64(p.next), 1<<32)
		s.leaves[n] = bm
		return bm, nil // callers must not modify it
	case nodePhrase:
		var bm *roaring.Bitmap
		for _, t := range n.tokens {
			tb, err := s.postings(p, &node{kind: nodeTerm, value: t})
			if err != nil {
				return nil, err
			}
			if bm == nil {
				bm = tb
				bm.RemoveRange(uint64(p.next), 1<<32)
			} else {
				bm.And(tb)
			}
			if bm.IsEmpty() {
				break
			}
		}
		s.leaves[n] = bm
		if !positive {
			return roaring.New(), nil
		}
		return bm.Clone(), nil
	case nodeNot:
		kid, err := s.eval(p, n.kids[0], !positive)
		if err != nil {
			return nil, err
		}
		return roaring.AndNot(s.all(p), kid), nil
	case nodeAnd:
		var out *roaring.Bitmap
		for _, k := range n.kids {
			bm, err := s.eval(p, k, positive)
			if err != nil {
				return nil, err
			}
			if out == nil {
				// Leaves are kept for verification: never modify them.
				out = bm.Clone()
			} else {
				out.And(bm)
			}
		}
		return out, nil
	case nodeOr:
		out := roaring.New()
		for _, k := range n.kids {
			bm, err := s.eval(p, k, positive)
			if err != nil {
				return nil, err
			}
			out.Or(bm)
		}
		return out, nil
	}
	return nil, fmt.Errorf("logindex: unknown query node %d", n.kind)
}

// candidates returns the ordinals of p that may match (exactly those that
// match when the query has no phrase).
func (s *search) candidates(p *partSnap) (*roaring.Bitmap, error) {
	clear(s.leaves)
	s.u = nil
	if n := len(p.ts); n == 0 || p.monotonic && (p.ts[0] >= s.t1 || p.ts[n-1] < s.t0) {
		return roaring.New(), nil
	}
	c, err := s.eval(p, s.root, true)
	if err != nil {
		return nil, err
	}
	s.inTime(p, c)
	return c, nil
}

// spend charges n examined records to a non-narrowing query's budget.
func (s *search) spend(n uint64) error {
	if s.budget < 0 {
		return nil
	}
	if n > uint64(s.budget) {
		return fmt.Errorf("%w (%d)", ErrScanLimit, s.ix.opts.MaxScan)
	}
	s.budget -= int(n)
	return nil
}

// loadBlock makes the block holding (part, ord) current.
func (s *search) loadBlock(part, ord uint32) error {
	if s.blkOK && s.blkPart == part && ord >= s.blkFirst && uint64(ord) < uint64(s.blkFirst)+uint64(s.br.len()) {
		return nil
	}
	s.blkOK = false
	s.key = keys.AppendLogBlock(s.key[:0], part, ord+1)
	if ord == 1<<32-1 {
		s.key = keys.PrefixEnd(keys.AppendLogPartition(s.key[:0], keys.LogBlock, part))
	}
	if !s.it.SeekLT(s.key) {
		if err := s.it.Error(); err != nil {
			return fmt.Errorf("logindex: read record: %w", err)
		}
		return fmt.Errorf("logindex: record %d of partition %d: %w", ord, part, corruptf("no block holds it"))
	}
	bp, first, err := keys.ParseLogBlock(s.it.Key())
	if err != nil || bp != part {
		return fmt.Errorf("logindex: record %d of partition %d: %w", ord, part, corruptf("no block holds it"))
	}
	id := blockID{part, first}
	br := s.ix.blocks.get(id)
	if br == nil || uint64(ord) >= uint64(first)+uint64(br.len()) {
		// Not cached, or cached from before sealing merged this block
		// with the ones after it: this query's view decides.
		v, err := s.it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("logindex: read record: %w", err)
		}
		// A fresh payload and reader: the cache may hand them to
		// other queries.
		payload, err := encoding.DecodeBlock(nil, v)
		if err != nil {
			return fmt.Errorf("logindex: block %d of partition %d: %w", first, part, err)
		}
		br = &blockReader{}
		if err := br.reset(payload); err != nil {
			return fmt.Errorf("logindex: block %d of partition %d: %w", first, part, err)
		}
		s.ix.blocks.put(id, br)
	}
	if uint64(ord) >= uint64(first)+uint64(br.len()) {
		return fmt.Errorf("logindex: record %d of partition %d: %w", ord, part, corruptf("block %d ends before it", first))
	}
	s.br = br
	s.blkOK, s.blkPart, s.blkFirst = true, part, first
	return nil
}

func (s *search) record(part, ord uint32) (Hit, error) {
	if err := s.loadBlock(part, ord); err != nil {
		return Hit{}, err
	}
	r, err := s.br.record(int(ord - s.blkFirst))
	if err != nil {
		return Hit{}, fmt.Errorf("logindex: record %d of partition %d: %w", ord, part, err)
	}
	return Hit{Record: r, ID: RecordID{Partition: part, Ordinal: ord}}, nil
}

// verify checks a candidate exactly: leaves by their postings, phrases by
// word order in the stored body.
func (s *search) verify(part, ord uint32) (bool, error) {
	if !s.needVerify {
		return true, nil
	}
	if err := s.loadBlock(part, ord); err != nil {
		return false, err
	}
	body, _ := s.br.body(int(ord - s.blkFirst))
	s.arena, s.offs = s.arena[:0], s.offs[:0]
	s.tokz.Reset(body)
	for s.tokz.Next() {
		s.offs = append(s.offs, len(s.arena))
		s.arena = append(s.arena, s.tokz.Token()...)
	}
	s.offs = append(s.offs, len(s.arena))
	return s.match(s.root, ord), nil
}

func (s *search) match(n *node, ord uint32) bool {
	switch n.kind {
	case nodeAll:
		return true
	case nodeTerm, nodePrefix, nodeField, nodeFieldPrefix:
		return s.leaves[n].Contains(ord)
	case nodePhrase:
		return s.leaves[n].Contains(ord) && s.hasPhrase(n.tokens)
	case nodeNot:
		return !s.match(n.kids[0], ord)
	case nodeAnd:
		for _, k := range n.kids {
			if !s.match(k, ord) {
				return false
			}
		}
		return true
	case nodeOr:
		for _, k := range n.kids {
			if s.match(k, ord) {
				return true
			}
		}
	}
	return false
}

// hasPhrase reports whether the tokenized body holds toks consecutively.
func (s *search) hasPhrase(toks []string) bool {
	n := len(s.offs) - 1
outer:
	for i := 0; i+len(toks) <= n; i++ {
		for j, t := range toks {
			if string(s.arena[s.offs[i+j]:s.offs[i+j+1]]) != t {
				continue outer
			}
		}
		return true
	}
	return false
}

// Search returns up to limit records matching query with timestamps in
// [t0, t1), newest first (ties: later-written first). It walks partitions
// newest first and stops at the limit. A query that narrows on no term or
// field examines at most Options.MaxScan records, else ErrScanLimit.
func (ix *Index) Search(ctx context.Context, query string, t0, t1 int64, limit int) ([]Hit, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit %d must be positive", ErrBadRange, limit)
	}
	s, err := ix.begin(ctx, query, t0, t1)
	if err != nil {
		return nil, err
	}
	defer s.close()
	var hits []Hit
	for pi := len(s.parts) - 1; pi >= 0 && len(hits) < limit; pi-- {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := &s.parts[pi]
		cands, err := s.candidates(p)
		if err != nil {
			return nil, err
		}
		if cands.IsEmpty() {
			continue
		}
		take := func(ord uint32) (bool, error) {
			if err := s.spend(1); err != nil {
				return false, err
			}
			ok, err := s.verify(p.id, ord)
			if err != nil || !ok {
				return false, err
			}
			h, err := s.record(p.id, ord)
			if err != nil {
				return false, err
			}
			hits = append(hits, h)
			return len(hits) >= limit, nil
		}
		if p.monotonic {
			// Ordinal order is time order: walk backwards and stop early.
			it := cands.ReverseIterator()
			for it.HasNext() {
				done, err := take(it.Next())
				if err != nil {
					return nil, err
				}
				if done {
					break
				}
			}
			continue
		}
		ords := cands.ToArray()
		slices.SortFunc(ords, func(a, b uint32) int {
			if c := cmp.Compare(p.ts[b], p.ts[a]); c != 0 {
				return c
			}
			return cmp.Compare(b, a)
		})
		for _, ord := range ords {
			done, err := take(ord)
			if err != nil {
				return nil, err
			}
			if done {
				break
			}
		}
	}
	return hits, nil
}

// Count returns the number of records matching query in each step of
// [t0, t1): bucket i covers [t0+i·step, t0+(i+1)·step), the last one cut
// at t1.
func (ix *Index) Count(ctx context.Context, query string, t0, t1 int64, step time.Duration) ([]Bucket, error) {
	if step <= 0 {
		return nil, fmt.Errorf("%w: step %v must be positive", ErrBadRange, step)
	}
	// Spans are computed unsigned: t1-t0 may not fit an int64.
	if t1 > t0 && (uint64(t1)-uint64(t0))/uint64(step) >= maxBuckets {
		return nil, fmt.Errorf("%w: [%d, %d) in steps of %v gives more than %d buckets", ErrBadRange, t0, t1, step, maxBuckets)
	}
	s, err := ix.begin(ctx, query, t0, t1)
	if err != nil {
		return nil, err
	}
	defer s.close()
	st := int64(step)
	span := uint64(t1) - uint64(t0)
	nb := int64(span / uint64(st))
	if span%uint64(st) != 0 {
		nb++
	}
	bucket := func(ts int64) int64 { return int64((uint64(ts) - uint64(t0)) / uint64(st)) }
	out := make([]Bucket, nb)
	for i := range out {
		out[i].Start = t0 + int64(i)*st
	}
	for pi := range s.parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := &s.parts[pi]
		cands, err := s.candidates(p)
		if err != nil {
			return nil, err
		}
		if err := s.spend(cands.GetCardinality()); err != nil {
			return nil, err
		}
		if cands.IsEmpty() {
			continue
		}
		if !s.needVerify {
			// A partition whose matches all fall in one bucket is counted
			// without walking them.
			lo, hi := max(s.t0, p.ts[cands.Minimum()]), max(s.t0, p.ts[cands.Maximum()])
			if p.monotonic && bucket(lo) == bucket(hi) {
				out[bucket(lo)].Count += cands.GetCardinality()
				continue
			}
		}
		it := cands.Iterator()
		for it.HasNext() {
			ord := it.Next()
			ok, err := s.verify(p.id, ord)
			if err != nil {
				return nil, err
			}
			if ok {
				out[bucket(p.ts[ord])].Count++
			}
		}
	}
	return out, nil
}

// matches returns the exact matches of the query in p.
func (s *search) matches(p *partSnap) (*roaring.Bitmap, error) {
	cands, err := s.candidates(p)
	if err != nil {
		return nil, err
	}
	if err := s.spend(cands.GetCardinality()); err != nil {
		return nil, err
	}
	if !s.needVerify {
		return cands, nil
	}
	out := roaring.New()
	it := cands.Iterator()
	for it.HasNext() {
		ord := it.Next()
		ok, err := s.verify(p.id, ord)
		if err != nil {
			return nil, err
		}
		if ok {
			out.Add(ord)
		}
	}
	return out, nil
}

// TopValues returns the k most frequent values of field among the records
// matching query in [t0, t1), most frequent first (ties by value). Values
// are as indexed: lowercased.
func (ix *Index) TopValues(ctx context.Context, query, field string, t0, t1 int64, k int) ([]ValueCount, error) {
	if k <= 0 {
		return nil, fmt.Errorf("%w: k %d must be positive", ErrBadRange, k)
	}
	s, err := ix.begin(ctx, query, t0, t1)
	if err != nil {
		return nil, err
	}
	defer s.close()
	field = canonicalField(field)
	counts := map[string]uint64{}
	var buf []byte
	for pi := range s.parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := &s.parts[pi]
		m, err := s.matches(p)
		if err != nil {
			return nil, err
		}
		if m.IsEmpty() {
			continue
		}
		s.key = keys.AppendLogFieldName(s.key[:0], p.id, unsafeBytes(field))
		for valid := s.it.SeekGE(s.key); valid && bytes.HasPrefix(s.it.Key(), s.key); valid = s.it.Next() {
			_, _, val, _, err := keys.ParseLogField(buf, s.it.Key())
			if err != nil {
				return nil, fmt.Errorf("logindex: top values: %w", err)
			}
			v, err := s.it.ValueAndErr()
			if err != nil {
				return nil, fmt.Errorf("logindex: top values: %w", err)
			}
			if err := decodePostings(s.tmp, v, &s.psc); err != nil {
				return nil, fmt.Errorf("logindex: postings in partition %d: %w", p.id, err)
			}
			if c := m.AndCardinality(s.tmp); c > 0 {
				counts[string(val)] += c
			}
		}
		ix.mu.RLock()
		for v, bm := range p.fields[field] {
			if c := m.AndCardinality(bm); c > 0 {
				counts[v] += c
			}
		}
		ix.mu.RUnlock()
	}
	out := make([]ValueCount, 0, len(counts))
	for v, c := range counts {
		out = append(out, ValueCount{v, c})
	}
	slices.SortFunc(out, func(a, b ValueCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out[:min(k, len(out))], nil
}

type tsOrd struct {
	ts  int64
	ord uint32
}

// Context returns the records around hit in its stream (same service and
// severity text): up to n before it, the hit itself, and up to n after,
// oldest first.
func (ix *Index) Context(ctx context.Context, hit Hit, n int) ([]Hit, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: n %d is negative", ErrBadRange, n)
	}
	s, err := ix.begin(ctx, "", -1<<63, 1<<63-1)
	if err != nil {
		return nil, err
	}
	defer s.close()
	stream := &node{kind: nodeField, field: fieldStream, value: hit.Service() + "\x1f" + hit.SeverityText}
	h := sort.Search(len(s.parts), func(i int) bool { return s.parts[i].id >= hit.ID.Partition })
	if h == len(s.parts) || s.parts[h].id != hit.ID.Partition || hit.ID.Ordinal >= s.parts[h].next {
		return nil, fmt.Errorf("logindex: context: record %d of partition %d is not stored", hit.ID.Ordinal, hit.ID.Partition)
	}
	list := func(p *partSnap) ([]tsOrd, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		bm, err := s.postings(p, stream)
		if err != nil {
			return nil, err
		}
		out := make([]tsOrd, 0, bm.GetCardinality())
		it := bm.Iterator()
		for it.HasNext() {
			o := it.Next()
			if o < p.next {
				out = append(out, tsOrd{p.ts[o], o})
			}
		}
		if !p.monotonic {
			slices.SortFunc(out, func(a, b tsOrd) int {
				if c := cmp.Compare(a.ts, b.ts); c != 0 {
					return c
				}
				return cmp.Compare(a.ord, b.ord)
			})
		}
		return out, nil
	}
	type ref struct {
		part uint32
		ord  uint32
	}
	cur, err := list(&s.parts[h])
	if err != nil {
		return nil, err
	}
	at := slices.IndexFunc(cur, func(x tsOrd) bool { return x.ord == hit.ID.Ordinal })
	if at < 0 {
		return nil, fmt.Errorf("logindex: context: record %d of partition %d is not in stream %q", hit.ID.Ordinal, hit.ID.Partition, stream.value)
	}
	var before []ref
	for i := at - 1; i >= 0 && len(before) < n; i-- {
		before = append(before, ref{s.parts[h].id, cur[i].ord})
	}
	for pi := h - 1; pi >= 0 && len(before) < n; pi-- {
		l, err := list(&s.parts[pi])
		if err != nil {
			return nil, err
		}
		for i := len(l) - 1; i >= 0 && len(before) < n; i-- {
			before = append(before, ref{s.parts[pi].id, l[i].ord})
		}
	}
	slices.Reverse(before)
	refs := append(before, ref{hit.ID.Partition, hit.ID.Ordinal})
	after := 0
	for i := at + 1; i < len(cur) && after < n; i++ {
		refs = append(refs, ref{s.parts[h].id, cur[i].ord})
		after++
	}
	for pi := h + 1; pi < len(s.parts) && after < n; pi++ {
		l, err := list(&s.parts[pi])
		if err != nil {
			return nil, err
		}
		for i := 0; i < len(l) && after < n; i++ {
			refs = append(refs, ref{s.parts[pi].id, l[i].ord})
			after++
		}
	}
	out := make([]Hit, 0, len(refs))
	for _, r := range refs {
		h, err := s.record(r.part, r.ord)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}
