package logql

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pillar-db/pillar/logindex"
	"github.com/pillar-db/pillar/tsdb"
)

// IndexQuery returns a logindex query that matches a superset of the lines
// q keeps, so the index narrows the records read and Process decides
// exactly: equality on service_name and level becomes a field match, and
// each whole word inside a |= text (one with a separator on both sides)
// a term. Tokens at the edges of a filter text are left out because a
// substring may begin or end inside a word of the line. "*" when nothing
// narrows.
func (q *LogQuery) IndexQuery() string {
	var parts []string
	for _, m := range q.Matchers {
		if m.Type != tsdb.MatchEqual || m.Value == "" || strings.ContainsAny(m.Value, "\"\\") {
			continue
		}
		switch m.Name {
		case "service_name", "level":
			parts = append(parts, m.Name+`:"`+m.Value+`"`)
		}
	}
	var tz logindex.Tokenizer
	for _, st := range q.Stages {
		if st.Kind != StageLineFilter || st.LineFilter.Op != LineContains {
			continue
		}
		text := st.LineFilter.Text
		tz.ResetString(text)
		for tz.Next() {
			s, e := tz.Span()
			if s > 0 && e < len(text) {
				parts = append(parts, `"`+string(tz.Token())+`"`)
			}
		}
	}
	if len(parts) == 0 {
		return "*"
	}
	return strings.Join(parts, " AND ")
}

// Process runs q over one line of a stream: the selector against the
// stream's labels, then each stage. It returns the line's labels (the
// stream's plus any extracted) and whether the line is kept.
func (q *LogQuery) Process(stream tsdb.Labels, line string) (tsdb.Labels, bool) {
	for _, m := range q.Matchers {
		if !m.Matches(stream.Get(m.Name)) {
			return nil, false
		}
	}
	ls := stream
	var b *tsdb.LabelsBuilder
	for i := range q.Stages {
		st := &q.Stages[i]
		switch st.Kind {
		case StageLineFilter:
			if !st.LineFilter.keep(line) {
				return nil, false
			}
		case StageJSON, StageLogfmt:
			if b == nil {
				b = tsdb.NewBuilder(ls)
			}
			set := func(k, v string) {
				k = sanitizeLabel(k)
				if k == "" {
					return
				}
				if stream.Has(k) {
					k += "_extracted"
				}
				b.Set(k, v)
			}
			if st.Kind == StageJSON {
				if !extractJSON(line, set) {
					b.Set("__error__", "JSONParserErr")
				}
			} else {
				extractLogfmt(line, set)
			}
			ls = b.Labels()
		case StageLabelFilter:
			if !st.LabelFilter.keep(ls.Get(st.LabelFilter.Name)) {
				return nil, false
			}
		}
	}
	return ls, true
}

func (f *LineFilter) keep(line string) bool {
	switch f.Op {
	case LineContains:
		return strings.Contains(line, f.Text)
	case LineNotContains:
		return !strings.Contains(line, f.Text)
	case LineMatch:
		return f.re.MatchString(line)
	default:
		return !f.re.MatchString(line)
	}
}

func (f *LabelFilter) keep(v string) bool {
	if f.matcher != nil {
		return f.matcher.Matches(v)
	}
	x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return false
	}
	switch f.Op {
	case CmpNumEqual:
		return x == f.Num
	case CmpNumNotEqual:
		return x != f.Num
	case CmpGreater:
		return x > f.Num
	case CmpGreaterEqual:
		return x >= f.Num
	case CmpLess:
		return x < f.Num
	default:
		return x <= f.Num
	}
}

// SanitizeLabel makes s a valid label name as Loki does: every character
// outside [a-zA-Z0-9_] becomes '_', and a leading digit gets a '_' prefix.
func SanitizeLabel(s string) string { return sanitizeLabel(s) }

func sanitizeLabel(s string) string {
	if s == "" {
		return ""
	}
	ok := isIdentStart(s[0])
	for i := 0; ok && i < len(s); i++ {
		ok = isIdentChar(s[i])
	}
	if ok {
		return s
	}
	var b strings.Builder
	if s[0] >= '0' && s[0] <= '9' {
		b.WriteByte('_')
	}
	for i := 0; i < len(s); i++ {
		if isIdentChar(s[i]) {
			b.WriteByte(s[i])
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// extractJSON sets a label per scalar member of a JSON object line, nested
// objects flattened with '_' (as Loki's json stage does). It reports
// whether the line was a JSON object.
func extractJSON(line string, set func(k, v string)) bool {
	d := json.NewDecoder(strings.NewReader(line))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return false
	}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			switch v := v.(type) {
			case string:
				set(prefix+k, v)
			case json.Number:
				set(prefix+k, v.String())
			case bool:
				set(prefix+k, strconv.FormatBool(v))
			case map[string]any:
				walk(prefix+k+"_", v)
			}
		}
	}
	walk("", m)
	return true
}

// extractLogfmt sets a label per key=value or key="quoted value" pair.
func extractLogfmt(line string, set func(k, v string)) {
	for i := 0; i < len(line); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		j := i
		for j < len(line) && line[j] != '=' && line[j] != ' ' {
			j++
		}
		key := line[i:j]
		if j >= len(line) || line[j] != '=' {
			if key != "" {
				set(key, "")
			}
			i = j + 1
			continue
		}
		j++
		var val string
		if j < len(line) && line[j] == '"' {
			k := j + 1
			for k < len(line) && line[k] != '"' {
				if line[k] == '\\' {
					k++
				}
				k++
			}
			k = min(k, len(line))
			if s, err := strconv.Unquote(line[j:min(k+1, len(line))]); err == nil {
				val = s
			} else {
				val = line[j+1 : k]
			}
			j = k + 1
		} else {
			k := j
			for k < len(line) && line[k] != ' ' {
				k++
			}
			val = line[j:k]
			j = k
		}
		if key != "" {
			set(key, val)
		}
		i = j
	}
}

// Entry is one kept line, as a metric query counts it.
type Entry struct {
	T      int64 // Unix ns
	Labels tsdb.Labels
	Bytes  int
}

// Point is one value of a metric query result at T (Unix ns).
type Point struct {
	T int64
	V float64
}

// Series is one labelled series of a metric query result.
type Series struct {
	Labels tsdb.Labels
	Points []Point
}

// LogQuery returns the log query at the bottom of q.
func (q *MetricQuery) LogQuery() *LogQuery {
	for q.Agg != nil {
		q = q.Agg.Inner
	}
	return q.Log
}

// RangeOf returns the range of q's range aggregation.
func (q *MetricQuery) RangeOf() time.Duration {
	for q.Agg != nil {
		q = q.Agg.Inner
	}
	return q.Range
}

// Eval evaluates q at every step from start to end (Unix ns, inclusive)
// over entries, which must hold every kept line in (start-Range, end].
// Series are sorted by labels; a series has no point at a step where its
// window is empty, as in Loki.
func (q *MetricQuery) Eval(entries []Entry, start, end int64, step time.Duration) []Series {
	if step <= 0 { // one evaluation, at end
		start, step = end, time.Second
	}
	if q.Agg != nil {
		return q.Agg.eval(q.Agg.Inner.Eval(entries, start, end, step))
	}
	type acc struct {
		ls  tsdb.Labels
		ts  []int64
		len []int
	}
	groups := map[uint64][]*acc{}
	var all []*acc
	for _, e := range entries {
		h := e.Labels.Hash()
		var a *acc
		for _, c := range groups[h] {
			if tsdb.Equal(c.ls, e.Labels) {
				a = c
				break
			}
		}
		if a == nil {
			a = &acc{ls: e.Labels}
			groups[h] = append(groups[h], a)
			all = append(all, a)
		}
		a.ts = append(a.ts, e.T)
		a.len = append(a.len, e.Bytes)
	}
	rng := int64(q.Range)
	out := make([]Series, 0, len(all))
	for _, a := range all {
		idx := make([]int, len(a.ts))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(x, y int) int { return cmpInt(a.ts[x], a.ts[y]) })
		s := Series{Labels: a.ls}
		lo, hi := 0, 0
		var bytesIn float64
		for t := start; t <= end; t += int64(step) {
			for hi < len(idx) && a.ts[idx[hi]] <= t {
				bytesIn += float64(a.len[idx[hi]])
				hi++
			}
			for lo < hi && a.ts[idx[lo]] <= t-rng {
				bytesIn -= float64(a.len[idx[lo]])
				lo++
			}
			n := hi - lo
			if n == 0 {
				continue
			}
			var v float64
			switch q.Func {
			case "count_over_time":
				v = float64(n)
			case "rate":
				v = float64(n) / q.Range.Seconds()
			case "bytes_over_time":
				v = bytesIn
			case "bytes_rate":
				v = bytesIn / q.Range.Seconds()
			}
			s.Points = append(s.Points, Point{T: t, V: v})
		}
		if len(s.Points) > 0 {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(x, y Series) int { return tsdb.Compare(x.Labels, y.Labels) })
	return out
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

func (a *Aggregation) eval(in []Series) []Series {
	type group struct {
		ls   tsdb.Labels
		vals map[int64][]float64
	}
	groups := map[string]*group{}
	var order []string
	for _, s := range in {
		b := tsdb.NewBuilder(s.Labels)
		if a.Without {
			b.Del(a.Grouping...)
		} else {
			b.Keep(a.Grouping...)
		}
		ls := b.Labels()
		key := ls.String()
		g := groups[key]
		if g == nil {
			g = &group{ls: ls, vals: map[int64][]float64{}}
			groups[key] = g
			order = append(order, key)
		}
		for _, p := range s.Points {
			g.vals[p.T] = append(g.vals[p.T], p.V)
		}
	}
	out := make([]Series, 0, len(order))
	for _, k := range order {
		g := groups[k]
		ts := make([]int64, 0, len(g.vals))
		for t := range g.vals {
			ts = append(ts, t)
		}
		slices.Sort(ts)
		s := Series{Labels: g.ls}
		for _, t := range ts {
			vs := g.vals[t]
			var v float64
			switch a.Op {
			case "sum", "avg":
				for _, x := range vs {
					v += x
				}
				if a.Op == "avg" {
					v /= float64(len(vs))
				}
			case "count":
				v = float64(len(vs))
			case "min":
				v = math.Inf(1)
				for _, x := range vs {
					v = math.Min(v, x)
				}
			case "max":
				v = math.Inf(-1)
				for _, x := range vs {
					v = math.Max(v, x)
				}
			}
			s.Points = append(s.Points, Point{T: t, V: v})
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y Series) int { return tsdb.Compare(x.Labels, y.Labels) })
	return out
}
