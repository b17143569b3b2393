package tracestore

import (
	"cmp"
	"slices"
	"time"
)

// Tree is the parent/child structure of a trace's spans, by index into
// Trace.Spans. A span whose parent is zero is a root; a span whose parent is
// not in the trace is an orphan and also a root (so nothing is lost when
// spans are missing); spans caught in a parent cycle are made roots too.
// With repeated span IDs, children attach to the first span with the ID.
type Tree struct {
	// Roots are the top-level spans, earliest start first.
	Roots []int
	// Orphans are the roots whose parent ID is non-zero: missing from the
	// trace, the span itself, or part of a parent cycle.
	Orphans []int
	// Parent[i] is the index of span i's parent, or -1 for a root.
	Parent []int
	// Children[i] are span i's children, earliest start first.
	Children [][]int
}

// Tree builds the span tree of t.
func (t *Trace) Tree() *Tree {
	n := len(t.Spans)
	tr := &Tree{Parent: make([]int, n), Children: make([][]int, n)}
	byID := make(map[SpanID]int, n)
	for i := range t.Spans {
		if _, dup := byID[t.Spans[i].SpanID]; !dup {
			byID[t.Spans[i].SpanID] = i
		}
	}
	for i := range t.Spans {
		sp := &t.Spans[i]
		tr.Parent[i] = -1
		if sp.ParentSpanID.IsZero() {
			continue
		}
		p, ok := byID[sp.ParentSpanID]
		if !ok || p == i {
			tr.Orphans = append(tr.Orphans, i)
			continue
		}
		tr.Parent[i] = p
	}
	// Break cycles: walk up from each span; a walk that revisits a span
	// marks a cycle, whose entry span becomes a root.
	state := make([]uint8, n) // 0 unvisited, 1 on the current path, 2 done
	var path []int
	for i := range n {
		path = path[:0]
		j := i
		for j >= 0 && state[j] == 0 {
			state[j] = 1
			path = append(path, j)
			j = tr.Parent[j]
		}
		if j >= 0 && state[j] == 1 {
			tr.Parent[j] = -1
			tr.Orphans = append(tr.Orphans, j)
		}
		for _, k := range path {
			state[k] = 2
		}
	}
	for i := range n {
		if p := tr.Parent[i]; p >= 0 {
			tr.Children[p] = append(tr.Children[p], i)
		} else {
			tr.Roots = append(tr.Roots, i)
		}
	}
	byStart := func(a, b int) int {
		if c := cmp.Compare(t.Spans[a].StartTime, t.Spans[b].StartTime); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	}
	slices.SortFunc(tr.Roots, byStart)
	slices.Sort(tr.Orphans)
	for i := range tr.Children {
		slices.SortFunc(tr.Children[i], byStart)
	}
	return tr
}

// Segment is a stretch of time on the critical path spent in one span (not
// waiting on a child).
type Segment struct {
	Span       int   // index into Trace.Spans
	Start, End int64 // Unix ns
}

// CriticalPath returns the segments of the trace's critical path, in time
// order: starting from the root that ends last, walking back from its end,
// at each moment the path is in the child that finished last before that
// moment, or in the span itself when no child was running. Time a span
// spends outside its parent is clipped to the parent.
func (t *Trace) CriticalPath() []Segment {
	tr := t.Tree()
	if len(tr.Roots) == 0 {
		return nil
	}
	root := tr.Roots[0]
	for _, r := range tr.Roots[1:] {
		if t.Spans[r].EndTime > t.Spans[root].EndTime {
			root = r
		}
	}
	var segs []Segment
	segs = t.critical(tr, root, t.Spans[root].StartTime, t.Spans[root].EndTime, segs)
	slices.Reverse(segs)
	return segs
}

// critical appends, latest first, the segments of span i within [lo, hi].
func (t *Trace) critical(tr *Tree, i int, lo, hi int64, segs []Segment) []Segment {
	sp := &t.Spans[i]
	lo, hi = max(lo, sp.StartTime), min(hi, sp.EndTime)
	if hi <= lo {
		return segs
	}
	kids := slices.Clone(tr.Children[i])
	// Latest-ending child first.
	slices.SortFunc(kids, func(a, b int) int {
		if c := cmp.Compare(t.Spans[b].EndTime, t.Spans[a].EndTime); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	cur := hi
	for _, k := range kids {
		c := &t.Spans[k]
		if c.StartTime >= cur || c.EndTime <= lo {
			continue // starts after the point reached, or ends before the span
		}
		end := min(c.EndTime, cur)
		if end < cur {
			segs = append(segs, Segment{Span: i, Start: end, End: cur})
		}
		segs = t.critical(tr, k, max(c.StartTime, lo), end, segs)
		cur = max(c.StartTime, lo)
		if cur <= lo {
			break
		}
	}
	if cur > lo {
		segs = append(segs, Segment{Span: i, Start: lo, End: cur})
	}
	return segs
}

// SelfTimes returns, per span, the time it ran with none of its children
// running (its duration minus the union of its children, clipped to it).
func (t *Trace) SelfTimes() []time.Duration {
	tr := t.Tree()
	out := make([]time.Duration, len(t.Spans))
	type iv struct{ lo, hi int64 }
	var ivs []iv
	for i := range t.Spans {
		sp := &t.Spans[i]
		ivs = ivs[:0]
		for _, k := range tr.Children[i] {
			c := &t.Spans[k]
			lo, hi := max(c.StartTime, sp.StartTime), min(c.EndTime, sp.EndTime)
			if hi > lo {
				ivs = append(ivs, iv{lo, hi})
			}
		}
		slices.SortFunc(ivs, func(a, b iv) int { return cmp.Compare(a.lo, b.lo) })
		covered, curLo, curHi := int64(0), int64(0), int64(0)
		for j, v := range ivs {
			if j == 0 || v.lo > curHi {
				covered += curHi - curLo
				curLo, curHi = v.lo, v.hi
			} else {
				curHi = max(curHi, v.hi)
			}
		}
		covered += curHi - curLo
		out[i] = time.Duration(sp.Duration() - covered)
	}
	return out
}

// ServiceTime is where a trace's time went, for one service.
type ServiceTime struct {
	Service string
	// SelfTime is the sum of the self times of the service's spans.
	SelfTime time.Duration
	// CriticalTime is the service's share of the critical path.
	CriticalTime time.Duration
	// Spans is how many spans the service has in the trace.
	Spans int
}

// TimeByService answers "where did the time go": per service, the self time
// of its spans and its share of the critical path, largest critical share
// first (ties by self time, then name).
func (t *Trace) TimeByService() []ServiceTime {
	idx := make(map[string]int)
	var out []ServiceTime
	at := func(svc string) *ServiceTime {
		i, ok := idx[svc]
		if !ok {
			i = len(out)
			idx[svc] = i
			out = append(out, ServiceTime{Service: svc})
		}
		return &out[i]
	}
	for i, d := range t.SelfTimes() {
		st := at(t.Spans[i].Service())
		st.SelfTime += d
		st.Spans++
	}
	for _, seg := range t.CriticalPath() {
		at(t.Spans[seg.Span].Service()).CriticalTime += time.Duration(seg.End - seg.Start)
	}
	slices.SortFunc(out, func(a, b ServiceTime) int {
		if c := cmp.Compare(b.CriticalTime, a.CriticalTime); c != 0 {
			return c
		}
		if c := cmp.Compare(b.SelfTime, a.SelfTime); c != 0 {
			return c
		}
		return cmp.Compare(a.Service, b.Service)
	})
	return out
}
