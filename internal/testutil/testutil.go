// Package testutil holds helpers shared by Pillar's tests.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// DataDir returns the directory of the shared real-world data sets (loghub,
// NAB, Jaeger fixtures) joined with rel, or skips the test when it is not
// there: a plain clone of Pillar does not have it. The data lives in a
// `shared/data` folder beside the repository; PILLAR_DATA overrides it.
func DataDir(tb testing.TB, rel string) string {
	tb.Helper()
	if d := os.Getenv("PILLAR_DATA"); d != "" {
		p := filepath.Join(d, rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		tb.Skipf("PILLAR_DATA=%s has no %s", d, rel)
	}
	dir, err := os.Getwd()
	if err != nil {
		tb.Skipf("no working directory: %v", err)
	}
	for {
		p := filepath.Join(dir, "..", "shared", "data", rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skipf("shared data set %q not found beside the repository; skipping", rel)
		}
		dir = parent
	}
}
