package tsdb

import (
	"errors"
	"runtime"
)

// A commit's samples go into the heads on two goroutines at once when the
// batch is large (a scrape of thousands of series) and more than one CPU
// can run Go code: the committing goroutine takes the series of even
// stripes and a helper goroutine, one per DB, those of odd stripes. Each
// appends to its series' chunks, notes the samples and seals the heads
// that are full, with its own buffers and its own Pebble seal batches.
// Every piece of per-series state is touched by the series' owner alone
// (the stripe decides, see pendingSample.part), and the committer holds
// commitMu throughout, so nothing else changes a series meanwhile; the
// stripe locks still keep readers out of a head being changed.

// parallelMinSamples is the smallest commit split over two goroutines;
// below it the hand-off costs more than it saves.
const parallelMinSamples = 1024

// applyHelper is the second goroutine of large commits.
type applyHelper struct {
	jobs   chan applyJob
	done   chan error
	sealer sealScratch
	toSeal []*memSeries
}

// applyJob is one commit's batch as the helper sees it.
type applyJob struct {
	ps     []pendingSample
	seq, g uint64
}

// startHelper starts the helper goroutine when more than one CPU can run
// Go code. Close stops it.
func (db *DB) startHelper() {
	if runtime.GOMAXPROCS(0) < 2 {
		return
	}
	h := &applyHelper{jobs: make(chan applyJob), done: make(chan error)}
	db.helper = h
	go db.runHelper(h)
}

// stopHelper ends the helper goroutine. Callers hold commitMu.
func (db *DB) stopHelper() {
	if db.helper != nil {
		close(db.helper.jobs)
		db.helper = nil
	}
}

func (db *DB) runHelper(h *applyHelper) {
	for job := range h.jobs {
		var n int
		h.toSeal, n = db.applyRuns(job.ps, job.seq, job.g, 1, h.toSeal[:0])
		db.samples.Add(uint64(n))
		err := db.sealWith(&h.sealer, h.toSeal, false)
		clear(h.toSeal) // the scratch keeps no series alive
		h.done <- err
	}
}

// applyAndSeal adds a commit's validated samples to their heads and seals
// the heads that need it. grouped says the batch comes in runs of one
// stripe (see applyRuns). Callers hold commitMu.
func (db *DB) applyAndSeal(ps []pendingSample, seq uint64, grouped bool) error {
	db.gen++
	g := db.gen
	var n int
	var helped chan error
	switch {
	case !grouped:
		db.toSeal, n = db.applySorted(ps, seq, g, db.toSeal[:0])
	case db.helper == nil || len(ps) < parallelMinSamples:
		db.toSeal, n = db.applyRuns(ps, seq, g, -1, db.toSeal[:0])
	default:
		db.helper.jobs <- applyJob{ps: ps, seq: seq, g: g}
		helped = db.helper.done
		db.toSeal, n = db.applyRuns(ps, seq, g, 0, db.toSeal[:0])
	}
	db.samples.Add(uint64(n))
	err := db.seal(db.toSeal, false)
	clear(db.toSeal) // the scratch keeps no series alive
	if helped != nil {
		err = errors.Join(err, <-helped)
	}
	return err
}
