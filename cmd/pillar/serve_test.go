package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar"
)

// syncBuffer is a bytes.Buffer safe to write from the serving goroutine
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var servingRE = regexp.MustCompile(`on (https?://[0-9.:]+)`)

// startServe runs `pillar serve` on a free loopback port and returns its
// base URL, a stop function and the command's result channel.
func startServe(t *testing.T, args ...string) (string, context.CancelFunc, <-chan error, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), &out, io.Discard)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := servingRE.FindStringSubmatch(out.String()); m != nil {
			return m[1], cancel, done, &out
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve exited early: %v (%s)", err, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	t.Fatalf("serve did not start: %s", out.String())
	return "", nil, nil, nil
}

func TestServeCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	base, stop, done, out := startServe(t, "--dir", dir)

	resp, err := http.Get(base + "/-/ready")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	body := "# TYPE jobs counter\njobs{q=\"a\"} 3 1767225600000\n"
	resp, err = http.Post(base+"/api/v1/import/prometheus", "text/plain", strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)

	stop()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	require.Contains(t, out.String(), "stopped")

	// The store was closed cleanly and holds the sample.
	db, err := pillar.Open(dir, nil)
	require.NoError(t, err)
	defer db.Close()
	require.Equal(t, uint64(1), db.Metrics().Stats().Series)
}

func TestServeAuthToken(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("s3cret\n"), 0o600))
	base, stop, done, _ := startServe(t, "--dir", t.TempDir(), "--auth-token-file", tok)
	defer func() { stop(); <-done }()

	resp, err := http.Get(base + "/api/v1/labels")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/labels", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestServeFlagErrors(t *testing.T) {
	require.ErrorIs(t, run(t.Context(), []string{"serve"}, io.Discard, io.Discard), errNoDir)
	err := run(t.Context(), []string{"serve", "--dir", t.TempDir(), "--tls-cert", "x"}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "--tls-key")
	err = run(t.Context(), []string{"serve", "--dir", t.TempDir(), "--auth-token-file", filepath.Join(t.TempDir(), "none")}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "auth token")
}
