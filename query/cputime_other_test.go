//go:build !unix

package query

import "time"

// processCPU is not measured here; CPU figures read zero.
func processCPU() time.Duration { return 0 }
