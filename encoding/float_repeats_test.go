package encoding

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// repeatingValues returns n values that repeat in runs, drawn from a few
// kinds: counters, short decimals, values an ulp off one, full-precision
// values, NaN and infinities.
func repeatingValues(rng *rand.Rand, n int) []float64 {
	vs := make([]float64, n)
	x := float64(rng.IntN(1000))
	for i := 0; i < n; {
		switch rng.IntN(8) {
		case 0:
			x = math.NaN()
		case 1:
			x = math.Inf(1 - 2*rng.IntN(2))
		case 2:
			x = 51.846000000000004 + float64(rng.IntN(3))
		case 3:
			x = rng.Float64() * 1e3
		case 4:
			x = float64(rng.IntN(100)) / 100
		default:
			x = float64(rng.IntN(50))
		}
		run := 1 + rng.IntN(3)
		if rng.IntN(2) == 0 {
			run += rng.IntN(40)
		}
		for k := 0; k < run && i < n; k++ {
			vs[i] = x
			i++
		}
	}
	return vs
}

// TestRepeatMasksSizeAsEveryValue checks that sizing by the values the
// repeat masks leave gives the very sizes a pass over every value does,
// and keeps every classification a writer reads.
func TestRepeatMasksSizeAsEveryValue(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var m repeatMasks
	var a, b [bestCached]decItem
	for trial := range 3000 {
		vs := repeatingValues(rng, 1+rng.IntN(bestCached))
		if trial%2 == 1 {
			// No raw values (at small scales): the chunks the sparse
			// decimal pass takes.
			for i, v := range vs {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					vs[i] = 7
				}
			}
		}
		reps := m.fill(vs)
		want := 0
		for i := 1; i < len(vs); i++ {
			if math.Float64bits(vs[i]) == math.Float64bits(vs[i-1]) {
				want++
				if m.rep[i>>6]>>(i&63)&1 == 0 {
					t.Fatalf("trial %d: value %d repeats but is not marked", trial, i)
				}
			}
		}
		if reps != want || m.reps != want {
			t.Fatalf("trial %d: %d repeats marked, want %d", trial, reps, want)
		}
		for _, e := range []uint8{0, 2, 13} {
			p1, c1, r1 := decCost(vs, e, a[:], nil)
			p2, c2, r2 := decCost(vs, e, b[:], &m.rep2)
			if p1 != p2 || c1 != c2 || r1 != r2 {
				t.Fatalf("trial %d e=%d: masked %+v %d %d, every value %+v %d %d", trial, e, p2, c2, r2, p1, c1, r1)
			}
			for i := range vs {
				skipped := m.rep2[i>>6]>>(i&63)&1 != 0 && a[i].kind == decExact
				if !skipped && a[i] != b[i] {
					t.Fatalf("trial %d e=%d: value %d classified %+v, want %+v", trial, e, i, b[i], a[i])
				}
			}
			b = [bestCached]decItem{}
			if p3, c3, g3, ok := decCostSparse(vs, e, b[:], &m); ok {
				if p1 != p3 || c1 != c3 || r1 != 0 {
					t.Fatalf("trial %d e=%d: sparse %+v %d, every value %+v %d with %d raw", trial, e, p3, c3, p1, c1, r1)
				}
				if g := gorillaValueBits(vs, math.MaxInt); g3 > g {
					t.Fatalf("trial %d e=%d: gorilla's floor %d, its bits %d", trial, e, g3, g)
				}
				for i := range vs {
					skipped := m.rep2[i>>6]>>(i&63)&1 != 0 && a[i].kind == decExact
					if !skipped && a[i] != b[i] {
						t.Fatalf("trial %d e=%d: value %d classified %+v by the sparse pass, want %+v", trial, e, i, b[i], a[i])
					}
				}
			} else if !slices.ContainsFunc(a[:len(vs)], func(c decItem) bool { return c.kind == decRaw }) {
				t.Fatalf("trial %d e=%d: sparse pass refused a chunk with no raw value", trial, e)
			}
		}
		g := gorillaValueBits(vs, math.MaxInt)
		if got := gorillaValueBitsSparse(vs, &m, math.MaxInt); got != g {
			t.Fatalf("trial %d: gorilla %d bits masked, %d by every value", trial, got, g)
		}
		if limit := rng.IntN(g + 1); gorillaValueBitsSparse(vs, &m, limit) < limit && g >= limit {
			t.Fatalf("trial %d: gorilla stopped below the limit %d", trial, limit)
		}
		fl := chimpFloor(vs, math.MaxInt)
		var plans [bestCached]chimpPlan
		c := chimpValueBits(vs, plans[:], math.MaxInt, fl)
		if got := chimpValueBitsSparse(vs, &m, math.MaxInt); got != c {
			t.Fatalf("trial %d: chimp %d bits masked, %d by every value", trial, got, c)
		}
		if limit := rng.IntN(c + 1); chimpValueBitsSparse(vs, &m, limit) < limit {
			t.Fatalf("trial %d: chimp stopped below the limit %d of %d bits", trial, limit, c)
		}
	}
}

// lateTimes returns n increasing timestamps interval apart, one in every
// about late up to two intervals later than that.
func lateTimes(rng *rand.Rand, n int, interval int64, late int) []int64 {
	ts := make([]int64, n)
	tm := int64(rng.Uint32())
	for i := range ts {
		tm += interval
		if rng.IntN(late) == 0 {
			tm += rng.Int64N(2 * interval)
		}
		ts[i] = tm
	}
	return ts
}

// TestSparseChunksRoundTrip encodes chunks of repeating values, which take
// the masked sizing, in the smallest encoding and reads them back.
func TestSparseChunksRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := range 2000 {
		n := 2 + rng.IntN(bestCached-1)
		vs := repeatingValues(rng, n)
		ts := lateTimes(rng, n, 60_000, 10)
		b, err := AppendBestFloats(nil, ts, vs)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		var it FloatIterator
		if err := it.Reset(b); err != nil {
			t.Fatal(err)
		}
		i := 0
		for ; it.Next(); i++ {
			gt, gv := it.At()
			if gt != ts[i] || math.Float64bits(gv) != math.Float64bits(vs[i]) {
				t.Fatalf("trial %d sample %d: got (%d, %v), want (%d, %v)", trial, i, gt, gv, ts[i], vs[i])
			}
		}
		if it.Err() != nil || i != n {
			t.Fatalf("trial %d: %d of %d samples, err %v", trial, i, n, it.Err())
		}
	}
}

// TestSparseDecimalLosesNoChimpChunk holds the rule by which a sparse
// chunk of integers or one-decimal figures is not sized for chimp where
// decimal beats gorilla. Random sparse chunks (runs of counters, of values
// from a few that recur, of zeros between figures of every size and of
// scales 0 to 6, and full-precision values) are written, and where the
// chimp chunk of the same samples would have been smaller, that must be
// the older rule's doing, decimal's values a quarter below gorilla's: the
// new rule lost no chunk (widened to scale 5, it loses some).
func TestSparseDecimalLosesNoChimpChunk(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	var sc bestScratch
	applied, chimpWins := 0, 0
	for trial := range 6000 {
		n := 16 + rng.IntN(bestCached-15)
		vs := make([]float64, n)
		// A few values that recur, of any size, and a counter in every
		// other chunk; the scales are 0 and 1 in two chunks of three, and
		// one chunk in seven takes full-precision values.
		var set [3]float64
		for k := range set {
			e := rng.IntN(2)
			if trial%3 == 2 {
				e = rng.IntN(7)
			}
			set[k] = float64(rng.Int64N(int64(math.Pow(10, float64(1+rng.IntN(9)))))) / math.Pow(10, float64(e))
			if trial%7 == 6 {
				set[k] = rng.Float64() * 1000
			}
		}
		counter := float64(rng.IntN(1000))
		for i := 0; i < n; {
			var x float64
			switch rng.IntN(4) {
			case 0:
				x = 0
			case 1:
				if trial%2 == 0 {
					counter += float64(1 + rng.IntN(100))
					x = counter
					break
				}
				fallthrough
			default:
				x = set[rng.IntN(len(set))]
			}
			// Runs of 1 to 12 or, for values from the few, of a length
			// drawn at each value, a quarter ending there.
			run := 1 + rng.IntN(12)
			if trial%3 == 2 {
				for run = 1; rng.IntN(4) != 0; run++ {
				}
			}
			for ; run > 0 && i < n; run-- {
				vs[i] = x
				i++
			}
		}
		ts := lateTimes(rng, n, 15_000, 10)
		got, err := AppendBestFloats(nil, ts, vs)
		if err != nil {
			t.Fatal(err)
		}
		if chooseFloatEncoding(ts, vs, &sc); !sc.sparse {
			continue
		}
		p, c, raws, _, ok := decAnalyse(vs, sc.dec[:], nil)
		if !ok || raws != 0 {
			continue
		}
		if p.e <= 1 {
			applied++
		}
		chimp, err := appendFloatChunk(nil, EncChimp, ts, vs, &decParams{}, chooseGrid(ts), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(chimp) < len(got) {
			chimpWins++
			if gb := gorillaValueBits(vs, math.MaxInt); c*4 >= gb*3 {
				t.Fatalf("trial %d: %d bytes written, chimp takes %d: %v", trial, len(got), len(chimp), vs)
			}
		}
	}
	if applied < 1000 {
		t.Fatalf("only %d chunks of the kind the rule is for", applied)
	}
	t.Logf("%d chunks at scales 0 and 1; %d that chimp takes smaller, all left by the older rule", applied, chimpWins)
}

// TestSparseWriterAsGeneral writes sparse chunks at one interval, the
// chunks writeDecimalSparse takes (repeats of zero and of counts, of
// one-decimal figures, and among them values an ulp off, NaN and
// infinities, where it hands over to the general loops), and holds each
// to the bytes the general loops write for the same decisions, and to its
// samples read back.
func TestSparseWriterAsGeneral(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	var sc bestScratch
	taken := 0
	for trial := range 4000 {
		n := 3 + rng.IntN(bestCached-2)
		vs := make([]float64, n)
		for i := 0; i < n; {
			x := 0.0
			switch rng.IntN(8) {
			case 0, 1, 2:
			case 3:
				x = float64(rng.IntN(1 << (1 + rng.IntN(30))))
			case 4:
				x = float64(rng.IntN(100000)) / 10
			case 5:
				if trial%4 == 0 {
					x = []float64{51.846000000000004, math.NaN(), math.Inf(1)}[rng.IntN(3)]
					break
				}
				fallthrough
			default:
				x = 8192 * float64(rng.IntN(50)) / 10
			}
			for run := 1 + rng.IntN(16); run > 0 && i < n; run-- {
				vs[i] = x
				i++
			}
		}
		ts := make([]int64, n)
		for i := range ts {
			ts[i] = 1_700_000_000_000 + int64(i)*300_000
		}
		if trial%5 == 0 {
			ts[n-1] += 1 + rng.Int64N(1000) // one late: not at one interval
		}
		enc, p, g := chooseFloatEncoding(ts, vs, &sc)
		if enc == EncDecimal && sc.masked && sc.regular && p.order == 1 {
			taken++
		}
		got, err := appendFloatChunk(nil, enc, ts, vs, &p, g, &sc)
		require.NoError(t, err, "trial %d", trial)
		sc.regular = false
		want, err := appendFloatChunk(nil, enc, ts, vs, &p, g, &sc)
		require.NoError(t, err, "trial %d", trial)
		require.Equal(t, want, got, "trial %d: %v", trial, vs)
		requireSameSamples(t, ts, vs, decodeAll(t, got))
	}
	if taken < 1000 {
		t.Fatalf("only %d chunks of the kind the sparse writer takes", taken)
	}
}

// TestUnfilledPlacesAreNeverRead writes sparse chunks whose repeats of
// repeats decCost left unfilled, those places holding garbage, with bucket
// widths so wide that a repeat's bits cannot share a write with its
// timestamp's: the writer then takes a repeat the general way, and must
// not read the garbage.
func TestUnfilledPlacesAreNeverRead(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for trial := range 200 {
		n := 2 + rng.IntN(bestCached-1)
		vs := make([]float64, n)
		ts := make([]int64, n)
		x := 0.0
		for i := range vs {
			if rng.IntN(6) == 0 {
				x = float64(rng.IntN(1000))
			}
			vs[i] = x
			ts[i] = int64(i) * 60_000
		}
		var sc bestScratch
		for i := range sc.dec {
			sc.dec[i] = decItem{d: rng.Int64(), r: rng.Uint64(), kind: uint8(rng.IntN(3))}
		}
		var m repeatMasks
		m.fill(vs)
		p, _, _ := decCost(vs, 0, sc.dec[:], &m.rep2)
		for _, wide := range []uint8{p.w[0], 63} {
			q := p
			q.w = [4]uint8{wide, max(wide, p.w[1]), max(wide, p.w[2]), max(wide, p.w[3])}
			for _, sparse := range []bool{false, true} {
				sc.sparse = sparse
				for _, g := range []tsGrid{{}, {interval: 60_000}} {
					chunk, err := appendFloatChunk(nil, EncDecimal, ts, vs, &q, g, &sc)
					if err != nil {
						t.Fatalf("trial %d widths %v grid %v: %v", trial, q.w, g, err)
					}
					if err := verifyFloatChunk(chunk, ts, vs); err != nil {
						t.Fatalf("trial %d widths %v grid %v: %v", trial, q.w, g, err)
					}
				}
			}
		}
	}
}

// TestRepeatsOnJitteredGrid round-trips chunks of a value that holds
// (constant, or changing now and then) scraped with jitter and the odd
// missed scrape: their repeats go out as runs of grid offsets, which must
// stop at a changed value, an offset wider than the grid's and the end.
func TestRepeatsOnJitteredGrid(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	widths := map[uint8]bool{}
	for trial := range 1000 {
		n := 2 + rng.IntN(bestCached-1)
		ts, vs := make([]int64, n), make([]float64, n)
		tm, x := int64(1_700_000_000_000), float64(rng.IntN(100))
		for i := range ts {
			tm += 15_000
			if rng.IntN(40) == 0 {
				tm += 15_000 * (1 + rng.Int64N(3)) // missed scrapes
			}
			ts[i] = tm + rng.Int64N(51) - 25
			if trial%2 == 1 && rng.IntN(12) == 0 {
				x = float64(rng.IntN(100))
			}
			vs[i] = x
		}
		for i := 1; i < n; i++ {
			ts[i] = max(ts[i], ts[i-1]+1)
		}
		var sc bestScratch
		enc, p, g := chooseFloatEncoding(ts, vs, &sc)
		chunk, err := appendFloatChunk(nil, enc, ts, vs, &p, g, &sc)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if err := verifyFloatChunk(chunk, ts, vs); err != nil {
			t.Fatalf("trial %d (%s, grid %+v): %v", trial, enc, g, err)
		}
		if enc == EncDecimal && g.interval != 0 && sc.sparse {
			widths[g.width] = true
		}
	}
	if len(widths) == 0 || widths[0] && len(widths) == 1 {
		t.Fatalf("no sparse decimal chunk on a grid of offsets: widths %v", widths)
	}
}

// TestChimpBitsAtAsPlan checks the in-place planner against the ring's on
// values that share low bits often (integers, a few decimals, repeats of
// older values), where the reference and its ties decide the size.
func TestChimpBitsAtAsPlan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pool := []float64{0, 1, 2, 3, 1024, 1 << 20, 123456789, 0.5, 0.25, 42.125, -7, 3.75}
	for trial := range 300 {
		vs := make([]float64, 64)
		for i := range vs {
			switch rng.IntN(3) {
			case 0:
				vs[i] = pool[rng.IntN(len(pool))]
			case 1:
				vs[i] = float64(rng.IntN(1 << uint(1+rng.IntN(40))))
			default:
				vs[i] = math.Ldexp(float64(rng.IntN(64)), rng.IntN(20)-10)
			}
		}
		for i := chimpRefs; i < len(vs); i++ {
			for _, lead := range []uint8{noWindow, 0, 3, 7} {
				s := chimpState{n: i, lead: lead}
				for j := i - chimpRefs; j < i; j++ {
					s.ring[j&(chimpRefs-1)] = math.Float64bits(vs[j])
				}
				var p chimpPlan
				s.plan(math.Float64bits(vs[i]), &p)
				n, flag, class := chimpBitsAt(vs, i, lead)
				if n != p.nbits || flag != p.flag || (flag != 0b00 && class != p.class) {
					t.Fatalf("trial %d value %d lead %d: (%d, %02b, %d), plan (%d, %02b, %d)", trial, i, lead, n, flag, class, p.nbits, p.flag, p.class)
				}
			}
		}
	}
}

// TestRepeatsReadAheadSeek reads chunks with long runs of repeats, which
// the iterator takes up to a register's worth at a time and counts ahead,
// in gorilla (the open chunk) and in the smallest encoding, and seeks into
// them from every sample to every later one: each seek must land on the
// sample asked for and leave the rest to read as written.
func TestRepeatsReadAheadSeek(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for trial := range 60 {
		n := 2 + rng.IntN(200)
		vs := repeatingValues(rng, n)
		for i := range vs {
			if rng.IntN(4) == 0 && i > 0 {
				vs[i] = vs[i-1] // longer runs still
			}
		}
		ts := lateTimes(rng, n, 15_000, 20)
		gc := NewFloatChunk()
		for i := range ts {
			if err := gc.Append(ts[i], vs[i]); err != nil {
				t.Fatal(err)
			}
		}
		best, err := AppendBestFloats(nil, ts, vs)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range [][]byte{gc.Bytes(), best} {
			var it FloatIterator
			for from := range n {
				to := from + rng.IntN(n-from)
				if err := it.Reset(b); err != nil {
					t.Fatal(err)
				}
				for range from {
					if !it.Next() {
						t.Fatalf("trial %d: ended before sample %d: %v", trial, from, it.Err())
					}
				}
				if !it.SeekTo(ts[to]) {
					t.Fatalf("trial %d: seek from %d to %d failed: %v", trial, from, to, it.Err())
				}
				for i := to; ; i++ {
					gt, gv := it.At()
					if gt != ts[i] || math.Float64bits(gv) != math.Float64bits(vs[i]) {
						t.Fatalf("trial %d (%s), seek from %d to %d, sample %d: got (%d, %v), want (%d, %v)", trial, ChunkEncoding(b[0]), from, to, i, gt, gv, ts[i], vs[i])
					}
					if !it.Next() {
						if it.Err() != nil || i != n-1 {
							t.Fatalf("trial %d: ended at sample %d of %d: %v", trial, i, n, it.Err())
						}
						break
					}
				}
			}
		}
	}
}
