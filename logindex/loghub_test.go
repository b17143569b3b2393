package logindex

import (
	"testing"
	"time"

	"github.com/pillar-db/pillar/internal/testutil"
	"github.com/pillar-db/pillar/logindex/loggen"
	"github.com/stretchr/testify/require"
)

// loghubRecords turns replicas of the loghub logs into records: the
// dataset is the service, the level found in the line the severity.
func loghubRecords(t testing.TB, replicas int, span time.Duration) []Record {
	sets, err := loggen.Load(testutil.DataDir(t, "loghub"))
	require.NoError(t, err)
	g := loggen.NewGenerator(sets, replicas, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), span)
	out := make([]Record, 0, g.Total())
	var l loggen.Line
	for g.Next(&l) {
		out = append(out, Record{
			Timestamp:    l.Time,
			SeverityText: l.Level,
			Body:         StringValue(string(l.Text)),
			Resource:     []Attribute{{ServiceAttr, StringValue(l.Dataset)}},
		})
	}
	return out
}

func TestDifferentialLoghub(t *testing.T) {
	recs := loghubRecords(t, 1, 10*time.Hour)
	require.Len(t, recs, 32000)
	runDifferential(t, recs, 50, &Options{FlushRecords: 9000, MaxScan: 20000})
}
