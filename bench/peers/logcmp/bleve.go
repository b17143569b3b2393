package logcmp

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
)

// bleveDoc is how a line is indexed in Bleve: body analysed like ours
// (Unicode words, lowercased, no stop words, no stemming), the rest as
// keywords, the timestamp numeric with doc values for sorting and facets.
type bleveDoc struct {
	Body    string  `json:"body"`
	Service string  `json:"service"`
	Level   string  `json:"level"`
	TraceID string  `json:"trace_id,omitempty"`
	TS      float64 `json:"ts"`
}

func bleveMapping() (*mapping.IndexMappingImpl, error) {
	m := bleve.NewIndexMapping()
	if err := m.AddCustomAnalyzer("words", map[string]any{
		"type": custom.Name, "tokenizer": unicode.Name, "token_filters": []string{lowercase.Name},
	}); err != nil {
		return nil, err
	}
	doc := bleve.NewDocumentStaticMapping()
	body := bleve.NewTextFieldMapping()
	body.Analyzer = "words"
	doc.AddFieldMappingsAt("body", body)
	for _, f := range []string{"service", "level", "trace_id"} {
		k := bleve.NewKeywordFieldMapping()
		k.Analyzer = keyword.Name
		k.IncludeTermVectors = false
		doc.AddFieldMappingsAt(f, k)
	}
	ts := bleve.NewNumericFieldMapping()
	ts.DocValues = true
	doc.AddFieldMappingsAt("ts", ts)
	m.DefaultMapping = doc
	m.DefaultAnalyzer = "words"
	return m, nil
}

// RunBleve ingests the corpus into a Bleve (scorch) index and measures it.
func RunBleve(ctx context.Context, cfg Config, wl Workload) (*Result, error) {
	ResetPeakRSS()
	dir := filepath.Join(cfg.Dir, "bleve")
	m, err := bleveMapping()
	if err != nil {
		return nil, err
	}
	idx, err := bleve.New(dir, m)
	if err != nil {
		return nil, err
	}
	res := &Result{Engine: "bleve v2.5.7", Note: "Bleve persists its segments asynchronously: a returned Batch is searchable but not yet guaranteed on disk"}
	start, cpu0 := time.Now(), CPUTime()
	var acked uint64
	res.Lines, res.RawBytes, err = Lines(cfg, func(b []Line) error {
		batch := idx.NewBatch()
		for i := range b {
			l := &b[i]
			d := bleveDoc{Body: l.Body, Service: l.Service, Level: l.Level, TS: float64(l.Time)}
			if l.TraceID != [16]byte{} {
				d.TraceID = TraceHex(l.Seq / 100)
			}
			if err := batch.Index(strconv.Itoa(l.Seq), d); err != nil {
				return err
			}
		}
		if err := idx.Batch(batch); err != nil {
			return err
		}
		acked += uint64(len(b))
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Ingest, res.IngestCPU = time.Since(start), CPUTime()-cpu0
	t0, t1 := float64(Start.UnixNano()), float64(Start.Add(cfg.Span).UnixNano())
	t10 := t0 + (t1-t0)/10
	term := func(t, field string) query.Query {
		q := bleve.NewTermQuery(t)
		q.SetField(field)
		return q
	}
	inRange := func(a, b float64) query.Query {
		incl, excl := true, false
		q := bleve.NewNumericRangeInclusiveQuery(&a, &b, &incl, &excl)
		q.SetField("ts")
		return q
	}
	search := func(q query.Query) func(context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			req := bleve.NewSearchRequestOptions(q, 100, 0, false)
			req.Fields = []string{"body"}
			req.SortBy([]string{"-ts"})
			r, err := idx.SearchInContext(ctx, req)
			if err != nil {
				return 0, err
			}
			return len(r.Hits), nil
		}
	}
	phrase := bleve.NewMatchPhraseQuery(wl.Phrase)
	phrase.SetField("body")
	qs := []Query{
		{"rare term", search(term(wl.Rare, "body"))},
		{"two-term AND", search(bleve.NewConjunctionQuery(term(wl.TermA, "body"), term(wl.TermB, "body")))},
		{"phrase", search(phrase)},
		{"term + field", search(bleve.NewConjunctionQuery(term(wl.FieldTerm, "body"), term(wl.Service, "service")))},
		{"term + 10% time", search(bleve.NewConjunctionQuery(term(wl.RangeTerm, "body"), inRange(t0, t10)))},
		{"trace ID", search(term(TraceHex(wl.TraceN), "trace_id"))},
		{"newest 100 frequent", search(term(wl.Frequent, "body"))},
		{"count 24 buckets", func(ctx context.Context) (int, error) {
			req := bleve.NewSearchRequestOptions(term(wl.CountTerm, "body"), 0, 0, false)
			f := bleve.NewFacetRequest("ts", 24)
			step := (t1 - t0) / 24
			for i := 0; i < 24; i++ {
				lo, hi := t0+float64(i)*step, t0+float64(i+1)*step
				f.AddNumericRange(fmt.Sprint(i), &lo, &hi)
			}
			req.AddFacet("ts", f)
			r, err := idx.SearchInContext(ctx, req)
			if err != nil {
				return 0, err
			}
			n := 0
			for _, nr := range r.Facets["ts"].NumericRanges {
				n += nr.Count
			}
			return n, nil
		}},
		{"top-5 field values", func(ctx context.Context) (int, error) {
			req := bleve.NewSearchRequestOptions(term(wl.CountTerm, "body"), 0, 0, false)
			req.AddFacet("top", bleve.NewFacetRequest(wl.TopField, 5))
			r, err := idx.SearchInContext(ctx, req)
			if err != nil {
				return 0, err
			}
			n := 0
			if tf := r.Facets["top"].Terms; tf != nil {
				for _, t := range tf.Terms() {
					n += t.Count
				}
			}
			return n, nil
		}},
	}
	if res.Queries, err = Measure(ctx, cfg.Reps, qs); err != nil {
		return nil, err
	}
	res.PeakRSS = PeakRSS()
	if err := idx.Close(); err != nil {
		return nil, err
	}
	if res.DiskBytes, err = DirSize(dir, nil); err != nil {
		return nil, err
	}
	res.TableBytes = res.DiskBytes
	idx, err = bleve.Open(dir)
	if err != nil {
		return nil, err
	}
	res.Reopened, err = idx.DocCount()
	if err != nil {
		return nil, err
	}
	if res.Reopened != acked {
		res.Note += fmt.Sprintf("; reopened with %d docs, %d acknowledged", res.Reopened, acked)
	}
	return res, idx.Close()
}
