package logindex

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// listingRecords makes n records over 4 partitions of a minute, with
// varied resources, severities, attributes and JSON and logfmt bodies, in
// time order when sorted is set.
func listingRecords(rng *rand.Rand, base int64, n int, sorted bool) []Record {
	recs := make([]Record, n)
	services := []string{"Checkout", "auth", "cart"}
	levels := []string{"INFO", "warn", "Error", ""}
	for i := range recs {
		ts := base + int64(i)*int64(4*time.Minute)/int64(n)
		if !sorted {
			ts = base + rng.Int64N(int64(4*time.Minute))
		}
		r := Record{
			Timestamp:    ts,
			SeverityText: levels[rng.IntN(len(levels))],
			Resource: []Attribute{
				{Key: ServiceAttr, Value: StringValue(services[rng.IntN(len(services))])},
				{Key: "host.name", Value: StringValue(fmt.Sprintf("Host-%d", rng.IntN(5)))},
			},
			Body: StringValue(fmt.Sprintf("request %d served", i)),
		}
		switch rng.IntN(4) {
		case 0:
			r.Attributes = []Attribute{{Key: "http.status", Value: IntValue(int64(200 + 100*rng.IntN(4)))}}
		case 1:
			r.Attributes = []Attribute{{Key: "User", Value: StringValue(fmt.Sprintf("u%d", rng.IntN(50)))}, {Key: "ok", Value: BoolValue(rng.IntN(2) == 0)}}
		case 2:
			r.Body = StringValue(fmt.Sprintf(`{"msg":"done","Region":"eu-%d","n":%d}`, rng.IntN(3), rng.IntN(10)))
		case 3:
			r.Body = StringValue(fmt.Sprintf(`took=%dms path=/api/%d`, rng.IntN(100), rng.IntN(7)))
		}
		if rng.IntN(3) == 0 {
			r.TraceID[15] = byte(1 + rng.IntN(200))
		}
		recs[i] = r
	}
	return recs
}

// bruteFields lists what the field extractor reports for the records in
// [t0, t1): the names (without the internal stream field) and each
// field's values.
func bruteFields(recs []Record, t0, t1 int64) ([]string, map[string][]string) {
	vals := map[string]map[string]bool{}
	var x fieldExtractor
	for i := range recs {
		if recs[i].Timestamp < t0 || recs[i].Timestamp >= t1 {
			continue
		}
		x.fields(&recs[i], func(f, v []byte) {
			if vals[string(f)] == nil {
				vals[string(f)] = map[string]bool{}
			}
			vals[string(f)][string(v)] = true
		})
	}
	var names []string
	out := map[string][]string{}
	for f, vs := range vals {
		if f != fieldStream {
			names = append(names, f)
		}
		for v := range vs {
			out[f] = append(out[f], v)
		}
		slices.Sort(out[f])
	}
	slices.Sort(names)
	return names, out
}

func TestListingMatchesBruteForce(t *testing.T) {
	for _, sorted := range []bool{true, false} {
		t.Run(fmt.Sprintf("sorted=%v", sorted), func(t *testing.T) {
			ctx := t.Context()
			ix := openTest(t, &Options{PartitionDuration: time.Minute})
			rng := rand.New(rand.NewPCG(3, 4))
			base := int64(1_767_225_600) * 1e9
			recs := listingRecords(rng, base, 2000, sorted)
			// Half the records flushed to Pebble, half pending in memory.
			require.NoError(t, ix.Write(ctx, slices.Clone(recs[:1000])))
			require.NoError(t, ix.Flush(ctx))
			require.NoError(t, ix.Write(ctx, slices.Clone(recs[1000:])))
			ranges := [][2]int64{
				{base, base + int64(4*time.Minute)},                                      // whole partitions
				{base - int64(time.Hour), base + int64(time.Hour)},                       // beyond the data
				{base + int64(30*time.Second), base + int64(150*time.Second)},            // cut partitions
				{base + int64(61*time.Second), base + int64(61*time.Second) + 1_000_000}, // a few records
				{base + int64(10*time.Minute), base + int64(11*time.Minute)},             // no records
			}
			for i := range 5 {
				a := base + rng.Int64N(int64(4*time.Minute))
				ranges = append(ranges, [2]int64{a, a + 1 + rng.Int64N(int64(time.Minute))})
				_ = i
			}
			for _, r := range ranges {
				wantNames, wantVals := bruteFields(recs, r[0], r[1])
				names, err := ix.FieldNames(ctx, r[0], r[1])
				require.NoError(t, err)
				require.Equal(t, nilIfEmpty(wantNames), nilIfEmpty(names), "range %v", r)
				for _, f := range append(wantNames, fieldStream, "absent") {
					vals, err := ix.FieldValues(ctx, f, r[0], r[1], 0)
					require.NoError(t, err)
					require.Equal(t, nilIfEmpty(wantVals[f]), nilIfEmpty(vals), "field %s range %v", f, r)
					if len(wantVals[f]) > 2 {
						vals, err = ix.FieldValues(ctx, f, r[0], r[1], 2)
						require.NoError(t, err)
						require.Equal(t, wantVals[f][:2], vals)
					}
				}
			}
		})
	}
}

func TestFieldExamples(t *testing.T) {
	ctx := t.Context()
	ix := openTest(t, &Options{PartitionDuration: time.Minute})
	rng := rand.New(rand.NewPCG(5, 6))
	base := int64(1_767_225_600) * 1e9
	recs := listingRecords(rng, base, 600, false)
	require.NoError(t, ix.Write(ctx, slices.Clone(recs[:300])))
	require.NoError(t, ix.Flush(ctx))
	require.NoError(t, ix.Write(ctx, slices.Clone(recs[300:])))
	t0, t1 := base+int64(20*time.Second), base+int64(170*time.Second)
	ex, err := ix.FieldExamples(ctx, "service.name", t0, t1, 0)
	require.NoError(t, err)
	require.Len(t, ex, 3)
	for _, e := range ex {
		// The newest record in range with the value: none is newer.
		require.Equal(t, e.Value, strings.ToLower(e.Hit.Service()))
		require.GreaterOrEqual(t, e.Hit.Timestamp, t0)
		require.Less(t, e.Hit.Timestamp, t1)
		for i := range recs {
			if strings.EqualFold(recs[i].Service(), e.Value) && recs[i].Timestamp < t1 {
				require.LessOrEqual(t, recs[i].Timestamp, e.Hit.Timestamp)
			}
		}
	}
	require.Equal(t, "Checkout", ex[2].Hit.Service(), "the record keeps the value as written")
	ex, err = ix.FieldExamples(ctx, "level", t0, t1, 2)
	require.NoError(t, err)
	require.Len(t, ex, 2)
	require.Equal(t, "error", ex[0].Value)
	require.Equal(t, "Error", ex[0].Hit.SeverityText)

	streams, err := ix.StreamExamples(ctx, t0, t1, 0)
	require.NoError(t, err)
	type stream struct{ svc, level string }
	want := map[stream]int64{}
	for i := range recs {
		if r := &recs[i]; r.Timestamp >= t0 && r.Timestamp < t1 {
			k := stream{r.Service(), r.SeverityText}
			want[k] = max(want[k], r.Timestamp)
		}
	}
	got := map[stream]int64{}
	for _, h := range streams {
		got[stream{h.Service(), h.SeverityText}] = h.Timestamp
	}
	require.Equal(t, want, got)

	_, err = ix.FieldNames(ctx, t1, t0)
	require.ErrorIs(t, err, ErrBadRange)
	require.NoError(t, ix.Close())
	_, err = ix.FieldValues(ctx, "level", t0, t1, 0)
	require.ErrorIs(t, err, ErrClosed)
}
