// Package tracestore stores distributed-trace spans in Pebble, keyed by
// trace ID, with per-partition indexes for search and an analysis API
// (span tree, critical path, self time).
//
// # Storage
//
// The spans of one trace written by one Write call become one span block
// (see codec.go for the byte layout) under `t s <traceID> <partition> <seq>`,
// so reading a trace is one prefix scan, spans of a trace that arrive
// minutes apart from many writers are all found, and spans that reuse a
// span ID never overwrite each other (seq is unique per Write). Strings that
// recur across traces (attribute keys, names, short values) are stored once
// in a shared dictionary (`t d <id>`) and referenced by ID from blocks.
//
// # Indexes
//
// Time is cut into partitions (Options.PartitionDuration, default one hour)
// by span start time. Within a partition each trace gets a 32-bit ordinal
// (`t o`, `t r` keys) and every Write adds one roaring postings segment per
// term it touched (`t p <partition> <term> <seq>`): service, operation
// name, attribute key=value (span, resource, scope, event and link
// attributes, by canonical string), error status, span-duration bucket,
// whole-trace duration bucket, start-time bucket (a 4096th of the
// partition) and "all traces". Compact merges the segments
// of each term; ClosePartitions also keeps a filter of a finished
// partition's terms so Find skips partitions that cannot match.
//
// Find intersects postings to narrow candidates, walks the start-time
// buckets of the window from the newest back and checks candidate spans
// exactly (scan.go: straight from the blocks), so Jaeger's rule that all conditions hold on one and the same
// span is kept; it stops as soon as no older bucket can hold a trace newer
// than the ones it has, so a candidate that fails the same-span check
// costs a read only near the newest matches. (Keying attribute postings
// by service as well would drop such candidates, but on a workload of ten
// services it multiplies the postings written per Write by ten, halving
// ingest, and adds about 5 bytes per span on disk.)
//
// The extent of every trace (earliest start, latest end, over all its
// spans and writes) is kept under `t w <traceID>`, so a Write that extends
// a trace moves it to its new trace-duration bucket. Retention keeps the
// extent of a trace that outlives a dropped partition as it was, so such a
// trace stays filed under its longer duration: a MaxTraceDuration bound
// below that misses it.
//
// The index layout is versioned (`t f`); a store written with an older
// layout is refused with a *FormatError.
//
// # Span metrics
//
// With Options.Metrics set, every Write also appends RED metrics per
// (service, span name, status) to a tsdb.DB and keeps slow spans as
// exemplars (see Exemplars), so a latency seen in a metric leads to traces.
//
// # Concurrency
//
// A Store is safe for concurrent use. Writers encode their blocks in
// parallel and serialize only the index update and the commit.
package tracestore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
	"github.com/pillar-db/pillar/tsdb"
)

// Options configure a Store. A nil *Options means all defaults.
type Options struct {
	// PartitionDuration is the span of time one index partition covers,
	// by span start time. Default one hour. Must be at least one second.
	PartitionDuration time.Duration
	// Retention drops partitions whose whole time range is older than
	// Now()-Retention, on Open, when Write opens a new partition, and on
	// EnforceRetention. Default 0: keep everything.
	Retention time.Duration
	// MaxTraceBytes bounds the encoded size of the spans of one trace in one
	// Write; a larger trace is rejected with ErrTraceTooLarge. Default 64 MiB.
	MaxTraceBytes int
	// Now is the clock retention is measured against and span-metric
	// samples are stamped with. Default time.Now.
	Now func() time.Time

	// Metrics, when set, receives RED span metrics on every Write: per
	// (service, span name, status) a calls counter (CallsMetric) and a
	// native histogram of durations in seconds (DurationMetric), and slow
	// spans are kept as exemplars (see Exemplars). Default nil: off.
	Metrics *tsdb.DB
	// ExemplarInterval is the least span time between two exemplars of one
	// series. Default 10 s.
	ExemplarInterval time.Duration

	// SyncWrites makes every Write fsync (power-loss durability). Used by
	// Open only; default false (process-crash durability).
	SyncWrites bool
	// CacheSize is Pebble's block cache in bytes, used by Open only.
	// Default 64 MiB.
	CacheSize int64
	// FS replaces the file system, used by Open only. Default the OS.
	FS vfs.FS
}

func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	var errs []error
	if r.PartitionDuration == 0 {
		r.PartitionDuration = time.Hour
	} else if r.PartitionDuration < time.Second {
		errs = append(errs, fmt.Errorf("%w: PartitionDuration %v is under one second", ErrBadOptions, r.PartitionDuration))
	}
	if r.Retention < 0 {
		errs = append(errs, fmt.Errorf("%w: negative Retention %v", ErrBadOptions, r.Retention))
	}
	if r.MaxTraceBytes == 0 {
		r.MaxTraceBytes = 64 << 20
	} else if r.MaxTraceBytes < 0 {
		errs = append(errs, fmt.Errorf("%w: negative MaxTraceBytes %d", ErrBadOptions, r.MaxTraceBytes))
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.ExemplarInterval == 0 {
		r.ExemplarInterval = 10 * time.Second
	} else if r.ExemplarInterval < 0 {
		errs = append(errs, fmt.Errorf("%w: negative ExemplarInterval %v", ErrBadOptions, r.ExemplarInterval))
	}
	return r, errors.Join(errs...)
}

// Store holds spans and their indexes. Create it with Open or OpenPebble.
type Store struct {
	db      *pebble.DB
	ownsDB  bool
	opts    Options
	partDur int64

	epoch uint64        // high half of every write sequence, bumped on each open
	seq   atomic.Uint64 // low half

	// closeMu: every operation holds it shared; Close holds it exclusively,
	// so Pebble is never used after it is closed.
	closeMu sync.RWMutex
	closed  bool

	// wmu serializes the index half of Write (ordinal assignment, postings,
	// commit) and retention; it guards parts and known.
	wmu   sync.Mutex
	parts map[uint32]*partition
	known map[string]struct{}
	// newest is the largest partition written since open; retention runs
	// when it advances.
	newest uint32
	// red is the span-metrics state, used when opts.Metrics is set.
	red redState
	// dict is the shared string dictionary of span blocks.
	dict *dict

	// pmu guards partList, the sorted partitions that hold data.
	pmu      sync.RWMutex
	partList []uint32

	scratch sync.Pool // *writeScratch
	finders sync.Pool // *finder

	// compactMu keeps two Compact calls from merging the same segments.
	compactMu sync.Mutex

	// bucketDur is the width of a start-time bucket: partDur/timeBuckets.
	bucketDur int64
	// filters holds the term filters of closed partitions; guarded by pmu.
	// A Write into a closed partition deletes its filter (it reopens).
	filters map[uint32]*termFilter
	// partGen counts commits that touched each partition since open, so
	// ClosePartitions can tell that a partition changed while it was
	// building the filter; guarded by wmu.
	partGen map[uint32]uint64
}

// partition is the in-memory ordinal state of one partition.
type partition struct {
	next  uint32
	fresh bool // created by this process: no ordinal can be on disk
	ords  map[TraceID]uint32
}

// Open opens (creating if needed) a store in dir with its own Pebble.
func Open(dir string, o *Options) (*Store, error) {
	opts, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	db, err := kv.Open(dir, kv.Options{SyncWrites: opts.SyncWrites, CacheSize: opts.CacheSize, FS: opts.FS})
	if err != nil {
		return nil, fmt.Errorf("tracestore: %w", err)
	}
	s, err := open(db, opts)
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	s.ownsDB = true
	return s, nil
}

// OpenPebble opens a store on a Pebble instance owned by the caller (shared
// with the other stores). Close leaves db open.
func OpenPebble(db *pebble.DB, o *Options) (*Store, error) {
	opts, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return open(db, opts)
}

func open(db *pebble.DB, opts Options) (*Store, error) {
	s := &Store{
		db:      db,
		opts:    opts,
		partDur: int64(opts.PartitionDuration),
		parts:   make(map[uint32]*partition),
		known:   make(map[string]struct{}),
		red:     redState{series: make(map[string]*redSeries)},
		dict:    newDict(),
		filters: make(map[uint32]*termFilter),
		partGen: make(map[uint32]uint64),
	}
	s.bucketDur = max(1, s.partDur/timeBuckets)
	s.finders.New = func() any {
		f := &finder{seen: make(map[TraceID]struct{}), ts: newTraceScan()}
		f.rb.dec.g = s.dict
		return f
	}
	s.scratch.New = func() any {
		ws := newWriteScratch()
		ws.enc.g = s.dict
		return ws
	}
	if err := s.dict.load(db); err != nil {
		return nil, err
	}
	if err := s.checkFormat(); err != nil {
		return nil, err
	}
	ek := keys.AppendTraceEpochKey(nil)
	var epoch uint32
	v, closer, err := db.Get(ek)
	switch {
	case err == nil:
		if len(v) != 4 {
			closer.Close()
			return nil, corruptf("epoch value of %d bytes", len(v))
		}
		epoch = binary.BigEndian.Uint32(v)
		closer.Close()
	case errors.Is(err, pebble.ErrNotFound):
	default:
		return nil, fmt.Errorf("tracestore: read epoch: %w", err)
	}
	epoch++
	if err := db.Set(ek, binary.BigEndian.AppendUint32(nil, epoch), kv.WriteOptions); err != nil {
		return nil, fmt.Errorf("tracestore: write epoch: %w", err)
	}
	s.epoch = uint64(epoch) << 32
	if err := s.loadPartitions(); err != nil {
		return nil, err
	}
	if err := s.loadFilters(); err != nil {
		return nil, err
	}
	if len(s.partList) > 0 {
		s.newest = s.partList[len(s.partList)-1]
	}
	if _, err := s.EnforceRetention(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) loadPartitions() error {
	lo := keys.AppendPrefix(nil, keys.StoreTraces, keys.KindTracePartition)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("tracestore: list partitions: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		p, err := keys.ParseTracePartitionKey(it.Key())
		if err != nil {
			it.Close()
			return fmt.Errorf("tracestore: list partitions: %w", err)
		}
		s.partList = append(s.partList, p)
	}
	return errors.Join(it.Error(), it.Close())
}

// Close releases the store; it closes Pebble only if Open created it. Calls
// after Close return ErrClosed.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.ownsDB {
		return s.db.Close()
	}
	return nil
}

// begin takes the shared close lock; it fails once the store is closed.
func (s *Store) begin() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) end() { s.closeMu.RUnlock() }

// partitionOf returns the partition holding a span that starts at t.
func (s *Store) partitionOf(t int64) uint32 {
	if t <= 0 {
		return 0
	}
	p := t / s.partDur
	if p > int64(^uint32(0)) {
		return ^uint32(0)
	}
	return uint32(p)
}

// writeScratch holds the buffers one Write reuses.
type writeScratch struct {
	enc      *blockEncoder
	order    []int
	ptrs     []*Span
	blocks   []byte
	groups   []group
	key      []byte
	term     []byte
	val      []byte
	postings map[string]*roaring.Bitmap
	newOrds  []newOrd
	batchKey []byte
	// pending holds service and operation keys this Write adds; they join
	// Store.known once it commits.
	pending map[string]struct{}
	// touched and exemplars are the span-metrics series of this Write and
	// the exemplars it keeps.
	touched   []*redSeries
	exemplars []exemplarMark
	// groupOrds are the (partition, ordinal) pairs of the trace being
	// indexed; parts are the partitions this Write adds terms to.
	groupOrds []partOrd
	parts     []uint32
	// lastTime is the start-time bucket term added last.
	lastTime timeMark
}

type timeMark struct {
	part, ord uint32
	bucket    uint16
	set       bool
}

type partOrd struct{ part, ord uint32 }

type group struct {
	traceID    TraceID
	part       uint32
	first, end int // range in order
	blockStart int
	blockEnd   int
}

type newOrd struct {
	p       *partition
	traceID TraceID
	prev    uint32
}

func newWriteScratch() *writeScratch {
	return &writeScratch{enc: newBlockEncoder(), postings: make(map[string]*roaring.Bitmap), pending: make(map[string]struct{})}
}

// validate checks every span of a batch before anything is stored.
func validate(spans []Span) error {
	for i := range spans {
		sp := &spans[i]
		var reason error
		switch {
		case sp.TraceID.IsZero():
			reason = ErrZeroTraceID
		case sp.SpanID.IsZero():
			reason = ErrZeroSpanID
		case sp.EndTime < sp.StartTime:
			reason = ErrEndBeforeStart
		default:
			continue
		}
		return &SpanError{Index: i, TraceID: sp.TraceID, SpanID: sp.SpanID, Err: reason}
	}
	return nil
}

// Write stores spans atomically: either all of them are stored and indexed,
// or (on error) none. A batch with a zero trace or span ID, a span that ends
// before it starts, or a trace over Options.MaxTraceBytes is rejected with a
// *SpanError. Write does not keep spans or any slice inside them.
func (s *Store) Write(ctx context.Context, spans []Span) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(spans) == 0 {
		return nil
	}
	if err := validate(spans); err != nil {
		return err
	}
	ws := s.scratch.Get().(*writeScratch)
	defer s.scratch.Put(ws)
	if err := s.encodeGroups(ws, spans); err != nil {
		return err
	}
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	return s.commit(ctx, ws, spans)
}

// encodeGroups sorts the batch by trace and encodes one block per trace.
func (s *Store) encodeGroups(ws *writeScratch, spans []Span) error {
	ws.order = ws.order[:0]
	for i := range spans {
		ws.order = append(ws.order, i)
	}
	slices.SortFunc(ws.order, func(a, b int) int {
		if c := bytes.Compare(spans[a].TraceID[:], spans[b].TraceID[:]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	ws.blocks = ws.blocks[:0]
	ws.groups = ws.groups[:0]
	ws.enc.defs = ws.enc.defs[:0]
	for i := 0; i < len(ws.order); {
		tid := spans[ws.order[i]].TraceID
		j := i
		ws.ptrs = ws.ptrs[:0]
		minStart := spans[ws.order[i]].StartTime
		for j < len(ws.order) && spans[ws.order[j]].TraceID == tid {
			sp := &spans[ws.order[j]]
			ws.ptrs = append(ws.ptrs, sp)
			minStart = min(minStart, sp.StartTime)
			j++
		}
		payload := ws.enc.encode(ws.ptrs)
		if len(payload) > s.opts.MaxTraceBytes {
			first := ws.order[i]
			return &SpanError{Index: first, TraceID: tid, SpanID: spans[first].SpanID,
				Err: fmt.Errorf("%w: %d encoded bytes over the %d limit", ErrTraceTooLarge, len(payload), s.opts.MaxTraceBytes)}
		}
		start := len(ws.blocks)
		ws.blocks = encoding.AppendBlock(ws.blocks, encoding.BlockSnappy, payload)
		ws.groups = append(ws.groups, group{traceID: tid, part: s.partitionOf(minStart), first: i, end: j, blockStart: start, blockEnd: len(ws.blocks)})
		i = j
	}
	return nil
}

// Term kinds inside a postings key.
const (
	termAll       = 'z'
	termService   = 's' // <service>
	termOperation = 'n' // <span name>
	termAttr      = 'a' // <key string> <canonical value>
	termDuration  = 'd' // <bucket u8>: span duration
	termTraceDur  = 'D' // <bucket u16>: whole-trace duration
	termTime      = 'b' // <bucket u16>: span start within the partition
	termError     = 'e'
)

// timeBuckets is how many start-time buckets a partition is cut into.
const timeBuckets = 4096

// timeBucket returns the start-time bucket of t within partition p.
func (s *Store) timeBucket(p uint32, t int64) uint16 {
	off := t - int64(p)*s.partDur
	if off < 0 {
		return 0
	}
	return uint16(min(off/s.bucketDur, timeBuckets-1))
}

// bucketStart is the earliest time that falls in bucket b of partition p
// (bucket 0 also holds every earlier time clamped into partition 0).
func (s *Store) bucketStart(p uint32, b uint16) int64 {
	return int64(p)*s.partDur + int64(b)*s.bucketDur
}

// traceDurBucket buckets a whole-trace duration in quarter octaves: the
// bit length of d in nanoseconds times four plus the two bits below the
// top one, so a bound's bucket holds durations within 19 % of it.
func traceDurBucket(d int64) uint16 {
	if d <= 0 {
		return 0
	}
	n := bits.Len64(uint64(d))
	if n < 3 {
		return uint16(n * 4)
	}
	return uint16(n*4) + uint16((uint64(d)>>(n-3))&3)
}

// maxTraceDurBucket is traceDurBucket of the largest duration (63 bits).
const maxTraceDurBucket = 63*4 + 3

func (s *Store) commit(ctx context.Context, ws *writeScratch, spans []Span) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	seq := s.epoch | (s.seq.Add(1) & 0xFFFFFFFF)
	b := s.db.NewBatch()
	defer b.Close()
	clear(ws.postings)
	clear(ws.pending)
	ws.lastTime = timeMark{}
	ws.newOrds = ws.newOrds[:0]
	var newParts []uint32
	// Definitions of shared-dictionary IDs the blocks use that are not yet
	// durable travel in the same batch, so no stored block can refer to an
	// ID that a crash lost.
	slices.Sort(ws.enc.defs)
	ws.enc.defs = slices.Compact(ws.enc.defs)
	for _, id := range ws.enc.defs {
		str, _ := s.dict.str(uint64(id))
		ws.key = keys.AppendTraceDictKey(ws.key[:0], id)
		if err := b.Set(ws.key, []byte(str), nil); err != nil {
			return s.rollback(ws, fmt.Errorf("tracestore: write: %w", err))
		}
	}
	for gi := range ws.groups {
		g := &ws.groups[gi]
		ws.key = keys.AppendTraceSpansKey(ws.key[:0], g.traceID, g.part, seq)
		if err := b.Set(ws.key, ws.blocks[g.blockStart:g.blockEnd], nil); err != nil {
			return s.rollback(ws, fmt.Errorf("tracestore: write: %w", err))
		}
		lastPart, lastOrd, have := uint32(0), uint32(0), false
		ws.groupOrds = ws.groupOrds[:0]
		first, last := int64(math.MaxInt64), int64(math.MinInt64)
		for _, idx := range ws.order[g.first:g.end] {
			sp := &spans[idx]
			first, last = min(first, sp.StartTime), max(last, sp.EndTime)
			p := s.partitionOf(sp.StartTime)
			if !have || p != lastPart {
				ord, created, isNewPart, err := s.ordinal(b, ws, p, g.traceID)
				if err != nil {
					return s.rollback(ws, err)
				}
				if isNewPart {
					newParts = append(newParts, p)
				}
				lastPart, lastOrd, have = p, ord, true
				if created {
					s.addTerm(ws, p, ord, []byte{termAll})
				}
				if !slices.Contains(ws.groupOrds, partOrd{p, ord}) {
					ws.groupOrds = append(ws.groupOrds, partOrd{p, ord})
				}
			}
			if err := s.indexSpan(b, ws, p, lastOrd, sp); err != nil {
				return s.rollback(ws, err)
			}
		}
		if err := s.indexExtent(b, ws, g.traceID, first, last); err != nil {
			return s.rollback(ws, err)
		}
	}
	for k, bm := range ws.postings {
		part := binary.BigEndian.Uint32([]byte(k[:4]))
		bm.RunOptimize()
		ws.val = ws.val[:0]
		buf := bytes.NewBuffer(ws.val)
		if _, err := bm.WriteTo(buf); err != nil {
			return s.rollback(ws, fmt.Errorf("tracestore: encode postings: %w", err))
		}
		ws.val = buf.Bytes()
		ws.key = keys.AppendTracePostingsKey(ws.key[:0], part, []byte(k[4:]), seq)
		if err := b.Set(ws.key, ws.val, nil); err != nil {
			return s.rollback(ws, fmt.Errorf("tracestore: write: %w", err))
		}
	}
	// A closed partition that receives terms reopens: its filter would
	// no longer cover them.
	ws.parts = ws.parts[:0]
	for k := range ws.postings {
		if p := binary.BigEndian.Uint32([]byte(k[:4])); !slices.Contains(ws.parts, p) {
			ws.parts = append(ws.parts, p)
		}
	}
	reopened := s.reopenClosed(ws.parts)
	for _, p := range reopened {
		ws.key = keys.AppendTraceFilterKey(ws.key[:0], p)
		if err := b.Delete(ws.key, nil); err != nil {
			return s.rollback(ws, fmt.Errorf("tracestore: write: %w", err))
		}
	}
	if s.opts.Metrics != nil {
		if err := s.selectExemplars(b, ws, spans); err != nil {
			return s.rollback(ws, fmt.Errorf("tracestore: exemplars: %w", err))
		}
	}
	if err := ctx.Err(); err != nil {
		return s.rollback(ws, err)
	}
	if err := b.Commit(kv.WriteOptions); err != nil {
		return s.rollback(ws, fmt.Errorf("tracestore: commit: %w", err))
	}
	if s.opts.Metrics != nil {
		if err := s.recordMetrics(ctx, ws, spans); err != nil {
			return fmt.Errorf("tracestore: spans stored, but span metrics failed: %w", err)
		}
	}
	// Committed: publish the dictionary entries, new partitions and known names.
	s.dict.markCommitted(ws.enc.defs)
	for _, p := range ws.parts {
		s.partGen[p]++
	}
	if len(reopened) > 0 {
		s.pmu.Lock()
		for _, p := range reopened {
			delete(s.filters, p)
		}
		s.pmu.Unlock()
	}
	for k := range ws.pending {
		s.known[k] = struct{}{}
	}
	if len(newParts) > 0 {
		s.pmu.Lock()
		for _, p := range newParts {
			if i, found := slices.BinarySearch(s.partList, p); !found {
				s.partList = slices.Insert(s.partList, i, p)
			}
		}
		s.pmu.Unlock()
		advanced := false
		for _, p := range newParts {
			if p > s.newest {
				s.newest, advanced = p, true
			}
		}
		if advanced {
			s.forgetOldOrdinals()
		}
		if advanced && s.opts.Retention > 0 {
			if _, err := s.enforceRetentionLocked(ctx); err != nil {
				return fmt.Errorf("tracestore: written, but retention failed: %w", err)
			}
		}
	}
	return nil
}

// rollback forgets ordinals assigned by a Write that did not commit.
func (s *Store) rollback(ws *writeScratch, err error) error {
	for i := len(ws.newOrds) - 1; i >= 0; i-- {
		n := ws.newOrds[i]
		delete(n.p.ords, n.traceID)
		n.p.next = n.prev
	}
	clear(ws.pending)
	return err
}

// ordinal returns the ordinal of traceID in partition p, assigning one (and
// writing its keys into b) when the trace is new there. wmu must be held.
func (s *Store) ordinal(b *pebble.Batch, ws *writeScratch, p uint32, tid TraceID) (ord uint32, created, newPart bool, err error) {
	part, ok := s.parts[p]
	if !ok {
		if part, newPart, err = s.loadPartition(p); err != nil {
			return 0, false, false, err
		}
		s.parts[p] = part
	}
	if ord, ok := part.ords[tid]; ok {
		return ord, false, false, nil
	}
	if !part.fresh {
		ws.key = keys.AppendTraceOrdinalKey(ws.key[:0], p, tid)
		v, closer, err := s.db.Get(ws.key)
		switch {
		case err == nil:
			if len(v) != 4 {
				closer.Close()
				return 0, false, false, corruptf("ordinal value of %d bytes in partition %d", len(v), p)
			}
			ord = binary.BigEndian.Uint32(v)
			closer.Close()
			part.ords[tid] = ord
			return ord, false, newPart, nil
		case !errors.Is(err, pebble.ErrNotFound):
			return 0, false, false, fmt.Errorf("tracestore: read ordinal: %w", err)
		}
	}
	if part.next == ^uint32(0) {
		return 0, false, false, fmt.Errorf("tracestore: partition %d has run out of trace ordinals", p)
	}
	ord = part.next
	ws.newOrds = append(ws.newOrds, newOrd{p: part, traceID: tid, prev: ord})
	part.next++
	part.ords[tid] = ord
	ws.key = keys.AppendTraceOrdinalKey(ws.key[:0], p, tid)
	if err := b.Set(ws.key, binary.BigEndian.AppendUint32(ws.val[:0], ord), nil); err != nil {
		return 0, false, false, err
	}
	ws.key = keys.AppendTraceByOrdinalKey(ws.key[:0], p, ord)
	if err := b.Set(ws.key, tid[:], nil); err != nil {
		return 0, false, false, err
	}
	if ord == 0 {
		ws.key = keys.AppendTracePartitionKey(ws.key[:0], p)
		if err := b.Set(ws.key, nil, nil); err != nil {
			return 0, false, false, err
		}
		newPart = true
	}
	return ord, true, newPart, nil
}

// forgetOldOrdinals drops the in-memory trace→ordinal maps of partitions
// two or more behind the newest, so memory stays bounded while time moves
// on; late spans for those partitions find their ordinal on disk. wmu must
// be held.
func (s *Store) forgetOldOrdinals() {
	for p, part := range s.parts {
		if p+1 < s.newest && len(part.ords) > 0 {
			part.ords = make(map[TraceID]uint32)
			part.fresh = false
		}
	}
}

// loadPartition reads the next free ordinal of p from disk.
func (s *Store) loadPartition(p uint32) (*partition, bool, error) {
	part := &partition{ords: make(map[TraceID]uint32)}
	lo := keys.AppendTracePartitionPrefix(nil, keys.KindTraceByOrdinal, p)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	if err != nil {
		return nil, false, fmt.Errorf("tracestore: open partition %d: %w", p, err)
	}
	if it.Last() {
		_, ord, err := keys.ParseTraceByOrdinalKey(it.Key())
		if err != nil {
			it.Close()
			return nil, false, fmt.Errorf("tracestore: open partition %d: %w", p, err)
		}
		part.next = ord + 1
	} else {
		part.fresh = true
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, false, fmt.Errorf("tracestore: open partition %d: %w", p, err)
	}
	return part, part.fresh, nil
}

// addTerm adds ord to the postings of term in partition p for this Write.
func (s *Store) addTerm(ws *writeScratch, p uint32, ord uint32, term []byte) {
	ws.term = binary.BigEndian.AppendUint32(ws.term[:0], p)
	ws.term = append(ws.term, term...)
	bm, ok := ws.postings[string(ws.term)]
	if !ok {
		bm = roaring.New()
		ws.postings[string(ws.term)] = bm
	}
	bm.Add(ord)
}

// durationBucket is the span-duration postings bucket: the bit length of
// the duration in nanoseconds, so bucket b holds [2^(b-1), 2^b).
func durationBucket(d int64) byte {
	if d <= 0 {
		return 0
	}
	return byte(bits.Len64(uint64(d)))
}

// indexSpan adds the terms of one span.
func (s *Store) indexSpan(b *pebble.Batch, ws *writeScratch, p, ord uint32, sp *Span) error {
	svc := sp.Service()
	t := append(ws.batchKey[:0], termService)
	t = append(t, svc...)
	s.addTerm(ws, p, ord, t)
	t = append(t[:0], termOperation)
	t = append(t, sp.Name...)
	s.addTerm(ws, p, ord, t)
	t = append(t[:0], termDuration, durationBucket(sp.Duration()))
	s.addTerm(ws, p, ord, t)
	// The spans of a trace mostly share a start-time bucket: add it once.
	if tb := (timeMark{p, ord, s.timeBucket(p, sp.StartTime), true}); tb != ws.lastTime {
		ws.lastTime = tb
		t = binary.BigEndian.AppendUint16(append(t[:0], termTime), tb.bucket)
		s.addTerm(ws, p, ord, t)
	}
	if sp.Status.Code == StatusError {
		t = append(t[:0], termError)
		s.addTerm(ws, p, ord, t)
	}
	t = s.indexAttrs(ws, p, ord, t, sp.Attributes)
	t = s.indexAttrs(ws, p, ord, t, sp.Resource.Attributes)
	t = s.indexAttrs(ws, p, ord, t, sp.Scope.Attributes)
	for i := range sp.Events {
		t = s.indexAttrs(ws, p, ord, t, sp.Events[i].Attributes)
	}
	for i := range sp.Links {
		t = s.indexAttrs(ws, p, ord, t, sp.Links[i].Attributes)
	}
	ws.batchKey = t
	return s.registerNames(b, ws, svc, sp.Name, sp.Kind)
}

func (s *Store) indexAttrs(ws *writeScratch, p, ord uint32, t []byte, kvs []KeyValue) []byte {
	for i := range kvs {
		t = appendAttrTerm(t[:0], kvs[i].Key, &kvs[i].Value)
		s.addTerm(ws, p, ord, t)
	}
	return t
}

// appendAttrTerm appends the postings term of key=value (canonical string).
func appendAttrTerm(dst []byte, key string, v *Value) []byte {
	return v.appendCanonical(appendAttrKeyTerm(dst, key))
}

// appendAttrKeyTerm appends the part of an attribute term before the
// value: every value of key has it as prefix.
func appendAttrKeyTerm(dst []byte, key string) []byte {
	return keys.AppendString(append(dst, termAttr), key)
}

// indexExtent merges [first, last] into the stored extent of a trace and
// files the trace under the trace-duration bucket of the result in every
// partition it has spans in. wmu must be held.
func (s *Store) indexExtent(b *pebble.Batch, ws *writeScratch, id TraceID, first, last int64) error {
	ws.key = keys.AppendTraceExtentKey(ws.key[:0], id)
	oldFirst, oldLast, found, err := s.readExtent(ws.key)
	if err != nil {
		return err
	}
	nf, nl := first, last
	if found {
		nf, nl = min(first, oldFirst), max(last, oldLast)
	}
	if !found || nf != oldFirst || nl != oldLast {
		ws.val = encoding.AppendUvarint(encoding.AppendVarint(ws.val[:0], nf), uint64(nl-nf))
		if err := b.Set(ws.key, ws.val, nil); err != nil {
			return fmt.Errorf("tracestore: write: %w", err)
		}
	}
	bucket := traceDurBucket(nl - nf)
	t := binary.BigEndian.AppendUint16(append(ws.batchKey[:0], termTraceDur), bucket)
	ws.batchKey = t
	for _, po := range ws.groupOrds {
		s.addTerm(ws, po.part, po.ord, t)
	}
	if !found || traceDurBucket(oldLast-oldFirst) == bucket {
		return nil
	}
	// The trace moved to another bucket: its ordinals in partitions this
	// Write did not touch join it too (the old bucket keeps them; Find
	// checks the duration exactly).
	parts, err := s.traceParts(id)
	if err != nil {
		return err
	}
	for _, p := range parts {
		touched := false
		for _, po := range ws.groupOrds {
			touched = touched || po.part == p
		}
		if touched {
			continue
		}
		ord, created, _, err := s.ordinal(b, ws, p, id)
		if err != nil {
			return err
		}
		if created {
			s.addTerm(ws, p, ord, []byte{termAll})
		}
		t = binary.BigEndian.AppendUint16(append(ws.batchKey[:0], termTraceDur), bucket)
		s.addTerm(ws, p, ord, t)
		ws.batchKey = t
	}
	return nil
}

// readExtent reads the stored extent of a trace under key.
func (s *Store) readExtent(key []byte) (first, last int64, found bool, err error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("tracestore: read trace extent: %w", err)
	}
	defer closer.Close()
	first, last, err = decodeExtent(v)
	if err != nil {
		return 0, 0, false, err
	}
	return first, last, true, nil
}

// decodeExtent parses an extent value: start varint, duration uvarint.
func decodeExtent(v []byte) (first, last int64, err error) {
	d := encoding.NewDecoder(v)
	first = d.Varint()
	dur := d.Uvarint()
	if d.Err() != nil || d.Len() != 0 || dur > math.MaxInt64 || first > math.MaxInt64-int64(dur) {
		return 0, 0, corruptf("trace extent of %d bytes", len(v))
	}
	return first, first + int64(dur), nil
}

// traceParts lists the partitions holding blocks of a trace, reading keys
// only.
func (s *Store) traceParts(id TraceID) ([]uint32, error) {
	lo := keys.AppendTraceSpansPrefix(nil, id)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	if err != nil {
		return nil, fmt.Errorf("tracestore: partitions of trace %s: %w", id, err)
	}
	var out []uint32
	for valid := it.First(); valid; {
		_, p, _, err := keys.ParseTraceSpansKey(it.Key())
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("tracestore: partitions of trace %s: %w", id, err)
		}
		out = append(out, p)
		// Skip the partition's other blocks.
		valid = it.SeekGE(keys.PrefixEnd(keys.AppendTraceSpansPartitionPrefix(nil, id, p)))
	}
	return out, errors.Join(it.Error(), it.Close())
}

// registerNames records a service and an operation the first time this
// process sees them, for Services and Operations.
func (s *Store) registerNames(b *pebble.Batch, ws *writeScratch, svc, name string, kind SpanKind) error {
	ws.key = keys.AppendTraceOperationKey(ws.key[:0], svc, name, uint32(kind))
	if _, ok := s.known[string(ws.key)]; ok {
		return nil
	}
	if _, ok := ws.pending[string(ws.key)]; ok {
		return nil
	}
	if err := b.Set(ws.key, nil, nil); err != nil {
		return err
	}
	ws.pending[string(ws.key)] = struct{}{}
	ws.key = keys.AppendTraceServiceKey(ws.key[:0], svc)
	if _, ok := s.known[string(ws.key)]; ok {
		return nil
	}
	if _, ok := ws.pending[string(ws.key)]; ok {
		return nil
	}
	if err := b.Set(ws.key, nil, nil); err != nil {
		return err
	}
	ws.pending[string(ws.key)] = struct{}{}
	return nil
}
