package logindex

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"
)

// This file holds the brute-force side of the differential tests: its own
// tokenizer (strings.FieldsFunc), a query tree it renders to text and
// evaluates by scanning every record.

func oracleTokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(strings.ToValidUTF8(s, " ")), func(r rune) bool {
		return !(r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r))
	})
}

type oRec struct {
	seq   int64
	ts    int64
	toks  []string
	set   map[string]bool
	level string
	svc   string
}

func newORec(seq int64, r *Record) oRec {
	o := oRec{seq: seq, ts: r.Timestamp, toks: oracleTokens(string(r.BodyText())), set: map[string]bool{},
		level: strings.ToLower(r.SeverityText), svc: strings.ToLower(r.Service())}
	for _, t := range o.toks {
		o.set[t] = true
	}
	return o
}

type oNode struct {
	op   string // term, prefix, phrase, level, service, and, or, not
	toks []string
	kids []*oNode
}

func (n *oNode) String() string {
	switch n.op {
	case "term":
		return n.toks[0]
	case "prefix":
		return n.toks[0] + "*"
	case "phrase":
		return `"` + strings.Join(n.toks, " ") + `"`
	case "level", "service":
		return n.op + ":" + n.toks[0]
	case "not":
		return "NOT " + n.kids[0].String()
	}
	parts := make([]string, len(n.kids))
	for i, k := range n.kids {
		parts[i] = k.String()
	}
	sep := " OR "
	if n.op == "and" {
		sep = []string{" AND ", " "}[len(parts)%2]
	}
	return "(" + strings.Join(parts, sep) + ")"
}

func (n *oNode) match(r *oRec) bool {
	switch n.op {
	case "term":
		return r.set[n.toks[0]]
	case "prefix":
		for t := range r.set {
			if strings.HasPrefix(t, n.toks[0]) {
				return true
			}
		}
		return false
	case "phrase":
		for i := 0; i+len(n.toks) <= len(r.toks); i++ {
			if slices.Equal(r.toks[i:i+len(n.toks)], n.toks) {
				return true
			}
		}
		return false
	case "level":
		return r.level == n.toks[0]
	case "service":
		return r.svc == n.toks[0]
	case "not":
		return !n.kids[0].match(r)
	case "and":
		for _, k := range n.kids {
			if !k.match(r) {
				return false
			}
		}
		return true
	case "or":
		for _, k := range n.kids {
			if k.match(r) {
				return true
			}
		}
	}
	return false
}

// narrowing reports whether the tree has a positive leaf the index can use.
func (n *oNode) narrowing() bool {
	switch n.op {
	case "not":
		return false
	case "and":
		return slices.ContainsFunc(n.kids, (*oNode).narrowing)
	case "or":
		return !slices.ContainsFunc(n.kids, func(k *oNode) bool { return !k.narrowing() })
	}
	return true
}

// queryGen draws random queries from the records' own tokens and fields.
type queryGen struct {
	r    *rand.Rand
	recs []oRec
}

func (g *queryGen) leaf() *oNode {
	rec := &g.recs[g.r.IntN(len(g.recs))]
	for len(rec.toks) == 0 {
		rec = &g.recs[g.r.IntN(len(g.recs))]
	}
	switch g.r.IntN(10) {
	case 0, 1, 2, 3:
		return &oNode{op: "term", toks: []string{rec.toks[g.r.IntN(len(rec.toks))]}}
	case 4, 5:
		if len(rec.toks) >= 2 {
			n := 2 + g.r.IntN(2)
			n = min(n, len(rec.toks))
			i := g.r.IntN(len(rec.toks) - n + 1)
			return &oNode{op: "phrase", toks: slices.Clone(rec.toks[i : i+n])}
		}
		return &oNode{op: "term", toks: []string{rec.toks[0]}}
	case 6:
		t := rec.toks[g.r.IntN(len(rec.toks))]
		if len(t) > 3 && t[:3] == strings.ToValidUTF8(t[:3], "") {
			return &oNode{op: "prefix", toks: []string{t[:3]}}
		}
		return &oNode{op: "term", toks: []string{t}}
	case 7, 8:
		if rec.level != "" && !strings.ContainsAny(rec.level, " :()\"") {
			return &oNode{op: "level", toks: []string{rec.level}}
		}
		return &oNode{op: "term", toks: []string{rec.toks[0]}}
	default:
		if rec.svc != "" && !strings.ContainsAny(rec.svc, " :()\"") {
			return &oNode{op: "service", toks: []string{rec.svc}}
		}
		return &oNode{op: "term", toks: []string{rec.toks[0]}}
	}
}

func (g *queryGen) query(depth int) *oNode {
	if depth == 0 || g.r.IntN(3) == 0 {
		return g.leaf()
	}
	switch g.r.IntN(5) {
	case 0, 1:
		return &oNode{op: "and", kids: []*oNode{g.query(depth - 1), g.query(depth - 1)}}
	case 2:
		return &oNode{op: "or", kids: []*oNode{g.query(depth - 1), g.query(depth - 1)}}
	case 3:
		return &oNode{op: "and", kids: []*oNode{g.query(depth - 1), {op: "not", kids: []*oNode{g.query(depth - 1)}}}}
	}
	return g.leaf()
}

// seqOf reads the "seq" attribute the tests put on every record.
func seqOf(t testing.TB, h *Hit) int64 {
	for _, a := range h.Attributes {
		if a.Key == "seq" {
			return a.Value.Int
		}
	}
	t.Fatalf("hit without seq: %+v", h.Record)
	return -1
}

// runDifferential writes recs in batches, then compares many random queries
// with the brute-force scan, before and after a reopen.
func runDifferential(t *testing.T, recs []Record, queries int, opts *Options) {
	runDifferentialWith(t, recs, queries, opts, nil)
}

// runDifferentialWith is runDifferential with a step run after the writes
// and again after the reopen, before each round of queries.
func runDifferentialWith(t *testing.T, recs []Record, queries int, opts *Options, step func(*Index)) {
	ctx := context.Background()
	dir := t.TempDir()
	ix, err := Open(dir, opts)
	require.NoError(t, err)
	orecs := make([]oRec, len(recs))
	minTS, maxTS := int64(1<<63-1), int64(-1<<63)
	for i := range recs {
		recs[i].Attributes = append(recs[i].Attributes, Attribute{"seq", IntValue(int64(i))})
		orecs[i] = newORec(int64(i), &recs[i])
		minTS, maxTS = min(minTS, recs[i].Timestamp), max(maxTS, recs[i].Timestamp)
	}
	for i := 0; i < len(recs); i += 500 {
		require.NoError(t, ix.Write(ctx, recs[i:min(i+500, len(recs))]))
	}
	g := &queryGen{r: rand.New(rand.NewPCG(7, uint64(len(recs)))), recs: orecs}
	check := func(ix *Index, n int) {
		for q := 0; q < n; q++ {
			node := g.query(3)
			text := node.String()
			t0, t1 := minTS, maxTS+1
			if g.r.IntN(2) == 0 {
				a, b := minTS+g.r.Int64N(maxTS-minTS+1), minTS+g.r.Int64N(maxTS-minTS+1)
				t0, t1 = min(a, b), max(a, b)+1
			}
			var want []oRec
			for i := range orecs {
				if r := &orecs[i]; r.ts >= t0 && r.ts < t1 && node.match(r) {
					want = append(want, *r)
				}
			}
			slices.SortStableFunc(want, func(a, b oRec) int { return -cmpInt(a.ts, b.ts) })
			limit := 1 + g.r.IntN(50)
			if g.r.IntN(3) == 0 {
				limit = len(recs)
			}
			hits, err := ix.Search(ctx, text, t0, t1, limit)
			if !node.narrowing() && err != nil {
				require.ErrorIs(t, err, ErrScanLimit, text)
				continue
			}
			require.NoError(t, err, text)
			require.Len(t, hits, min(limit, len(want)), "query %s in [%d,%d)", text, t0, t1)
			for i := range hits {
				require.Equal(t, want[i].ts, hits[i].Timestamp, "query %s hit %d", text, i)
				require.True(t, node.match(&orecs[seqOf(t, &hits[i])]), "query %s returned a non-match", text)
			}
			if limit >= len(want) {
				got := make([]int64, len(hits))
				for i := range hits {
					got[i] = seqOf(t, &hits[i])
				}
				exp := make([]int64, len(want))
				for i := range want {
					exp[i] = want[i].seq
				}
				slices.Sort(got)
				slices.Sort(exp)
				require.Equal(t, exp, got, "query %s", text)
			}
			// Count in a handful of steps.
			step := time.Duration(max(1, (t1-t0)/int64(1+g.r.IntN(24))))
			buckets, err := ix.Count(ctx, text, t0, t1, step)
			require.NoError(t, err, text)
			wantCounts := make([]uint64, len(buckets))
			for _, r := range want {
				wantCounts[(r.ts-t0)/int64(step)]++
			}
			for i := range buckets {
				require.Equal(t, wantCounts[i], buckets[i].Count, "query %s bucket %d", text, i)
			}
		}
	}
	if step != nil {
		step(ix)
	}
	check(ix, queries)
	require.NoError(t, ix.Close())
	ix, err = Open(dir, opts)
	require.NoError(t, err)
	defer ix.Close()
	require.Equal(t, uint64(len(recs)), ix.Stats().Records)
	if step != nil {
		step(ix)
	}
	check(ix, queries/4)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

var (
	genWords    = strings.Fields("connection refused timeout slow query user login failed accepted request served cache miss hit disk full retry backoff upstream gateway error warning ok done started stopped socket token expired Größe naïve café 東京 データ")
	genServices = []string{"redirect", "frontend", "checkout", "db-proxy"}
	genLevels   = []string{"INFO", "WARN", "ERROR", "DEBUG"}
)

// genRecords makes n records over hours hours starting at base, with bodies
// built from a small vocabulary, ids and addresses, in mostly increasing
// time with some records out of order.
func genRecords(seed uint64, n int, base int64, hours int) []Record {
	r := rand.New(rand.NewPCG(seed, 99))
	span := int64(hours) * int64(time.Hour)
	out := make([]Record, n)
	for i := range out {
		ts := base + span*int64(i)/int64(n)
		if r.IntN(10) == 0 {
			ts -= r.Int64N(int64(20 * time.Minute))
		}
		var b strings.Builder
		for w := 0; w < 3+r.IntN(8); w++ {
			if w > 0 {
				b.WriteByte(" ,;:/"[r.IntN(5)])
			}
			switch r.IntN(8) {
			case 0:
				fmt.Fprintf(&b, "10.0.%d.%d", r.IntN(4), r.IntN(20))
			case 1:
				fmt.Fprintf(&b, "id%d", r.IntN(500))
			default:
				b.WriteString(genWords[r.IntN(len(genWords))])
			}
		}
		out[i] = Record{
			Timestamp:      ts,
			SeverityText:   genLevels[r.IntN(len(genLevels))],
			SeverityNumber: int32(r.IntN(24)),
			Body:           StringValue(b.String()),
			Resource:       []Attribute{{ServiceAttr, StringValue(genServices[r.IntN(len(genServices))])}},
		}
		if r.IntN(4) == 0 {
			out[i].TraceID[0], out[i].TraceID[15] = byte(r.IntN(256)), byte(1+r.IntN(255))
		}
	}
	return out
}

func TestDifferentialGenerated(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC).UnixNano()
	recs := genRecords(1, 6000, base, 5)
	// Small flushes so queries see flushed segments, several per
	// partition, and pending postings at once.
	runDifferential(t, recs, 100, &Options{FlushRecords: 1700, MaxScan: 3000})
}
