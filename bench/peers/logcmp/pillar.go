package logcmp

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/pillar-db/pillar/logindex"
)

// Workload names the queries both engines run, in report order.
type Workload struct {
	Rare      string // a rare token
	TermA     string // two-term AND
	TermB     string
	Phrase    string // two words
	FieldTerm string // term + service
	Service   string
	RangeTerm string // term over the first 10 % of the span
	TraceN    int    // trace group whose lines are looked up
	Frequent  string // newest 100 of it
	CountTerm string // counted in 24 buckets
	TopField  string // top 5 values among CountTerm's matches
}

// DefaultWorkload picks terms common in the loghub logs.
func DefaultWorkload(cfg Config) Workload {
	return Workload{
		Rare: RareToken(cfg), TermA: "packetresponder", TermB: "terminating",
		Phrase: "authentication failure", FieldTerm: "error", Service: "apache",
		RangeTerm: "error", TraceN: 4321 % max(1, cfg.Replicas*32000/100), Frequent: "info",
		CountTerm: "error", TopField: "service",
	}
}

// RunPillar ingests the corpus into a logindex and measures it.
func RunPillar(ctx context.Context, cfg Config, wl Workload) (*Result, error) {
	ResetPeakRSS()
	dir := filepath.Join(cfg.Dir, "pillar")
	ix, err := logindex.Open(dir, nil)
	if err != nil {
		return nil, err
	}
	res := &Result{Engine: "pillar logindex"}
	recs := make([]logindex.Record, cfg.Batch)
	start, cpu0 := time.Now(), CPUTime()
	var acked uint64
	res.Lines, res.RawBytes, err = Lines(cfg, func(b []Line) error {
		recs = recs[:len(b)]
		for i := range b {
			l := &b[i]
			recs[i] = logindex.Record{
				Timestamp:    l.Time,
				SeverityText: l.Level,
				Body:         logindex.StringValue(l.Body),
				Resource:     []logindex.Attribute{{Key: logindex.ServiceAttr, Value: logindex.StringValue(l.Service)}},
				TraceID:      l.TraceID,
			}
		}
		if err := ix.Write(ctx, recs); err != nil {
			return err
		}
		acked += uint64(len(b))
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Ingest, res.IngestCPU = time.Since(start), CPUTime()-cpu0
	t0, t1 := Start.UnixNano(), Start.Add(cfg.Span).UnixNano()
	t10 := t0 + (t1-t0)/10
	search := func(q string, a, b int64, limit int) func(context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			hits, err := ix.Search(ctx, q, a, b, limit)
			return len(hits), err
		}
	}
	qs := []Query{
		{"rare term", search(wl.Rare, t0, t1, 100)},
		{"two-term AND", search(wl.TermA+" AND "+wl.TermB, t0, t1, 100)},
		{"phrase", search(`"`+wl.Phrase+`"`, t0, t1, 100)},
		{"term + field", search(wl.FieldTerm+" AND service:"+wl.Service, t0, t1, 100)},
		{"term + 10% time", search(wl.RangeTerm, t0, t10, 100)},
		{"trace ID", search("trace_id:"+TraceHex(wl.TraceN), t0, t1, 100)},
		{"newest 100 frequent", search(wl.Frequent, t0, t1, 100)},
		{"count 24 buckets", func(ctx context.Context) (int, error) {
			b, err := ix.Count(ctx, wl.CountTerm, t0, t1, time.Duration((t1-t0)/24))
			n := 0
			for _, x := range b {
				n += int(x.Count)
			}
			return n, err
		}},
		{"top-5 field values", func(ctx context.Context) (int, error) {
			top, err := ix.TopValues(ctx, wl.CountTerm, wl.TopField, t0, t1, 5)
			n := 0
			for _, x := range top {
				n += int(x.Count)
			}
			return n, err
		}},
	}
	if res.Queries, err = Measure(ctx, cfg.Reps, qs); err != nil {
		return nil, err
	}
	res.PeakRSS = PeakRSS()
	if err := ix.Close(); err != nil {
		return nil, err
	}
	if res.DiskBytes, err = DirSize(dir, nil); err != nil {
		return nil, err
	}
	if res.TableBytes, err = DirSize(dir, func(name string) bool {
		return strings.HasSuffix(name, ".sst") || strings.HasPrefix(name, "MANIFEST")
	}); err != nil {
		return nil, err
	}
	ix, err = logindex.Open(dir, nil)
	if err != nil {
		return nil, err
	}
	res.Reopened = ix.Stats().Records
	if res.Reopened != acked {
		res.Note = fmt.Sprintf("reopened with %d records, %d acknowledged", res.Reopened, acked)
	}
	return res, ix.Close()
}
