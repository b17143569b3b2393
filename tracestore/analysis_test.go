package tracestore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// span builds a span of service svc from start to end (in ms after t0).
func aspan(id, parent uint64, svc string, start, end int64) Span {
	s := Span{TraceID: tid(1), SpanID: sid(id), Name: svc + "-op", StartTime: t0 + start*1e6, EndTime: t0 + end*1e6, Resource: res(svc)}
	if parent != 0 {
		s.ParentSpanID = sid(parent)
	}
	return s
}

func TestTreeOrphansAndRoots(t *testing.T) {
	tr := &Trace{ID: tid(1), Spans: []Span{
		aspan(2, 1, "api", 10, 20), // child of 1, listed before it
		aspan(1, 0, "front", 0, 100),
		aspan(3, 1, "api", 5, 8),
		aspan(4, 99, "db", 30, 40), // parent missing: orphan
		aspan(5, 0, "batch", 50, 60),
		aspan(6, 7, "loop", 0, 1), // 6 and 7 are each other's parent
		aspan(7, 6, "loop", 0, 1),
		aspan(8, 8, "self", 0, 1), // its own parent
	}}
	tree := tr.Tree()
	require.Equal(t, []int{2, 0}, tree.Children[1], "children earliest first")
	require.Equal(t, 1, tree.Parent[0])
	require.Equal(t, -1, tree.Parent[1])
	require.Contains(t, tree.Orphans, 3)
	require.Contains(t, tree.Orphans, 7)
	for _, r := range []int{1, 3, 4, 7} {
		require.Contains(t, tree.Roots, r)
	}
	// Every span is reachable from exactly one root.
	seen := make(map[int]bool)
	var walk func(int)
	walk = func(i int) {
		require.False(t, seen[i], "span %d reached twice", i)
		seen[i] = true
		for _, c := range tree.Children[i] {
			walk(c)
		}
	}
	for _, r := range tree.Roots {
		walk(r)
	}
	require.Len(t, seen, len(tr.Spans))
}

func TestCriticalPathAndSelfTime(t *testing.T) {
	// front 0..100 calls auth 10..30, then in parallel cart 40..70 and
	// search 40..90; search calls db 50..80.
	tr := &Trace{ID: tid(1), Spans: []Span{
		aspan(1, 0, "front", 0, 100),
		aspan(2, 1, "auth", 10, 30),
		aspan(3, 1, "cart", 40, 70),
		aspan(4, 1, "search", 40, 90),
		aspan(5, 4, "db", 50, 80),
	}}
	ms := func(v int64) int64 { return t0 + v*1e6 }
	require.Equal(t, []Segment{
		{Span: 0, Start: ms(0), End: ms(10)},
		{Span: 1, Start: ms(10), End: ms(30)},
		{Span: 0, Start: ms(30), End: ms(40)},
		{Span: 3, Start: ms(40), End: ms(50)},
		{Span: 4, Start: ms(50), End: ms(80)},
		{Span: 3, Start: ms(80), End: ms(90)},
		{Span: 0, Start: ms(90), End: ms(100)},
	}, tr.CriticalPath())

	self := tr.SelfTimes()
	require.Equal(t, []time.Duration{30 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}, self)

	by := tr.TimeByService()
	require.Equal(t, ServiceTime{Service: "db", SelfTime: 30 * time.Millisecond, CriticalTime: 30 * time.Millisecond, Spans: 1}, by[0], "ties broken by name")
	require.Equal(t, ServiceTime{Service: "front", SelfTime: 30 * time.Millisecond, CriticalTime: 30 * time.Millisecond, Spans: 1}, by[1])
	total := time.Duration(0)
	for _, s := range by {
		total += s.CriticalTime
	}
	require.Equal(t, 100*time.Millisecond, total, "the critical path covers the root exactly")
	require.Equal(t, ServiceTime{Service: "cart", SelfTime: 30 * time.Millisecond, Spans: 1}, by[len(by)-1], "cart never was on the critical path")
}

func TestCriticalPathClipsChildrenOutsideParent(t *testing.T) {
	// A child that outlives its parent (async) only counts inside the parent.
	tr := &Trace{ID: tid(1), Spans: []Span{
		aspan(1, 0, "front", 0, 50),
		aspan(2, 1, "async", 20, 200),
	}}
	ms := func(v int64) int64 { return t0 + v*1e6 }
	require.Equal(t, []Segment{{Span: 0, Start: ms(0), End: ms(20)}, {Span: 1, Start: ms(20), End: ms(50)}}, tr.CriticalPath())
	require.Equal(t, []time.Duration{20 * time.Millisecond, 180 * time.Millisecond}, tr.SelfTimes())
	require.Empty(t, (&Trace{}).CriticalPath())
}
