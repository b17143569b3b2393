//go:build !linux

package main

// newThreadClock reports that no thread CPU clock is available here.
func newThreadClock() (clock, bool) { return nil, false }
