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
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	rollupCrashDirEnv   = "TSDB_ROLLUP_CRASH_DIR"
	rollupCrashRoundEnv = "TSDB_ROLLUP_CRASH_ROUND"
	rollupCrashSeries   = 50
	rollupCrashStep     = 60_000
)

// rollupCrashValue is the deterministic value of series j at t: a counter
// that resets now and then.
func rollupCrashValue(j int, t int64) float64 {
	n := t / rollupCrashStep
	return float64((n*int64(j+1))%977) + float64(j)/8
}

// rollupCrashChild appends an hour of samples per loop, acknowledging
// each commit, and downsamples after each hour, until killed.
func rollupCrashChild(dir string, round int64) error {
	ctx := context.Background()
	db, err := Open(dir, nil)
	if err != nil {
		return err
	}
	refs := make([]SeriesRef, rollupCrashSeries)
	t := round * 10 * 86_400_000
	for {
		for range 60 {
			t += rollupCrashStep
			app := db.Appender(ctx)
			for j := range rollupCrashSeries {
				ls := FromStrings(MetricName, "rc", "s", strconv.Itoa(j))
				if refs[j], err = app.Append(refs[j], ls, t, rollupCrashValue(j, t)); err != nil {
					return err
				}
			}
			if err := app.Commit(); err != nil {
				return err
			}
			fmt.Printf("ack %d\n", t)
		}
		if _, err := db.Downsample(ctx, t); err != nil {
			return err
		}
		fmt.Println("downsampled")
	}
}

func TestRollupCrashKill9(t *testing.T) {
	if dir := os.Getenv(rollupCrashDirEnv); dir != "" {
		round, _ := strconv.ParseInt(os.Getenv(rollupCrashRoundEnv), 10, 64)
		if err := rollupCrashChild(dir, round); err != nil {
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
	passes := 0
	for round := int64(1); round <= 4; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRollupCrashKill9$")
		cmd.Env = append(os.Environ(), rollupCrashDirEnv+"="+dir, rollupCrashRoundEnv+"="+strconv.FormatInt(round, 10))
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
		// Kill after the first pass, at a random moment.
		var pending []string
		for l := range lines {
			pending = append(pending, l)
			if l == "downsampled" || strings.HasPrefix(l, "error") {
				break
			}
		}
		time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		for l := range lines {
			pending = append(pending, l)
		}
		_ = cmd.Wait()
		for _, l := range pending {
			require.False(t, strings.HasPrefix(l, "error"), "child failed: %s", l)
			if ts, ok := strings.CutPrefix(l, "ack "); ok {
				v, err := strconv.ParseInt(ts, 10, 64)
				require.NoError(t, err)
				acked[v] = true
			} else if l == "downsampled" {
				passes++
			}
		}
	}
	require.Positive(t, passes)

	db, err := Open(dir, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	check := func(when string) {
		q, err := db.Querier(math.MinInt64, math.MaxInt64)
		require.NoError(t, err)
		defer q.Close()
		for _, res := range rollupResolutions {
			rs := q.SelectRollups(context.Background(), res, AllRollupFields, mustMatcher(t, MatchEqual, MetricName, "rc"))
			var it *RollupIterator
			var raw Iterator
			n := 0
			for rs.Next() {
				n++
				s := rs.At()
				var samples []rollupSample
				raw = s.Raw().Iterator(raw)
				for raw.Next() == ValFloat {
					ts, v := raw.At()
					samples = append(samples, rollupSample{ts, v})
				}
				require.NoError(t, raw.Err())
				it = s.Iterator(it)
				var got []Rollup
				for it.Next() {
					got = append(got, *it.At())
				}
				require.NoError(t, it.Err())
				require.Greater(t, it.Complete(), int64(math.MinInt64), "%s: series rolled up", when)
				requireSameRollups(t, refRollups(samples, res.Millis(), math.MinInt64, it.Complete()), got,
					fmt.Sprintf("%s: %s %v", when, s.Labels(), res))
			}
			require.NoError(t, rs.Err())
			require.Equal(t, rollupCrashSeries, n)
		}
	}
	check("after the crashes")
	// Every acknowledged commit survived.
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	present := map[int64]int{}
	ss := q.Select(context.Background(), true, mustMatcher(t, MatchEqual, MetricName, "rc"))
	var it Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		for it.Next() == ValFloat {
			ts, _ := it.At()
			present[ts]++
		}
	}
	require.NoError(t, ss.Err())
	require.NoError(t, q.Close())
	for ts := range acked {
		require.Equal(t, rollupCrashSeries, present[ts], "acknowledged commit %d lost", ts)
	}
	// A pass after the crashes finishes the job and leaves it consistent.
	_, err = db.Downsample(context.Background(), math.MaxInt64)
	require.NoError(t, err)
	check("after a final pass")
	t.Logf("%d commits acknowledged, %d passes finished before a kill", len(acked), passes)
}
