package logindex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

// Errors returned by the index.
var (
	// ErrClosed is returned by calls on a closed Index.
	ErrClosed = errors.New("logindex: index closed")
	// ErrScanLimit is returned when a query that narrows on no term or
	// field (a lone NOT x, or *) would examine more than Options.MaxScan
	// records; narrow the time range or add a term.
	ErrScanLimit = errors.New("logindex: query scans more records than Options.MaxScan")
	// ErrBadRange is returned for an empty or inverted time range or a
	// non-positive step.
	ErrBadRange = errors.New("logindex: bad time range")
	// ErrOptions is returned by Open for invalid options.
	ErrOptions = errors.New("logindex: invalid options")
	// ErrFormat is returned by Open for an index written in an on-disk
	// format this version does not read.
	ErrFormat = errors.New("logindex: unsupported on-disk format")
)

// Options configure an Index. A nil *Options means all defaults.
type Options struct {
	// PartitionDuration is the span of time one partition covers; records
	// are grouped, indexed and dropped by partition. Default 1h. It is
	// fixed when the index is created; reopening with a different non-zero
	// value is an error.
	PartitionDuration time.Duration
	// Retention drops partitions that ended more than Retention before
	// now, on Open, after each postings flush and on EnforceRetention.
	// Default 0: keep everything.
	Retention time.Duration
	// MaxScan bounds how many records a query that narrows on no term or
	// field may examine. Default 1,000,000.
	MaxScan int
	// FlushRecords is how many records may wait with their postings in
	// memory before the postings are written out in bulk. Records
	// themselves are durable at Write. Default 131072.
	FlushRecords int
	// SyncWrites, for Open only, fsyncs every write (survives power loss,
	// not just a process crash). Default false.
	SyncWrites bool
	// CacheSize, for Open only, is Pebble's block cache in bytes. Default 64 MiB.
	CacheSize int64
	// Now returns the current time, for records with no timestamp and for
	// retention. Default time.Now.
	Now func() time.Time
	// BlockCacheSize is how many bytes of decoded record blocks queries
	// keep for the next queries. Default 16 MiB; negative disables it.
	BlockCacheSize int
}

func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	var errs []error
	if r.PartitionDuration < 0 || r.PartitionDuration > 0 && r.PartitionDuration < time.Second {
		errs = append(errs, fmt.Errorf("%w: PartitionDuration %v must be at least 1s", ErrOptions, r.PartitionDuration))
	}
	if r.Retention < 0 {
		errs = append(errs, fmt.Errorf("%w: Retention %v is negative", ErrOptions, r.Retention))
	}
	if r.MaxScan < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxScan %d is negative", ErrOptions, r.MaxScan))
	}
	if r.FlushRecords < 0 {
		errs = append(errs, fmt.Errorf("%w: FlushRecords %d is negative", ErrOptions, r.FlushRecords))
	}
	if len(errs) > 0 {
		return r, errors.Join(errs...)
	}
	if r.MaxScan == 0 {
		r.MaxScan = 1_000_000
	}
	if r.FlushRecords == 0 {
		r.FlushRecords = 131072
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.BlockCacheSize == 0 {
		r.BlockCacheSize = 16 << 20
	}
	return r, nil
}

// Index is a log store: records in compressed blocks per time partition,
// with a roaring inverted index of tokens and field values. It is safe for
// concurrent use by many goroutines.
type Index struct {
	db      *pebble.DB
	ownDB   bool
	opts    Options
	partDur int64

	// writeMu serialises writes and flushes, so ordinals are handed out in
	// commit order and a partition's postings have one writer.
	writeMu sync.Mutex
	// compactedBelow is the partition below which DropBefore last had
	// Pebble compact the dropped key ranges (guarded by writeMu).
	compactedBelow uint32
	// sealMu serialises SealPartitions, which does its work outside
	// writeMu and commits under it.
	sealMu sync.Mutex

	// mu guards parts and every partition's mutable state. Readers take it
	// to snapshot what they need, never across I/O.
	mu      sync.RWMutex
	parts   map[uint32]*partition
	pending int // records whose postings are only in memory
	closed  bool

	// scratch for Write, used under writeMu.
	w writeScratch

	blocks *blockCache // nil when disabled
}

// partition is the in-memory state of one time partition.
type partition struct {
	id   uint32
	next uint32 // next ordinal to hand out
	// ts holds each ordinal's timestamp. Appends never change existing
	// elements, so a reader may keep a prefix of it without the lock.
	ts        []int64
	monotonic bool // ts is non-decreasing
	indexed   uint32
	// The partition's postings segments are [firstSeg, nextSeg): sealing
	// merges the segments there are into one numbered nextSeg-1 and
	// raises firstSeg to it.
	firstSeg uint32
	nextSeg  uint32
	// filter, when set, is the filter of segment firstSeg's terms, written
	// when the partition was sealed.
	filter *bloom
	// pend holds the postings of ordinals >= indexed: key byte 't' + token,
	// or 'f' + field + 0x00 + value.
	pend map[string]*roaring.Bitmap
	// pendFields indexes pend's field postings by field, then value, so
	// TopValues and field:prefix* visit one field's values only.
	pendFields map[string]map[string]*roaring.Bitmap
}

func newPartition(id uint32) *partition {
	p := &partition{id: id, monotonic: true}
	p.resetPending()
	return p
}

func (p *partition) resetPending() {
	p.pend = map[string]*roaring.Bitmap{}
	p.pendFields = map[string]map[string]*roaring.Bitmap{}
}

func (p *partition) addTS(ts int64) {
	if n := len(p.ts); n > 0 && ts < p.ts[n-1] {
		p.monotonic = false
	}
	p.ts = append(p.ts, ts)
}

// Open opens (creating if needed) an index that owns a Pebble instance in dir.
func Open(dir string, o *Options) (*Index, error) {
	opts, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	db, err := kv.Open(dir, kv.Options{SyncWrites: opts.SyncWrites, CacheSize: opts.CacheSize})
	if err != nil {
		return nil, fmt.Errorf("logindex: %w", err)
	}
	ix, err := open(db, opts)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	ix.ownDB = true
	return ix, nil
}

// OpenPebble opens an index on a Pebble instance owned by the caller, who
// must keep it open until Close returns and close it afterwards. The index
// uses only keys of the logs store.
func OpenPebble(db *pebble.DB, o *Options) (*Index, error) {
	opts, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return open(db, opts)
}

var metaKey = keys.AppendPrefix(nil, keys.StoreLogs, keys.LogMeta)

// formatVersion is the first byte of the meta record: the version of the
// index's on-disk formats as a whole. Version 1 framed each postings value
// with a format byte and a count; an index written with it is refused
// rather than misread.
const formatVersion byte = 2

func open(db *pebble.DB, opts Options) (*Index, error) {
	ix := &Index{db: db, opts: opts, parts: map[uint32]*partition{}}
	if opts.BlockCacheSize > 0 {
		ix.blocks = newBlockCache(opts.BlockCacheSize)
	}
	if err := ix.loadMeta(); err != nil {
		return nil, err
	}
	if err := ix.recover(); err != nil {
		return nil, err
	}
	if opts.Retention > 0 {
		if _, err := ix.EnforceRetention(context.Background()); err != nil {
			return nil, err
		}
	}
	return ix, nil
}

// loadMeta reads (or on first open writes) the partition duration.
func (ix *Index) loadMeta() error {
	want := int64(ix.opts.PartitionDuration)
	v, closer, err := ix.db.Get(metaKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if want == 0 {
			want = int64(time.Hour)
		}
		if err := ix.db.Set(metaKey, encoding.AppendUvarint([]byte{formatVersion}, uint64(want)), kv.WriteOptions); err != nil {
			return fmt.Errorf("logindex: write meta: %w", err)
		}
	case err != nil:
		return fmt.Errorf("logindex: read meta: %w", err)
	default:
		d := encoding.NewDecoder(v)
		ver := d.Byte()
		got := int64(d.Uvarint())
		derr := d.Err()
		_ = closer.Close()
		if derr == nil && ver != formatVersion {
			return fmt.Errorf("%w: version %d, this build reads %d", ErrFormat, ver, formatVersion)
		}
		if derr != nil || got <= 0 {
			return fmt.Errorf("logindex: meta record: %w", errors.Join(derr, corruptf("version %d, partition duration %d", ver, got)))
		}
		if want != 0 && want != got {
			return fmt.Errorf("%w: PartitionDuration %v, but the index was created with %v", ErrOptions, time.Duration(want), time.Duration(got))
		}
		want = got
	}
	ix.partDur = want
	return nil
}

// partitionOf returns the partition holding timestamp ts. Partitions are
// numbered from 2^31 at the Unix epoch so times before it work too.
func (ix *Index) partitionOf(ts int64) uint32 {
	q := ts / ix.partDur
	if ts%ix.partDur < 0 {
		q--
	}
	q += 1 << 31
	return uint32(max(0, min(q, 1<<32-1)))
}

// partitionStart returns the first timestamp of partition p.
func (ix *Index) partitionStart(p uint32) int64 { return (int64(p) - 1<<31) * ix.partDur }

// recover rebuilds the in-memory state: timestamps from segment metas,
// then postings from the blocks no segment covers yet (records acknowledged
// before a crash or Close without a flush).
func (ix *Index) recover() error {
	it, err := ix.db.NewIter(&pebble.IterOptions{
		LowerBound: keys.Prefix(keys.StoreLogs, keys.LogSegment),
		UpperBound: keys.PrefixEnd(keys.Prefix(keys.StoreLogs, keys.LogSegment)),
	})
	if err != nil {
		return fmt.Errorf("logindex: recover: %w", err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		part, seg, err := keys.ParseLogSegment(it.Key())
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("logindex: recover segment key: %w", err)
		}
		p := ix.parts[part]
		if p == nil {
			p = newPartition(part)
			p.firstSeg = seg
			ix.parts[part] = p
		}
		v, err := it.ValueAndErr()
		if err == nil {
			err = p.loadSegment(v, seg == p.firstSeg)
		}
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("logindex: recover segment %d of partition %d: %w", seg, part, err)
		}
		p.nextSeg = seg + 1
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("logindex: recover: %w", err)
	}
	return ix.reindex()
}

// loadSegment appends a segment's timestamps: uvarint lo, hi, then hi-lo
// zigzag delta-of-deltas (the first delta from the partition's previous
// timestamp, or from 0). A sealed segment (the first of its partition) may
// be followed by its term filter (see filter.go).
func (p *partition) loadSegment(v []byte, first bool) error {
	d := encoding.NewDecoder(v)
	lo, hi := d.Uvarint(), d.Uvarint()
	if d.Err() != nil {
		return d.Err()
	}
	if lo != uint64(p.indexed) || hi < lo || hi > 1<<32-1 || hi-lo > uint64(d.Len()) {
		return corruptf("segment covers [%d,%d), partition indexed up to %d", lo, hi, p.indexed)
	}
	var prev int64
	if len(p.ts) > 0 {
		prev = p.ts[len(p.ts)-1]
	}
	var delta int64
	for i := lo; i < hi; i++ {
		delta += d.Varint()
		prev += delta
		p.addTS(prev)
	}
	if d.Err() != nil {
		return d.Err()
	}
	if d.Len() > 0 {
		if tag := d.Byte(); tag != bloomTag || !first {
			return corruptf("segment meta has %d trailing bytes", d.Len()+1)
		}
		f, err := decodeBloom(&d)
		if err != nil {
			return err
		}
		if d.Len() != 0 {
			return corruptf("segment meta has %d bytes after its filter", d.Len())
		}
		p.filter = f
	}
	p.indexed, p.next = uint32(hi), uint32(hi)
	return nil
}

// reindex reads every block at or past its partition's indexed ordinal and
// puts its records' postings back in memory.
func (ix *Index) reindex() error {
	bp := keys.Prefix(keys.StoreLogs, keys.LogBlock)
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: bp, UpperBound: keys.PrefixEnd(bp)})
	if err != nil {
		return fmt.Errorf("logindex: reindex: %w", err)
	}
	defer it.Close()
	var (
		payload []byte
		br      blockReader
		b       postingsBuilder
		key     []byte
	)
	for valid := it.First(); valid; {
		part, first, err := keys.ParseLogBlock(it.Key())
		if err != nil {
			return fmt.Errorf("logindex: reindex: %w", err)
		}
		p := ix.parts[part]
		if p == nil {
			p = newPartition(part)
			ix.parts[part] = p
		}
		if first < p.indexed {
			key = keys.AppendLogBlock(key[:0], part, p.indexed)
			valid = it.SeekGE(key)
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("logindex: reindex: %w", err)
		}
		if payload, err = encoding.DecodeBlock(payload[:0], v); err != nil {
			return fmt.Errorf("logindex: block %d of partition %d: %w", first, part, err)
		}
		if err := br.reset(payload); err != nil {
			return fmt.Errorf("logindex: block %d of partition %d: %w", first, part, err)
		}
		if first != p.next {
			return fmt.Errorf("logindex: block %d of partition %d: %w", first, part, corruptf("expected ordinal %d", p.next))
		}
		for i := 0; i < br.len(); i++ {
			r, err := br.record(i)
			if err != nil {
				return fmt.Errorf("logindex: block %d of partition %d: %w", first, part, err)
			}
			b.add(p, p.next, &r)
			p.addTS(r.Timestamp)
			p.next++
			ix.pending++
		}
		valid = it.Next()
	}
	return nil
}

// postingsBuilder adds a record's tokens and fields to a partition's
// in-memory postings, reusing its buffers.
type postingsBuilder struct {
	tok  Tokenizer
	fx   fieldExtractor
	key  []byte
	p    *partition
	ord  uint32
	sink fieldSink
}

func (b *postingsBuilder) addKey(k []byte) {
	bm := b.p.pend[unsafeString(k)]
	if bm == nil {
		bm = roaring.New()
		key := string(k)
		b.p.pend[key] = bm
		if key[0] == 'f' {
			f, v, _ := strings.Cut(key[1:], "\x00")
			vals := b.p.pendFields[f]
			if vals == nil {
				vals = map[string]*roaring.Bitmap{}
				b.p.pendFields[f] = vals
			}
			vals[v] = bm
		}
	}
	bm.Add(b.ord)
}

func (b *postingsBuilder) add(p *partition, ord uint32, r *Record) {
	b.p, b.ord = p, ord
	b.tok.Reset(r.BodyText())
	for b.tok.Next() {
		b.key = append(append(b.key[:0], 't'), b.tok.Token()...)
		b.addKey(b.key)
	}
	if b.sink == nil {
		b.sink = func(field, value []byte) {
			b.key = append(append(b.key[:0], 'f'), field...)
			b.key = append(b.key, 0)
			b.key = append(b.key, value...)
			b.addKey(b.key)
		}
	}
	b.fx.fields(r, b.sink)
}

// writeScratch holds Write's reusable buffers.
type writeScratch struct {
	recs    []Record
	order   []int
	payload []byte
	block   []byte
	key     []byte
	b       postingsBuilder
	chunk   chunkWriter
	enc     postingsEncoder
}

// Write stores records durably: when it returns nil, every record is in
// one committed Pebble batch and survives a crash; on error none is stored.
// Records with no timestamp get the time of the write; a string body that
// is not valid UTF-8 is stored as bytes. Write does not keep recs.
func (ix *Index) Write(ctx context.Context, recs []Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.mu.RLock()
	closed := ix.closed
	ix.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	w := &ix.w
	now := ix.opts.Now().UnixNano()
	w.recs = append(w.recs[:0], recs...)
	w.order = w.order[:0]
	for i := range w.recs {
		w.recs[i].normalize(now)
		w.order = append(w.order, i)
	}
	// Group by partition, then stream, keeping arrival order within a
	// stream, so each block holds one stream's consecutive records.
	sort.SliceStable(w.order, func(a, b int) bool {
		ra, rb := &w.recs[w.order[a]], &w.recs[w.order[b]]
		pa, pb := ix.partitionOf(ra.Timestamp), ix.partitionOf(rb.Timestamp)
		if pa != pb {
			return pa < pb
		}
		return compareStream(ra, rb) < 0
	})

	// Hand out ordinals from each partition's next, without publishing
	// them until the batch is committed.
	batch := ix.db.NewBatch()
	defer batch.Close()
	type span struct {
		part  uint32
		first uint32
		lo    int // index into order
		hi    int
	}
	var spans []span
	nextOf := map[uint32]uint32{}
	ix.mu.RLock()
	for i := 0; i < len(w.order); {
		r := &w.recs[w.order[i]]
		part := ix.partitionOf(r.Timestamp)
		j := i + 1
		for j < len(w.order) && j-i < maxBlockRecords {
			rj := &w.recs[w.order[j]]
			if ix.partitionOf(rj.Timestamp) != part || compareStream(r, rj) != 0 {
				break
			}
			j++
		}
		next, ok := nextOf[part]
		if !ok {
			if p := ix.parts[part]; p != nil {
				next = p.next
			}
		}
		if uint64(next)+uint64(j-i) > 1<<32-1 {
			ix.mu.RUnlock()
			return fmt.Errorf("logindex: partition %d is full (%d records)", part, next)
		}
		spans = append(spans, span{part, next, i, j})
		nextOf[part] = next + uint32(j-i)
		i = j
	}
	ix.mu.RUnlock()
	for _, s := range spans {
		w.payload = appendBlockPayload(w.payload[:0], w.recs, w.order[s.lo:s.hi])
		w.block = encoding.AppendBlock(w.block[:0], encoding.BlockSnappy, w.payload)
		w.key = keys.AppendLogBlock(w.key[:0], s.part, s.first)
		if err := batch.Set(w.key, w.block, nil); err != nil {
			return fmt.Errorf("logindex: write: %w", err)
		}
	}
	if err := batch.Commit(kv.WriteOptions); err != nil {
		return fmt.Errorf("logindex: write: %w", err)
	}

	// Publish: timestamps, ordinals and postings become visible together.
	ix.mu.Lock()
	for _, s := range spans {
		p := ix.parts[s.part]
		if p == nil {
			p = newPartition(s.part)
			ix.parts[s.part] = p
		}
		for _, k := range w.order[s.lo:s.hi] {
			r := &w.recs[k]
			w.b.add(p, p.next, r)
			p.addTS(r.Timestamp)
			p.next++
		}
	}
	ix.pending += len(w.order)
	needFlush := ix.pending >= ix.opts.FlushRecords
	ix.mu.Unlock()
	clear(w.recs) // drop references to the caller's strings
	if needFlush {
		return ix.flushLocked()
	}
	return nil
}

// compareStream orders records by stream: severity text, then resource.
func compareStream(a, b *Record) int {
	if c := compareStrings(a.SeverityText, b.SeverityText); c != 0 {
		return c
	}
	if c := len(a.Resource) - len(b.Resource); c != 0 {
		return c
	}
	for i := range a.Resource {
		x, y := &a.Resource[i], &b.Resource[i]
		if c := compareStrings(x.Key, y.Key); c != 0 {
			return c
		}
		if c := int(x.Value.Kind) - int(y.Value.Kind); c != 0 {
			return c
		}
		switch x.Value.Kind {
		case KindString:
			if c := compareStrings(x.Value.Str, y.Value.Str); c != 0 {
				return c
			}
		case KindBytes:
			if c := bytes.Compare(x.Value.Bytes, y.Value.Bytes); c != 0 {
				return c
			}
		case KindInt, KindBool, KindDouble:
			var bx, by [32]byte
			if c := bytes.Compare(x.Value.AppendText(bx[:0]), y.Value.AppendText(by[:0])); c != 0 {
				return c
			}
		}
	}
	return 0
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Flush writes every partition's in-memory postings to Pebble in bulk.
// Records are durable without it; it bounds memory and reopen time, and
// Write calls it when Options.FlushRecords records are pending.
func (ix *Index) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	return ix.flushLocked()
}

// flushLocked writes one segment per partition with pending postings. The
// caller holds writeMu, so no posting is added meanwhile.
func (ix *Index) flushLocked() error {
	ix.mu.RLock()
	var todo []*partition
	for _, p := range ix.parts {
		if p.next > p.indexed {
			todo = append(todo, p)
		}
	}
	ix.mu.RUnlock()
	slices.SortFunc(todo, func(a, b *partition) int { return int(a.id) - int(b.id) })
	for _, p := range todo {
		if err := ix.flushPartition(p); err != nil {
			return err
		}
	}
	if ix.opts.Retention > 0 {
		if _, err := ix.dropBefore(ix.opts.Now().Add(-ix.opts.Retention).UnixNano()); err != nil {
			return err
		}
	}
	return nil
}

// flushPartition writes p's in-memory postings as its next segment. The
// caller holds writeMu.
func (ix *Index) flushPartition(p *partition) error {
	var key, val, post []byte
	batch := ix.db.NewBatch()
	names := make([]string, 0, len(p.pend))
	for k := range p.pend {
		names = append(names, k)
	}
	slices.Sort(names)
	seg := p.nextSeg
	cw := &ix.w.chunk
	cw.reset()
	flushChunk := func() error {
		if cw.n == 0 {
			return nil
		}
		key = keys.AppendLogTokenChunk(key[:0], p.id, seg, cw.first)
		val = cw.appendTo(val[:0])
		cw.reset()
		return batch.Set(key, val, nil)
	}
	for _, k := range names {
		var err error
		long := uint64(longPostings)
		if k[0] == 'f' {
			long = smallPostings
		}
		if post, err = ix.w.enc.appendPostings(post[:0], p.pend[k], long); err != nil {
			batch.Close()
			return err
		}
		if k[0] == 't' {
			cw.add(unsafeBytes(k[1:]), post)
			if cw.full() {
				err = flushChunk()
			}
		} else {
			f, v, _ := bytes.Cut(unsafeBytes(k[1:]), []byte{0})
			key = keys.AppendLogField(key[:0], p.id, f, v, seg)
			err = batch.Set(key, post, nil)
		}
		if err != nil {
			batch.Close()
			return fmt.Errorf("logindex: flush: %w", err)
		}
	}
	if err := flushChunk(); err != nil {
		batch.Close()
		return fmt.Errorf("logindex: flush: %w", err)
	}
	val = encoding.AppendUvarint(val[:0], uint64(p.indexed))
	val = encoding.AppendUvarint(val, uint64(p.next))
	var prev, delta int64
	if p.indexed > 0 {
		prev = p.ts[p.indexed-1]
	}
	for _, t := range p.ts[p.indexed:p.next] {
		val = encoding.AppendVarint(val, t-prev-delta)
		delta, prev = t-prev, t
	}
	key = keys.AppendLogSegment(key[:0], p.id, seg)
	if err := batch.Set(key, val, nil); err != nil {
		batch.Close()
		return fmt.Errorf("logindex: flush: %w", err)
	}
	// Commit and swap under the lock, so a reader sees the postings
	// either in memory or in Pebble, never in both or neither.
	ix.mu.Lock()
	err := batch.Commit(kv.WriteOptions)
	if err == nil {
		ix.pending -= int(p.next - p.indexed)
		p.indexed = p.next
		p.nextSeg++
		p.resetPending()
	}
	ix.mu.Unlock()
	batch.Close()
	if err != nil {
		return fmt.Errorf("logindex: flush partition %d: %w", p.id, err)
	}
	return nil
}

// EnforceRetention drops the partitions that ended more than
// Options.Retention ago and returns how many it dropped. Partitions that
// writes dropped since the last call (see Options.Retention) are compacted
// away with them. With no retention it does nothing.
func (ix *Index) EnforceRetention(ctx context.Context) (int, error) {
	if ix.opts.Retention <= 0 {
		return 0, nil
	}
	return ix.DropBefore(ctx, ix.opts.Now().Add(-ix.opts.Retention).UnixNano())
}

// DropBefore drops every partition that ends at or before t (Unix ns),
// with one range delete per key kind, and returns how many it dropped.
// When it dropped any, it then has Pebble compact the dropped key ranges,
// so their disk space is returned now (writers do not wait for that).
func (ix *Index) DropBefore(ctx context.Context, t int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	ix.writeMu.Lock()
	n, err := ix.dropBefore(t)
	end := ix.partitionOf(t)
	// Partitions below end were dropped now or by an earlier drop that
	// did not compact (the one after a flush): compact once per advance.
	compact := end > ix.compactedBelow
	ix.writeMu.Unlock()
	if err != nil || !compact {
		return n, err
	}
	for _, kind := range keys.LogKinds {
		lo := keys.AppendLogPartition(nil, kind, 0)
		hi := keys.AppendLogPartition(nil, kind, end)
		if err := ix.db.Compact(ctx, lo, hi, true); err != nil {
			return n, fmt.Errorf("logindex: retention: compact dropped partitions: %w", err)
		}
	}
	ix.writeMu.Lock()
	ix.compactedBelow = max(ix.compactedBelow, end)
	ix.writeMu.Unlock()
	return n, nil
}

func (ix *Index) dropBefore(t int64) (int, error) {
	// Every partition below the one holding t ends at or before t.
	end := ix.partitionOf(t)
	ix.mu.RLock()
	var drop []uint32
	for id := range ix.parts {
		if id < end {
			drop = append(drop, id)
		}
	}
	ix.mu.RUnlock()
	if len(drop) == 0 {
		return 0, nil
	}
	batch := ix.db.NewBatch()
	defer batch.Close()
	for _, kind := range keys.LogKinds {
		lo := keys.AppendLogPartition(nil, kind, 0)
		hi := keys.AppendLogPartition(nil, kind, end)
		if err := batch.DeleteRange(lo, hi, nil); err != nil {
			return 0, fmt.Errorf("logindex: retention: %w", err)
		}
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := batch.Commit(kv.WriteOptions); err != nil {
		return 0, fmt.Errorf("logindex: retention: %w", err)
	}
	ix.blocks.dropBelow(end)
	for _, id := range drop {
		p := ix.parts[id]
		ix.pending -= int(p.next - p.indexed)
		delete(ix.parts, id)
	}
	return len(drop), nil
}

// Close flushes pending postings and releases the index. With Open it
// closes the Pebble instance; with OpenPebble it leaves it open.
func (ix *Index) Close() error {
	// A seal under way finishes first: it reads from a Pebble snapshot
	// that must be released before Pebble closes.
	ix.sealMu.Lock()
	defer ix.sealMu.Unlock()
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return ErrClosed
	}
	ix.mu.Unlock()
	err := ix.flushLocked()
	ix.mu.Lock()
	ix.closed = true
	ix.parts = nil
	ix.mu.Unlock()
	if ix.ownDB {
		// Flushing the memtable leaves compressed tables instead of
		// write-ahead logs on disk and makes the next Open replay nothing.
		if err == nil {
			err = ix.db.Flush()
		}
		err = errors.Join(err, ix.db.Close())
	}
	return err
}

// Stats is a snapshot of the index's size.
type Stats struct {
	Partitions int
	Records    uint64
	// PendingRecords have their postings in memory only.
	PendingRecords int
}

// Stats returns a snapshot of the index's size.
func (ix *Index) Stats() Stats {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s := Stats{Partitions: len(ix.parts), PendingRecords: ix.pending}
	for _, p := range ix.parts {
		s.Records += uint64(p.next)
	}
	return s
}
