package tsdb

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
)

// seriesIterator streams one series' samples in [mint, maxt]. Creating it
// copies what it will read, without decoding: the head's open chunk bytes
// and side samples under the stripe lock, then the raw bytes of the sealed
// chunks overlapping the range (the head is read first, so a sample sealed
// in between is seen twice and counted once, never missed). Samples are
// then decoded one chunk at a time as the caller advances, and SeekTo skips
// whole chunks by their bounds.
//
// Sealed chunks are time-ordered and disjoint, and the head starts after
// them, so each piece is streamed as it is. Only pieces whose time ranges
// overlap (out-of-order data, or a seal racing the read) are decoded
// together into one buffer and sorted.
type seriesIterator struct {
	mint, maxt int64

	arena []byte    // copied chunk bytes
	segs  []segment // the pieces in time order
	side  sampleBuf // the head's side samples in range, sorted
	mat   sampleBuf // pieces that overlap, merged
	tmp   []segment // scratch for building segs
	memb  []segment // scratch: the members of one overlapping group
	fit   encoding.FloatIterator
	hit   encoding.HistogramIterator
	key   []byte
	lower []byte
	iopts pebble.IterOptions
	tcol  []int64      // the shared timestamp columns read without a cache
	cols  *columnCache // the columns already read by the querier, or nil
	times timesCodec   // decodes them
	refs  []pendingColumn
	ckey  []byte // a column's key

	si      int  // current segment
	open    bool // segs[si] has been pointed at
	bi      int  // position in a buffer segment
	started bool // Next or SeekTo was called
	typ     ValueType
	t       int64
	v       float64
	hsrc    *Histogram // the current histogram of a buffer segment
	err     error
}

// segKind says where a segment's samples are.
type segKind uint8

const (
	segFloats     segKind = iota // a float chunk in arena[lo:hi]
	segHistograms                // a histogram chunk in arena[lo:hi]
	segSide                      // samples side[lo:hi]
	segMerged                    // samples mat[lo:hi]
	segShared                    // a values chunk in arena[lo:hi], its timestamps in ts
)

// pendingColumn is a segShared piece of tmp whose column is still to read.
type pendingColumn struct {
	seg  int // index in tmp
	hash uint64
}

// segment is one time-ordered piece of a series: a chunk or a run of
// buffered samples, with the bounds of its timestamps.
type segment struct {
	kind       segKind
	minT, maxT int64
	lo, hi     int
	ts         []int64 // segShared: the column's timestamps
	src        int     // read order: lower reads win over equal timestamps
}

func (it *seriesIterator) load(db *DB, s *memSeries, mint, maxt int64) {
	it.mint, it.maxt = mint, maxt
	it.arena, it.segs, it.tmp = it.arena[:0], it.segs[:0], it.tmp[:0]
	it.tcol, it.refs = it.tcol[:0], it.refs[:0]
	it.side.reset()
	it.mat.reset()
	it.si, it.open, it.bi, it.started = 0, false, 0, false
	it.typ, it.hsrc, it.err = ValNone, nil, nil

	// The write lock, not the read lock: FloatChunk.Bytes finishes the
	// chunk's trailing bits in place, so two readers must not run it at once.
	st := db.reg.stripeOf(s.id)
	st.mu.Lock()
	if s.chunkLen() > 0 && s.chunk.MaxTime() >= mint && s.chunk.MinTime() <= maxt {
		lo := len(it.arena)
		it.arena = append(it.arena, s.chunk.Bytes()...)
		it.tmp = append(it.tmp, segment{kind: segFloats, minT: s.chunk.MinTime(), maxT: s.chunk.MaxTime(), lo: lo, hi: len(it.arena)})
	}
	if s.side != nil {
		d := s.side
		first, _ := slices.BinarySearch(d.ts, mint)
		for i := first; i < len(d.ts) && d.ts[i] <= maxt; i++ {
			if h := s.histAt(i); h != nil {
				it.side.addHistogram(d.ts[i], h)
			} else {
				it.side.addFloat(d.ts[i], d.vs[i])
			}
		}
	}
	st.mu.Unlock()
	if n := len(it.side.ts); n > 0 {
		it.tmp = append(it.tmp, segment{kind: segSide, minT: it.side.ts[0], maxT: it.side.ts[n-1], hi: n})
	}

	if err := it.loadSealed(db, s.id); err != nil {
		it.err = fmt.Errorf("tsdb: read series %d: %w", s.id, err)
		return
	}
	for i := range it.tmp {
		it.tmp[i].src = i
	}
	// Head pieces come first in read order but last in time; a stable sort
	// keeps chunks with equal starts in key order.
	slices.SortStableFunc(it.tmp, func(a, b segment) int {
		switch {
		case a.minT < b.minT:
			return -1
		case a.minT > b.minT:
			return 1
		}
		return 0
	})
	if err := it.group(); err != nil {
		it.err = fmt.Errorf("tsdb: read series %d: %w", s.id, err)
	}
}

// loadSealed copies the sealed chunks overlapping [mint, maxt] into arena.
func (it *seriesIterator) loadSealed(db *DB, id uint32) error {
	// A chunk never crosses a window, so one overlapping [mint, maxt]
	// starts at or after mint's window.
	it.key = keys.AppendMetricChunkPrefix(it.key[:0], id)
	it.lower = append(it.lower[:0], it.key...)
	if chunkWindow(it.mint) > (minInt64/chunkRange)+1 {
		it.lower = keys.AppendMetricChunkFrom(it.lower[:0], id, chunkWindow(it.mint)*chunkRange)
	}
	it.key = keys.PrefixEnd(it.key)
	it.iopts = pebble.IterOptions{LowerBound: it.lower, UpperBound: it.key}
	pit, err := db.p.NewIter(&it.iopts)
	if err != nil {
		return err
	}
	for pit.First(); pit.Valid(); pit.Next() {
		_, cmin, cmax, _, perr := keys.ParseMetricChunk(pit.Key())
		if perr != nil {
			err = perr
			break
		}
		if cmin > it.maxt {
			break
		}
		if cmax < it.mint || cmax < cmin {
			continue
		}
		v := pit.Value()
		if isTimesRef(v) {
			hash, values, perr := parseTimesRef(v)
			if perr != nil {
				err = perr
				break
			}
			lo := len(it.arena)
			it.arena = append(it.arena, values...)
			it.refs = append(it.refs, pendingColumn{seg: len(it.tmp), hash: hash})
			it.tmp = append(it.tmp, segment{kind: segShared, minT: cmin, maxT: cmax, lo: lo, hi: len(it.arena)})
			continue
		}
		enc, eerr := encoding.EncodingOf(v)
		if eerr != nil {
			err = fmt.Errorf("tsdb: chunk: %w", eerr)
			break
		}
		kind := segFloats
		if enc == encoding.EncHistogram {
			kind = segHistograms
		}
		lo := len(it.arena)
		it.arena = append(it.arena, v...)
		it.tmp = append(it.tmp, segment{kind: kind, minT: cmin, maxT: cmax, lo: lo, hi: len(it.arena)})
	}
	if err == nil {
		err = pit.Error()
	}
	if err == nil {
		err = it.readColumns(pit)
	}
	if cerr := pit.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// readColumns reads the timestamp columns of the segShared pieces through
// the iterator that found them, or takes them from the querier's cache:
// the series of one scrape target share one.
func (it *seriesIterator) readColumns(pit *pebble.Iterator) error {
	for _, r := range it.refs {
		seg := &it.tmp[r.seg]
		n, err := valuesLen(it.arena[seg.lo:seg.hi])
		if err != nil {
			return err
		}
		ck := columnKey{minT: seg.minT, hash: r.hash}
		if ts := it.cols.get(ck); ts != nil && len(ts) == n && ts[n-1] == seg.maxT {
			seg.ts = ts
			continue
		}
		if it.cols == nil {
			// Consecutive pieces of one series rarely share a column,
			// but other series' pieces read by this iterator may.
			lo := len(it.tcol)
			if it.tcol, err = it.times.readColumn(it.tcol, pit, &it.ckey, r.hash, n, seg.minT, seg.maxT); err != nil {
				return err
			}
			seg.ts = it.tcol[lo:len(it.tcol):len(it.tcol)]
			continue
		}
		ts, err := it.times.readColumn(make([]int64, 0, n), pit, &it.ckey, r.hash, n, seg.minT, seg.maxT)
		if err != nil {
			return err
		}
		seg.ts = ts
		it.cols.put(ck, ts)
	}
	return nil
}

// group moves the time-sorted pieces of tmp to segs, merging each run of
// pieces whose ranges overlap into one sorted segment of mat.
func (it *seriesIterator) group() error {
	for i := 0; i < len(it.tmp); {
		j, hi := i+1, it.tmp[i].maxT
		for j < len(it.tmp) && it.tmp[j].minT <= hi {
			hi = max(hi, it.tmp[j].maxT)
			j++
		}
		if j == i+1 {
			it.segs = append(it.segs, it.tmp[i])
			i = j
			continue
		}
		it.memb = append(it.memb[:0], it.tmp[i:j]...)
		slices.SortFunc(it.memb, func(a, b segment) int { return a.src - b.src })
		lo := len(it.mat.ts)
		for _, m := range it.memb {
			if err := it.decodeInto(&it.mat, m); err != nil {
				return err
			}
		}
		n := it.mat.normalizeFrom(lo)
		if n > lo {
			it.segs = append(it.segs, segment{kind: segMerged, minT: it.mat.ts[lo], maxT: it.mat.ts[n-1], lo: lo, hi: n})
		}
		i = j
	}
	return nil
}

// decodeInto appends the samples of segment m within [mint, maxt] to buf.
func (it *seriesIterator) decodeInto(buf *sampleBuf, m segment) error {
	switch m.kind {
	case segSide:
		for i := m.lo; i < m.hi; i++ {
			if k := it.side.hi[i]; k >= 0 {
				buf.addHistogram(it.side.ts[i], &it.side.hs[k])
			} else {
				buf.addFloat(it.side.ts[i], it.side.vs[i])
			}
		}
		return nil
	case segHistograms:
		if err := it.hit.Reset(it.arena[m.lo:m.hi]); err != nil {
			return fmt.Errorf("tsdb: chunk: %w", err)
		}
		for ok := it.hit.SeekTo(it.mint); ok && it.hit.AtT() <= it.maxt; ok = it.hit.Next() {
			it.hit.AtHistogram(buf.nextHist())
			buf.ts = append(buf.ts, it.hit.AtT())
			buf.vs = append(buf.vs, math.NaN())
			buf.hi = append(buf.hi, int32(buf.nh-1))
		}
		return wrapChunkErr(it.hit.Err())
	case segShared:
		ts := m.ts
		k, _ := slices.BinarySearch(ts, it.mint)
		if err := it.fit.Reset(it.arena[m.lo:m.hi]); err != nil {
			return fmt.Errorf("tsdb: chunk: %w", err)
		}
		for ok := it.fit.SeekTo(int64(k)); ok; ok = it.fit.Next() {
			i, v := it.fit.At()
			if i < 0 || i >= int64(len(ts)) {
				return errSharedIndex(i, len(ts))
			}
			if ts[i] > it.maxt {
				break
			}
			buf.addFloat(ts[i], v)
		}
		return wrapChunkErr(it.fit.Err())
	default:
		if err := it.fit.Reset(it.arena[m.lo:m.hi]); err != nil {
			return fmt.Errorf("tsdb: chunk: %w", err)
		}
		for ok := it.fit.SeekTo(it.mint); ok; ok = it.fit.Next() {
			t, v := it.fit.At()
			if t > it.maxt {
				break
			}
			buf.addFloat(t, v)
		}
		return wrapChunkErr(it.fit.Err())
	}
}

// advance moves to the first sample with timestamp >= min (and after the
// current one), skipping whole segments that end before it.
func (it *seriesIterator) advance(min int64) ValueType {
	if it.started && it.typ != ValNone {
		min = max(min, it.t+1) // also drops a repeated or regressing timestamp
	}
	it.started = true
	for it.err == nil && it.si < len(it.segs) {
		seg := &it.segs[it.si]
		if !it.open {
			if seg.maxT < min {
				it.si++
				continue
			}
			if seg.minT > it.maxt {
				break
			}
			if !it.openSeg(seg) {
				break
			}
		}
		if it.stepSeg(seg, min) {
			if it.t > it.maxt {
				break
			}
			return it.typ
		}
		if it.err != nil {
			break
		}
		it.open = false
		it.si++
	}
	it.si = len(it.segs)
	it.typ = ValNone
	return ValNone
}

// openSeg points the decoders at seg.
func (it *seriesIterator) openSeg(seg *segment) bool {
	it.open = true
	switch seg.kind {
	case segFloats, segShared:
		if err := it.fit.Reset(it.arena[seg.lo:seg.hi]); err != nil {
			it.err = fmt.Errorf("tsdb: chunk: %w", err)
			return false
		}
	case segHistograms:
		if err := it.hit.Reset(it.arena[seg.lo:seg.hi]); err != nil {
			it.err = fmt.Errorf("tsdb: chunk: %w", err)
			return false
		}
	default:
		it.bi = seg.lo
	}
	return true
}

// stepSeg moves within seg to its first sample at or after min, reporting
// whether there is one.
func (it *seriesIterator) stepSeg(seg *segment, min int64) bool {
	switch seg.kind {
	case segFloats:
		if !it.fit.SeekTo(min) {
			it.err = wrapChunkErr(it.fit.Err())
			return false
		}
		it.t, it.v = it.fit.At()
		it.typ = ValFloat
	case segShared:
		ts := seg.ts
		k, _ := slices.BinarySearch(ts, min)
		if !it.fit.SeekTo(int64(k)) {
			it.err = wrapChunkErr(it.fit.Err())
			return false
		}
		i, v := it.fit.At()
		if i < 0 || i >= int64(len(ts)) {
			it.err = errSharedIndex(i, len(ts))
			return false
		}
		it.t, it.v = ts[i], v
		it.typ = ValFloat
	case segHistograms:
		if !it.hit.SeekTo(min) {
			it.err = wrapChunkErr(it.hit.Err())
			return false
		}
		it.t, it.v = it.hit.AtT(), math.NaN()
		it.typ, it.hsrc = ValHistogram, nil
	default:
		buf := &it.side
		if seg.kind == segMerged {
			buf = &it.mat
		}
		i := it.bi
		if i < seg.hi && buf.ts[i] < min {
			j, _ := slices.BinarySearch(buf.ts[i:seg.hi], min)
			i += j
		}
		it.bi = i
		if i >= seg.hi {
			return false
		}
		it.t, it.v = buf.ts[i], buf.vs[i]
		it.typ, it.hsrc = ValFloat, nil
		if k := buf.hi[i]; k >= 0 {
			it.typ, it.hsrc = ValHistogram, &buf.hs[k]
		}
	}
	return true
}

func (it *seriesIterator) Next() ValueType {
	if it.started && it.typ == ValNone {
		return ValNone
	}
	if it.typ == ValFloat && it.open {
		// The common step, inside a float chunk, without advance's search.
		// A chunk of shared timestamps yields sample indexes, looked up
		// in its column.
		seg := &it.segs[it.si]
		if kind := seg.kind; kind == segFloats || kind == segShared {
			if it.fit.Next() {
				t, v := it.fit.At()
				ok := true
				if kind == segShared {
					if ok = t >= 0 && t < int64(len(seg.ts)); ok {
						t = seg.ts[t]
					}
				}
				if ok && t > it.t && t <= it.maxt {
					it.t, it.v = t, v
					return ValFloat
				}
				// Past maxt, or a damaged chunk's regressing timestamp or
				// stray index: advance ends, skips or reports it.
			} else {
				if err := it.fit.Err(); err != nil {
					it.err = wrapChunkErr(err)
					it.typ = ValNone
					return ValNone
				}
				it.open = false
				it.si++
			}
		}
	}
	return it.advance(it.mint)
}

func (it *seriesIterator) SeekTo(t int64) ValueType {
	if it.started {
		if it.typ == ValNone || it.t >= t {
			return it.typ
		}
	}
	return it.advance(max(t, it.mint))
}

func (it *seriesIterator) At() (int64, float64) { return it.t, it.v }

func (it *seriesIterator) AtHistogram(h *Histogram) (int64, *Histogram) {
	if it.typ != ValHistogram {
		return it.t, h
	}
	if it.hsrc == nil {
		return it.hit.AtHistogram(h)
	}
	if h == nil {
		return it.t, it.hsrc.Copy()
	}
	it.hsrc.CopyTo(h)
	return it.t, h
}

func (it *seriesIterator) AtT() int64 { return it.t }
func (it *seriesIterator) Err() error { return it.err }

// normalizeFrom sorts the samples from lo on by time and drops repeated
// timestamps, keeping the first added; it returns the new length.
func (b *sampleBuf) normalizeFrom(lo int) int {
	sort.Stable(sampleRange{b, lo})
	w := lo
	for i := lo; i < len(b.ts); i++ {
		if w > lo && b.ts[i] == b.ts[w-1] {
			continue
		}
		b.ts[w], b.vs[w], b.hi[w] = b.ts[i], b.vs[i], b.hi[i]
		w++
	}
	b.ts, b.vs, b.hi = b.ts[:w], b.vs[:w], b.hi[:w]
	return w
}

// sampleRange sorts the samples of a sampleBuf from lo on.
type sampleRange struct {
	b  *sampleBuf
	lo int
}

func (r sampleRange) Len() int           { return len(r.b.ts) - r.lo }
func (r sampleRange) Less(i, j int) bool { return r.b.ts[r.lo+i] < r.b.ts[r.lo+j] }
func (r sampleRange) Swap(i, j int)      { r.b.Swap(r.lo+i, r.lo+j) }
