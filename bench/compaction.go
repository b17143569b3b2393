package bench

import (
	"context"
	"fmt"
	"os"
	"runtime/metrics"
	"slices"
	"sync/atomic"
	"time"

	"github.com/pillar-db/pillar"
	"github.com/pillar-db/pillar/bench/metricgen"
	"github.com/pillar-db/pillar/compaction"
	"github.com/pillar-db/pillar/internal/keys"
	"github.com/pillar-db/pillar/logindex"
	"github.com/pillar-db/pillar/logindex/loggen"
	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tracestore/tracegen"
)

// compaction measures background maintenance: what it costs ingestion,
// what retention gives back on disk, and what sealing log partitions
// saves and gains.
func (r *runner) compaction(ctx context.Context, dir string) error {
	if err := r.compactionIngest(ctx, dir); err != nil {
		return err
	}
	return r.compactionRetention(ctx, dir)
}

// compactionIngest ingests the mixed metrics workload (3 h × scale) into
// a fresh pillar.DB with background maintenance off, at its default low
// CPU priority, and at normal priority, in turn, five times each, the
// same samples every time, and reports the median rates and their ratios.
// With maintenance on, passes run every 200 ms with one hour of retention
// against a clock that follows the data, so rollups, retention drops and
// sealing are due while the samples go in.
//
// What it measures: the peak rate of one writer committing as fast as it
// can while maintenance runs beside it, on a machine the writer and
// Pebble's own flushes already keep busy. The data arrives thousands of
// times faster than in real time (a 200 ms interval is about 45 minutes
// of data), so each pass finds far more work than a pass would in
// production, and whatever CPU maintenance takes during the run comes out
// of ingestion; the rate is wall time, so it moves with other load on the
// machine, and only ratios of alternating runs mean much. The CPU seconds
// per million samples count the maintenance that ran before Close too.
func (r *runner) compactionIngest(ctx context.Context, dir string) error {
	w := metricgen.Mix(1, 3*r.cfg.Scale, 1)
	// An ingest run lasts about a second, so other load on the machine
	// moves single runs by tens of percent: five rounds steady the medians.
	const rounds = 5
	modes := []struct {
		name string
		mode ingestMode
	}{{"maintenance off", maintOff}, {"maintenance every 200 ms, low priority (default)", maintLow}, {"maintenance every 200 ms, normal priority", maintNormal}}
	rates := make([][]float64, len(modes))
	cpus := make([][]float64, len(modes)) // Go CPU seconds per run
	passes := make([]uint64, len(modes))
	jobTime := make([]time.Duration, len(modes)) // jobs' run time while the samples went in
	for i := range rounds * len(modes) {
		m := i % len(modes)
		d := fmt.Sprintf("%s/ingest-%d", dir, i)
		r.progress(fmt.Sprintf("compaction: ingest %d/%d", i+1, rounds*len(modes)), 0.5*float64(i)/float64(rounds*len(modes)))
		// A fresh generator per run: it is stateful (counters grow, the
		// jitter and values come from one random stream), so every run,
		// whatever its mode, writes the very same samples.
		w := metricgen.Mix(1, 3*r.cfg.Scale, 1)
		cpu0 := goCPUSeconds()
		rate, ms, err := ingestPillar(ctx, d, w, modes[m].mode)
		if err != nil {
			return err
		}
		cpus[m] = append(cpus[m], goCPUSeconds()-cpu0)
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		rates[m] = append(rates[m], rate)
		passes[m] += ms.Passes
		for _, j := range ms.Jobs {
			jobTime[m] += j.Duration
		}
	}
	off := median(rates[0])
	perM := 1e6 / float64(w.NumSamples())
	r.add("compaction", "ingest, "+modes[0].name, off, "samples/s",
		fmt.Sprintf("%s; medians of %d runs, modes alternating; %.2f CPU-s per M samples", w, rounds, median(cpus[0])*perM))
	for m := 1; m < len(modes); m++ {
		on := median(rates[m])
		r.add("compaction", "ingest, "+modes[m].name, on, "samples/s",
			fmt.Sprintf("%.1f %% of off; %d passes finished and jobs ran %.2f s in all while %d runs ingested; %.2f CPU-s per M samples, maintenance included",
				100*on/off, passes[m], jobTime[m].Seconds(), rounds, median(cpus[m])*perM))
	}
	return nil
}

// goCPUSeconds is the CPU time the process has spent in Go code and the
// runtime's collector so far.
func goCPUSeconds() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/user:cpu-seconds"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	var t float64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindFloat64 {
			t += x.Value.Float64()
		}
	}
	return t
}

// ingestMode says how maintenance runs during an ingest run.
type ingestMode int

const (
	maintOff ingestMode = iota
	maintLow
	maintNormal
)

// ingestPillar appends every scrape of w, one commit per scrape, and
// returns samples/s and what maintenance had done when the last commit
// returned.
func ingestPillar(ctx context.Context, dir string, w *metricgen.Workload, mode ingestMode) (float64, compaction.Metrics, error) {
	var now atomic.Int64
	now.Store(w.Start)
	o := &pillar.Options{DisableMaintenance: mode == maintOff, Now: func() time.Time { return time.UnixMilli(now.Load()) }}
	if mode != maintOff {
		o.Retention = time.Hour
		o.CompactionInterval = 200 * time.Millisecond
		o.CompactionNormalPriority = mode == maintNormal
	}
	db, err := pillar.Open(dir, o)
	if err != nil {
		return 0, compaction.Metrics{}, err
	}
	took, err := replayScrapes(ctx, db.Metrics(), w, func(_ int, ts []int64) { now.Store(ts[0]) })
	if err != nil {
		_ = db.Close()
		return 0, compaction.Metrics{}, err
	}
	m := db.Maintenance().Metrics()
	for _, j := range m.Jobs {
		if j.Errors > 0 {
			_ = db.Close()
			return 0, compaction.Metrics{}, fmt.Errorf("maintenance job %s: %s", j.Name, j.LastError)
		}
	}
	return float64(w.NumSamples()) / took.Seconds(), m, db.Close()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// compactionRetention fills one pillar.DB with 6 h × scale of metrics,
// logs and traces, runs a maintenance pass without retention (rollups,
// sealed partitions), then reopens it with 3 h of retention, so that half
// the data is past it, runs one pass and reports the disk usage before and
// after. On the way it reports what sealing the log partitions saved and
// how a rare term's search changed.
func (r *runner) compactionRetention(ctx context.Context, dir string) error {
	dir += "/retention"
	hours := 6 * r.cfg.Scale
	w := metricgen.Mix(1, hours, 2)
	start := time.UnixMilli(w.Start)
	end := start.Add(time.Duration(hours * float64(time.Hour)))
	clock := func() time.Time { return end }
	opts := &pillar.Options{DisableMaintenance: true, Now: clock}
	db, err := pillar.Open(dir, opts)
	if err != nil {
		return err
	}
	r.progress("compaction: fill metrics", 0.55)
	if err := fillMetrics(ctx, db, w); err != nil {
		_ = db.Close()
		return err
	}
	r.progress("compaction: fill traces", 0.6)
	if err := fillTraces(ctx, db, start, end, max(10, int(20_000*r.cfg.Scale))); err != nil {
		_ = db.Close()
		return err
	}
	r.progress("compaction: fill logs", 0.65)
	rare, err := r.fillLogs(ctx, db, start, end, max(1000, int(128_000*r.cfg.Scale)))
	if err != nil {
		_ = db.Close()
		return err
	}
	// Push everything into tables, so the pass below is measured alone.
	if err := db.Logs().Flush(ctx); err != nil {
		_ = db.Close()
		return err
	}

	r.progress("compaction: seal", 0.7)
	budget := time.Duration(r.cfg.QuerySeconds * float64(time.Second))
	search := func() (time.Duration, error) {
		p50, _, err := latencies(ctx, budget, func(int) error {
			_, err := db.Logs().Search(ctx, rare, start.UnixNano(), end.UnixNano(), 100)
			return err
		})
		return p50, err
	}
	logBytes := func() uint64 {
		n, _ := db.Pebble().EstimateDiskUsage([]byte{'l'}, []byte{'l' + 1})
		return n
	}
	if err := db.Pebble().Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		_ = db.Close()
		return err
	}
	before, err := search()
	if err != nil {
		_ = db.Close()
		return err
	}
	logsBefore := logBytes()
	// Chunks and the timestamp columns compacted chunks share.
	chunkBytes := func() uint64 {
		var total uint64
		for _, kind := range []byte{keys.MetricChunk, keys.MetricTimes} {
			lo := keys.AppendPrefix(nil, keys.StoreMetrics, kind)
			n, _ := db.Pebble().EstimateDiskUsage(lo, keys.PrefixEnd(lo))
			total += n
		}
		return total
	}
	chunksBefore := chunkBytes()
	t := time.Now()
	if err := db.Compact(ctx); err != nil {
		_ = db.Close()
		return err
	}
	passTook := time.Since(t)
	if err := db.Pebble().Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		_ = db.Close()
		return err
	}
	after, err := search()
	if err != nil {
		_ = db.Close()
		return err
	}
	logsAfter := logBytes()
	chunksAfter := chunkBytes()
	seal, _ := db.Maintenance().Metrics().Job("logs.seal")
	r.add("compaction", "first pass (chunks, rollups, sealing), no retention", passTook.Seconds(), "s", "")
	samples := float64(w.NumSamples())
	r.add("compaction", "metric chunks per sample, as sealed", float64(chunksBefore)/samples, "B/sample", "tables compacted")
	r.add("compaction", "metric chunks per sample, after the pass", float64(chunksAfter)/samples, "B/sample", "CompactChunks, shared timestamp columns included; tables compacted")
	r.add("compaction", "log store after sealing / before", 100*float64(logsAfter)/float64(logsBefore), "%",
		fmt.Sprintf("%d partitions sealed; tables compacted both times", seal.Items))
	r.add("compaction", "rare term search, whole range, before sealing, p50", ms(before), "ms", rare)
	r.add("compaction", "rare term search, whole range, after sealing, p50", ms(after), "ms", "")
	if err := db.Close(); err != nil {
		return err
	}

	r.progress("compaction: retention", 0.85)
	ropts := *opts
	ropts.Retention = time.Duration(hours / 2 * float64(time.Hour))
	db, err = pillar.Open(dir, &ropts)
	if err != nil {
		return err
	}
	disk, live := db.DiskUsage(), liveTables(db)
	t = time.Now()
	if err := db.Compact(ctx); err != nil {
		_ = db.Close()
		return err
	}
	took := time.Since(t)
	// Pebble deletes the tables a compaction replaced in the background.
	diskAfter := settledDiskUsage(db)
	liveAfter := liveTables(db)
	if err := db.Close(); err != nil {
		return err
	}
	r.add("compaction", "disk before the retention pass", float64(disk)/(1<<20), "MiB",
		fmt.Sprintf("DiskUsage; metrics, traces and logs; live tables %.1f MiB", float64(live)/(1<<20)))
	r.add("compaction", "disk after one pass dropping half", float64(diskAfter)/(1<<20), "MiB",
		fmt.Sprintf("pass took %.1f s; live tables %.1f MiB", took.Seconds(), float64(liveAfter)/(1<<20)))
	r.add("compaction", "disk freed by the retention pass", 100*(1-float64(diskAfter)/float64(disk)), "%", "target ≥ 40 %")
	return nil
}

// fillMetrics appends every scrape of w, one commit per scrape.
func fillMetrics(ctx context.Context, db *pillar.DB, w *metricgen.Workload) error {
	_, err := replayScrapes(ctx, db.Metrics(), w, nil)
	return err
}

// fillTraces writes n generated traces spread evenly over [start, end).
func fillTraces(ctx context.Context, db *pillar.DB, start, end time.Time, n int) error {
	gen := tracegen.New(tracegen.Config{Seed: 5, Start: start.UnixNano(), Interval: end.Sub(start) / time.Duration(max(1, n))})
	var batch []tracestore.Span
	for i := 0; i < n; {
		batch = batch[:0]
		for len(batch) < 1000 && i < n {
			batch = gen.Trace(batch)
			i++
		}
		if err := db.Traces().Write(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

// fillLogs writes n log lines spread over [start, end) in batches of 1,000
// and returns a term of one line, for searching.
func (r *runner) fillLogs(ctx context.Context, db *pillar.DB, start, end time.Time, n int) (string, error) {
	sets, _ := r.logCorpus()
	perReplica := 0
	for _, s := range sets {
		perReplica += len(s.Lines)
	}
	replicas := max(1, n/max(1, perReplica))
	// The generator spreads all its lines over the span it is given:
	// stretch it so the first n cover [start, end).
	span := end.Sub(start)
	if total := perReplica * replicas; total > n {
		span = time.Duration(float64(span) * float64(total) / float64(n))
	}
	gen := loggen.NewGenerator(sets, replicas, start, span)
	var (
		line  loggen.Line
		batch []logindex.Record
		rare  string
	)
	for i := 0; i < n && gen.Next(&line); i++ {
		if i == n/3 {
			if toks := tokens(string(line.Text)); len(toks) > 0 {
				rare = toks[len(toks)-1]
			}
		}
		batch = append(batch, logindex.Record{
			Timestamp: line.Time, SeverityText: line.Level, Body: logindex.StringValue(string(line.Text)),
			Resource: []logindex.Attribute{{Key: "service.name", Value: logindex.StringValue(line.Dataset)}},
		})
		if len(batch) == 1000 {
			if err := db.Logs().Write(ctx, batch); err != nil {
				return "", err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := db.Logs().Write(ctx, batch); err != nil {
			return "", err
		}
	}
	return rare, nil
}

// liveTables is the bytes of the live tables of db's Pebble.
func liveTables(db *pillar.DB) uint64 {
	m := db.Pebble().Metrics()
	return m.Table.Local.LiveSize + m.BlobFiles.Local.LiveSize
}

// settledDiskUsage returns db's disk usage once Pebble has deleted the
// files compactions made obsolete (it does so in the background), waiting
// at most two seconds.
func settledDiskUsage(db *pillar.DB) uint64 {
	n := db.DiskUsage()
	for range 20 {
		time.Sleep(100 * time.Millisecond)
		m := db.DiskUsage()
		if m == n {
			break
		}
		n = m
	}
	return n
}
