// Package tsdb is Pillar's durable store of labelled time series: float and
// native-histogram samples keyed by label sets, queried by label matchers
// over a time range.
//
// Layout (every key built by internal/keys):
//
//	m s <id>                  series labels, written in the batch of the commit that created it
//	m w <seq>                 one commit's samples (write-ahead; deleted once sealed)
//	m c <id> <minT> <maxT> <seq> one sealed chunk (seq 0: written by CompactChunks)
//	m k <id>                  the series' seal mark
//
// Writes: an Appender collects samples; Commit validates them all, writes
// the new series records and one write-ahead entry in a single Pebble batch
// (committed with kv.WriteOptions, so it survives kill -9), and only then
// applies them to the in-memory heads. A head is sealed into chunks when it
// reaches Options.ChunkSamples samples or its samples cross a chunk window
// (two hours); the chunks and the series' new seal mark go into Pebble in
// one batch, as they are (Gorilla); CompactChunks later merges each closed
// window's chunks into one in the best encoding. Write-ahead entries that
// no head still needs are range-deleted every few commits; a series that
// has not been sealed for Options.MaxWALLag commits is sealed early, so the
// log stays bounded.
//
// Open loads the series records and seal marks (rebuilding the postings in
// memory) and replays the write-ahead entries that the marks do not cover.
package tsdb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

// truncateEvery is how many commits pass between write-ahead truncations;
// each scans every series once, so it is amortised over many commits.
const truncateEvery = 64

// DB is a labelled-series store. It is safe for concurrent use.
type DB struct {
	p      *pebble.DB
	ownsP  bool
	opts   Options
	window int64 // OutOfOrderWindow in ms
	reg    *registry
	nextID atomic.Uint32

	// compactMu serialises CompactChunks passes and Close. It is taken
	// before commitMu.
	compactMu sync.Mutex
	// rollupMu serialises Downsample and DropRollupsBefore passes and
	// Close: two passes at once would each write the same windows. It is
	// taken after compactMu and before commitMu.
	rollupMu sync.Mutex
	// commitMu serialises commits, seals and write-ahead truncation.
	commitMu  sync.Mutex
	seq       uint64 // last write-ahead seq written
	gen       uint64 // commit generation (validation scratch)
	walFloor  uint64 // entries below this are deleted
	sinceTrim int
	closed    atomic.Bool
	buf       []byte
	scratch   []byte
	walCol    []byte // a write-ahead column being encoded
	codec     chunkCodec
	sealer    sealScratch // the committing goroutine's seals
	helper    *applyHelper
	// applyBatch's scratch: samples per stripe, then the batch in stripe
	// order, and the series to seal
	stripeCounts [stripeCount]int32
	order        []int32
	toSeal       []*memSeries
	key          []byte
	// refTag is the high half of every ref this DB hands out: a ref carrying
	// it was handed out by this DB, for a series id it never reuses, so
	// Append trusts it without comparing labels.
	refTag uint32
	// walErr is set when a write-ahead entry that was already applied failed
	// to reach the log: the log is broken, so every later commit fails.
	walErr error

	samples      atomic.Uint64
	sealedChunks atomic.Uint64

	samplePool sync.Pool // *[]pendingSample, appenders' batch buffers

	// cols holds the shared timestamp columns read so far, for every
	// query: the series of a target share one, and a column never
	// changes while it exists.
	cols columnCache
}

// Stats is a snapshot of a DB's size.
type Stats struct {
	Series       uint64 // series registered
	Samples      uint64 // samples appended since Open (replayed ones included)
	HeadSamples  uint64 // samples in memory, not yet sealed
	HeadSeries   uint64 // series with a non-empty head
	SealedChunks uint64 // chunks sealed since Open
	WALEntries   uint64 // write-ahead entries not yet truncated (seq range)
	DiskBytes    uint64 // Pebble's estimate of the bytes the metrics keys take on disk
}

// Open opens (creating if needed) a DB with its own Pebble instance in dir.
func Open(dir string, o *Options) (*DB, error) {
	opts := o.withDefaults()
	p, err := kv.Open(dir, kv.Options{SyncWrites: opts.SyncWrites, CacheSize: opts.CacheSize})
	if err != nil {
		return nil, fmt.Errorf("tsdb: %w", err)
	}
	db, err := OpenPebble(p, &opts)
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	db.ownsP = true
	return db, nil
}

// OpenPebble opens a DB on a Pebble instance owned by the caller; Close does
// not close p. Commits use kv.WriteOptions.
func OpenPebble(p *pebble.DB, o *Options) (*DB, error) {
	opts := o.withDefaults()
	if opts.OutOfOrderWindow < 0 {
		return nil, fmt.Errorf("tsdb: negative OutOfOrderWindow %v", opts.OutOfOrderWindow)
	}
	db := &DB{p: p, opts: opts, window: opts.OutOfOrderWindow.Milliseconds(), reg: newRegistry()}
	for db.refTag == 0 {
		db.refTag = rand.Uint32()
	}
	if err := db.load(); err != nil {
		return nil, err
	}
	db.startHelper()
	return db, nil
}

// load rebuilds the registry and the heads from Pebble.
func (db *DB) load() error {
	var scratch []byte
	// Series records.
	lo := keys.AppendPrefix(nil, keys.StoreMetrics, keys.MetricSeries)
	it, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("tsdb: open: %w", err)
	}
	maxID := uint32(0)
	for it.First(); it.Valid(); it.Next() {
		id, err := keys.ParseMetricSeries(it.Key())
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("tsdb: open: %w", err)
		}
		var ls Labels
		ls, scratch, err = decodeLabelsRecord(scratch, it.Value())
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("tsdb: open: series %d: %w", id, err)
		}
		s := newMemSeries(id, ls)
		s.live = true
		db.reg.add(s)
		maxID = max(maxID, id)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("tsdb: open: %w", err)
	}
	db.nextID.Store(maxID)

	// Seal marks.
	lo = keys.AppendPrefix(nil, keys.StoreMetrics, keys.MetricMark)
	if it, err = db.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)}); err != nil {
		return fmt.Errorf("tsdb: open: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		id, err := keys.ParseMetricMark(it.Key())
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("tsdb: open: %w", err)
		}
		var m mark
		if m, scratch, err = decodeMark(scratch, it.Value()); err != nil {
			_ = it.Close()
			return fmt.Errorf("tsdb: open: series %d: %w", id, err)
		}
		s := db.reg.get(id)
		if s == nil {
			continue // a mark without its series record cannot be written; ignore it
		}
		s.mark = m
		s.hasData, s.lastV = true, m.lastV
		s.minT.Store(m.minT)
		s.lastT.Store(m.maxT)
		db.seq = max(db.seq, m.seq)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("tsdb: open: %w", err)
	}

	// Write-ahead replay.
	lo = keys.AppendPrefix(nil, keys.StoreMetrics, keys.MetricWAL)
	if it, err = db.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)}); err != nil {
		return fmt.Errorf("tsdb: open: %w", err)
	}
	var wd walDecoder
	var ws walSample
	first := true
	for it.First(); it.Valid(); it.Next() {
		seq, err := keys.ParseMetricWAL(it.Key())
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("tsdb: open: %w", err)
		}
		if first {
			db.walFloor, first = seq, false
		}
		db.seq = max(db.seq, seq)
		if scratch, err = decodeWALBlock(scratch, it.Value()); err == nil {
			err = wd.reset(scratch)
		}
		for err == nil {
			var ok bool
			if ok, err = wd.next(&ws); !ok {
				break
			}
			s := db.reg.get(ws.id)
			if s == nil {
				err = fmt.Errorf("tsdb: write-ahead entry %d: %w: sample of unknown series %d", seq, ErrNotFound, ws.id)
				break
			}
			if seq <= s.mark.seq && ws.t <= s.mark.sealT {
				continue // already in a sealed chunk
			}
			var h *Histogram
			if ws.kind == kindHistogram {
				h = ws.h.Copy()
			}
			db.applySample(s, seq, ws.t, ws.v, h)
		}
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("tsdb: open: %w", err)
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("tsdb: open: %w", err)
	}
	if first {
		db.walFloor = db.seq + 1
	}
	return nil
}

// applySample adds a validated sample to a series' head. Callers hold
// commitMu (or are loading).
func (db *DB) applySample(s *memSeries, seq uint64, t int64, v float64, h *Histogram) {
	st := db.reg.stripeOf(s.id)
	st.mu.Lock()
	s.insertAt(seq, t, v, h)
	st.mu.Unlock()
	db.noteSample(s, seq, t, v, h)
	db.samples.Add(1)
}

// applyRuns adds the samples of one part of a commit (part -1: all of
// them) to their heads in commit order and appends the series whose heads
// now need sealing to toSeal, each once. It takes each stripe lock once per
// run of samples in the same stripe rather than once per sample: a scrape
// appends one sample to each of thousands of series in the order their
// refs were handed out, so with stripes of consecutive ids (see
// registry.stripeOf) the batch is already in long runs. It returns the
// number of samples applied. Callers hold commitMu.
func (db *DB) applyRuns(ps []pendingSample, seq, g uint64, part int8, toSeal []*memSeries) ([]*memSeries, int) {
	n := 0
	var held *stripe
	for i := range ps {
		p := &ps[i]
		if p.skip || (part >= 0 && p.part != part) {
			continue
		}
		s := p.s
		if st := db.reg.stripeOf(s.id); st != held {
			if held != nil {
				held.mu.Unlock()
			}
			st.mu.Lock()
			held = st
		}
		if db.applyOne(s, seq, p.t, p.v, p.h) && s.commitG != g {
			s.commitG = g
			toSeal = append(toSeal, s)
		}
		n++
	}
	if held != nil {
		held.mu.Unlock()
	}
	db.noteSamples(ps, seq, part)
	return toSeal, n
}

// applySorted is applyRuns for a batch that is not in runs of one stripe:
// it first puts the batch in stripe order with a counting sort, which keeps
// each series' samples in commit order, so each lock is still taken once.
func (db *DB) applySorted(ps []pendingSample, seq, g uint64, toSeal []*memSeries) ([]*memSeries, int) {
	counts := &db.stripeCounts
	*counts = [stripeCount]int32{}
	n := 0
	for i := range ps {
		if !ps[i].skip {
			counts[stripeIndex(ps[i].s.id)]++
			n++
		}
	}
	pos := int32(0)
	for i, c := range counts {
		counts[i] = pos
		pos += c
	}
	db.order = slices.Grow(db.order[:0], n)[:n]
	for i := range ps {
		if !ps[i].skip {
			k := stripeIndex(ps[i].s.id)
			db.order[counts[k]] = int32(i)
			counts[k]++
		}
	}
	for i := 0; i < n; {
		st := db.reg.stripeOf(ps[db.order[i]].s.id)
		st.mu.Lock()
		for ; i < n && db.reg.stripeOf(ps[db.order[i]].s.id) == st; i++ {
			p := &ps[db.order[i]]
			if db.applyOne(p.s, seq, p.t, p.v, p.h) && p.s.commitG != g {
				p.s.commitG = g
				toSeal = append(toSeal, p.s)
			}
		}
		st.mu.Unlock()
	}
	db.noteSamples(ps, seq, -1)
	return toSeal, n
}

// noteSamples notes the applied samples of one part (-1: all). It is a
// pass of its own: noteSample's atomic stores wait for every store before
// them, which in the apply loops are the chunks' cache misses.
func (db *DB) noteSamples(ps []pendingSample, seq uint64, part int8) {
	for i := range ps {
		if p := &ps[i]; !p.skip && (part < 0 || p.part == part) {
			db.noteSample(p.s, seq, p.t, p.v, p.h)
		}
	}
}

// applyOne adds a validated sample to a series' head and says whether the
// head needs sealing (see needsSeal); the caller then notes the sample
// (noteSample). Callers hold commitMu and the series' stripe lock.
//
// The fast path is a float newer than every head sample of a head with no
// side samples, which is nearly every sample a scrape brings: it appends to
// the open chunk and decides on sealing from what it already has at hand.
func (db *DB) applyOne(s *memSeries, seq uint64, t int64, v float64, h *Histogram) bool {
	if c := s.chunk; h == nil && s.side == nil && c != nil && c.NumSamples() > 0 && t > c.MaxTime() {
		if chunkWindow(t) != chunkWindow(c.MaxTime()) {
			s.winSeq = seq
		}
		if c.Append(t, v) == nil {
			lo := c.MinTime()
			return c.NumSamples() >= db.opts.ChunkSamples || chunkWindow(lo) != chunkWindow(t) ||
				(s.mark.seq != 0 && lo <= s.mark.sealT)
		}
	}
	s.insertAt(seq, t, v, h)
	return db.needsSeal(s)
}

// insertAt puts a sample into the head, noting the write-ahead seq of the
// first sample of a new chunk window. Callers hold the stripe lock.
func (s *memSeries) insertAt(seq uint64, t int64, v float64, h *Histogram) {
	if _, hi, ok := s.headRange(); !ok || chunkWindow(t) > chunkWindow(hi) {
		s.winSeq = seq
	}
	s.insert(t, v, h)
}

// noteSample updates what the committer tracks of a series after a sample
// went into its head.
func (db *DB) noteSample(s *memSeries, seq uint64, t int64, v float64, h *Histogram) {
	if !s.hasData || t < s.minT.Load() {
		s.minT.Store(t)
	}
	if !s.hasData || t >= s.lastT.Load() {
		s.lastT.Store(t)
		if h == nil {
			s.lastV = math.Float64bits(v)
		}
	}
	s.hasData = true
	if s.walFirst == 0 {
		s.walFirst = seq
	}
}

// Close seals every head into chunks, truncates the write-ahead log,
// compacts every chunk window (see CompactChunks) and, when the DB opened
// its own Pebble, has Pebble rewrite the metrics key range and closes it.
func (db *DB) Close() error {
	db.compactMu.Lock()
	defer db.compactMu.Unlock()
	db.rollupMu.Lock()
	defer db.rollupMu.Unlock()
	if db.closed.Swap(true) {
		return ErrClosed
	}
	db.commitMu.Lock()
	db.stopHelper() // commits that start from now on see closed
	db.commitMu.Unlock()
	err := db.flush()
	if err == nil {
		err = db.compactAll(context.Background())
	}
	if db.ownsP {
		if err == nil {
			err = db.compactRange(context.Background())
		}
		err = errors.Join(err, db.p.Close())
	}
	return err
}

// Compact seals every head, truncates the write-ahead log, compacts every
// chunk window (see CompactChunks) and has Pebble
// rewrite the metrics key range, so write-ahead entries deleted after they
// reached Pebble's tables stop taking disk space. Close does this when the
// DB owns its Pebble; with a shared Pebble the owner decides when.
func (db *DB) Compact(ctx context.Context) error {
	if err := db.Flush(ctx); err != nil {
		return err
	}
	return db.compactRange(ctx)
}

func (db *DB) compactRange(ctx context.Context) error {
	lo := []byte{keys.StoreMetrics}
	if err := db.p.Compact(ctx, lo, keys.PrefixEnd(lo), true); err != nil {
		return fmt.Errorf("tsdb: compact: %w", err)
	}
	return nil
}

// Flush seals every head into chunks, truncates the write-ahead log, so a
// later Open replays nothing, and compacts every chunk window (see
// CompactChunks): with the heads empty, nothing is left open.
func (db *DB) Flush(ctx context.Context) error {
	if db.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	db.compactMu.Lock()
	defer db.compactMu.Unlock()
	if err := db.flush(); err != nil {
		return err
	}
	return db.compactAll(ctx)
}

func (db *DB) flush() error {
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	var all []*memSeries
	db.reg.each(func(s *memSeries) {
		if s.walFirst != 0 {
			all = append(all, s)
		}
	})
	if err := db.seal(all, true); err != nil {
		return err
	}
	return db.truncateWAL()
}

// Stats returns a snapshot of the DB's size.
func (db *DB) Stats() Stats {
	st := Stats{
		Series:       db.reg.numSeries(),
		Samples:      db.samples.Load(),
		SealedChunks: db.sealedChunks.Load(),
	}
	db.reg.each(func(s *memSeries) {
		sp := db.reg.stripeOf(s.id)
		sp.mu.RLock()
		n := s.headLen()
		sp.mu.RUnlock()
		st.HeadSamples += uint64(n)
		if n > 0 {
			st.HeadSeries++
		}
	})
	db.commitMu.Lock()
	if db.seq >= db.walFloor {
		st.WALEntries = db.seq - db.walFloor + 1
	}
	db.commitMu.Unlock()
	lo := []byte{keys.StoreMetrics}
	if n, err := db.p.EstimateDiskUsage(lo, keys.PrefixEnd(lo)); err == nil {
		st.DiskBytes = n
	}
	return st
}

// Appender returns an appender for one batch. It is not safe for
// concurrent use; use one per goroutine.
func (db *DB) Appender(ctx context.Context) Appender {
	return &appender{db: db, ctx: ctx}
}

// Querier returns a reader of the samples in [mint, maxt]. It sees the
// samples committed before each series is read.
func (db *DB) Querier(mint, maxt int64) (*Querier, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	return &Querier{db: db, mint: mint, maxt: maxt}, nil
}

// decodeWALBlock unframes a write-ahead entry into scratch.
func decodeWALBlock(scratch, b []byte) ([]byte, error) {
	p, err := encoding.DecodeBlock(scratch[:0], b)
	if err != nil {
		return p, fmt.Errorf("tsdb: write-ahead entry: %w", err)
	}
	return p, nil
}
