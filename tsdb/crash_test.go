package tsdb

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/internal/keys"
)

const (
	crashDirEnv   = "TSDB_CRASH_DIR"
	crashRoundEnv = "TSDB_CRASH_ROUND"
	crashSeries   = 10
)

var crashOpts = &Options{ChunkSamples: 10, MaxWALLag: 20}

// crashStep is the scrape interval of the crash tests' children: the plain
// one scrapes every second; the compacting one every minute, so that it
// closes a chunk window every 120 batches.
func crashStep(compact bool) int64 {
	if compact {
		return 60_000
	}
	return 1000
}

// crashJitter moves batch i's timestamp by up to ±25 ms, as scrapes are, so
// that compacted windows share timestamp columns.
func crashJitter(i int64) int64 { return i*7919%51 - 25 }

// crashBatch returns the batch number of a child's timestamp.
func crashBatch(ts, step int64) int64 { return (ts + step/2) % crashRoundSpan / step }

// crashRoundSpan keeps the rounds' timestamps apart.
const crashRoundSpan = 10_000_000_000

// crashChild appends batches until killed, printing each acknowledged one.
// With compact it also runs CompactChunks passes in a loop, up to a window
// behind the newest acknowledged batch.
func crashChild(dir string, round int64, compact bool) error {
	db, err := Open(dir, crashOpts)
	if err != nil {
		return err
	}
	step := crashStep(compact)
	var newest atomic.Int64
	newest.Store(math.MinInt64)
	errc := make(chan error, 1)
	if compact {
		go func() {
			for {
				if b := newest.Load(); b != math.MinInt64 {
					if _, err := db.CompactChunks(context.Background(), b-chunkRange/2); err != nil {
						errc <- err
						return
					}
				}
			}
		}()
	}
	refs := make([]SeriesRef, crashSeries)
	for i := int64(0); ; i++ {
		select {
		case err := <-errc:
			return err
		default:
		}
		app := db.Appender(context.Background())
		ts := round*crashRoundSpan + i*step + crashJitter(i)
		for j := range crashSeries {
			refs[j], err = app.Append(refs[j], FromStrings(MetricName, "crash", "s", strconv.Itoa(j)), ts, float64(i))
			if err != nil {
				return err
			}
		}
		if err := app.Commit(); err != nil {
			return err
		}
		newest.Store(ts)
		fmt.Printf("ack %d\n", ts)
	}
}

// storedSamples counts the samples of every sealed chunk by timestamp.
func storedSamples(t *testing.T, db *DB) map[int64]int {
	lo := keys.AppendPrefix(nil, keys.StoreMetrics, keys.MetricChunk)
	it, err := db.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	require.NoError(t, err)
	defer it.Close()
	out := map[int64]int{}
	var fit encoding.FloatIterator
	for it.First(); it.Valid(); it.Next() {
		if v := it.Value(); isTimesRef(v) {
			for _, ts := range sharedTimes(t, db, it.Key(), v) {
				out[ts]++
			}
			continue
		}
		require.NoError(t, fit.Reset(it.Value()))
		for fit.Next() {
			ts, _ := fit.At()
			out[ts]++
		}
		require.NoError(t, fit.Err())
	}
	return out
}

// TestCrashKill9 kills a writer at random moments over several rounds on
// one directory and checks that every acknowledged batch is there, whole.
func TestCrashKill9(t *testing.T) { crashTest(t, "TestCrashKill9", false) }

// TestCrashKill9Compact does the same while CompactChunks passes run
// beside the writer: a crash in the middle of one loses and repeats
// nothing.
func TestCrashKill9Compact(t *testing.T) { crashTest(t, "TestCrashKill9Compact", true) }

func crashTest(t *testing.T, name string, compact bool) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		round, _ := strconv.ParseInt(os.Getenv(crashRoundEnv), 10, 64)
		if err := crashChild(dir, round, compact); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	acked := map[int64]bool{}
	for round := int64(1); round <= 6; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.FormatInt(round, 10))
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lines := make(chan string, 1<<16)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Kill at a random moment after the child is up and acknowledging.
		first, ok := <-lines
		require.True(t, ok, "child exited before acknowledging")
		time.Sleep(time.Duration(100+rand.IntN(900)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		n := 0
		pending := []string{first}
		for l := range lines {
			pending = append(pending, l)
		}
		for _, l := range pending {
			if ts, ok := strings.CutPrefix(l, "ack "); ok {
				v, err := strconv.ParseInt(ts, 10, 64)
				require.NoError(t, err)
				acked[v] = true
				n++
			} else {
				require.NotContains(t, l, "error", "child failed")
			}
		}
		_ = cmd.Wait()
		require.Positive(t, n, "round %d acknowledged nothing", round)
	}

	db, err := Open(dir, crashOpts)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	step := crashStep(compact)
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	present := map[int64]int{}
	ss := q.Select(context.Background(), true, mustMatcher(t, MatchEqual, MetricName, "crash"))
	var it Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		for it.Next() == ValFloat {
			ts, v := it.At()
			require.Equal(t, float64(crashBatch(ts, step)), v)
			present[ts]++
		}
		require.NoError(t, it.Err())
	}
	require.NoError(t, ss.Err())
	for ts := range acked {
		require.Equal(t, crashSeries, present[ts], "acknowledged batch %d lost", ts)
	}
	for ts, n := range present {
		require.Equal(t, crashSeries, n, "batch %d half present", ts)
	}
	if compact {
		all, compacted := chunkKeys(t, db)
		t.Logf("%d chunk keys, %d compacted", all, compacted)
		require.Positive(t, compacted, "the passes compacted windows")
		refs, _, _ := storedChunks(t, db)
		require.Positive(t, refs, "compacted windows share timestamp columns")
		// The reader drops a repeated timestamp, so count the stored
		// samples themselves: none may be in two chunks.
		stored := storedSamples(t, db)
		for ts, n := range stored {
			require.LessOrEqual(t, n, crashSeries, "batch %d stored twice", ts)
		}
	}
	t.Logf("%d batches acknowledged, %d present", len(acked), len(present))
}
