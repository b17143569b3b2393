package tsdb

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// selectPostings returns the ids of the series matching every matcher, as a
// bitmap the caller owns. Matchers answered by direct lookups (`=`, `!=`,
// literal alternations) are applied first, positive sets intersected
// smallest first; matchers that also match the absent label (`a!="x"`,
// `a=~"|x"`) give sets to subtract instead. A matcher that would have to
// scan every value of its label is instead checked against the labels of
// the remaining candidates when there are fewer candidates than values.
func (r *registry) selectPostings(ms []*Matcher) *roaring.Bitmap {
	r.postMu.RLock()
	var pos, neg []*roaring.Bitmap
	var scans, deferred []*Matcher
	for _, m := range ms {
		if !lookupMatcher(m) {
			scans = append(scans, m)
			continue
		}
		if m.Matches("") {
			neg = append(neg, r.valuesWhere(m, false))
		} else {
			pos = append(pos, r.valuesWhere(m, true))
		}
	}
	res := r.combine(pos, neg)
	pos, neg = pos[:0], neg[:0]
	for _, m := range scans {
		if res != nil && res.GetCardinality() < uint64(len(r.byPair[m.Name])) {
			deferred = append(deferred, m)
			continue
		}
		if m.Matches("") {
			neg = append(neg, r.valuesWhere(m, false))
		} else {
			pos = append(pos, r.valuesWhere(m, true))
		}
	}
	if len(pos) > 0 || len(neg) > 0 {
		if res != nil {
			pos = append(pos, res)
		}
		res = r.combine(pos, neg)
	}
	if res == nil {
		res = r.all.Clone()
	}
	r.postMu.RUnlock()
	if len(deferred) > 0 && !res.IsEmpty() {
		out := roaring.New()
		it := res.Iterator()
		for it.HasNext() {
			id := it.Next()
			s := r.get(id)
			if s == nil {
				continue
			}
			ok := true
			for _, m := range deferred {
				if !m.Matches(s.lset.Get(m.Name)) {
					ok = false
					break
				}
			}
			if ok {
				out.Add(id)
			}
		}
		res = out
	}
	return res
}

// lookupMatcher says whether m's postings come from map lookups rather
// than a scan of every value of its label.
func lookupMatcher(m *Matcher) bool {
	switch m.Type {
	case MatchEqual, MatchNotEqual:
		return true
	default:
		return m.set != nil
	}
}

// combine intersects pos (smallest first) and subtracts neg; nil when both
// are empty. The result is a new bitmap.
func (r *registry) combine(pos, neg []*roaring.Bitmap) *roaring.Bitmap {
	if len(pos) == 0 && len(neg) == 0 {
		return nil
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

// postingsList holds the series of one label pair. A pair naming a single
// series (every value of a label like an id or a pod name) keeps just its
// id; a bitmap is made when a second series arrives, which saves a bitmap
// per series on high-cardinality labels.
type postingsList struct {
	bm  *roaring.Bitmap
	one uint32
}

// bitmap returns the list as a bitmap, which callers only read.
func (p postingsList) bitmap() *roaring.Bitmap {
	if p.bm != nil {
		return p.bm
	}
	return roaring.BitmapOf(p.one)
}

func (p postingsList) intersects(b *roaring.Bitmap) bool {
	if p.bm != nil {
		return p.bm.Intersects(b)
	}
	return b.Contains(p.one)
}

// postingsUnion collects lists and unions them at once, lone ids in bulk.
type postingsUnion struct {
	bms  []*roaring.Bitmap
	ones []uint32
}

func (u *postingsUnion) add(p postingsList) {
	if p.bm != nil {
		u.bms = append(u.bms, p.bm)
	} else {
		u.ones = append(u.ones, p.one)
	}
}

func (u *postingsUnion) result() *roaring.Bitmap {
	if len(u.bms) == 1 && len(u.ones) == 0 {
		return u.bms[0]
	}
	res := roaring.FastOr(u.bms...)
	res.AddMany(u.ones)
	return res
}

// valuesWhere unions the postings of m.Name's values for which m.Matches
// equals want. The result may alias a stored bitmap: callers only read it
// under postMu.
func (r *registry) valuesWhere(m *Matcher, want bool) *roaring.Bitmap {
	vals := r.byPair[m.Name]
	var u postingsUnion
	lookup := (want && (m.Type == MatchEqual || m.Type == MatchRegexp && m.set != nil)) ||
		(!want && (m.Type == MatchNotEqual || m.Type == MatchNotRegexp && m.set != nil))
	if lookup {
		// Literal fast paths: look the values up instead of scanning them.
		if m.set == nil {
			if pl, ok := vals[m.Value]; ok {
				return pl.bitmap()
			}
			return roaring.New()
		}
		for _, v := range m.set {
			if pl, ok := vals[v]; ok {
				u.add(pl)
			}
		}
		return u.result()
	}
	for v, pl := range vals {
		if m.Matches(v) == want {
			u.add(pl)
		}
	}
	return u.result()
}
