package tsdb

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/pillar-db/pillar/encoding"
)

// Resolution is the width of a rollup window. Windows are left-open and
// right-closed, (End-width, End], with End a multiple of the width since the
// Unix epoch, the way a PromQL range (t-r, t] selects samples: a range of
// whole windows ending on a window boundary holds exactly those windows'
// samples.
type Resolution uint8

// Resolutions Downsample writes.
const (
	Res5m Resolution = 1 // five-minute windows
	Res1h Resolution = 2 // one-hour windows
)

// rollupResolutions lists every resolution Downsample writes, finest first.
var rollupResolutions = [...]Resolution{Res5m, Res1h}

// Millis returns the window width in milliseconds, 0 for an unknown resolution.
func (r Resolution) Millis() int64 { return r.Duration().Milliseconds() }

// Duration returns the window width, 0 for an unknown resolution.
func (r Resolution) Duration() time.Duration {
	switch r {
	case Res5m:
		return 5 * time.Minute
	case Res1h:
		return time.Hour
	}
	return 0
}

// String names the resolution ("5m", "1h").
func (r Resolution) String() string {
	switch r {
	case Res5m:
		return "5m"
	case Res1h:
		return "1h"
	}
	return fmt.Sprintf("Resolution(%d)", uint8(r))
}

// Rollup is the aggregate of one series' float samples in one window
// (End-width, End]. Staleness markers are left out, as PromQL range
// functions leave them out; NaN values are counted and aggregated as
// PromQL aggregates them. Each field is what the matching range function
// computes over the window's samples, in the same order of operations, so
// a one-window range gives the very bits the raw samples give.
type Rollup struct {
	End    int64   // the window's inclusive end (Unix ms)
	Count  int64   // samples in the window, ≥ 1
	FirstT int64   // timestamp of the first sample
	LastT  int64   // timestamp of the last sample
	First  float64 // value of the first sample
	Last   float64 // value of the last sample
	// Min and Max are min_over_time and max_over_time: NaN only when every
	// value is NaN, otherwise the extreme of the other values.
	Min, Max float64
	// Sum and SumC are the Kahan-compensated sum of the values and its
	// compensation, accumulated from zero in time order.
	Sum, SumC float64
	// Increase is Last-First corrected for counter resets the way
	// Prometheus' increase counts them (every drop adds the value before
	// it, in order), without extrapolation. Resets at the window's edges
	// are for the consumer, who has the neighbouring windows' Last and
	// First.
	Increase float64
}

// RollupFields selects the fields of a Rollup a reader needs, so that the
// others are not decoded (they read as zero). End and Count are always
// there.
type RollupFields uint8

// Float fields of a Rollup.
const (
	FieldMin      RollupFields = 1 << iota // Min
	FieldMax                               // Max
	FieldSum                               // Sum and SumC
	FieldFirst                             // First
	FieldLast                              // Last
	FieldIncrease                          // Increase
	FieldTimes                             // FirstT and LastT

	AllRollupFields = FieldMin | FieldMax | FieldSum | FieldFirst | FieldLast | FieldIncrease | FieldTimes
)

// columnFields maps a float column to the field that asks for it.
var columnFields = [rollupFloatColumns]RollupFields{FieldMin, FieldMax, FieldSum, FieldSum, FieldFirst, FieldLast, FieldIncrease}

// SumValue is sum_over_time over the window.
func (r *Rollup) SumValue() float64 {
	if math.IsInf(r.Sum, 0) {
		return r.Sum
	}
	return r.Sum + r.SumC
}

// Mean is avg_over_time over the window. ok is false when the sum
// overflowed or a value was not finite: avg_over_time then switches to an
// incremental mean that the stored fields cannot reproduce, and the caller
// must compute it from the raw samples.
func (r *Rollup) Mean() (mean float64, ok bool) {
	if math.IsInf(r.Sum, 0) || math.IsNaN(r.Sum) {
		return 0, false
	}
	n := float64(r.Count)
	return r.Sum/n + r.SumC/n, true
}

// staleNaNBits is Prometheus' staleness marker, which rollups leave out.
const staleNaNBits = 0x7ff0000000000002

// kahanInc adds inc to the compensated sum (sum, c) exactly as PromQL's
// sum_over_time and avg_over_time do, so rollup sums match theirs bit for bit.
func kahanInc(inc, sum, c float64) (newSum, newC float64) {
	t := sum + inc
	switch {
	case math.IsInf(t, 0):
		c = 0
	case math.Abs(sum) >= math.Abs(inc):
		c += (sum - t) + inc
	default:
		c += (inc - t) + sum
	}
	return t, c
}

// rollupAcc accumulates the samples of one window at a time.
type rollupAcc struct {
	width int64
	cur   Rollup
	drops []float64 // values before each drop, in order (reused)
	out   []Rollup  // finished windows (reused)
}

func (a *rollupAcc) reset(width int64) {
	a.width = width
	a.cur = Rollup{}
	a.drops = a.drops[:0]
	a.out = a.out[:0]
}

// windowEnd returns the end of the window of width w holding t.
func windowEnd(t, w int64) int64 {
	q := t / w
	if t%w != 0 && t > 0 {
		q++
	}
	return q * w
}

// floorTo rounds t down to a multiple of w.
func floorTo(t, w int64) int64 {
	q := t / w
	if t%w != 0 && t < 0 {
		q--
	}
	return q * w
}

// add adds a sample (time-ordered, not a staleness marker).
func (a *rollupAcc) add(t int64, v float64) {
	c := &a.cur
	if c.Count > 0 && t > c.End {
		a.flush()
	}
	if c.Count == 0 {
		*c = Rollup{End: windowEnd(t, a.width), Count: 1, FirstT: t, LastT: t, First: v, Last: v, Min: v, Max: v}
		c.Sum, c.SumC = kahanInc(v, 0, 0)
		return
	}
	if v > c.Max || math.IsNaN(c.Max) {
		c.Max = v
	}
	if v < c.Min || math.IsNaN(c.Min) {
		c.Min = v
	}
	c.Sum, c.SumC = kahanInc(v, c.Sum, c.SumC)
	if v < c.Last {
		a.drops = append(a.drops, c.Last)
	}
	c.Count++
	c.LastT, c.Last = t, v
}

// flush finishes the current window, if any.
func (a *rollupAcc) flush() {
	c := &a.cur
	if c.Count == 0 {
		return
	}
	c.Increase = c.Last - c.First
	for _, p := range a.drops {
		c.Increase += p
	}
	a.out = append(a.out, *c)
	*c = Rollup{}
	a.drops = a.drops[:0]
}

// A rollup block holds the windows of one series at one resolution that
// end in (blockEnd-span, blockEnd], span = rollupBlockWindows windows, in
// columns, framed by encoding.AppendBlock (raw codec, CRC32C):
//
//	+---------+---+-------------+---------+-------------+-------------+--------------------+
//	| version | n | slot deltas | counts  | first offs  | last offs   | 7 float columns    |
//	| 1 B     | uv| runs        | runs    | runs        | runs        | each uv len + chunk|
//	+---------+---+-------------+---------+-------------+-------------+--------------------+
//
// A window's slot is its position in the block, 1..rollupBlockWindows
// (End = blockEnd - span + slot·width); slots are stored as deltas from the
// previous one (the first from 0), each ≥ 1. First offs are FirstT -
// (End-width) - 1 and last offs End - LastT, both in [0, width). Each of
// these four integer columns is a sequence of runs, (value uv, length uv)
// pairs whose lengths (each ≥ 1) add up to n: a regularly scraped series
// has consecutive windows with the same count and offsets, so a column is
// one run, a few bytes that decode without a varint per window. The float
// columns are Min, Max, Sum, SumC, First, Last, Increase, each a codec byte
// and its data:
//
//   - colChunk: one float chunk (encoding.AppendBestFloats) with the
//     windows' ends as timestamps, carrying its own checksum;
//   - colIntDeltas: every value is an integer of magnitude at most 2^53
//     (counters, counts, sums of integers), stored as n zigzag uvarints,
//     each the difference from the previous value (the first from 0). It
//     decodes several times faster than a chunk; hourly blocks, the ones
//     long-range queries read, use it whenever the values allow and it
//     takes at most twice a chunk's bytes, finer blocks only when it is
//     no larger.
//
// Version 1 blocks store n uvarints per integer column and bare chunks as
// float columns; they still decode.
const (
	rollupBlockVersion = 2
	rollupBlockWindows = 256
	rollupFloatColumns = 7

	colChunk     = 0
	colIntDeltas = 1

	// maxExactInt bounds the values colIntDeltas stores: every integer up
	// to it in magnitude is a float64 exactly.
	maxExactInt = 1 << 53
)

// appendIntDeltas appends vs as colIntDeltas data, or reports false when a
// value is not an integer within ±2^53 (or is -0, whose sign an integer
// loses).
func appendIntDeltas(dst []byte, vs []float64) ([]byte, bool) {
	prev := int64(0)
	for _, v := range vs {
		if !(v >= -maxExactInt && v <= maxExactInt) {
			return dst, false
		}
		x := int64(v)
		if math.Float64bits(float64(x)) != math.Float64bits(v) {
			return dst, false
		}
		dst = encoding.AppendVarint(dst, x-prev)
		prev = x
	}
	return dst, true
}

// rollupBlockEnd returns the end of the block holding the window ending at end.
func rollupBlockEnd(end, width int64) int64 { return windowEnd(end, width*rollupBlockWindows) }

// rollupCodec holds reusable encode/decode scratch.
type rollupCodec struct {
	payload []byte
	ts      []int64
	vs      []float64
	fit     encoding.FloatIterator
	raw     []byte
	alt     []byte
	ints    []uint64
	gorilla encoding.FloatChunk // open blocks' float columns
}

// appendRuns appends the integer column vs as runs of equal values.
func appendRuns(dst []byte, vs []uint64) []byte {
	for i := 0; i < len(vs); {
		j := i + 1
		for j < len(vs) && vs[j] == vs[i] {
			j++
		}
		dst = encoding.AppendUvarint(dst, vs[i])
		dst = encoding.AppendUvarint(dst, uint64(j-i))
		i = j
	}
	return dst
}

// readInts reads an integer column of n values into c.ints: n uvarints
// (version 1) or runs (version 2). It returns the rest of p.
func (c *rollupCodec) readInts(p []byte, n int, version byte) ([]byte, error) {
	c.ints = slices.Grow(c.ints[:0], n)[:n]
	out := c.ints
	if version == 1 {
		for i := range out {
			v, k := binary.Uvarint(p)
			if k <= 0 {
				return p, fmt.Errorf("%w: truncated integer column", encoding.ErrCorrupt)
			}
			out[i], p = v, p[k:]
		}
		return p, nil
	}
	for i := 0; i < n; {
		v, k := binary.Uvarint(p)
		if k <= 0 {
			return p, fmt.Errorf("%w: truncated integer run", encoding.ErrCorrupt)
		}
		p = p[k:]
		run, k := binary.Uvarint(p)
		if k <= 0 || run == 0 || run > uint64(n-i) {
			return p, fmt.Errorf("%w: integer run of %d at %d of %d", encoding.ErrCorrupt, run, i, n)
		}
		p = p[k:]
		seg := out[i : i+int(run)]
		for j := range seg {
			seg[j] = v
		}
		i += int(run)
	}
	return p, nil
}

func floatColumn(r *Rollup, col int) float64 {
	switch col {
	case 0:
		return r.Min
	case 1:
		return r.Max
	case 2:
		return r.Sum
	case 3:
		return r.SumC
	case 4:
		return r.First
	case 5:
		return r.Last
	}
	return r.Increase
}

func setFloatColumn(r *Rollup, col int, v float64) {
	switch col {
	case 0:
		r.Min = v
	case 1:
		r.Max = v
	case 2:
		r.Sum = v
	case 3:
		r.SumC = v
	case 4:
		r.First = v
	case 5:
		r.Last = v
	default:
		r.Increase = v
	}
}

// encodeRollupBlock appends the block of rows (time-ordered, all in the
// block ending at blockEnd, at least one) to dst.
func (c *rollupCodec) encodeRollupBlock(dst []byte, rows []Rollup, width, blockEnd int64) ([]byte, error) {
	return c.encode(dst, rows, width, blockEnd, false)
}

// encodeOpenBlock is encodeRollupBlock for a block of a span that is not
// complete yet, which a later pass will merge and re-encode: a float column
// whose values are integers is stored as colIntDeltas, any other as a
// plain Gorilla chunk, without searching for the smallest encoding. That
// search, on every column, is most of a pass's encoding time, and a block
// of a few windows gains little from it.
func (c *rollupCodec) encodeOpenBlock(dst []byte, rows []Rollup, width, blockEnd int64) ([]byte, error) {
	return c.encode(dst, rows, width, blockEnd, true)
}

func (c *rollupCodec) encode(dst []byte, rows []Rollup, width, blockEnd int64, quick bool) ([]byte, error) {
	base := blockEnd - width*rollupBlockWindows
	p := append(c.payload[:0], rollupBlockVersion)
	p = encoding.AppendUvarint(p, uint64(len(rows)))
	prev := int64(0)
	c.ts = c.ts[:0]
	c.ints = c.ints[:0]
	for i := range rows {
		r := &rows[i]
		slot := (r.End - base) / width
		if r.End%width != 0 || slot <= prev || slot > rollupBlockWindows || r.Count < 1 ||
			r.FirstT <= r.End-width || r.FirstT > r.LastT || r.LastT > r.End {
			return dst, fmt.Errorf("tsdb: rollup window ending %d does not fit block %d", r.End, blockEnd)
		}
		c.ints = append(c.ints, uint64(slot-prev))
		prev = slot
		c.ts = append(c.ts, r.End)
	}
	p = appendRuns(p, c.ints)
	c.ints = c.ints[:0]
	for i := range rows {
		c.ints = append(c.ints, uint64(rows[i].Count))
	}
	p = appendRuns(p, c.ints)
	c.ints = c.ints[:0]
	for i := range rows {
		c.ints = append(c.ints, uint64(rows[i].FirstT-(rows[i].End-width)-1))
	}
	p = appendRuns(p, c.ints)
	c.ints = c.ints[:0]
	for i := range rows {
		c.ints = append(c.ints, uint64(rows[i].End-rows[i].LastT))
	}
	p = appendRuns(p, c.ints)
	for col := range rollupFloatColumns {
		c.vs = c.vs[:0]
		for i := range rows {
			c.vs = append(c.vs, floatColumn(&rows[i], col))
		}
		if quick {
			var ok bool
			if c.alt, ok = appendIntDeltas(append(c.alt[:0], colIntDeltas), c.vs); ok {
				p = encoding.AppendBytesField(p, c.alt)
				continue
			}
			c.gorilla.Reset()
			for i, v := range c.vs {
				if err := c.gorilla.Append(c.ts[i], v); err != nil {
					return dst, fmt.Errorf("tsdb: encode rollup block: %w", err)
				}
			}
			c.raw = append(append(c.raw[:0], colChunk), c.gorilla.Bytes()...)
			p = encoding.AppendBytesField(p, c.raw)
			continue
		}
		var err error
		c.raw, err = encoding.AppendBestFloats(append(c.raw[:0], colChunk), c.ts, c.vs)
		if err != nil {
			return dst, fmt.Errorf("tsdb: encode rollup block: %w", err)
		}
		limit := len(c.raw)
		if width >= time.Hour.Milliseconds() {
			limit *= 2
		}
		if ints, ok := appendIntDeltas(append(c.alt[:0], colIntDeltas), c.vs); ok && len(ints) <= limit {
			c.raw, c.alt = ints, c.raw
		} else {
			c.alt = ints
		}
		p = encoding.AppendBytesField(p, c.raw)
	}
	c.payload = p
	return encoding.AppendBlock(dst, encoding.BlockRaw, p), nil
}

// decodeRollupBlock appends the windows of block b (ending at blockEnd) to
// rows. Any damage gives an error wrapping encoding.ErrCorrupt; it never
// panics on arbitrary bytes.
func (c *rollupCodec) decodeRollupBlock(rows []Rollup, b []byte, width, blockEnd int64) ([]Rollup, error) {
	return c.decodeRollupFields(rows, b, width, blockEnd, AllRollupFields)
}

// decodeRollupFields is decodeRollupBlock decoding only the float columns
// fields asks for. The block's checksum still covers every byte.
func (c *rollupCodec) decodeRollupFields(rows []Rollup, b []byte, width, blockEnd int64, fields RollupFields) ([]Rollup, error) {
	var err error
	c.payload, err = encoding.DecodeBlock(c.payload[:0], b)
	if err != nil {
		return rows, fmt.Errorf("tsdb: rollup block: %w", err)
	}
	d := encoding.NewDecoder(c.payload)
	version := d.Byte()
	if d.Err() == nil && version != 1 && version != rollupBlockVersion {
		return rows, fmt.Errorf("tsdb: rollup block: %w: version %d", encoding.ErrCorrupt, version)
	}
	n := d.Uvarint()
	if d.Err() == nil && (n == 0 || n > rollupBlockWindows) {
		return rows, fmt.Errorf("tsdb: rollup block: %w: %d windows", encoding.ErrCorrupt, n)
	}
	if err := d.Err(); err != nil {
		return rows, fmt.Errorf("tsdb: rollup block: %w", err)
	}
	start := len(rows)
	base := blockEnd - width*rollupBlockWindows
	// The integer columns are read into a scratch column and then
	// checked and spread over the windows: this is the read path of every
	// query.
	p := d.Rest()
	rows = slices.Grow(rows, int(n))[:start+int(n)]
	nr := rows[start:]
	clear(nr)
	if p, err = c.readInts(p, len(nr), version); err != nil {
		return rows[:start], fmt.Errorf("tsdb: rollup block: slots: %w", err)
	}
	slot := uint64(0)
	for i, delta := range c.ints {
		slot += delta
		if delta == 0 || slot > rollupBlockWindows {
			return rows[:start], fmt.Errorf("tsdb: rollup block: %w: window slot %d", encoding.ErrCorrupt, slot)
		}
		nr[i].End = base + int64(slot)*width
	}
	if p, err = c.readInts(p, len(nr), version); err != nil {
		return rows[:start], fmt.Errorf("tsdb: rollup block: counts: %w", err)
	}
	for i, cnt := range c.ints {
		if cnt == 0 || cnt > math.MaxInt64/2 {
			return rows[:start], fmt.Errorf("tsdb: rollup block: %w: count %d", encoding.ErrCorrupt, cnt)
		}
		nr[i].Count = int64(cnt)
	}
	// The offsets are read (and checked) even when the times are not
	// wanted: with runs they cost a few bytes.
	if p, err = c.readInts(p, len(nr), version); err != nil {
		return rows[:start], fmt.Errorf("tsdb: rollup block: first offsets: %w", err)
	}
	times := fields&FieldTimes != 0
	for i, off := range c.ints {
		if off >= uint64(width) {
			return rows[:start], fmt.Errorf("tsdb: rollup block: %w: first offset %d", encoding.ErrCorrupt, off)
		}
		if times {
			nr[i].FirstT = nr[i].End - width + 1 + int64(off)
		}
	}
	if p, err = c.readInts(p, len(nr), version); err != nil {
		return rows[:start], fmt.Errorf("tsdb: rollup block: last offsets: %w", err)
	}
	for i, off := range c.ints {
		if off >= uint64(width) {
			return rows[:start], fmt.Errorf("tsdb: rollup block: %w: last offset %d", encoding.ErrCorrupt, off)
		}
		if times {
			if nr[i].End-int64(off) < nr[i].FirstT {
				return rows[:start], fmt.Errorf("tsdb: rollup block: %w: last offset %d", encoding.ErrCorrupt, off)
			}
			nr[i].LastT = nr[i].End - int64(off)
		}
	}
	d.Reset(p)
	for col := range rollupFloatColumns {
		chunk := d.Bytes()
		if err := d.Err(); err != nil {
			return rows[:start], fmt.Errorf("tsdb: rollup block: %w", err)
		}
		if fields&columnFields[col] == 0 {
			continue
		}
		if version != 1 {
			if len(chunk) == 0 {
				return rows[:start], fmt.Errorf("tsdb: rollup block: %w: column %d is empty", encoding.ErrCorrupt, col)
			}
			codec := chunk[0]
			chunk = chunk[1:]
			switch codec {
			case colChunk:
			case colIntDeltas:
				if err := readIntDeltas(nr, col, chunk); err != nil {
					return rows[:start], fmt.Errorf("tsdb: rollup block: column %d: %w", col, err)
				}
				continue
			default:
				return rows[:start], fmt.Errorf("tsdb: rollup block: %w: column %d codec %d", encoding.ErrCorrupt, col, codec)
			}
		}
		if err := c.fit.Reset(chunk); err != nil {
			return rows[:start], fmt.Errorf("tsdb: rollup block: %w", err)
		}
		i := 0
		for c.fit.Next() {
			t, v := c.fit.At()
			if i >= len(nr) || t != nr[i].End {
				return rows[:start], fmt.Errorf("tsdb: rollup block: %w: column %d does not match the windows", encoding.ErrCorrupt, col)
			}
			setFloatColumn(&nr[i], col, v)
			i++
		}
		if err := c.fit.Err(); err != nil {
			return rows[:start], fmt.Errorf("tsdb: rollup block: %w", err)
		}
		if i != len(nr) {
			return rows[:start], fmt.Errorf("tsdb: rollup block: %w: column %d has %d of %d windows", encoding.ErrCorrupt, col, i, len(nr))
		}
	}
	if err := d.Err(); err != nil {
		return rows[:start], fmt.Errorf("tsdb: rollup block: %w", err)
	}
	if d.Len() != 0 {
		return rows[:start], fmt.Errorf("tsdb: rollup block: %w: %d trailing bytes", encoding.ErrCorrupt, d.Len())
	}
	return rows, nil
}

// readIntDeltas sets column col of every window from colIntDeltas data b,
// which must hold exactly len(nr) values.
func readIntDeltas(nr []Rollup, col int, b []byte) error {
	x := int64(0)
	for i := range nr {
		u, k := binary.Uvarint(b)
		if k <= 0 {
			return fmt.Errorf("%w: %d of %d integer values", encoding.ErrCorrupt, i, len(nr))
		}
		b = b[k:]
		x += encoding.Unzigzag(u)
		setFloatColumn(&nr[i], col, float64(x))
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d bytes after the integer values", encoding.ErrCorrupt, len(b))
	}
	return nil
}

// rollupMark is a series' progress at one resolution: every window ending
// at or before through is rolled up, and was final when written under an
// out-of-order window of ooo milliseconds.
type rollupMark struct {
	through int64
	ooo     int64
}

const rollupMarkVersion = 1

func appendRollupMark(dst []byte, m rollupMark) []byte {
	dst = append(dst, rollupMarkVersion)
	dst = encoding.AppendVarint(dst, m.through)
	return encoding.AppendUvarint(dst, uint64(m.ooo))
}

func decodeRollupMark(b []byte) (rollupMark, error) {
	d := encoding.NewDecoder(b)
	v := d.Byte()
	m := rollupMark{through: d.Varint()}
	ooo := d.Uvarint()
	if err := d.Err(); err != nil {
		return rollupMark{}, fmt.Errorf("tsdb: rollup mark: %w", err)
	}
	if v != rollupMarkVersion || ooo > math.MaxInt64 || d.Len() != 0 {
		return rollupMark{}, fmt.Errorf("tsdb: rollup mark: %w: version %d, %d trailing bytes", encoding.ErrCorrupt, v, d.Len())
	}
	m.ooo = int64(ooo)
	return m, nil
}

// effectiveThrough is how far a mark's rollups can be trusted under the
// DB's current out-of-order window. Windows the mark covers were final
// under the window it was written with; if the DB has since been opened
// with a wider one, a late sample may land up to that much further back,
// so the windows in the difference are treated as not rolled up (the
// reader uses raw samples for them and the next Downsample recomputes
// them).
func effectiveThrough(m rollupMark, window, width int64) int64 {
	if window <= m.ooo {
		return m.through
	}
	return floorTo(m.through-(window-m.ooo), width)
}
