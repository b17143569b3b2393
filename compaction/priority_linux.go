package compaction

import (
	"runtime"
	"syscall"
)

// backgroundNice is the niceness background jobs run at: the lowest
// priority, so the kernel gives ingestion and queries any CPU they contend
// for and maintenance the rest.
const backgroundNice = 19

// runLowPriority runs f on a thread of its own at backgroundNice and waits
// for it. Linux schedules threads, not processes, so lowering this
// thread's priority leaves the rest of the process alone; the thread is
// never unlocked, so it exits with the goroutine instead of returning to
// the runtime's pool with its lowered priority (which an unprivileged
// process could not raise again).
func runLowPriority(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// A failure leaves the thread at normal priority: slower
		// ingestion under contention, nothing worse.
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), backgroundNice)
		f()
	}()
	<-done
}
