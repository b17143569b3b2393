package tracestore

import (
	"bufio"
	"context"
	"fmt"
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
	crashDirEnv   = "TRACESTORE_CRASH_DIR"
	crashRoundEnv = "TRACESTORE_CRASH_ROUND"
)

// crashChild writes spans in a loop and prints each acknowledged span as
// "<traceID> <spanID>" on stdout, until it is killed.
func crashChild(dir string, round int) error {
	st, err := Open(dir, nil)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	ctx := context.Background()
	batch := make([]Span, 0, 8)
	for i := 0; ; i++ {
		batch = batch[:0]
		// Each batch adds two spans to its own new trace and one to the
		// round's shared trace, so traces grow across writes.
		id := tid(uint64(round)<<32 | uint64(i+1))
		shared := tid(uint64(round)<<32 | 0xFFFFFFFF)
		for j := range 2 {
			batch = append(batch, Span{TraceID: id, SpanID: sid(uint64(j + 1)), Name: "op", StartTime: t0 + int64(i), EndTime: t0 + int64(i) + 100, Resource: res("crash")})
		}
		batch = append(batch, Span{TraceID: shared, SpanID: sid(uint64(i + 1)), Name: "shared", StartTime: t0 + int64(i), EndTime: t0 + int64(i) + 100, Resource: res("crash")})
		if err := st.Write(ctx, batch); err != nil {
			return err
		}
		for _, sp := range batch {
			fmt.Fprintf(out, "%s %s\n", sp.TraceID, sp.SpanID)
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
}

func TestCrashKill9KeepsAcknowledgedSpans(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		round, _ := strconv.Atoi(os.Getenv(crashRoundEnv))
		if err := crashChild(dir, round); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	acked := make(map[TraceID][]SpanID)
	total := 0
	for round := 1; round <= 5; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill9KeepsAcknowledgedSpans$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Let it write for a while (the first lines prove it is running),
		// then kill it mid-write.
		first, ok := <-lines
		require.True(t, ok, "child printed nothing: %s", stderr.String())
		got := []string{first}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		for l := range lines {
			got = append(got, l)
		}
		_ = cmd.Wait()
		for _, l := range got {
			f := strings.Fields(l)
			if len(f) != 2 {
				continue // a line cut by the kill was not fully acknowledged
			}
			id, err := ParseTraceID(f[0])
			require.NoError(t, err)
			sp, err := ParseSpanID(f[1])
			require.NoError(t, err)
			acked[id] = append(acked[id], sp)
			total++
		}
		// Reopen and check everything acknowledged so far, every round.
		st, err := Open(dir, nil)
		require.NoError(t, err, "a crash must never leave a store that fails to open")
		for id, want := range acked {
			tr, err := st.Trace(t.Context(), id)
			require.NoError(t, err, "round %d trace %s", round, id)
			have := make(map[SpanID]bool, len(tr.Spans))
			for _, s := range tr.Spans {
				have[s.SpanID] = true
			}
			for _, sp := range want {
				require.True(t, have[sp], "round %d: acknowledged span %s/%s lost", round, id, sp)
			}
		}
		found, err := st.Find(t.Context(), Query{Service: "crash", Operation: "shared", Limit: 1000})
		require.NoError(t, err)
		require.Len(t, found, round, "one shared trace per round is indexed")
		require.NoError(t, st.Close())
	}
	require.Greater(t, total, 5*3, "the children acknowledged writes")
	t.Logf("%d acknowledged spans in %d traces survived 5 kills", total, len(acked))
}
