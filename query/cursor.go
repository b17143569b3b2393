package query

import (
	"github.com/prometheus/prometheus/model/histogram"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/tsdb"
)

// cursor walks one series' samples in time order; it is the one shape both
// store iterators and subquery results are read through.
type cursor interface {
	next() tsdb.ValueType
	seek(t int64) tsdb.ValueType
	atT() int64
	atF() (int64, float64)
	// atH returns the current histogram as a new FloatHistogram the caller
	// owns.
	atH() (int64, *FloatHistogram)
	err() error
}

// tsdbCursor reads a store iterator, decoding histograms into a reused
// scratch value before converting them.
type tsdbCursor struct {
	it      tsdb.Iterator
	scratch encoding.Histogram
}

func (c *tsdbCursor) reset(it tsdb.Iterator) { c.it = it }

func (c *tsdbCursor) next() tsdb.ValueType        { return c.it.Next() }
func (c *tsdbCursor) seek(t int64) tsdb.ValueType { return c.it.SeekTo(t) }
func (c *tsdbCursor) atT() int64                  { return c.it.AtT() }
func (c *tsdbCursor) atF() (int64, float64)       { return c.it.At() }
func (c *tsdbCursor) err() error                  { return c.it.Err() }

func (c *tsdbCursor) atH() (int64, *FloatHistogram) {
	t, h := c.it.AtHistogram(&c.scratch)
	return t, toFloatHistogram(h)
}

// toFloatHistogram converts the store's integer, delta-coded histogram into
// a float histogram with absolute bucket counts.
func toFloatHistogram(h *encoding.Histogram) *FloatHistogram {
	fh := &FloatHistogram{
		CounterResetHint: histogram.CounterResetHint(h.CounterResetHint),
		Schema:           h.Schema,
		ZeroThreshold:    h.ZeroThreshold,
		ZeroCount:        float64(h.ZeroCount),
		Count:            float64(h.Count),
		Sum:              h.Sum,
	}
	if len(h.PositiveSpans) > 0 {
		fh.PositiveSpans = make([]histogram.Span, len(h.PositiveSpans))
		for i, s := range h.PositiveSpans {
			fh.PositiveSpans[i] = histogram.Span{Offset: s.Offset, Length: s.Length}
		}
	}
	if len(h.NegativeSpans) > 0 {
		fh.NegativeSpans = make([]histogram.Span, len(h.NegativeSpans))
		for i, s := range h.NegativeSpans {
			fh.NegativeSpans[i] = histogram.Span{Offset: s.Offset, Length: s.Length}
		}
	}
	fh.PositiveBuckets = deltasToAbsolute(h.PositiveBuckets)
	fh.NegativeBuckets = deltasToAbsolute(h.NegativeBuckets)
	return fh
}

func deltasToAbsolute(d []int64) []float64 {
	if len(d) == 0 {
		return nil
	}
	out := make([]float64, len(d))
	var cur int64
	for i, v := range d {
		cur += v
		out[i] = float64(cur)
	}
	return out
}

// seriesCursor walks the points of an evaluated Series (a subquery's
// result), floats and histograms merged by time.
type seriesCursor struct {
	s      *Series
	fi, hi int
	isH    bool
	init   bool
}

func (c *seriesCursor) reset(s *Series) { *c = seriesCursor{s: s} }

func (c *seriesCursor) cur() tsdb.ValueType {
	fOK := c.fi < len(c.s.Floats)
	hOK := c.hi < len(c.s.Histograms)
	switch {
	case fOK && (!hOK || c.s.Floats[c.fi].T < c.s.Histograms[c.hi].T):
		c.isH = false
		return tsdb.ValFloat
	case hOK:
		c.isH = true
		return tsdb.ValHistogram
	}
	return tsdb.ValNone
}

func (c *seriesCursor) next() tsdb.ValueType {
	if c.init {
		if c.isH {
			c.hi++
		} else {
			c.fi++
		}
	}
	c.init = true
	return c.cur()
}

func (c *seriesCursor) seek(t int64) tsdb.ValueType {
	vt := tsdb.ValNone
	if !c.init {
		vt = c.next()
	} else {
		vt = c.cur()
	}
	for vt != tsdb.ValNone && c.atT() < t {
		vt = c.next()
	}
	return vt
}

func (c *seriesCursor) atT() int64 {
	if c.isH {
		return c.s.Histograms[c.hi].T
	}
	return c.s.Floats[c.fi].T
}

func (c *seriesCursor) atF() (int64, float64) {
	p := c.s.Floats[c.fi]
	return p.T, p.F
}

func (c *seriesCursor) atH() (int64, *FloatHistogram) {
	p := c.s.Histograms[c.hi]
	return p.T, p.H
}

func (c *seriesCursor) err() error { return nil }

// window is the sliding buffer of one series' samples in (mint, maxt] that
// range-vector functions see. Steps move it forward: samples that fall out
// are dropped from the front, new ones appended from the cursor, and the
// backing arrays are reused across steps and series.
type window struct {
	f      []FPoint
	h      []HPoint
	f0, h0 int // first live element of f and h
	vt     tsdb.ValueType
	primed bool
	// drops counts adjacent live float pairs where the value goes down,
	// so counter functions can skip their reset scan when there is none.
	drops int
}

func (w *window) reset() {
	w.f, w.h = w.f[:0], w.h[:0]
	w.f0, w.h0 = 0, 0
	w.primed = false
	w.drops = 0
}

func (w *window) floats() []FPoint { return w.f[w.f0:] }
func (w *window) hists() []HPoint  { return w.h[w.h0:] }
func (w *window) len() int         { return len(w.f) - w.f0 + len(w.h) - w.h0 }

// dropBefore drops the samples at or before mint and compacts the buffers
// so they do not grow with the number of steps.
func (w *window) dropBefore(mint int64) {
	for w.f0 < len(w.f) && w.f[w.f0].T <= mint {
		if w.f0+1 < len(w.f) && w.f[w.f0+1].F < w.f[w.f0].F {
			w.drops--
		}
		w.f0++
	}
	for w.h0 < len(w.h) && w.h[w.h0].T <= mint {
		w.h0++
	}
	if w.f0 > 0 && w.f0 >= len(w.f)/2 {
		n := copy(w.f, w.f[w.f0:])
		w.f = w.f[:n]
		w.f0 = 0
	}
	if w.h0 > 0 && w.h0 >= len(w.h)/2 {
		n := copy(w.h, w.h[w.h0:])
		clear(w.h[n:])
		w.h = w.h[:n]
		w.h0 = 0
	}
}

func (w *window) appendFloat(t int64, f float64) {
	if isStaleNaN(f) {
		return
	}
	if n := len(w.f); n > w.f0 && f < w.f[n-1].F {
		w.drops++
	}
	w.f = append(w.f, FPoint{T: t, F: f})
}

// fillIter is fill for a store iterator, called directly rather than
// through the cursor interface: it is the innermost loop of every range
// function over a selector.
func (w *window) fillIter(ev *evaluator, it tsdb.Iterator, scratch *encoding.Histogram, mint, maxt int64) {
	w.dropBefore(mint)
	if !w.primed {
		w.vt = it.Next()
		w.primed = true
	}
	if w.vt != tsdb.ValNone && it.AtT() <= mint {
		w.vt = it.SeekTo(mint + 1)
	}
	for w.vt == tsdb.ValFloat {
		t, f := it.At()
		if t > maxt {
			break
		}
		w.appendFloat(t, f)
		w.vt = it.Next()
	}
	for w.vt != tsdb.ValNone && it.AtT() <= maxt {
		if w.vt == tsdb.ValHistogram {
			t, h := it.AtHistogram(scratch)
			if !isStaleNaN(h.Sum) {
				w.h = append(w.h, HPoint{T: t, H: toFloatHistogram(h)})
			}
		} else {
			w.appendFloat(it.At())
		}
		w.vt = it.Next()
	}
	if err := it.Err(); err != nil {
		ev.failf("query: read series: %w", err)
	}
}

// fill moves the window to (mint, maxt]; successive calls must not move
// either bound backwards.
func (w *window) fill(ev *evaluator, cur cursor, mint, maxt int64) {
	w.dropBefore(mint)
	if !w.primed {
		w.vt = cur.next()
		w.primed = true
	}
	if w.vt != tsdb.ValNone && cur.atT() <= mint {
		w.vt = cur.seek(mint + 1)
	}
	for w.vt != tsdb.ValNone && cur.atT() <= maxt {
		if w.vt == tsdb.ValHistogram {
			t, h := cur.atH()
			if !isStaleNaN(h.Sum) {
				w.h = append(w.h, HPoint{T: t, H: h})
			}
		} else {
			w.appendFloat(cur.atF())
		}
		w.vt = cur.next()
	}
	if err := cur.err(); err != nil {
		ev.failf("query: read series: %w", err)
	}
}
