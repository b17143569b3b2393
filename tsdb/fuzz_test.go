package tsdb

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/encoding"
)

// FuzzWALEntry feeds arbitrary payloads to the write-ahead decoder: it must
// return samples or an error, never panic or loop.
func FuzzWALEntry(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeWALBlock(nil, b)
		if err != nil {
			require.ErrorIs(t, err, encoding.ErrCorrupt)
			p = b // also try the unframed bytes directly
		}
		var wd walDecoder
		if wd.reset(p) != nil {
			return
		}
		var s walSample
		for range len(p) + 1 {
			ok, err := wd.next(&s)
			if err != nil {
				require.ErrorIs(t, err, encoding.ErrCorrupt)
				return
			}
			if !ok {
				return
			}
		}
		t.Fatal("decoder returned more samples than bytes")
	})
}

// FuzzLabelsRecord checks the series record decoder on arbitrary bytes and
// the round trip of whatever decodes.
func FuzzLabelsRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, _, err := decodeLabelsRecord(nil, b)
		if err != nil {
			require.ErrorIs(t, err, encoding.ErrCorrupt)
			return
		}
		enc, _ := appendLabelsRecord(nil, nil, ls)
		again, _, err := decodeLabelsRecord(nil, enc)
		require.NoError(t, err)
		require.Equal(t, ls, again)
	})
}

// FuzzMark checks the seal mark decoder on arbitrary bytes.
func FuzzMark(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _, err := decodeMark(nil, b)
		if err != nil {
			require.ErrorIs(t, err, encoding.ErrCorrupt)
			return
		}
		enc, _ := appendMark(nil, nil, m)
		again, _, err := decodeMark(nil, enc)
		require.NoError(t, err)
		require.Equal(t, m, again)
	})
}

// TestWALRoundTrip writes a batch the way Commit does and decodes it back.
func TestWALRoundTrip(t *testing.T) {
	a := &appender{db: &DB{}}
	s1, s2 := &memSeries{id: 3}, &memSeries{id: 1 << 20}
	h := testHist(4)
	a.samples = []pendingSample{{s: s1, t: 100, v: 1.5}, {s: s2, t: -5, h: h}, {s: s1, t: 90, v: -2}, {s: s2, t: 7, v: 0, skip: true}}
	p := a.encodeWAL(nil)
	var wd walDecoder
	require.NoError(t, wd.reset(p))
	var ws walSample
	var got []walSample
	for {
		ok, err := wd.next(&ws)
		require.NoError(t, err)
		if !ok {
			break
		}
		c := ws
		c.h = *ws.h.Copy()
		got = append(got, c)
	}
	require.Len(t, got, 3)
	require.Equal(t, walSample{id: 3, t: 100, v: 1.5, kind: kindFloat}, got[0])
	require.Equal(t, uint32(1<<20), got[1].id)
	require.True(t, histEqual(h, &got[1].h))
	require.Equal(t, int64(90), got[2].t)
	for i := range len(p) {
		// Every truncation is an error, never a panic or a silent short batch.
		var wd walDecoder
		if wd.reset(p[:i]) != nil {
			continue
		}
		var err error
		for ok := true; ok && err == nil; ok, err = wd.next(&ws) {
		}
		require.Error(t, err, "truncated at %d", i)
	}
}

// TestWALRunsRoundTrip encodes a scrape-shaped batch (consecutive ids,
// shared timestamps, floats only) and one with gaps, repeats and a
// histogram, and checks the runs decode back to the same samples.
func TestWALRunsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		ids  []uint32
		ts   []int64
		hist int // index of a histogram sample, -1 for none
	}{
		{"scrape", []uint32{5, 6, 7, 8, 9, 10}, []int64{1000, 1000, 1000, 1025, 1025, 990}, -1},
		{"mixed", []uint32{9, 3, 4, 4, 1 << 31, 0}, []int64{-7, -7, 50, 50, 50, 1 << 40}, 3},
		{"one", []uint32{math.MaxUint32}, []int64{math.MinInt64}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &appender{db: &DB{}}
			for i, id := range tc.ids {
				p := pendingSample{s: &memSeries{id: id}, t: tc.ts[i], v: float64(i) + 0.25}
				if i == tc.hist {
					p.h = testHist(i)
				}
				a.samples = append(a.samples, p)
			}
			payload := a.encodeWAL(nil)
			if tc.name == "scrape" {
				require.LessOrEqual(t, len(payload), 8*len(tc.ids)+13, "ids and timestamps take a few bytes in all")
			}
			var wd walDecoder
			require.NoError(t, wd.reset(payload))
			var ws walSample
			for i, id := range tc.ids {
				ok, err := wd.next(&ws)
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, id, ws.id)
				require.Equal(t, tc.ts[i], ws.t)
				if i == tc.hist {
					require.Equal(t, kindHistogram, ws.kind)
					require.True(t, histEqual(testHist(i), &ws.h))
				} else {
					require.Equal(t, kindFloat, ws.kind)
					require.Equal(t, float64(i)+0.25, ws.v)
				}
			}
			ok, err := wd.next(&ws)
			require.NoError(t, err)
			require.False(t, ok)
		})
	}
}
