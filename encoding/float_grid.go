package encoding

import (
	"math/bits"
	"slices"
)

// The decimal and chimp encodings may code timestamps on a grid instead of
// as deltas of deltas. Scrapes land on a schedule (every 15 s) moved by a
// little jitter; the delta of deltas of jittered times mixes three jitters
// and spreads over four times their range, while the offset from the
// schedule is one jitter. After t₀ these chunks carry a timestamp header:
//
//	0                                     deltas of deltas, as in gorilla
//	1 + interval uvarint + phase zigzag uvarint + width 6 bits
//	1 + interval 0 (a uvarint, 8 bits)    implicit: tᵢ = t₀ + i
//
// On the grid, sample i's time is g + o, where g is the previous grid
// point plus the interval (the first grid point is t₀ + phase) and o is
// coded as 0 + zigzag o in width bits; anything else (a missed scrape, a
// restart) is 1 + (t − previous t) as a uvarint in 8-bit groups, and the
// grid restarts at that time.
//
// An implicit chunk (AppendBestFloatValues) codes no timestamp after t₀:
// its samples are numbered, not timed. An interval of 0 was never written
// before it existed (a reader rejects it on a grid), so no older chunk
// reads differently.

// tsGrid is a chunk's grid; interval 0 means deltas of deltas, unless
// implicit is set.
type tsGrid struct {
	interval int64
	phase    int64
	width    uint8
	implicit bool // tᵢ = t₀ + i, no bits per sample; interval is 0
}

// gridProbe is how many leading samples set the interval and phase.
const gridProbe = 17

// chooseGrid returns the grid that codes ts in the fewest bits, or a zero
// grid when deltas of deltas do at least as well. The interval is the
// median delta of the first samples or the mean over the chunk rounded to
// a whole second (scrape intervals are round; a measured one is off by the
// jitter, and a grid that drifts by a millisecond a sample is soon
// useless), or the mean as is when that is not near a whole second.
func chooseGrid(ts []int64) tsGrid {
	g, _ := chooseGridBelow(ts, dodCost(ts))
	return g
}

// chooseGridBelow is chooseGrid given the cost of deltas of deltas; it
// also returns the chosen coding's cost (dod for deltas of deltas).
func chooseGridBelow(ts []int64, dod int) (tsGrid, int) {
	// A grid costs at least a bit a timestamp and its header; regular
	// timestamps already cost about that.
	if len(ts) < 3 || dod <= len(ts)+24 {
		return tsGrid{}, dod
	}
	var buf [gridProbe]int64
	m := min(len(ts), gridProbe)
	for i := 1; i < m; i++ {
		buf[i-1] = ts[i] - ts[i-1]
	}
	d := buf[:m-1]
	// The median only matters rounded to a second; when the smallest and
	// largest delta round alike, so does the median (rounding is
	// monotone), and the sort is skipped.
	round := func(x int64) int64 { return (x + 500) / 1000 * 1000 }
	dlo, dhi := slices.Min(d), slices.Max(d)
	medRounded := round(dlo)
	if round(dhi) != medRounded {
		slices.Sort(d)
		medRounded = round(d[len(d)/2])
	}
	span := ts[len(ts)-1] - ts[0]
	mean := (span + int64(len(ts)-1)/2) / int64(len(ts)-1)
	var cands [3]int64
	nc := 0
	add := func(c int64) {
		if c > 0 && !slices.Contains(cands[:nc], c) {
			cands[nc] = c
			nc++
		}
	}
	add(medRounded)
	// A mean far from the median is a gappy series' (missed scrapes
	// lengthen it): every sample would be off a grid of it.
	if med := max(medRounded, 1); mean-med <= med/8 && med-mean <= med/8 {
		add((mean + 500) / 1000 * 1000)
		if r := (mean + 500) / 1000 * 1000; mean-r > mean/200 || r-mean > mean/200 {
			add(mean) // not a round interval
		}
	}
	best, bestCost := tsGrid{}, dod
	for _, iv := range cands[:nc] {
		g, c, floor := gridFor(ts, iv, &buf, bestCost)
		if c < 0 {
			if floor >= bestCost {
				continue // a gappy series' mean, say: no walk needed to lose
			}
			c = gridCost(ts, g)
		}
		if c < bestCost {
			best, bestCost = g, c
		}
	}
	return best, bestCost
}

// gridFor fits the phase and width of a grid of the given interval. It
// also returns gridCost of that grid when every offset fits the width
// (the usual case: the walk it took is then the one gridCost takes), else
// -1, and in either case a lower bound on it: the header, a bit a sample,
// and a byte more for each sample off the grid by more than half an
// interval, which escapes whatever the width. It stops early, with -1
// and a bound at least limit, once the bound reaches limit.
func gridFor(ts []int64, interval int64, buf *[gridProbe]int64, limit int) (tsGrid, int, int) {
	m := min(len(ts), gridProbe)
	for i := range m {
		buf[i] = ts[i] - (ts[0] + int64(i)*interval)
	}
	r := buf[:m]
	// The phase is the middle of the offsets' range, which centres uniform
	// jitter far better than their median; offsets far from the median (a
	// missed scrape among the first samples) are left out. When the whole
	// range is within interval/4, every offset is that near the median
	// and no sort is needed to find it.
	lo, hi := slices.Min(r), slices.Max(r)
	if hi-lo > interval/4 {
		slices.Sort(r)
		med := r[len(r)/2]
		lo, hi = med, med
		for _, x := range r {
			if x-med <= interval/4 && med-x <= interval/4 {
				lo, hi = min(lo, x), max(hi, x)
			}
		}
	}
	g := tsGrid{interval: interval, phase: lo + (hi-lo)/2}

	// Bit lengths of the offsets, a missed scrape restarting the grid as
	// it would; the width is fitted to them.
	// Two histograms, for odd and even samples, so that successive counts
	// of the same length (most of them: jitter has one spread) do not wait
	// on each other's increment.
	// Each escape raises the lower bound (see below) by a byte; once it
	// reaches limit the walk stops, the grid lost.
	// Only lengths up to the longest are summed and tried as widths: a
	// wider one costs more for every offset and fits no more of them.
	var lens2 [2][65]int
	gp := ts[0] + g.phase
	half := interval / 2
	hdr := 1 + uvarintBits(uint64(g.interval)) + uvarintBits(Zigzag(g.phase)) + 6
	floor := hdr + len(ts) - 1
	longest := 0
	for i := 1; i < len(ts); i++ {
		gp += interval
		o := ts[i] - gp
		if o > half || o < -half {
			gp = ts[i]
			if floor += 8; floor >= limit {
				return g, -1, floor
			}
			continue
		}
		l := bits.Len64(Zigzag(o))
		longest = max(longest, l)
		lens2[i&1][l]++
	}
	total, cum := len(ts)-1, 0 // offsets and escapes
	bestCost, fits := -1, 0
	for w := range min(longest, 40) + 1 {
		cum += lens2[0][w] + lens2[1][w]
		if c := cum*(1+w) + (total-cum)*(1+24); bestCost < 0 || c < bestCost {
			g.width, bestCost, fits = uint8(w), c, cum
		}
	}
	if fits < total {
		return g, -1, floor // offsets wider than the width, or escapes
	}
	return g, hdr + (len(ts)-1)*(1+int(g.width)), floor
}

// gridCost is the exact number of bits the grid codes ts[1:] in, header
// included.
func gridCost(ts []int64, g tsGrid) int {
	n := 1 + uvarintBits(uint64(g.interval)) + uvarintBits(Zigzag(g.phase)) + 6
	gp := ts[0] + g.phase
	for i := 1; i < len(ts); i++ {
		gp += g.interval
		if z := Zigzag(ts[i] - gp); bits.Len64(z) <= int(g.width) {
			n += 1 + int(g.width)
		} else {
			n += 1 + uvarintBits(uint64(ts[i]-ts[i-1]))
			gp = ts[i]
		}
	}
	return n
}

// dodCost is the number of bits deltas of deltas code ts[1:] in, with the
// one-bit header that chooses them.
func dodCost(ts []int64) int {
	if len(ts) < 2 {
		return 1
	}
	n := 1 + uvarintBits(uint64(ts[1]-ts[0]))
	delta := ts[1] - ts[0]
	for i := 2; i < len(ts); i++ {
		d := ts[i] - ts[i-1]
		n += dodBits(d - delta)
		delta = d
	}
	return n
}

// dodBits is what writeDod spends on dod: a table by the bit length of the
// zigzagged dod (a bucket of payload width w holds exactly the dods whose
// zigzag fits w bits), so jitter's random buckets cost no branches.
func dodBits(dod int64) int { return int(dodBitsByLen[bits.Len64(Zigzag(dod))]) }

// dodBitsByLen maps a zigzagged dod's bit length to writeDod's bits.
var dodBitsByLen = func() (t [65]uint8) {
	for l := range t {
		switch {
		case l == 0:
			t[l] = 1
		case l <= 7:
			t[l] = 2 + 7
		case l <= 9:
			t[l] = 3 + 9
		case l <= 16:
			t[l] = 4 + 16
		case l <= 20:
			t[l] = 5 + 20
		default:
			t[l] = 5 + 64
		}
	}
	return t
}()

// uvarintBits is what BitWriter.WriteUvarint spends on v.
func uvarintBits(v uint64) int { return 8 * max(1, (bits.Len64(v)+6)/7) }

// write writes the timestamp header.
func (g *tsGrid) write(w *BitWriter) {
	if g.implicit {
		w.writeSmall(1, 1)
		w.WriteUvarint(0)
		return
	}
	if g.interval == 0 {
		w.writeSmall(0, 1)
		return
	}
	w.writeSmall(1, 1)
	w.WriteUvarint(uint64(g.interval))
	w.WriteUvarint(Zigzag(g.phase))
	w.writeSmall(uint64(g.width), 6)
}

// read reads the timestamp header.
func (g *tsGrid) read(r *BitReader) error {
	on, err := r.ReadBit()
	if err != nil || !on {
		*g = tsGrid{}
		return err
	}
	iv, err := r.ReadUvarint()
	if err != nil {
		return err
	}
	if iv == 0 {
		*g = tsGrid{implicit: true}
		return nil
	}
	ph, err := r.ReadUvarint()
	if err != nil {
		return err
	}
	wd, err := r.ReadBits(6)
	if err != nil {
		return err
	}
	if iv >= 1<<62 || wd > 62 {
		return corruptf("timestamp grid of interval %d and width %d", iv, wd)
	}
	*g = tsGrid{interval: int64(iv), phase: Unzigzag(ph), width: uint8(wd)}
	return nil
}

// writeTime writes t, the timestamp after prev, and returns the grid point
// for the next one and the timestamp a reader recovers from the bits
// written; gp is the grid point before t's.
func (g *tsGrid) writeTime(w *BitWriter, t, prev, gp int64) (int64, int64) {
	gp += g.interval
	if z := Zigzag(t - gp); bits.Len64(z) <= int(g.width) {
		f := z & lowBits(g.width)
		if g.width < 32 {
			w.writeSmall(f, 1+uint(g.width)) // the zero bit, then f
		} else {
			w.writeSmall(0, 1)
			w.WriteBits(f, int(g.width))
		}
		return gp, gp + Unzigzag(f)
	}
	w.writeSmall(1, 1)
	w.WriteUvarint(uint64(t - prev))
	return t, prev + int64(uint64(t-prev))
}

// valid reports whether a reader accepts g's header (see read).
func (g *tsGrid) valid() bool {
	if g.implicit {
		return g.interval == 0
	}
	return g.interval == 0 || (g.interval > 0 && g.interval < 1<<62 && g.width <= 62)
}

// readTime reads a timestamp written by writeTime, returning it and the
// new grid point.
func (g *tsGrid) readTime(r *BitReader, prev, gp int64) (int64, int64, error) {
	esc, err := r.ReadBit()
	if err != nil {
		return 0, 0, err
	}
	if esc {
		d, err := r.ReadUvarint()
		if err != nil {
			return 0, 0, err
		}
		t := prev + int64(d)
		return t, t, nil
	}
	z, err := r.ReadBits(int(g.width))
	if err != nil {
		return 0, 0, err
	}
	gp += g.interval
	return gp + Unzigzag(z), gp, nil
}
