package kv

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

func TestOpenWriteReopen(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", sync), func(t *testing.T) {
			dir := t.TempDir()
			db, err := Open(dir, Options{SyncWrites: sync})
			require.NoError(t, err)
			require.NoError(t, db.Set([]byte("k"), []byte("v"), WriteOptions))
			require.NoError(t, db.Close())
			db, err = Open(dir, Options{SyncWrites: sync})
			require.NoError(t, err)
			v, closer, err := db.Get([]byte("k"))
			require.NoError(t, err)
			require.Equal(t, "v", string(v))
			require.NoError(t, closer.Close())
			require.NoError(t, db.Close())
		})
	}
}

// TestSpentLogsDeleted checks that flushed log files are deleted rather
// than kept for reuse, and that deleting them loses nothing.
func TestSpentLogsDeleted(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	require.NoError(t, err)
	val := make([]byte, 64<<10)
	for i := range 6 {
		for j := range 16 {
			binary.LittleEndian.PutUint64(val, uint64(i*16+j))
			require.NoError(t, db.Set([]byte(fmt.Sprintf("k%03d", i*16+j)), val, WriteOptions))
		}
		require.NoError(t, db.Flush())
	}
	require.NoError(t, db.Close())
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	require.NoError(t, err)
	require.LessOrEqual(t, len(logs), 1, "spent logs left: %v", logs)

	db, err = Open(dir, Options{})
	require.NoError(t, err)
	defer db.Close()
	for k := range 6 * 16 {
		v, closer, err := db.Get([]byte(fmt.Sprintf("k%03d", k)))
		require.NoError(t, err)
		require.Equal(t, uint64(k), binary.LittleEndian.Uint64(v))
		require.NoError(t, closer.Close())
	}
}

func TestOpenMemFS(t *testing.T) {
	db, err := Open("", Options{FS: vfs.NewMem()})
	require.NoError(t, err)
	require.NoError(t, db.Set([]byte("a"), []byte("b"), WriteOptions))
	require.NoError(t, db.Close())
}

func TestOpenFailsOnFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, []byte("x"), 0o644))
	_, err := Open(f, Options{})
	require.Error(t, err)
}

func TestWALSyncIsNoOpOnlyForLogs(t *testing.T) {
	require.True(t, isWAL("000002.log"))
	require.True(t, isWAL("000002-001.log"))
	require.False(t, isWAL("MANIFEST-000001"))
	require.False(t, isWAL("000005.sst"))
}

const crashChildEnv = "PILLAR_KV_CRASH_CHILD"

// TestCrashChild is the child half of TestKillNineLosesNothing: it commits
// numbered keys forever, printing each number once its commit returned.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestKillNineLosesNothing")
	}
	db, err := Open(dir, Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	start, _ := strconv.ParseUint(os.Getenv(crashChildEnv+"_START"), 10, 64)
	w := bufio.NewWriter(os.Stdout)
	val := make([]byte, 100)
	for i := start; ; i++ {
		b := db.NewBatch()
		k := binary.BigEndian.AppendUint64([]byte("k"), i)
		_ = b.Set(k, val, nil)
		if err := b.Commit(WriteOptions); err != nil {
			fmt.Println("commit:", err)
			os.Exit(2)
		}
		fmt.Fprintln(w, i)
		w.Flush()
	}
}

// TestKillNineLosesNothing kills a writer at random moments and checks that
// every write it acknowledged is there after reopening, with the default
// (no fsync) options.
func TestKillNineLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(42, 7))
	var next uint64
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s_START=%d", crashChildEnv, next))
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		// The reader keeps only the last acknowledged number: keys are
		// committed in order, so it implies every earlier one.
		var last uint64
		var count int
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if n, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
					last, count = n, count+1
				}
			}
		}()
		time.Sleep(time.Duration(150+r.IntN(400)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		<-done
		_ = cmd.Wait()
		require.NotZero(t, count, "round %d: child acknowledged nothing", round)

		db, err := Open(dir, Options{})
		require.NoError(t, err, "round %d: store must reopen after kill -9", round)
		// Keys are consecutive numbers: every acknowledged one is there
		// exactly when the keys up to last number last+1.
		it, err := db.NewIter(&pebble.IterOptions{
			LowerBound: []byte("k"),
			UpperBound: binary.BigEndian.AppendUint64([]byte("k"), last+1),
		})
		require.NoError(t, err)
		var present uint64
		for it.First(); it.Valid(); it.Next() {
			present++
		}
		require.NoError(t, it.Close())
		require.Equal(t, last+1, present, "round %d: acknowledged keys lost", round)
		require.NoError(t, db.Close())
		next = last + 1
	}
}
