package tsdb

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
)

// Shared timestamp columns. The series of one scrape target are scraped at
// the same instant, so their samples carry identical timestamps, and with
// jitter those timestamps cost about as much as a short decimal value. A
// compacted chunk whose timestamps another series' compacted chunk already
// has keeps only its values and refers to one column of timestamps that
// they share:
//
//	chunk value   timesRef 1 B | column hash u64 BE | values chunk
//	column key    m t <first timestamp i64> <hash u64>
//	column value  a float chunk of the timestamps, every value 0
//
// The values chunk is an encoding float chunk whose timestamps are the
// sample indexes 0…n−1: sample i's time is column[i]. The hash is xxhash64
// of the timestamps as little-endian int64s; a column is written only when the key is free, and a
// stored one is used only once read back equal, so two different columns
// never share a key. The first series of a pass with a given column keeps
// its timestamps inline, so a column exists only where a second series
// uses it; so do regular timestamps, which cost about a bit a sample.
//
// Columns are written only by CompactChunks, in the batch of the first
// chunk that refers to them, and deleted only by DropBefore once every
// chunk of their window is gone; both hold compactMu. A column whose
// chunks were all rewritten again (late samples) stays until retention
// drops its window.

// timesRef is the first byte of a chunk value whose timestamps are in a
// shared column. No encoding.ChunkEncoding has this value (tested).
const timesRef byte = 0xff

// timesMinSamples is the fewest samples a chunk needs to share its
// timestamps: below it a column's key costs more than it saves.
const timesMinSamples = 32

// timesRefHeader is the length of a shared-timestamp chunk's header.
const timesRefHeader = 1 + 8

// isTimesRef reports whether a chunk value refers to a shared column.
func isTimesRef(v []byte) bool { return len(v) > 0 && v[0] == timesRef }

// parseTimesRef splits a shared-timestamp chunk value into its column's
// hash and its values chunk.
func parseTimesRef(v []byte) (hash uint64, values []byte, err error) {
	if len(v) <= timesRefHeader || v[0] != timesRef {
		return 0, nil, fmt.Errorf("%w: shared-timestamp chunk of %d bytes", encoding.ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v[1:timesRefHeader]), v[timesRefHeader:], nil
}

// appendTimesRef appends a shared-timestamp chunk value.
func appendTimesRef(dst []byte, hash uint64, values []byte) []byte {
	dst = append(dst, timesRef)
	dst = binary.BigEndian.AppendUint64(dst, hash)
	return append(dst, values...)
}

// timesCodec holds the scratch for coding timestamp columns.
type timesCodec struct {
	zeros []float64
	fit   encoding.FloatIterator
	enc   *encoding.BestFloatEncoder // made on the first encode: readers never need one
}

// encoder returns the codec's chunk encoder.
func (c *timesCodec) encoder() *encoding.BestFloatEncoder {
	if c.enc == nil {
		c.enc = new(encoding.BestFloatEncoder)
	}
	return c.enc
}

// encodeColumn appends the column of ts.
func (c *timesCodec) encodeColumn(dst []byte, ts []int64) ([]byte, error) {
	for len(c.zeros) < len(ts) {
		c.zeros = append(c.zeros, 0)
	}
	return c.encoder().AppendFloats(dst, ts, c.zeros[:len(ts)])
}

// encodeValues appends a chunk of vs whose timestamps are 0…n−1.
func (c *timesCodec) encodeValues(dst []byte, vs []float64) ([]byte, error) {
	return c.encoder().AppendValues(dst, vs)
}

// decodeColumn appends the timestamps of column col to dst, checking that
// there are n of them from minT to maxT: the bounds of the chunk that
// refers to it.
func (c *timesCodec) decodeColumn(dst []int64, col []byte, n int, minT, maxT int64) ([]int64, error) {
	if err := c.fit.Reset(col); err != nil {
		return dst, err
	}
	lo := len(dst)
	for c.fit.Next() {
		t, _ := c.fit.At()
		dst = append(dst, t)
	}
	if err := c.fit.Err(); err != nil {
		return dst[:lo], err
	}
	got := dst[lo:]
	if len(got) != n || got[0] != minT || got[len(got)-1] != maxT {
		return dst[:lo], fmt.Errorf("%w: timestamp column of %d samples for a chunk of %d in [%d, %d]",
			encoding.ErrCorrupt, len(got), n, minT, maxT)
	}
	return dst, nil
}

// valuesLen returns the sample count of a shared-timestamp chunk's values.
func valuesLen(values []byte) (int, error) {
	n, err := encoding.FloatChunkLen(values)
	if err == nil && n == 0 {
		err = fmt.Errorf("%w: empty values chunk", encoding.ErrCorrupt)
	}
	return n, err
}

// readColumn reads the column of a shared-timestamp chunk with bounds
// [minT, maxT] through it, which is repositioned: reading through the
// iterator that found the chunk sees the column as it was then, even if
// DropBefore deletes both meanwhile. It appends the column's timestamps to
// dst; key is scratch.
func (c *timesCodec) readColumn(dst []int64, it *pebble.Iterator, key *[]byte, hash uint64, n int, minT, maxT int64) ([]int64, error) {
	// The bounds [key, key+"\x00") hold the one key; SetBounds copies them.
	*key = append(keys.AppendMetricTimes((*key)[:0], minT, hash), 0)
	it.SetBounds((*key)[:len(*key)-1], *key)
	if !it.First() {
		if err := it.Error(); err != nil {
			return dst, err
		}
		return dst, fmt.Errorf("%w: timestamp column %x of the chunk at %d is missing", encoding.ErrCorrupt, hash, minT)
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return dst, err
	}
	return c.decodeColumn(dst, v, n, minT, maxT)
}

// appendShared appends to buf the samples of a shared-timestamp chunk's
// values whose column is ts.
func (c *timesCodec) appendShared(buf *sampleBuf, values []byte, ts []int64) error {
	if err := c.fit.Reset(values); err != nil {
		return err
	}
	for c.fit.Next() {
		i, v := c.fit.At()
		if i < 0 || i >= int64(len(ts)) {
			return errSharedIndex(i, len(ts))
		}
		buf.addFloat(ts[i], v)
	}
	return c.fit.Err()
}

// errSharedIndex reports a values chunk whose sample index is outside its
// column.
func errSharedIndex(i int64, n int) error {
	return fmt.Errorf("%w: sample index %d outside a timestamp column of %d", encoding.ErrCorrupt, i, n)
}

// getColumn reads a column with a Get, for callers that hold compactMu or
// commitMu: DropBefore deletes columns holding both.
func (c *timesCodec) getColumn(dst []int64, db *DB, hash uint64, n int, minT, maxT int64) ([]int64, error) {
	v, closer, err := db.p.Get(keys.AppendMetricTimes(nil, minT, hash))
	if err == pebble.ErrNotFound {
		return dst, fmt.Errorf("%w: timestamp column %x of the chunk at %d is missing", encoding.ErrCorrupt, hash, minT)
	}
	if err != nil {
		return dst, err
	}
	defer func() { _ = closer.Close() }()
	return c.decodeColumn(dst, v, n, minT, maxT)
}

// columnKey identifies a column: its first timestamp and hash.
type columnKey struct {
	minT int64
	hash uint64
}

// columnCache keeps the timestamp columns that queries and downsample
// passes have read, so the series that share one read and decode it once.
// A column is written once and never changes while it exists, and
// DropBefore forgets what it deletes, so a cached column is the stored one;
// one whose chunks were rewritten merely goes unused. (A query that began
// before a DropBefore may cache a column it read after; a later column
// under that key would have the same timestamps unless their 64-bit hashes
// collide, and a cached column is still checked against each chunk's
// bounds and length.) It is safe for concurrent use; the slices it returns
// are never written.
type columnCache struct {
	mu   sync.Mutex
	cols map[columnKey][]int64
	held int // timestamps held
}

// maxCachedTimestamps bounds a cache to 8 MiB of timestamps; a column that
// would pass it empties the cache first.
const maxCachedTimestamps = 1 << 20

// get returns the cached column k, or nil. A nil cache holds nothing.
func (c *columnCache) get(k columnKey) []int64 {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cols[k]
}

// put keeps column k, unless the cache is full.
func (c *columnCache) put(k columnKey, ts []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(ts) > maxCachedTimestamps {
		return
	}
	if c.held+len(ts) > maxCachedTimestamps {
		clear(c.cols)
		c.held = 0
	}
	if c.cols == nil {
		c.cols = make(map[columnKey][]int64)
	}
	c.cols[k] = ts
	c.held += len(ts)
}

// dropBefore forgets the columns whose first timestamp is before t.
func (c *columnCache) dropBefore(t int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, ts := range c.cols {
		if k.minT < t {
			delete(c.cols, k)
			c.held -= len(ts)
		}
	}
}

// columnState is what a CompactChunks pass knows of one column.
type columnState struct {
	ts        []int64 // the column's timestamps
	gen       int     // the batch that last wrote it
	written   bool    // written into batch gen
	committed bool    // in Pebble
	clash     bool    // the key holds other timestamps: keep them inline
}

// maxColumnStates bounds the columns a pass remembers; past it the
// committed ones are forgotten (a later use finds them with a Get).
const maxColumnStates = 1 << 14

// columnSharer decides, during a CompactChunks pass, which chunks share a
// timestamp column, and writes each column into the batch of the first
// chunk that refers to it.
type columnSharer struct {
	codec   timesCodec
	states  map[columnKey]*columnState
	gen     int // the current batch
	pending []*columnState
	key     []byte
	raw     []byte  // timestamps to hash
	col     []byte  // a column's bytes
	got     []int64 // a stored column's timestamps
}

// newBatch starts batch generation gen+1: columns written into an earlier
// batch that was not committed are written again when next used.
func (s *columnSharer) newBatch() {
	s.gen++
	s.pending = s.pending[:0]
}

// committed records that the current batch is in Pebble.
func (s *columnSharer) committed() {
	for _, st := range s.pending {
		st.committed = true
	}
	s.pending = s.pending[:0]
}

// columnHash is the hash in a column's key: xxhash64 of its timestamps as
// little-endian int64s, so that it names the timestamps, whatever
// encoding their column is written in.
func (s *columnSharer) columnHash(ts []int64) uint64 {
	s.raw = s.raw[:0]
	for _, t := range ts {
		s.raw = binary.LittleEndian.AppendUint64(s.raw, uint64(t))
	}
	return xxhash.Sum64(s.raw)
}

// irregular reports whether ts is jittered enough that its timestamps
// cost more inline than a share of a column: regular timestamps, whose
// deltas rarely change, take about a bit a sample.
func irregular(ts []int64) bool {
	changes := 0
	for i := 2; i < len(ts); i++ {
		if ts[i]-ts[i-1] != ts[i-1]-ts[i-2] {
			changes++
		}
	}
	return changes*8 > len(ts)
}

// share returns the hash of the column to refer to for timestamps ts, after
// adding the column to b if this batch needs it, or ok false when ts stays
// inline.
func (s *columnSharer) share(db *DB, b *pebble.Batch, ts []int64) (hash uint64, ok bool, err error) {
	if len(ts) < timesMinSamples || !irregular(ts) {
		return 0, false, nil
	}
	ck := columnKey{minT: ts[0], hash: s.columnHash(ts)}
	st := s.states[ck]
	if st == nil {
		if s.states == nil {
			s.states = make(map[columnKey]*columnState)
		}
		if len(s.states) >= maxColumnStates {
			for k, v := range s.states {
				if v.committed || v.clash {
					delete(s.states, k)
				}
			}
		}
		st = &columnState{ts: slices.Clone(ts), gen: -1}
		s.states[ck] = st
		s.key = keys.AppendMetricTimes(s.key[:0], ck.minT, ck.hash)
		v, closer, gerr := db.p.Get(s.key)
		switch {
		case gerr == pebble.ErrNotFound:
			// The first user keeps its timestamps inline.
			return 0, false, nil
		case gerr != nil:
			return 0, false, gerr
		}
		s.got, err = s.codec.decodeColumn(s.got[:0], v, len(ts), ts[0], ts[len(ts)-1])
		_ = closer.Close()
		st.committed = err == nil && slices.Equal(s.got, ts)
		st.clash = !st.committed
	}
	if st.clash || !slices.Equal(st.ts, ts) {
		st.clash = true
		return 0, false, nil
	}
	if !st.committed && !(st.written && st.gen == s.gen) {
		if s.col, err = s.codec.encodeColumn(s.col[:0], ts); err != nil {
			return 0, false, err
		}
		s.key = keys.AppendMetricTimes(s.key[:0], ck.minT, ck.hash)
		if err := b.Set(s.key, s.col, nil); err != nil {
			return 0, false, err
		}
		st.written, st.gen = true, s.gen
		s.pending = append(s.pending, st)
	}
	return ck.hash, true, nil
}
