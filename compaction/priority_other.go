//go:build !linux

package compaction

// runLowPriority runs f. Outside Linux, threads' priorities are not
// lowered: background jobs run at the process's priority.
func runLowPriority(f func()) { f() }
