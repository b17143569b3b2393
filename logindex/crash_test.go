package logindex

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const crashChildEnv = "LOGINDEX_CRASH_CHILD_DIR"

// TestCrashChild is the child of TestKill9: it writes batches into the
// directory named by the environment and prints each batch's first
// sequence number once Write has acknowledged it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestKill9")
	}
	start, _ := strconv.Atoi(os.Getenv(crashChildEnv + "_START"))
	ix, err := Open(dir, &Options{FlushRecords: 700})
	if err != nil {
		fmt.Println("open error:", err)
		os.Exit(3)
	}
	for seq := start; ; seq += 10 {
		recs := make([]Record, 10)
		for i := range recs {
			recs[i] = rec(t0+int64(seq+i)*int64(time.Second), "crash", "INFO", fmt.Sprintf("acked seq%d payload", seq+i))
		}
		if err := ix.Write(context.Background(), recs); err != nil {
			fmt.Println("write error:", err)
			os.Exit(3)
		}
		fmt.Printf("ack %d\n", seq)
		// Pace the loop so a round acknowledges hundreds of batches,
		// not hundreds of thousands the parent would have to check.
		time.Sleep(time.Millisecond)
	}
}

// TestKill9 kills a writing child with SIGKILL at random moments, several
// rounds on the same directory, and checks after each that every
// acknowledged record is found and the index opens.
func TestKill9(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("child")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(42, 9))
	next := 0
	var acked []int
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s_START=%d", crashChildEnv, next))
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		sc := bufio.NewScanner(out)
		deadline := time.After(time.Duration(200+r.IntN(600)) * time.Millisecond)
		lines := make(chan string)
		go func() {
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				if s, found := strings.CutPrefix(l, "ack "); found {
					seq, err := strconv.Atoi(s)
					require.NoError(t, err)
					acked = append(acked, seq)
					next = seq + 10
				} else if strings.Contains(l, "error") {
					t.Fatalf("child: %s", l)
				}
			case <-deadline:
				require.NoError(t, cmd.Process.Kill())
				for l := range lines {
					if s, found := strings.CutPrefix(l, "ack "); found {
						seq, _ := strconv.Atoi(s)
						acked = append(acked, seq)
						next = seq + 10
					}
				}
				break read
			}
		}
		_ = cmd.Wait()
		// Ordinals of unacknowledged batches may exist; start past them.
		next += 1000

		ix, err := Open(dir, nil)
		require.NoError(t, err, "round %d: a crash never leaves a store that fails to open", round)
		hits, err := ix.Search(t.Context(), "acked AND payload", 0, 1<<62, 1<<30)
		require.NoError(t, err)
		found := map[string]bool{}
		for i := range hits {
			found[string(hits[i].BodyText())] = true
		}
		for _, seq := range acked {
			for i := 0; i < 10; i++ {
				body := fmt.Sprintf("acked seq%d payload", seq+i)
				require.True(t, found[body], "round %d: acknowledged %q lost", round, body)
			}
		}
		// A sample through the term index, past the rebuilt postings.
		for _, seq := range acked[max(0, len(acked)-20):] {
			hits, err := ix.Search(t.Context(), fmt.Sprintf("seq%d", seq), 0, 1<<62, 2)
			require.NoError(t, err)
			require.Len(t, hits, 1, "round %d: seq%d not found by its token", round, seq)
		}
		require.NoError(t, ix.Close())
		t.Logf("round %d: %d acknowledged batches all found", round, len(acked))
	}
	require.NotEmpty(t, acked)
}
