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
	crashDirEnv   = "TSDB_CRASH_DIR"
	crashRoundEnv = "TSDB_CRASH_ROUND"
	crashSeries   = 10
)

var crashOpts = &Options{ChunkSamples: 10, MaxWALLag: 20}

// crashChild appends batches until killed, printing each acknowledged one.
func crashChild(dir string, round int64) error {
	db, err := Open(dir, crashOpts)
	if err != nil {
		return err
	}
	refs := make([]SeriesRef, crashSeries)
	for i := int64(0); ; i++ {
		app := db.Appender(context.Background())
		ts := round*1_000_000_000 + i*1000
		for j := range crashSeries {
			refs[j], err = app.Append(refs[j], FromStrings(MetricName, "crash", "s", strconv.Itoa(j)), ts, float64(i))
			if err != nil {
				return err
			}
		}
		if err := app.Commit(); err != nil {
			return err
		}
		fmt.Printf("ack %d\n", ts)
	}
}

func TestCrashKill9(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		round, _ := strconv.ParseInt(os.Getenv(crashRoundEnv), 10, 64)
		if err := crashChild(dir, round); err != nil {
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
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill9$")
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
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	present := map[int64]int{}
	ss := q.Select(context.Background(), true, mustMatcher(t, MatchEqual, MetricName, "crash"))
	var it Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		for it.Next() == ValFloat {
			ts, v := it.At()
			require.Equal(t, float64(ts%1_000_000_000/1000), v)
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
	t.Logf("%d batches acknowledged, %d present", len(acked), len(present))
}
