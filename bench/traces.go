package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tracestore/tracegen"
)

// traces writes 20,000 × scale generated traces (10 services, 5–50 spans,
// ~11 attributes per span) in batches of about 1,000 spans, then measures
// bytes per span and trace-by-ID and Find latencies.
func (r *runner) traces(ctx context.Context, dir string) error {
	st, err := tracestore.Open(dir, nil)
	if err != nil {
		return err
	}
	nTraces := int(20_000 * r.cfg.Scale)
	gen := tracegen.New(tracegen.Config{Seed: 1, Interval: 100 * time.Millisecond})
	rng := rand.New(rand.NewPCG(3, 4))
	var (
		batch   []tracestore.Span
		spans   int
		written int
		took    time.Duration
		sample  []tracestore.TraceID // every 50th trace, to fetch later
		attrs   []tracestore.KeyValue
		svcs    []string
		peak    uint64
		mstats  runtime.MemStats
		first   int64
		lastEnd int64
	)
	for written < nTraces {
		batch = batch[:0]
		for len(batch) < 1000 && written < nTraces {
			n := len(batch)
			batch = gen.Trace(batch)
			written++
			if written%50 == 0 {
				sample = append(sample, batch[n].TraceID)
				sp := &batch[n+rng.IntN(len(batch)-n)]
				attrs = append(attrs, sp.Attributes[rng.IntN(len(sp.Attributes))])
				svcs = append(svcs, sp.Service())
			}
		}
		if first == 0 {
			first = batch[0].StartTime
		}
		lastEnd = max(lastEnd, batch[len(batch)-1].EndTime)
		t := time.Now()
		if err := st.Write(ctx, batch); err != nil {
			st.Close()
			return err
		}
		took += time.Since(t)
		spans += len(batch)
		if written%(50*20) == 0 {
			runtime.ReadMemStats(&mstats)
			peak = max(peak, mstats.HeapInuse)
			r.progress(fmt.Sprintf("traces: write %d/%d traces", written, nTraces), 0.5*float64(written)/float64(nTraces))
		}
	}
	r.add("traces", "ingest, ~1,000-span batches, every index", float64(spans)/took.Seconds(), "spans/s",
		fmt.Sprintf("%d traces, %d spans", nTraces, spans))
	r.add("traces", "peak heap while ingesting", float64(peak)/(1<<20), "MiB", "")
	r.progress("traces: close and compact", 0.55)
	// What background maintenance does once no more spans are expected:
	// every partition is closed (postings merged, term filter kept).
	if _, err := st.ClosePartitions(ctx, math.MaxInt64); err != nil {
		st.Close()
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	closed, size, err := diskSizes(ctx, dir)
	if err != nil {
		return err
	}
	r.add("traces", "disk per span, indexes included", float64(size)/float64(spans), "B/span", "partitions closed, live tables after a full compaction")
	r.add("traces", "directory after Close, per span", float64(closed)/float64(spans), "B/span", "with Pebble's write-ahead log files")

	if st, err = tracestore.Open(dir, nil); err != nil {
		return err
	}
	defer st.Close()
	budget := time.Duration(r.cfg.QuerySeconds * float64(time.Second))
	r.progress("traces: trace by ID", 0.7)
	p50, p99, err := latencies(ctx, budget, func(i int) error {
		_, err := st.Trace(ctx, sample[i%len(sample)])
		return err
	})
	if err != nil {
		return err
	}
	r.add("traces", "trace by ID (5–50 spans), p50", ms(p50), "ms", fmt.Sprintf("p99 %.2f ms", ms(p99)))

	r.progress("traces: find", 0.85)
	p50, p99, err = latencies(ctx, budget, func(i int) error {
		kv := attrs[i%len(attrs)]
		to := first + int64(float64(lastEnd-first)*rng.Float64())
		_, err := st.Find(ctx, tracestore.Query{
			Service:    svcs[i%len(svcs)],
			Attributes: map[string]string{kv.Key: kv.Value.String()},
			Start:      to - int64(time.Hour), End: to, Limit: 20,
		})
		return err
	})
	if err != nil {
		return err
	}
	r.add("traces", "find: service + attribute, 1 h window, p50", ms(p50), "ms", fmt.Sprintf("p99 %.2f ms", ms(p99)))

	r.progress("traces: find by trace duration", 0.9)
	p50, p99, err = latencies(ctx, budget, func(i int) error {
		to := first + int64(float64(lastEnd-first)*rng.Float64())
		_, err := st.Find(ctx, tracestore.Query{
			Service:          svcs[i%len(svcs)],
			MinTraceDuration: 100 * time.Millisecond,
			Start:            to - int64(time.Hour), End: to, Limit: 20,
		})
		return err
	})
	if err != nil {
		return err
	}
	r.add("traces", "find: service + whole trace >= 100 ms, 1 h window, p50", ms(p50), "ms", fmt.Sprintf("p99 %.2f ms", ms(p99)))

	r.progress("traces: attribute listings", 0.95)
	p50, p99, err = latencies(ctx, budget, func(i int) error {
		to := first + int64(float64(lastEnd-first)*rng.Float64())
		names, err := st.AttributeKeys(ctx, to-int64(time.Hour), to)
		if err != nil || len(names) == 0 {
			return err
		}
		_, err = st.AttributeValues(ctx, names[i%len(names)], to-int64(time.Hour), to, 100)
		return err
	})
	if err != nil {
		return err
	}
	r.add("traces", "attribute keys, then values of one (<= 100), 1 h, p50", ms(p50), "ms", fmt.Sprintf("p99 %.2f ms", ms(p99)))
	return nil
}
