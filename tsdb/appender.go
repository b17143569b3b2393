package tsdb

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/internal/kv"
)

// Appender collects samples for one atomic commit. Use one per goroutine.
type Appender interface {
	// Append adds a float sample. ref 0 (or a ref this DB does not know)
	// means look the series up by l, creating it if needed; the returned ref
	// skips that lookup next time. Errors for bad labels and for samples
	// that are out of order past the window come back here; the appender
	// stays usable and the sample is not added.
	Append(ref SeriesRef, l Labels, t int64, v float64) (SeriesRef, error)
	// AppendHistogram adds a native histogram sample; h is copied.
	AppendHistogram(ref SeriesRef, l Labels, t int64, h *Histogram) (SeriesRef, error)
	// Commit makes every added sample durable and visible, or none of them:
	// on error nothing of the batch is stored. (The one exception is a
	// failure to write Pebble's log, which leaves the batch readable but
	// not durable, as Pebble itself does; every later commit then fails.)
	// The appender cannot be used afterwards.
	Commit() error
	// Rollback drops the batch. The appender cannot be used afterwards.
	Rollback() error
}

type pendingSample struct {
	s    *memSeries
	t    int64
	v    float64
	h    *Histogram
	skip bool // a duplicate of a stored sample: nothing to write
	part int8 // which of a commit's two appliers owns the series (see ingest.go)
}

type appender struct {
	db      *DB
	ctx     context.Context
	done    bool
	samples []pendingSample
	grouped bool // samples come in runs of one stripe (set by validate)
	created []*memSeries
	newByID map[uint32]*memSeries
	newByH  map[uint64][]*memSeries
}

// SampleError says which series and timestamp a rejected sample had; it
// wraps the sentinel (ErrOutOfOrderSample, ErrDuplicateSampleForTimestamp).
type SampleError struct {
	Err    error
	Labels Labels
	T      int64
}

func (e *SampleError) Error() string {
	return fmt.Sprintf("%v: series %s at %d", e.Err, e.Labels, e.T)
}

// Unwrap returns the sentinel.
func (e *SampleError) Unwrap() error { return e.Err }

func (a *appender) Append(ref SeriesRef, l Labels, t int64, v float64) (SeriesRef, error) {
	return a.add(ref, l, t, v, nil)
}

func (a *appender) AppendHistogram(ref SeriesRef, l Labels, t int64, h *Histogram) (SeriesRef, error) {
	if h == nil {
		return 0, fmt.Errorf("%w: nil histogram", ErrInvalidSample)
	}
	if err := h.Validate(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidSample, err)
	}
	return a.add(ref, l, t, 0, h.Copy())
}

func (a *appender) add(ref SeriesRef, l Labels, t int64, v float64, h *Histogram) (SeriesRef, error) {
	if a.done || a.db.closed.Load() {
		return 0, ErrClosed
	}
	s, err := a.series(ref, l)
	if err != nil {
		return 0, err
	}
	if last := s.lastT.Load(); last != math.MinInt64 && t < last-a.db.window {
		return 0, &SampleError{Err: ErrOutOfOrderSample, Labels: s.lset, T: t}
	}
	if a.samples == nil {
		a.samples = a.db.getSamples()
	}
	a.samples = append(a.samples, pendingSample{s: s, t: t, v: v, h: h})
	return a.db.ref(s.id), nil
}

// ref returns the ref handed out for series id: the id in the low half and
// the DB's refTag in the high half.
func (db *DB) ref(id uint32) SeriesRef { return SeriesRef(uint64(db.refTag)<<32 | uint64(id)) }

// series resolves a ref or a label set to a committed series or one this
// appender created.
func (a *appender) series(ref SeriesRef, l Labels) (*memSeries, error) {
	// A ref this DB handed out names its series: ids are never reused while
	// the DB is open, and an id handed out by a batch that never committed
	// is never registered. Any other ref (one from before a restart, where
	// its id may now belong to another series, or from elsewhere) is checked
	// against the labels when both are given.
	if ref != 0 {
		id, ours := uint32(ref), uint32(ref>>32) == a.db.refTag
		if s := a.db.reg.get(id); s != nil && (ours || len(l) == 0 || Equal(s.lset, l)) {
			return s, nil
		}
		if s := a.newByID[id]; s != nil && (ours || len(l) == 0 || Equal(s.lset, l)) {
			return s, nil
		}
	}
	if len(l) == 0 {
		if ref == 0 {
			return nil, &LabelError{Reason: "empty label set"}
		}
		return nil, fmt.Errorf("%w: series ref %d", ErrNotFound, ref)
	}
	hash := l.Hash()
	if s := a.db.reg.lookup(hash, l); s != nil {
		return s, nil
	}
	for _, s := range a.newByH[hash] {
		if Equal(s.lset, l) {
			return s, nil
		}
	}
	if err := validateLabels(l, a.db.opts.AllowUTF8Names); err != nil {
		return nil, err
	}
	s := newMemSeries(a.db.nextID.Add(1), l.Copy())
	if a.newByID == nil {
		a.newByID = map[uint32]*memSeries{}
		a.newByH = map[uint64][]*memSeries{}
	}
	a.newByID[s.id] = s
	a.newByH[hash] = append(a.newByH[hash], s)
	a.created = append(a.created, s)
	return s, nil
}

// getSamples returns an empty batch buffer, reusing one a finished
// appender gave back: a scrape's batch is thousands of samples, and
// growing a new one per commit costs more than appending to it.
func (db *DB) getSamples() []pendingSample {
	if p, ok := db.samplePool.Get().(*[]pendingSample); ok {
		return (*p)[:0]
	}
	return nil
}

// putSamples gives a batch buffer back for reuse.
func (db *DB) putSamples(ps []pendingSample) {
	if cap(ps) == 0 {
		return
	}
	ps = ps[:cap(ps)]
	clear(ps) // drop the series and histogram pointers
	ps = ps[:0]
	db.samplePool.Put(&ps)
}

func newMemSeries(id uint32, ls Labels) *memSeries {
	s := &memSeries{id: id, lset: ls, compactW: math.MinInt64}
	s.lastT.Store(math.MinInt64)
	s.minT.Store(math.MaxInt64)
	return s
}

func (a *appender) Rollback() error {
	if a.done {
		return ErrClosed
	}
	a.done = true
	a.db.putSamples(a.samples)
	a.samples, a.created = nil, nil
	return nil
}

func (a *appender) Commit() error {
	if a.done {
		return ErrClosed
	}
	a.done = true
	defer func() {
		a.db.putSamples(a.samples)
		a.samples = nil
	}()
	db := a.db
	if db.closed.Load() {
		return ErrClosed
	}
	if err := a.ctx.Err(); err != nil {
		return err
	}
	if len(a.samples) == 0 {
		return nil
	}
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	if db.closed.Load() {
		return ErrClosed
	}
	if db.walErr != nil {
		return db.walErr
	}
	a.resolveRaces()
	if err := a.validate(); err != nil {
		return err
	}
	seq := db.seq + 1
	b, err := a.write(seq)
	if err != nil {
		return err
	}
	// The entry is in Pebble's memtable and on its way to the log; the
	// heads are filled while Pebble writes it, and Commit returns only once
	// it is in the log. Like Pebble's own writes, the samples can be read
	// a moment before they are durable, never acknowledged before.
	db.seq = seq
	for _, s := range a.created {
		if s.live {
			db.reg.add(s)
		}
	}
	sealErr := db.applyAndSeal(a.samples, seq, a.grouped)
	if err := b.SyncWait(); err != nil {
		_ = b.Close()
		db.walErr = fmt.Errorf("tsdb: commit: write-ahead log: %w", err)
		return db.walErr
	}
	if err := b.Close(); err != nil {
		return fmt.Errorf("tsdb: commit: %w", err)
	}
	if sealErr != nil {
		return fmt.Errorf("tsdb: commit is durable but sealing failed: %w", sealErr)
	}
	db.sinceTrim++
	if db.sinceTrim >= truncateEvery {
		db.sinceTrim = 0
		if err := db.trim(); err != nil {
			return fmt.Errorf("tsdb: commit is durable but log truncation failed: %w", err)
		}
	}
	return nil
}

// resolveRaces handles a series another appender committed after this one
// created it: samples go to the committed series and the record is not
// written twice.
func (a *appender) resolveRaces() {
	var remap map[*memSeries]*memSeries
	for _, s := range a.created {
		if ex := a.db.reg.lookup(s.lset.Hash(), s.lset); ex != nil {
			if remap == nil {
				remap = map[*memSeries]*memSeries{}
			}
			remap[s] = ex
			continue
		}
		s.live = true
	}
	if remap == nil {
		return
	}
	for i := range a.samples {
		if ex, ok := remap[a.samples[i].s]; ok {
			a.samples[i].s = ex
		}
	}
}

// validate checks ordering and duplicates for the whole batch against the
// stored series and the batch itself, without changing anything.
func (a *appender) validate() error {
	db := a.db
	db.gen++
	g := db.gen
	// Count the stripe changes along the batch, for applyBatch.
	changes, last := 0, uint32(math.MaxUint32)
	defer func() { a.grouped = changes*4 <= len(a.samples) }()
	for i := range a.samples {
		p := &a.samples[i]
		s := p.s
		k := stripeIndex(s.id)
		if k != last {
			changes, last = changes+1, k
		}
		p.part = int8(k & 1)
		cur, has := s.lastT.Load(), s.hasData
		if s.commitG == g {
			cur, has = s.commitT, true
		}
		if !has || p.t > cur {
			s.commitG, s.commitT = g, p.t
			continue
		}
		same, found, err := a.existing(i, p)
		if err != nil {
			return err
		}
		if found {
			if !same {
				return &SampleError{Err: ErrDuplicateSampleForTimestamp, Labels: s.lset, T: p.t}
			}
			p.skip = true
			continue
		}
		if cur-p.t > db.window {
			return &SampleError{Err: ErrOutOfOrderSample, Labels: s.lset, T: p.t}
		}
		s.commitG, s.commitT = g, cur
	}
	return nil
}

// existing looks for a sample at p.t earlier in the batch, in the head, or
// in the sealed chunks, and says whether it has the same value (float
// bits, so NaN payloads and stale markers compare exactly).
func (a *appender) existing(i int, p *pendingSample) (same, found bool, err error) {
	for j := i - 1; j >= 0; j-- {
		q := &a.samples[j]
		if q.s == p.s && q.t == p.t && !q.skip {
			return sameValue(q.v, q.h, p.v, p.h), true, nil
		}
	}
	s := p.s
	st := a.db.reg.stripeOf(s.id)
	st.mu.Lock() // find may finish the chunk's bytes (see seriesIterator.load)
	v, h, ok := s.find(p.t)
	st.mu.Unlock()
	if ok {
		return sameValue(v, h, p.v, p.h), true, nil
	}
	if s.hasData && p.t == s.lastT.Load() && p.h == nil {
		return s.lastV == math.Float64bits(p.v), true, nil
	}
	if s.mark.seq != 0 && p.t <= s.mark.sealT && p.t >= s.minT.Load() {
		// Rare: an out-of-order sample at a time that is already sealed.
		v, h, ok, err := a.db.sealedAt(s.id, p.t)
		if err != nil || !ok {
			return false, false, err
		}
		return sameValue(v, h, p.v, p.h), true, nil
	}
	return false, false, nil
}

func sameValue(v1 float64, h1 *Histogram, v2 float64, h2 *Histogram) bool {
	if h1 == nil || h2 == nil {
		return h1 == nil && h2 == nil && math.Float64bits(v1) == math.Float64bits(v2)
	}
	return histEqual(h1, h2)
}

func histEqual(a, b *Histogram) bool {
	return a.CounterResetHint == b.CounterResetHint && a.Schema == b.Schema &&
		math.Float64bits(a.ZeroThreshold) == math.Float64bits(b.ZeroThreshold) &&
		a.ZeroCount == b.ZeroCount && a.Count == b.Count &&
		math.Float64bits(a.Sum) == math.Float64bits(b.Sum) &&
		slices.Equal(a.PositiveSpans, b.PositiveSpans) && slices.Equal(a.NegativeSpans, b.NegativeSpans) &&
		slices.Equal(a.PositiveBuckets, b.PositiveBuckets) && slices.Equal(a.NegativeBuckets, b.NegativeBuckets)
}

// encodeWAL appends the write-ahead payload of the batch to p (see the
// format in records.go).
func (a *appender) encodeWAL(p []byte) []byte {
	n, hist := 0, false
	for i := range a.samples {
		if q := &a.samples[i]; !q.skip {
			n++
			hist = hist || q.h != nil
		}
	}
	p = encoding.AppendUvarint(p, uint64(n))
	if hist {
		p = append(p, walKinds)
	} else {
		p = append(p, 0)
	}
	db := a.db
	col := db.walCol[:0]
	var last int64
	run := 0
	for i := range a.samples {
		q := &a.samples[i]
		if q.skip {
			continue
		}
		id := int64(q.s.id)
		if run > 0 && id == last+1 {
			run++
			last = id
			continue
		}
		if run > 0 {
			col = encoding.AppendUvarint(col, uint64(run-1))
		}
		col = encoding.AppendVarint(col, id-last)
		last, run = id, 1
	}
	if run > 0 {
		col = encoding.AppendUvarint(col, uint64(run-1))
	}
	p = encoding.AppendBytesField(p, col)
	col, last, run = col[:0], 0, 0
	for i := range a.samples {
		q := &a.samples[i]
		if q.skip {
			continue
		}
		if run > 0 && q.t == last {
			run++
			continue
		}
		if run > 0 {
			col = encoding.AppendUvarint(col, uint64(run-1))
		}
		col = encoding.AppendVarint(col, q.t-last)
		last, run = q.t, 1
	}
	if run > 0 {
		col = encoding.AppendUvarint(col, uint64(run-1))
	}
	p = encoding.AppendBytesField(p, col)
	if hist {
		col = col[:0]
		for i := range a.samples {
			if q := &a.samples[i]; !q.skip {
				if q.h != nil {
					col = append(col, kindHistogram)
				} else {
					col = append(col, kindFloat)
				}
			}
		}
		p = encoding.AppendBytesField(p, col)
	}
	db.walCol = col
	for i := range a.samples {
		q := &a.samples[i]
		switch {
		case q.skip:
		case q.h != nil:
			p = appendHistogram(p, q.h)
		default:
			p = appendFloatBits(p, q.v)
		}
	}
	return p
}

// write puts the new series records and the write-ahead entry in one
// Pebble batch and applies it without waiting for Pebble's log: the caller
// must SyncWait (which makes it durable, see kv.WriteOptions) and Close it.
func (a *appender) write(seq uint64) (*pebble.Batch, error) {
	db := a.db
	b := db.p.NewBatch()
	fail := func(err error) (*pebble.Batch, error) {
		_ = b.SyncWait()
		_ = b.Close()
		return nil, fmt.Errorf("tsdb: commit: %w", err)
	}
	var key []byte
	for _, s := range a.created {
		if !s.live {
			continue
		}
		key = keys.AppendMetricSeries(key[:0], s.id)
		db.buf, db.scratch = appendLabelsRecord(db.buf[:0], db.scratch, s.lset)
		if err := b.Set(key, db.buf, nil); err != nil {
			return fail(err)
		}
	}
	p := a.encodeWAL(db.scratch[:0])
	db.scratch = p
	db.buf = encoding.AppendBlock(db.buf[:0], encoding.BlockRaw, p)
	key = keys.AppendMetricWAL(key[:0], seq)
	if err := b.Set(key, db.buf, nil); err != nil {
		return fail(err)
	}
	if err := db.p.ApplyNoSyncWait(b, kv.WriteOptions); err != nil {
		return fail(err)
	}
	return b, nil
}
