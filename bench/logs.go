package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/pillar-db/pillar/logindex"
	"github.com/pillar-db/pillar/logindex/loggen"
)

// logCorpus returns the loghub logs, or synthetic ones when they are not
// on this machine, and says which.
func (r *runner) logCorpus() ([]loggen.Dataset, string) {
	dir := r.cfg.LoghubDir
	if dir == "" {
		dir = findLoghub()
	}
	if dir != "" {
		if sets, err := loggen.Load(dir); err == nil {
			return sets, "loghub"
		}
	}
	return syntheticLogs(), "synthetic (loghub not found)"
}

// findLoghub looks for shared/data/loghub beside the working directory or
// one of its ancestors.
func findLoghub() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, "..", "shared", "data", "loghub")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// syntheticLogs builds 16 logs of 2,000 lines from templates, a stand-in
// with the same shape as loghub when it is absent.
func syntheticLogs() []loggen.Dataset {
	rng := rand.New(rand.NewPCG(11, 12))
	templates := []string{
		"INFO Received block blk_%d of size %d from /10.250.%d.%d",
		"WARN Slow ReadProcessor read fields took %dms (threshold=30000ms)",
		"ERROR Connection refused to server %d.%d.%d.%d port %d",
		"INFO session 0x%x closed by client, %d requests served",
		"DEBUG cache lookup key=user:%d hit=%d",
		"INFO Starting task %d.%d in stage %d (TID %d)",
	}
	var sets []loggen.Dataset
	for s := range 16 {
		d := loggen.Dataset{Name: fmt.Sprintf("service%02d", s)}
		for range 2000 {
			t := templates[rng.IntN(len(templates))]
			args := make([]any, strings.Count(t, "%"))
			for i := range args {
				args[i] = rng.IntN(100000)
			}
			d.Lines = append(d.Lines, fmt.Sprintf(t, args...))
		}
		sets = append(sets, d)
	}
	return sets
}

// logs writes loghub × (4 × scale) replicas (every digit run shifted per
// replica so ids are new tokens) in durable batches of 1,000 lines, then
// measures disk against raw bytes and the usual searches.
func (r *runner) logs(ctx context.Context, dir string) error {
	sets, source := r.logCorpus()
	replicas := max(1, int(4*r.cfg.Scale))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	span := 24 * time.Hour
	gen := loggen.NewGenerator(sets, replicas, start, span)
	ix, err := logindex.Open(dir, nil)
	if err != nil {
		return err
	}
	var (
		line    loggen.Line
		batch   []logindex.Record
		raw     int
		n       int
		took    time.Duration
		peak    uint64
		mstats  runtime.MemStats
		sampled []string
	)
	// Scales below one replica stop early rather than round up.
	total := min(gen.Total(), max(1000, int(float64(4*32_000)*r.cfg.Scale)))
	flush := func() error {
		t := time.Now()
		err := ix.Write(ctx, batch)
		took += time.Since(t)
		batch = batch[:0]
		return err
	}
	for n < total && gen.Next(&line) {
		raw += len(line.Text) + 1
		n++
		batch = append(batch, logindex.Record{
			Timestamp: line.Time, SeverityText: line.Level, Body: logindex.StringValue(string(line.Text)),
			Resource: []logindex.Attribute{{Key: "service.name", Value: logindex.StringValue(line.Dataset)}},
		})
		if n%97 == 0 {
			sampled = append(sampled, string(line.Text))
		}
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				ix.Close()
				return err
			}
		}
		if n%20_000 == 0 {
			runtime.ReadMemStats(&mstats)
			peak = max(peak, mstats.HeapInuse)
			r.progress(fmt.Sprintf("logs: write %d/%d lines", n, total), 0.5*float64(n)/float64(total))
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			ix.Close()
			return err
		}
	}
	r.add("logs", "ingest, durable 1,000-line batches", float64(n)/took.Seconds(), "lines/s",
		fmt.Sprintf("%s × %d: %d lines, %.1f MB", source, replicas, n, float64(raw)/1e6))
	r.add("logs", "peak heap while ingesting", float64(peak)/(1<<20), "MiB", "")
	r.progress("logs: close and compact", 0.55)
	if err := ix.Close(); err != nil {
		return err
	}
	closed, size, err := diskSizes(ctx, dir)
	if err != nil {
		return err
	}
	r.add("logs", "disk, lines and index, per raw byte", float64(size)/float64(raw), "×", "live tables after a full compaction")
	r.add("logs", "directory after Close, per raw byte", float64(closed)/float64(raw), "×", "with Pebble's write-ahead log files")

	if ix, err = logindex.Open(dir, nil); err != nil {
		return err
	}
	defer ix.Close()
	if got := ix.Stats().Records; got != uint64(n) {
		return fmt.Errorf("reopened index holds %d records, %d were acknowledged", got, n)
	}
	rare, common, phrase := pickTerms(sampled)
	if rare == "" || len(common) < 2 || phrase == "" {
		return errors.New("corpus too small to pick query terms")
	}
	t0, t1 := start.UnixNano(), start.Add(span).UnixNano()
	tenth := t0 + (t1-t0)*45/100
	svc := sets[0].Name
	budget := time.Duration(r.cfg.QuerySeconds * float64(time.Second))
	type search struct {
		name, q string
		lo, hi  int64
		limit   int
	}
	searches := []search{
		{"rare term", rare, t0, t1, 100},
		{"two-term AND", common[0] + " AND " + common[1], t0, t1, 100},
		{"phrase", phrase, t0, t1, 100},
		{"term + field", "service:" + strings.ToLower(svc) + " AND " + common[0], t0, t1, 100},
		{"term + 10 % time range", common[0], tenth, tenth + (t1-t0)/10, 100},
		{"newest 100 of the most frequent term", common[0], t0, t1, 100},
	}
	for i, s := range searches {
		r.progress("logs: "+s.name, 0.6+0.3*float64(i)/float64(len(searches)))
		var hits int
		p50, p99, err := latencies(ctx, budget, func(int) error {
			h, err := ix.Search(ctx, s.q, s.lo, s.hi, s.limit)
			hits = len(h)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", s.q, err)
		}
		r.add("logs", s.name+", p50", ms(p50), "ms", fmt.Sprintf("%s → %d hits; p99 %.2f ms", clip(s.q, 40), hits, ms(p99)))
	}
	r.progress("logs: count and top values", 0.95)
	p50, p99, err := latencies(ctx, budget, func(int) error {
		_, err := ix.Count(ctx, common[0], t0, t1, span/24)
		return err
	})
	if err != nil {
		return err
	}
	r.add("logs", "count over time, 24 buckets, p50", ms(p50), "ms", fmt.Sprintf("%s; p99 %.2f ms", common[0], ms(p99)))
	p50, p99, err = latencies(ctx, budget, func(int) error {
		_, err := ix.TopValues(ctx, common[1], "service", t0, t1, 5)
		return err
	})
	if err != nil {
		return err
	}
	r.add("logs", "top-5 values of a field, p50", ms(p50), "ms", fmt.Sprintf("service among %s; p99 %.2f ms", common[1], ms(p99)))
	return nil
}

// pickTerms chooses query terms from sampled lines: a rare token (a long
// one with digits), the two most frequent words, and a two-word phrase.
func pickTerms(lines []string) (rare string, common []string, phrase string) {
	freq := map[string]int{}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, l := range lines {
		words := tokens(l)
		for _, w := range words {
			freq[w]++
		}
	}
	for w := range freq {
		if len(w) >= 4 && !strings.ContainsFunc(w, unicode.IsDigit) {
			common = append(common, w)
		}
	}
	slices.SortFunc(common, func(a, b string) int {
		if freq[a] != freq[b] {
			return freq[b] - freq[a]
		}
		return strings.Compare(a, b)
	})
	common = common[:min(2, len(common))]
	for range 100 {
		words := tokens(lines[rng.IntN(len(lines))])
		for _, w := range words {
			if len(w) >= 8 && strings.ContainsFunc(w, unicode.IsDigit) && freq[w] == 1 {
				rare = w
			}
		}
		for i := 0; i+1 < len(words) && phrase == ""; i++ {
			if !strings.ContainsFunc(words[i]+words[i+1], unicode.IsDigit) && len(words[i]) > 2 && len(words[i+1]) > 2 {
				phrase = `"` + words[i] + " " + words[i+1] + `"`
			}
		}
		if rare != "" && phrase != "" {
			break
		}
	}
	return rare, common, phrase
}

// tokens splits a line as the log index does: runs of letters, digits and
// '_', lowercased.
func tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_')
	})
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
