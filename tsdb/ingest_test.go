package tsdb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// TestRefsAcrossReopen checks that a ref this DB handed out names its
// series whatever labels come with it, while a ref from before a reopen is
// checked against the labels: its id may name another series by then.
func TestRefsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := Open(dir, nil)
	require.NoError(t, err)
	a, b := FromStrings(MetricName, "a"), FromStrings(MetricName, "b")
	app := db.Appender(ctx)
	refA, err := app.Append(0, a, 1000, 1)
	require.NoError(t, err)
	refB, err := app.Append(0, b, 1000, 2)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	require.NotEqual(t, refA, refB)

	app = db.Appender(ctx)
	got, err := app.Append(refA, nil, 2000, 3)
	require.NoError(t, err)
	require.Equal(t, refA, got)
	require.NoError(t, app.Commit())
	require.NoError(t, db.Close())

	db, err = Open(dir, nil)
	require.NoError(t, err)
	defer db.Close()
	app = db.Appender(ctx)
	// refA from the last run with b's labels: the labels win.
	got, err = app.Append(refA, b, 3000, 4)
	require.NoError(t, err)
	require.Equal(t, uint32(refB), uint32(got))
	require.NotEqual(t, refB, got, "a ref handed out by this run carries its tag")
	// With no labels an old ref still names its series by id.
	_, err = app.Append(refA, nil, 3000, 5)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	all := readAll(t, db, 0, 10_000)
	require.Equal(t, []fsample{{t: 1000, v: 1}, {t: 2000, v: 3}, {t: 3000, v: 5}}, all[a.String()])
	require.Equal(t, []fsample{{t: 1000, v: 2}, {t: 3000, v: 4}}, all[b.String()])
}

// TestCommitOrderIndependent appends the same scrapes in id order (applied
// in stripe runs on two goroutines) and shuffled (sorted by stripe first,
// on one) and checks both stores read back the same samples, including
// across seals.
func TestCommitOrderIndependent(t *testing.T) {
	ctx := context.Background()
	const nSeries, scrapes = 1500, 40 // above parallelMinSamples
	lss := make([]Labels, nSeries)
	for i := range lss {
		lss[i] = FromStrings(MetricName, "m", "i", fmt.Sprint(i))
	}
	read := func(shuffle bool) map[string][]fsample {
		db, err := Open(t.TempDir(), &Options{ChunkSamples: 7})
		require.NoError(t, err)
		defer db.Close()
		refs := make([]SeriesRef, nSeries)
		order := make([]int, nSeries)
		for i := range order {
			order[i] = i
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for k := range scrapes {
			if shuffle {
				rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			}
			app := db.Appender(ctx)
			for _, i := range order {
				refs[i], err = app.Append(refs[i], lss[i], int64(k)*15_000+int64(i%7), float64(i*k))
				require.NoError(t, err)
			}
			require.NoError(t, app.Commit())
		}
		return readAll(t, db, 0, scrapes*15_000)
	}
	inOrder, shuffled := read(false), read(true)
	require.Len(t, inOrder, nSeries)
	require.Len(t, inOrder[lss[5].String()], scrapes)
	require.Equal(t, inOrder, shuffled)
}

func TestStripeSize(t *testing.T) {
	require.Equal(t, uintptr(128), unsafe.Sizeof(stripe{}), "a stripe fills two cache lines")
}

func TestMemSeriesSize(t *testing.T) {
	// One per series: its size class is most of a series' heap.
	require.LessOrEqual(t, unsafe.Sizeof(memSeries{}), uintptr(160))
}
