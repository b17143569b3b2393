package tsdb

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// selectPostings returns the ids of the series matching every matcher, as a
// bitmap the caller owns. Matchers that select series by value give
// positive sets, intersected smallest first; matchers that also match the
// absent label (`a!="x"`, `a=~"|x"`) give sets to subtract instead.
func (r *registry) selectPostings(ms []*Matcher) *roaring.Bitmap {
	r.postMu.RLock()
	defer r.postMu.RUnlock()
	var pos, neg []*roaring.Bitmap
	for _, m := range ms {
		if m.Matches("") {
			neg = append(neg, r.valuesWhere(m, false))
		} else {
			pos = append(pos, r.valuesWhere(m, true))
		}
	}
	var res *roaring.Bitmap
	if len(pos) == 0 {
		res = r.all.Clone()
	} else {
		slices.SortFunc(pos, func(a, b *roaring.Bitmap) int {
			return int(a.GetCardinality()) - int(b.GetCardinality())
		})
		res = pos[0].Clone()
		for _, p := range pos[1:] {
			if res.IsEmpty() {
				break
			}
			res.And(p)
		}
	}
	for _, n := range neg {
		if res.IsEmpty() {
			break
		}
		res.AndNot(n)
	}
	return res
}

// valuesWhere unions the postings of m.Name's values for which m.Matches
// equals want. The result may alias a stored bitmap: callers only read it
// under postMu.
func (r *registry) valuesWhere(m *Matcher, want bool) *roaring.Bitmap {
	vals := r.byPair[m.Name]
	if want {
		// Literal fast paths: look the values up instead of scanning them.
		switch {
		case m.Type == MatchEqual:
			if bm := vals[m.Value]; bm != nil {
				return bm
			}
			return roaring.New()
		case m.Type == MatchRegexp && m.set != nil:
			var bms []*roaring.Bitmap
			for _, v := range m.set {
				if bm := vals[v]; bm != nil {
					bms = append(bms, bm)
				}
			}
			return roaring.FastOr(bms...)
		}
	} else if m.Type == MatchNotEqual {
		if bm := vals[m.Value]; bm != nil {
			return bm
		}
		return roaring.New()
	}
	var bms []*roaring.Bitmap
	for v, bm := range vals {
		if m.Matches(v) == want {
			bms = append(bms, bm)
		}
	}
	return roaring.FastOr(bms...)
}
