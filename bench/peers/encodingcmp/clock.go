package main

import "time"

// clock measures elapsed time in nanoseconds between start and stop.
type clock interface {
	start()
	now() int64
	stop()
}

// wallClock is elapsed real time.
type wallClock struct{}

func (wallClock) start()     {}
func (wallClock) stop()      {}
func (wallClock) now() int64 { return time.Now().UnixNano() }
