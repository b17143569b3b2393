package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAgainstPrometheus runs a real Prometheus that scrapes the server's
// own /metrics every second and remote-writes what it scrapes to the
// server, then asks both the same range queries and compares the answers.
// It needs the prometheus binary on PATH (Debian: apt-get install -y
// prometheus) and is skipped without it.
func TestAgainstPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus binary not on PATH (Debian: apt-get install -y prometheus); skipping the comparison with a real Prometheus")
	}
	ts := newTestServer(t, nil)
	target := strings.TrimPrefix(ts.hs.URL, "http://")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	promAddr := ln.Addr().String()
	require.NoError(t, ln.Close())

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pillar
    static_configs:
      - targets: ['%s']
remote_write:
  - url: %s/api/v1/write
    queue_config:
      batch_send_deadline: 200ms
      min_backoff: 50ms
`, target, ts.hs.URL)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr, "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	defer func() { cancel(); _ = cmd.Wait() }()
	promURL := "http://" + promAddr

	// Wait until Prometheus has scraped for a while, then until everything
	// it scraped up to end has reached the server.
	deadline := time.Now().Add(40 * time.Second)
	for {
		if resp, err := http.Get(promURL + "/-/ready"); err == nil {
			resp.Body.Close()
			r := promQuery(t, promURL, `count_over_time(up[1h])`, time.Now(), time.Now(), time.Second)
			if n, _ := strconv.Atoi(onlyValue(r)); resp.StatusCode == http.StatusOK && n >= 13 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not scrape the server:\n%s", logs.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The compared range starts well after the first scrape: how rate and
	// increase extrapolate at the very start of a counter changed between
	// Prometheus 2 (the Debian binary) and 3 (whose semantics the engine
	// follows), and no series starts inside it.
	end := time.Now().Add(-time.Second).Truncate(time.Second)
	start := end.Add(-4 * time.Second)
	countQ := `count_over_time(up[1h])`
	deadline = time.Now().Add(10 * time.Second)
	for {
		want := promQuery(t, promURL, countQ, end, end, time.Second)
		got := promQuery(t, ts.hs.URL, countQ, end, end, time.Second)
		if len(want) > 0 && fmt.Sprint(want) == fmt.Sprint(got) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote-write did not catch up: prometheus %v, pillar %v\n%s", want, got, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	for _, q := range []string{
		`up`,
		`scrape_samples_scraped`,
		`pillar_server_samples_ingested_total`,
		`rate(pillar_server_samples_ingested_total[5s])`,
		// Routes the test itself calls get series that start inside the
		// range; only the two Prometheus drives from the start are compared.
		`sum by (route) (increase(pillar_server_request_duration_seconds_count{route=~"metrics|remote_write"}[5s]))`,
		`histogram_quantile(0.9, sum by (le) (rate(pillar_server_request_duration_seconds_bucket{route=~"metrics|remote_write"}[4s])))`,
		`max_over_time(pillar_metrics_series[10s])`,
	} {
		want := promQuery(t, promURL, q, start, end, time.Second)
		got := promQuery(t, ts.hs.URL, q, start, end, time.Second)
		require.NotEmpty(t, want, q)
		require.Equal(t, keysOf(want), keysOf(got), q)
		for k, wv := range want {
			gv := got[k]
			require.Equal(t, len(wv), len(gv), "%s %s", q, k)
			for i := range wv {
				require.Equal(t, wv[i][0], gv[i][0], "%s %s timestamps", q, k)
				w, _ := strconv.ParseFloat(wv[i][1], 64)
				g, _ := strconv.ParseFloat(gv[i][1], 64)
				if !(math.IsNaN(w) && math.IsNaN(g)) {
					require.InEpsilon(t, w+1e-300, g+1e-300, 1e-9, "%s %s at %s", q, k, wv[i][0])
				}
			}
		}
	}
}

// promQuery runs a range query and returns each series' points as
// [time, value] strings, keyed by its labels.
func promQuery(t *testing.T, base, q string, start, end time.Time, step time.Duration) map[string][][2]string {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query_range?" + url.Values{"query": {q},
		"start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)},
		"step": {strconv.Itoa(int(step.Seconds()))}}.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var r struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Values [][2]any
			}
		}
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	require.Equal(t, "success", r.Status, "%s on %s: %s", q, base, r.Error)
	out := map[string][][2]string{}
	for _, s := range r.Data.Result {
		keys := make([]string, 0, len(s.Metric))
		for k, v := range s.Metric {
			keys = append(keys, k+"="+v)
		}
		sort.Strings(keys)
		var pts [][2]string
		for _, v := range s.Values {
			pts = append(pts, [2]string{fmt.Sprint(v[0]), v[1].(string)})
		}
		out[strings.Join(keys, ",")] = pts
	}
	return out
}

// onlyValue returns the last value of the only series of r.
func onlyValue(r map[string][][2]string) string {
	for _, pts := range r {
		if len(pts) > 0 {
			return pts[len(pts)-1][1]
		}
	}
	return ""
}

func keysOf(m map[string][][2]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
