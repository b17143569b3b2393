//go:build race

package tsdb

// raceEnabled: the race detector is on. Pebble then checks invariants,
// allocating as it goes, so allocation counts mean nothing.
const raceEnabled = true
