//go:build race

package querycmp

// raceEnabled trims the differential test's evaluation windows under the
// race detector, which slows Prometheus' engine about fiftyfold.
const raceEnabled = true
