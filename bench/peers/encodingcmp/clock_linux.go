package main

import (
	"runtime"
	"syscall"
	"unsafe"
)

// clockThreadCPUTime is CLOCK_THREAD_CPUTIME_ID.
const clockThreadCPUTime = 3

// threadClock reads the CPU time of the OS thread the measuring goroutine
// is locked to, in nanoseconds. On a machine shared with other work,
// wall-clock time includes whatever time the thread spent waiting for a
// core; CPU time does not, so ratios between codecs stay meaningful under
// load. (Garbage collection done on other threads is not counted, which
// favours the side that allocates: Prometheus' appender allocates a chunk
// per 120 samples, Pillar's reuses its buffers.)
type threadClock struct{}

func (threadClock) start() { runtime.LockOSThread() }
func (threadClock) stop()  { runtime.UnlockOSThread() }

func (threadClock) now() int64 {
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return 0
	}
	return ts.Nano()
}

// newThreadClock returns the thread CPU clock if the kernel provides it.
func newThreadClock() (clock, bool) {
	c := threadClock{}
	return c, c.now() != 0
}
