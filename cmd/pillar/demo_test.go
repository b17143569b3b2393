package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/bench/urlshortener"
)

// The demo on a short window finds the injected slow query: the alert
// fires inside the incident, the slowest trace's time goes to the db's
// SELECT, and that trace's logs are found.
func TestDemoFindsTheSlowQuery(t *testing.T) {
	cfg := urlshortener.DefaultConfig(demoStart)
	cfg.Duration, cfg.RatePerSecond = 20*time.Minute, 3
	cfg.IncidentStart, cfg.IncidentLen = 8*time.Minute, 5*time.Minute
	var out bytes.Buffer
	rep, err := runDemo(t.Context(), t.TempDir(), cfg, &out)
	require.NoError(t, err, out.String())

	incFrom, incTo := demoStart.Add(cfg.IncidentStart), demoStart.Add(cfg.IncidentStart+cfg.IncidentLen)
	require.False(t, rep.AlertFrom.IsZero(), "no alert:\n%s", out.String())
	require.False(t, rep.AlertFrom.Before(incFrom.Add(-time.Minute)), "alert starts at %v, before the incident", rep.AlertFrom)
	require.False(t, rep.AlertTo.After(incTo.Add(time.Minute)), "alert ends at %v, after the incident", rep.AlertTo)
	require.True(t, strings.HasPrefix(rep.Culprit, "db · "), "culprit %q", rep.Culprit)
	require.Equal(t, urlshortener.SlowStatement, rep.CulpritStatement)
	require.GreaterOrEqual(t, rep.TraceLogs, 3, "the slow trace's db, redirect and analytics lines")
	for _, s := range []string{"ALERT p99 > 500ms", "Slowest redirect traces", "slow query", "error ratio", "Query time"} {
		require.Contains(t, out.String(), s)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		require.LessOrEqual(t, len([]rune(line)), 100, "line wider than 100 columns: %q", line)
	}
}

func TestDemoReusesExistingStore(t *testing.T) {
	cfg := urlshortener.DefaultConfig(demoStart)
	cfg.Duration, cfg.RatePerSecond = 12*time.Minute, 2
	cfg.IncidentStart, cfg.IncidentLen = 4*time.Minute, 4*time.Minute
	dir := t.TempDir()
	var first, second bytes.Buffer
	rep1, err := runDemo(t.Context(), dir, cfg, &first)
	require.NoError(t, err)
	rep2, err := runDemo(t.Context(), dir, cfg, &second)
	require.NoError(t, err)
	require.Contains(t, second.String(), "already holds")
	require.Equal(t, rep1.SlowestTrace, rep2.SlowestTrace)
}

func TestDemoRejectsIncidentOutsideWindow(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"demo", "--duration", "10m", "--incident-start", "9m"}, &out, &out)
	require.ErrorContains(t, err, "incident window")
}

func TestUsageAndUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"--help"}, &out, &out))
	require.Contains(t, out.String(), "demo")
	require.Error(t, run(t.Context(), []string{"nope"}, &out, &out))
}
