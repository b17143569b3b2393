package tracegen

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/tracestore"
)

func TestDeterministicAndShaped(t *testing.T) {
	a := New(Config{}).Batch(nil, 5000)
	b := New(Config{}).Batch(nil, 5000)
	require.Equal(t, a, b, "a fixed seed gives the same spans")
	c := New(Config{Seed: 2}).Batch(nil, 100)
	require.NotEqual(t, a[0].TraceID, c[0].TraceID)

	perTrace := map[tracestore.TraceID]int{}
	services := map[string]bool{}
	attrs := 0
	for i := range a {
		sp := &a[i]
		perTrace[sp.TraceID]++
		services[sp.Service()] = true
		attrs += len(sp.Attributes) + len(sp.Resource.Attributes)
		require.False(t, sp.SpanID.IsZero())
		require.GreaterOrEqual(t, sp.EndTime, sp.StartTime)
	}
	for id, n := range perTrace {
		require.True(t, n >= 5 && n <= 50, "trace %s has %d spans", id, n)
	}
	require.Len(t, services, 10)
	require.Equal(t, 11, attrs/len(a))
	// Every non-root span's parent is an earlier span of its trace.
	for i := range a {
		if a[i].ParentSpanID.IsZero() {
			continue
		}
		found := false
		for j := i - 1; j >= 0 && a[j].TraceID == a[i].TraceID; j-- {
			if a[j].SpanID == a[i].ParentSpanID {
				found = true
				break
			}
		}
		require.True(t, found, "span %d has no parent in its trace", i)
	}
}
