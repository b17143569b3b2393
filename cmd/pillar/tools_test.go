package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar"
	"github.com/pillar-db/pillar/bench/urlshortener"
)

var (
	smallStoreOnce sync.Once
	smallStoreDir  string
	smallStoreErr  error
)

// smallStore builds, once per test binary, a store holding ten minutes of
// the demo system with a slow window from minute 3 to minute 6.
func smallStore(t *testing.T) string {
	smallStoreOnce.Do(func() {
		smallStoreDir, smallStoreErr = os.MkdirTemp("", "pillar-tools-")
		if smallStoreErr != nil {
			return
		}
		var db *pillar.DB
		if db, smallStoreErr = pillar.Open(smallStoreDir, nil); smallStoreErr != nil {
			return
		}
		cfg := urlshortener.DefaultConfig(demoStart)
		cfg.Duration, cfg.RatePerSecond, cfg.IncidentStart, cfg.IncidentLen = 10*time.Minute, 2, 3*time.Minute, 3*time.Minute
		_, smallStoreErr = urlshortener.Generate(context.Background(), db, cfg)
		if err := db.Close(); smallStoreErr == nil {
			smallStoreErr = err
		}
	})
	require.NoError(t, smallStoreErr)
	return smallStoreDir
}

func runTool(t *testing.T, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := run(t.Context(), args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestQueryTool(t *testing.T) {
	dir := smallStore(t)
	out, err := runTool(t, "query", "--dir", dir, "--time", "2026-11-22T09:08:00Z", `sum by (service) (rate(http_server_requests_total[5m]))`)
	require.NoError(t, err)
	require.Regexp(t, regexp.MustCompile(`\{service="redirect"\} => [0-9.]+ @ 2026-11-22T09:08:00Z`), out)
	require.Equal(t, 5, strings.Count(out, "=>"), out)

	out, err = runTool(t, "query", "--dir", dir, "--start", "2026-11-22T09:05:00Z", "--end", "2026-11-22T09:07:00Z", "--step", "1m",
		`sum(http_server_requests_total{service="edge"})`)
	require.NoError(t, err)
	require.Equal(t, 3, strings.Count(out, "2026-11-22T09:0"), out)

	_, err = runTool(t, "query", "--dir", dir, `sum(rate(x[5m]`)
	require.ErrorContains(t, err, "parse error")
	_, err = runTool(t, "query", "--dir", dir, "--start", "2026-11-22T09:05:00Z", "up")
	require.ErrorContains(t, err, "both --start and --end")
	_, err = runTool(t, "query", `up`)
	require.ErrorIs(t, err, errNoDir)
	_, err = runTool(t, "query", "--dir", t.TempDir()+"/missing", `up`)
	require.ErrorContains(t, err, "no store")
}

func TestTracesAndTraceTools(t *testing.T) {
	dir := smallStore(t)
	out, err := runTool(t, "traces", "--dir", dir, "--service", "db", "--attr", "db.plan=Seq Scan on links", "--min-duration", "1s", "--limit", "5")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 6, out) // header and five traces
	id := strings.Fields(lines[1])[0]

	out, err = runTool(t, "trace", "--dir", dir, id)
	require.NoError(t, err)
	require.Contains(t, out, "db seq scan links")
	require.Contains(t, out, "most time on the critical path: db seq scan links")

	_, err = runTool(t, "trace", "--dir", dir, "zz")
	require.Error(t, err)
	_, err = runTool(t, "trace", "--dir", dir, strings.Repeat("ab", 16))
	require.ErrorContains(t, err, "not found")
	_, err = runTool(t, "traces", "--dir", dir, "--attr", "novalue")
	require.ErrorContains(t, err, "key=value")
}

func TestLogsTool(t *testing.T) {
	dir := smallStore(t)
	out, err := runTool(t, "logs", "--dir", dir, "--limit", "4", `level:warn AND "slow query"`)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	for i, l := range lines {
		require.Contains(t, l, `"msg":"slow query"`)
		if i > 0 {
			require.GreaterOrEqual(t, lines[i-1][:23], l[:23], "newest first")
		}
	}
	_, err = runTool(t, "logs", "--dir", dir, `level:warn AND (`)
	require.Error(t, err)
}

func TestInspectTool(t *testing.T) {
	dir := smallStore(t)
	out, err := runTool(t, "inspect", "--dir", dir)
	require.NoError(t, err)
	require.Regexp(t, `metrics +[0-9]+ series, [0-9,]+ samples`, out)
	require.Contains(t, out, "5 services: analytics, cache, db, edge, redirect")
	require.Regexp(t, `logs +[0-9,]+ records in 1 partitions`, out)
}

func TestParseTime(t *testing.T) {
	got, err := parseTime("2026-11-22T09:00:00Z")
	require.NoError(t, err)
	require.Equal(t, demoStart, got)
	got, err = parseTime("1795338000.5")
	require.NoError(t, err)
	require.Equal(t, int64(1795338000500), got.UnixMilli())
	_, err = parseTime("yesterday")
	require.Error(t, err)
}

func TestBenchTool(t *testing.T) {
	out, err := runTool(t, "bench", "--quiet", "--json", "--scale", "0.01", "--seconds", "0.01", "--workload", "tsbs")
	require.NoError(t, err)
	require.Contains(t, out, `"workload": "tsbs"`)
	require.Contains(t, out, `"unit": "samples/s"`)
	_, err = runTool(t, "bench", "--workload", "nope")
	require.ErrorContains(t, err, "unknown workload")
}
