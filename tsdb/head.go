package tsdb

import (
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/pillar-db/pillar/encoding"
)

// memSeries is one series in memory: its labels and its head, the samples
// not yet sealed into Pebble. In-order float samples go into a Gorilla
// chunk (a byte or two per sample); out-of-order floats and histograms go
// into small sorted side slices. Timestamps are unique across both.
//
// Commits are serialised by DB.commitMu, so only the committing goroutine
// changes a series; it holds the series' stripe lock while doing so, and
// readers hold the stripe's read lock while copying the head out.
//
// There is one per series, so its size is most of a series' heap: fields
// are ordered so the small ones share padding, and nothing is kept twice.
type memSeries struct {
	id uint32
	// Owned by the committer (commitMu).
	hasData bool // any sample ever, sealed or in the head
	live    bool // the series record is (being) written; false for a creation lost to a race

	lset Labels

	// Guarded by the stripe lock (written under commitMu as well).
	chunk *encoding.FloatChunk // in-order floats; nil when there are none
	side  *sideSamples         // out-of-order floats and histograms; nil when none

	// nextHash chains series whose label hashes collide in the stripe's
	// hash index (guarded by that stripe's lock).
	nextHash *memSeries

	// Owned by the committer (commitMu).
	mark     mark   // what the sealed chunks cover
	lastV    uint64 // bits of the newest float sample (for duplicate checks after sealing)
	walFirst uint64 // oldest write-ahead entry holding a head sample; 0 when the head is empty
	winSeq   uint64 // write-ahead seq of the first sample in the head's newest chunk window
	// compactW is the oldest chunk window CompactChunks must look at; the
	// ones below it hold one compacted chunk each (or cannot be merged).
	// Seals lower it when they write below it.
	compactW int64
	commitT  int64 // newest timestamp including the commit being validated
	// commitG is the commit generation commitT belongs to while a commit
	// validates; while it applies (a later generation), the one in which
	// the series was queued for sealing.
	commitG uint64

	// The earliest and newest timestamps ever stored. Only the committer
	// writes them; they are atomic because Append's early out-of-order
	// check and Select's range filter read them without commitMu. lastT
	// is math.MinInt64 (and minT math.MaxInt64) before the first sample.
	minT, lastT atomic.Int64
}

// sideSamples are head samples that cannot go into the Gorilla chunk,
// sorted by time. Most series never have any, so they sit behind a pointer.
type sideSamples struct {
	ts []int64
	vs []float64
	hs []*Histogram // nil until a histogram arrives; hs[i] nil for floats
}

func (s *memSeries) sideLen() int {
	if s.side == nil {
		return 0
	}
	return len(s.side.ts)
}

func (s *memSeries) chunkLen() int {
	if s.chunk == nil {
		return 0
	}
	return s.chunk.NumSamples()
}

func (s *memSeries) headLen() int { return s.chunkLen() + s.sideLen() }

// headRange returns the earliest and newest head timestamps; ok is false
// for an empty head.
func (s *memSeries) headRange() (lo, hi int64, ok bool) {
	if n := s.chunkLen(); n > 0 {
		lo, hi, ok = s.chunk.MinTime(), s.chunk.MaxTime(), true
	}
	if n := s.sideLen(); n > 0 {
		ts := s.side.ts
		if !ok || ts[0] < lo {
			lo = ts[0]
		}
		if !ok || ts[n-1] > hi {
			hi = ts[n-1]
		}
		ok = true
	}
	return lo, hi, ok
}

// find returns the head sample at t, if any.
func (s *memSeries) find(t int64) (v float64, h *Histogram, found bool) {
	if s.side != nil {
		if i, ok := slices.BinarySearch(s.side.ts, t); ok {
			return s.side.vs[i], s.histAt(i), true
		}
	}
	if s.chunkLen() > 0 && t >= s.chunk.MinTime() && t <= s.chunk.MaxTime() {
		// Rare (a repeated or out-of-order timestamp): a linear decode.
		it, err := encoding.NewFloatIterator(s.chunk.Bytes())
		if err != nil {
			return 0, nil, false
		}
		if it.SeekTo(t) {
			if ct, cv := it.At(); ct == t {
				return cv, nil, true
			}
		}
	}
	return 0, nil, false
}

// insert puts a sample into the head. h is stored as is (the caller passes
// a private copy). A timestamp already present is ignored.
func (s *memSeries) insert(t int64, v float64, h *Histogram) {
	if h == nil && (s.chunkLen() == 0 || t > s.chunk.MaxTime()) && (s.sideLen() == 0 || t > s.side.ts[s.sideLen()-1]) {
		if s.chunk == nil {
			s.chunk = encoding.NewFloatChunk()
		}
		if s.chunk.Append(t, v) == nil {
			return
		}
	}
	if _, _, found := s.find(t); found {
		return
	}
	if s.side == nil {
		s.side = &sideSamples{}
	}
	d := s.side
	i, _ := slices.BinarySearch(d.ts, t)
	d.ts = slices.Insert(d.ts, i, t)
	d.vs = slices.Insert(d.vs, i, v)
	if h != nil || d.hs != nil {
		for len(d.hs) < len(d.ts)-1 {
			d.hs = append(d.hs, nil)
		}
		d.hs = slices.Insert(d.hs, i, h)
	}
}

// histAt returns side sample i's histogram, nil for a float.
func (s *memSeries) histAt(i int) *Histogram {
	if s.side.hs == nil {
		return nil
	}
	return s.side.hs[i]
}

// dropThrough removes head samples with t <= cut. When the chunk
// straddles cut, its newer samples are re-encoded (this happens once per
// chunk window).
func (s *memSeries) dropThrough(cut int64, tmp *sampleBuf) {
	if s.chunkLen() > 0 && s.chunk.MinTime() <= cut {
		if s.chunk.MaxTime() <= cut {
			// Drop the chunk rather than Reset it: a full chunk's buffer is
			// sized for its worst samples, and a new one grows only as far
			// as the next chunk needs, which halves the head's bytes on
			// average.
			s.chunk = nil
		} else {
			tmp.reset()
			var it encoding.FloatIterator
			if it.Reset(s.chunk.Bytes()) == nil && it.SeekTo(cut+1) {
				for {
					t, v := it.At()
					tmp.addFloat(t, v)
					if !it.Next() {
						break
					}
				}
			}
			s.chunk.Reset()
			for i, t := range tmp.ts {
				_ = s.chunk.Append(t, tmp.vs[i]) // sorted and unique: cannot fail
			}
		}
	}
	if s.side == nil {
		return
	}
	d := s.side
	i, _ := slices.BinarySearch(d.ts, cut+1)
	if i == 0 {
		return
	}
	if i == len(d.ts) {
		s.side = nil
		return
	}
	d.ts = append(d.ts[:0], d.ts[i:]...)
	d.vs = append(d.vs[:0], d.vs[i:]...)
	if d.hs != nil {
		d.hs = append(d.hs[:0], d.hs[i:]...)
	}
}

// copyHead appends the head samples within [mint, maxt] to buf, unsorted
// (the chunk's, then the side samples); the caller normalizes.
func (s *memSeries) copyHead(buf *sampleBuf, it *encoding.FloatIterator, mint, maxt int64) {
	if s.chunkLen() > 0 && s.chunk.MaxTime() >= mint && s.chunk.MinTime() <= maxt {
		if it.Reset(s.chunk.Bytes()) == nil && it.SeekTo(mint) {
			for {
				t, v := it.At()
				if t > maxt {
					break
				}
				buf.addFloat(t, v)
				if !it.Next() {
					break
				}
			}
		}
	}
	if s.side == nil {
		return
	}
	d := s.side
	lo, _ := slices.BinarySearch(d.ts, mint)
	for i := lo; i < len(d.ts) && d.ts[i] <= maxt; i++ {
		if h := s.histAt(i); h != nil {
			buf.addHistogram(d.ts[i], h)
		} else {
			buf.addFloat(d.ts[i], d.vs[i])
		}
	}
}

// stripeCount is the number of lock stripes; a power of two so a series
// picks its stripe with a mask.
const stripeCount = 1 << 10

// stripeShift groups 1<<stripeShift consecutive series ids in one stripe: a
// commit that appends to series in id order (a scrape with cached refs)
// then takes each lock once per group instead of once per series.
const stripeShift = 4

// stripeIndex returns the stripe of series id.
func stripeIndex(id uint32) uint32 { return (id >> stripeShift) & (stripeCount - 1) }

// stripe guards the heads of the series whose id maps to it and the hash
// index of the series whose label hash maps to it. It is padded to two
// cache lines so neighbouring locks share none (false sharing between
// cores appending to different series: a large commit's two goroutines
// take neighbouring stripes, see ingest.go), even with the adjacent-line
// prefetch.
type stripe struct {
	mu     sync.RWMutex
	byHash map[uint64]*memSeries // chained through memSeries.nextHash
	_      [128 - unsafe.Sizeof(sync.RWMutex{}) - 8]byte
}

// registry maps refs and label sets to series and keeps the postings.
type registry struct {
	stripes []stripe

	// Series by id, in pages that never move, so Append's ref lookup is two
	// atomic loads and no lock. idMu serialises growth.
	idMu  sync.Mutex
	pages atomic.Pointer[[]*idPage]
	maxID atomic.Uint32

	postMu sync.RWMutex
	all    *roaring.Bitmap
	byName map[string]*roaring.Bitmap
	byPair map[string]map[string]postingsList
	// interned label strings, so series sharing a name or value share its bytes
	strs map[string]string
}

func newRegistry() *registry {
	r := &registry{
		stripes: make([]stripe, stripeCount),
		all:     roaring.New(),
		byName:  map[string]*roaring.Bitmap{},
		byPair:  map[string]map[string]postingsList{},
		strs:    map[string]string{},
	}
	for i := range r.stripes {
		r.stripes[i].byHash = map[uint64]*memSeries{}
	}
	return r
}

func (r *registry) stripeOf(id uint32) *stripe { return &r.stripes[stripeIndex(id)] }

func (r *registry) get(id uint32) *memSeries {
	pages := r.pages.Load()
	if pages == nil || int(id>>idPageBits) >= len(*pages) {
		return nil
	}
	return (*pages)[id>>idPageBits][id&(idPageSize-1)].Load()
}

const (
	idPageBits = 12
	idPageSize = 1 << idPageBits
)

type idPage [idPageSize]atomic.Pointer[memSeries]

// lookup finds a committed series by labels.
func (r *registry) lookup(hash uint64, ls Labels) *memSeries {
	st := &r.stripes[hash&(stripeCount-1)]
	st.mu.RLock()
	defer st.mu.RUnlock()
	for s := st.byHash[hash]; s != nil; s = s.nextHash {
		if Equal(s.lset, ls) {
			return s
		}
	}
	return nil
}

func (r *registry) intern(s string) string {
	if v, ok := r.strs[s]; ok {
		return v
	}
	r.strs[s] = s
	return s
}

// add makes a series visible: by ref, by labels and in the postings.
func (r *registry) add(s *memSeries) {
	r.postMu.Lock()
	for i, l := range s.lset {
		s.lset[i] = Label{Name: r.intern(l.Name), Value: r.intern(l.Value)}
	}
	r.all.Add(s.id)
	for _, l := range s.lset {
		bm := r.byName[l.Name]
		if bm == nil {
			bm = roaring.New()
			r.byName[l.Name] = bm
			r.byPair[l.Name] = map[string]postingsList{}
		}
		bm.Add(s.id)
		vals := r.byPair[l.Name]
		switch pl, ok := vals[l.Value]; {
		case !ok:
			vals[l.Value] = postingsList{one: s.id}
		case pl.bm == nil:
			vals[l.Value] = postingsList{bm: roaring.BitmapOf(pl.one, s.id)}
		default:
			pl.bm.Add(s.id)
		}
	}
	r.postMu.Unlock()

	h := s.lset.Hash()
	st := &r.stripes[h&(stripeCount-1)]
	st.mu.Lock()
	s.nextHash = st.byHash[h]
	st.byHash[h] = s
	st.mu.Unlock()

	r.idMu.Lock()
	var pages []*idPage
	if p := r.pages.Load(); p != nil {
		pages = *p
	}
	if need := int(s.id>>idPageBits) + 1; need > len(pages) {
		grown := make([]*idPage, need)
		copy(grown, pages)
		for i := len(pages); i < need; i++ {
			grown[i] = new(idPage)
		}
		r.pages.Store(&grown)
		pages = grown
	}
	pages[s.id>>idPageBits][s.id&(idPageSize-1)].Store(s)
	if s.id > r.maxID.Load() {
		r.maxID.Store(s.id)
	}
	r.idMu.Unlock()
}

// numSeries returns how many series are registered.
func (r *registry) numSeries() uint64 {
	r.postMu.RLock()
	defer r.postMu.RUnlock()
	return r.all.GetCardinality()
}

// each calls fn for every registered series, in id order.
func (r *registry) each(fn func(*memSeries)) {
	pages := r.pages.Load()
	if pages == nil {
		return
	}
	for _, p := range *pages {
		for i := range p {
			if s := p[i].Load(); s != nil {
				fn(s)
			}
		}
	}
}
