package loggen

import (
	"testing"
	"time"

	"github.com/pillar-db/pillar/internal/testutil"
	"github.com/stretchr/testify/require"
)

func TestAppendReplica(t *testing.T) {
	require.Equal(t, "blk_123 at 10.0.0.1", string(AppendReplica(nil, "blk_123 at 10.0.0.1", 0)))
	require.Equal(t, "blk_8042 at 7929.7919.7919.7920", string(AppendReplica(nil, "blk_123 at 10.0.0.1", 1)))
	long := "id 1234567890123456789012"
	got := string(AppendReplica(nil, long, 2))
	require.Len(t, got, len(long))
	require.Equal(t, "id 1234567890123456804850", got)
}

func TestDetectLevel(t *testing.T) {
	for line, want := range map[string]string{
		"081109 203615 148 INFO dfs.DataNode$PacketResponder: x":        "INFO",
		"[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv":     "ERROR",
		"03-17 16:13:38.811  1702  2395 D WindowManager: printFreezing": "DEBUG",
		"2016-09-28 04:30:30, Info                  CBS    Loaded":      "INFO",
		"nothing here INFOrmation":                                      "",
	} {
		require.Equal(t, want, DetectLevel(line), line)
	}
}

func TestGenerator(t *testing.T) {
	sets, err := Load(testutil.DataDir(t, "loghub"))
	require.NoError(t, err)
	require.Len(t, sets, 16)
	for _, d := range sets {
		require.Len(t, d.Lines, 2000, d.Name)
		for _, l := range d.Lines {
			require.NotContains(t, l, "\r")
		}
	}
	start := time.Unix(1_700_000_000, 0)
	g := NewGenerator(sets, 2, start, time.Hour)
	require.Equal(t, 64000, g.Total())
	var l Line
	n, prev := 0, int64(0)
	for g.Next(&l) {
		require.GreaterOrEqual(t, l.Time, prev)
		require.Less(t, l.Time, start.Add(time.Hour).UnixNano())
		prev = l.Time
		if n == 32000 {
			require.Equal(t, 1, l.Replica)
			require.Equal(t, string(AppendReplica(nil, sets[0].Lines[0], 1)), string(l.Text))
		}
		n++
	}
	require.Equal(t, 64000, n)
}
