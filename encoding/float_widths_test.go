package encoding

import (
	"math/rand/v2"
	"testing"
)

// TestChooseWidthsAsDefinition checks chooseWidths, which reads the
// histogram by a mask of the lengths present, against a plain search over
// every length: the same widths (ties to the first choice in ascending
// order) and the same cost, on histograms of every shape a chunk gives,
// from empty to every length present, length 64 included.
func TestChooseWidthsAsDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for trial := range 20000 {
		var lens [65]int
		switch trial % 4 {
		case 0: // a few lengths anywhere
			for range rng.IntN(6) {
				lens[rng.IntN(65)] += 1 + rng.IntN(50)
			}
		case 1: // a band, as noisy values give
			lo := rng.IntN(60)
			for l := lo; l < min(65, lo+1+rng.IntN(20)); l++ {
				if rng.IntN(3) > 0 {
					lens[l] = rng.IntN(40)
				}
			}
		case 2: // zeros and long codes, as a sparse series' changes
			lens[0] = rng.IntN(120)
			for range rng.IntN(30) {
				lens[10+rng.IntN(55)]++
			}
		default: // anything, up to every length, ties likely
			density := 1 + rng.IntN(4)
			for l := range lens {
				if rng.IntN(density) == 0 {
					lens[l] = 1 + rng.IntN(3)
				}
			}
		}
		fixed := rng.IntN(100)
		w, c := chooseWidths(&lens, fixed)
		ww, wc := chooseWidthsByDefinition(&lens, fixed)
		if w != ww || c != wc {
			t.Fatalf("trial %d: %v: widths %v cost %d, want %v %d", trial, lens, w, c, ww, wc)
		}
	}
}

// chooseWidthsByDefinition is what chooseWidths computes, searched as
// plainly as it reads: it picks the four bucket widths minimising the bits for a
// histogram of bit lengths, returning them and fixed plus that cost.
func chooseWidthsByDefinition(lens *[65]int, fixed int) ([4]uint8, int) {
	// Candidate widths are the lengths present; with many of them (noisy
	// data) only every other one is tried, keeping the search to a few
	// hundred steps.
	var distinct [65]uint8
	k, present, maxL := 0, 0, -1
	for l, c := range lens {
		if c > 0 {
			present++
			maxL = l
		}
	}
	if maxL < 0 {
		return [4]uint8{0, 0, 0, 0}, fixed
	}
	stride := 1 + present/8
	seen, skip := 0, 0 // skip: lengths present to pass before the next candidate (no division a length)
	var cum [66]int    // cum[l] = values with length < l, for l ≤ maxL+1
	for l, c := range lens[:maxL+1] {
		cum[l+1] = cum[l] + c
		if c > 0 {
			if skip == 0 || seen == present-1 {
				distinct[k] = uint8(l)
				k++
				skip = stride
			}
			skip--
			seen++
		}
	}
	top := distinct[k-1]
	cnt := func(lo, hi uint8) int { return cum[int(hi)+1] - cum[lo] } // lengths in [lo, hi]
	best := -1
	var bw [4]uint8
	// w3 is always the top length; try every choice of up to three lower
	// widths among the lengths present.
	for a := 0; a < k; a++ {
		w0 := distinct[a]
		c0 := cnt(0, w0) * (1 + int(w0))
		if w0 == top {
			if best < 0 || c0 < best {
				best, bw = c0, [4]uint8{w0, w0, w0, w0}
			}
			continue
		}
		for b := a + 1; b < k; b++ {
			w1 := distinct[b]
			c1 := c0 + cnt(w0+1, w1)*(2+int(w1))
			if w1 == top {
				if best < 0 || c1 < best {
					best, bw = c1, [4]uint8{w0, w1, w1, w1}
				}
				continue
			}
			for c := b + 1; c < k; c++ {
				w2 := distinct[c]
				c2 := c1 + cnt(w1+1, w2)*(3+int(w2))
				if w2 != top {
					c2 += cnt(w2+1, top) * (4 + int(top))
				}
				if best < 0 || c2 < best {
					best, bw = c2, [4]uint8{w0, w1, w2, top}
				}
			}
		}
	}
	return bw, fixed + best
}
