// Package logql parses and evaluates the subset of LogQL that Grafana's
// Explore sends to a Loki data source, and the label selectors PromQL's
// series endpoints take:
//
//	{service_name="api", level=~"err.*"}            stream selector (=, !=, =~, !~)
//	  |= "text"  != "text"  |~ "re"  !~ "re"       line filters
//	  | json   | logfmt                             label extraction
//	  | status="500"  | latency_ms > 250            label filters (string or number)
//	count_over_time(<log query> [1m])               also rate, bytes_over_time, bytes_rate
//	sum by (level) (<metric query>)                 also count, min, max, avg; by or without
//
// Anything else is a *ParseError naming the position, so a query is never
// silently answered differently from Loki. Regexes are Go's (RE2), as in
// Loki; selector regexes are anchored, line-filter regexes are not.
package logql

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pillar-db/pillar/tsdb"
)

// ErrSyntax is wrapped by every *ParseError.
var ErrSyntax = errors.New("logql: syntax error")

// ParseError is a query that does not parse or uses something outside the
// supported subset: what was wrong and the byte offset where.
type ParseError struct {
	Query string
	Pos   int
	Msg   string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("logql: parse error at char %d: %s", e.Pos+1, e.Msg)
}

// Unwrap makes errors.Is(err, ErrSyntax) hold.
func (e *ParseError) Unwrap() error { return ErrSyntax }

// Expr is a parsed query: a *LogQuery or a *MetricQuery.
type Expr interface{ expr() }

// LineFilterOp is a line filter's operator.
type LineFilterOp uint8

// Line filter operators.
const (
	LineContains    LineFilterOp = iota // |=
	LineNotContains                     // !=
	LineMatch                           // |~
	LineNotMatch                        // !~
)

// LineFilter keeps or drops a line by a substring or an unanchored regex.
type LineFilter struct {
	Op   LineFilterOp
	Text string
	re   *regexp.Regexp
}

// CompareOp is a label filter's operator.
type CompareOp uint8

// Label filter operators. The first four compare strings (or regexes),
// the rest numbers.
const (
	CmpEqual CompareOp = iota
	CmpNotEqual
	CmpRegexp
	CmpNotRegexp
	CmpNumEqual
	CmpNumNotEqual
	CmpGreater
	CmpGreaterEqual
	CmpLess
	CmpLessEqual
)

// LabelFilter keeps a line by one of its labels (stream or extracted).
type LabelFilter struct {
	Name    string
	Op      CompareOp
	Value   string  // string operand
	Num     float64 // numeric operand
	matcher *tsdb.Matcher
}

// StageKind says what a pipeline stage does.
type StageKind uint8

// Pipeline stage kinds.
const (
	StageLineFilter StageKind = iota
	StageJSON
	StageLogfmt
	StageLabelFilter
)

// Stage is one step of a log pipeline.
type Stage struct {
	Kind        StageKind
	LineFilter  LineFilter
	LabelFilter LabelFilter
}

// LogQuery selects streams and filters their lines.
type LogQuery struct {
	Matchers []*tsdb.Matcher
	Stages   []Stage
}

func (*LogQuery) expr() {}

// MetricQuery is a range aggregation over a log query (Func, Range, Log)
// or an aggregation over another metric query (Agg).
type MetricQuery struct {
	// Func is count_over_time, rate, bytes_over_time or bytes_rate.
	Func  string
	Range time.Duration
	Log   *LogQuery
	// Agg, when set, aggregates Agg.Inner; Func and Log are then unset.
	Agg *Aggregation
}

func (*MetricQuery) expr() {}

// Aggregation is sum, count, min, max or avg, grouped by or without labels.
type Aggregation struct {
	Op       string
	Grouping []string
	Without  bool
	Inner    *MetricQuery
}

type parser struct {
	q   string
	pos int
}

func (p *parser) errf(pos int, format string, args ...any) error {
	return &ParseError{Query: p.q, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.q) {
		switch p.q[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// peek returns the rest of the query after spaces.
func (p *parser) peek() string { p.skipSpace(); return p.q[p.pos:] }

func (p *parser) accept(tok string) bool {
	if strings.HasPrefix(p.peek(), tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

func (p *parser) expect(tok string) error {
	if !p.accept(tok) {
		return p.errf(p.pos, "expected %q, found %s", tok, p.found())
	}
	return nil
}

func (p *parser) found() string {
	rest := p.peek()
	if rest == "" {
		return "end of query"
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return strconv.QuoteRune(r)
}

func isIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || '0' <= c && c <= '9' }

// ident reads a label name (colons allowed when metric is set).
func (p *parser) ident(metric bool) (string, bool) {
	p.skipSpace()
	i := p.pos
	if i >= len(p.q) || !(isIdentStart(p.q[i]) || metric && p.q[i] == ':') {
		return "", false
	}
	for i < len(p.q) && (isIdentChar(p.q[i]) || metric && p.q[i] == ':') {
		i++
	}
	s := p.q[p.pos:i]
	p.pos = i
	return s, true
}

// str reads a "double-quoted" (Go escapes) or `raw` string.
func (p *parser) str() (string, error) {
	p.skipSpace()
	start := p.pos
	if start >= len(p.q) {
		return "", p.errf(start, "expected a string, found end of query")
	}
	q := p.q[start]
	if q != '"' && q != '`' && q != '\'' {
		return "", p.errf(start, "expected a string, found %s", p.found())
	}
	i := start + 1
	for i < len(p.q) && p.q[i] != q {
		if p.q[i] == '\\' && q != '`' {
			i++
		}
		i++
	}
	if i >= len(p.q) {
		return "", p.errf(start, "unterminated string")
	}
	lit := p.q[start : i+1]
	p.pos = i + 1
	if q == '`' {
		return lit[1 : len(lit)-1], nil
	}
	if q == '\'' {
		lit = `"` + strings.ReplaceAll(strings.ReplaceAll(lit[1:len(lit)-1], `\'`, `'`), `"`, `\"`) + `"`
	}
	s, err := strconv.Unquote(lit)
	if err != nil {
		return "", p.errf(start, "invalid string %s: %v", lit, err)
	}
	return s, nil
}

func matchOp(p *parser) (tsdb.MatchType, bool) {
	switch {
	case p.accept("=~"):
		return tsdb.MatchRegexp, true
	case p.accept("!~"):
		return tsdb.MatchNotRegexp, true
	case p.accept("!="):
		return tsdb.MatchNotEqual, true
	case p.accept("="):
		return tsdb.MatchEqual, true
	}
	return 0, false
}

// matchers reads {a="b", c=~"d"}; the '{' has not been read.
func (p *parser) matchers() ([]*tsdb.Matcher, error) {
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	var ms []*tsdb.Matcher
	for !p.accept("}") {
		if len(ms) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
			if p.accept("}") {
				break
			}
		}
		at := p.pos
		name, ok := p.ident(false)
		if !ok {
			return nil, p.errf(p.pos, "expected a label name, found %s", p.found())
		}
		op, ok := matchOp(p)
		if !ok {
			return nil, p.errf(p.pos, "expected =, !=, =~ or !~ after %s, found %s", name, p.found())
		}
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		m, err := tsdb.NewMatcher(op, name, v)
		if err != nil {
			return nil, p.errf(at, "%v", err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// ParseSeriesSelector parses a PromQL series selector as the series and
// label endpoints take it: `name`, `name{a="b"}` or `{a="b", c=~"d"}`.
func ParseSeriesSelector(s string) ([]*tsdb.Matcher, error) {
	p := &parser{q: s}
	var ms []*tsdb.Matcher
	if name, ok := p.ident(true); ok {
		m, err := tsdb.NewMatcher(tsdb.MatchEqual, tsdb.MetricName, name)
		if err != nil {
			return nil, p.errf(0, "%v", err)
		}
		ms = append(ms, m)
		if p.peek() == "" {
			return ms, nil
		}
	}
	more, err := p.matchers()
	if err != nil {
		return nil, err
	}
	ms = append(ms, more...)
	if rest := p.peek(); rest != "" {
		return nil, p.errf(p.pos, "unexpected %s after the selector", p.found())
	}
	if len(ms) == 0 {
		return nil, p.errf(0, "a selector needs at least one matcher")
	}
	return ms, nil
}

// Parse parses a LogQL query of the supported subset.
func Parse(q string) (Expr, error) {
	p := &parser{q: q}
	var e Expr
	var err error
	if strings.HasPrefix(p.peek(), "{") {
		e, err = p.logQuery()
	} else {
		e, err = p.metricQuery()
	}
	if err != nil {
		return nil, err
	}
	if p.peek() != "" {
		return nil, p.errf(p.pos, "unexpected %s", p.found())
	}
	return e, nil
}

func (p *parser) logQuery() (*LogQuery, error) {
	ms, err := p.matchers()
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, p.errf(p.pos, "a stream selector needs at least one matcher")
	}
	lq := &LogQuery{Matchers: ms}
	for {
		p.skipSpace()
		at := p.pos
		var op LineFilterOp
		switch {
		case p.accept("|="):
			op = LineContains
		case p.accept("!="):
			op = LineNotContains
		case p.accept("|~"):
			op = LineMatch
		case p.accept("!~"):
			op = LineNotMatch
		case p.accept("|"):
			st, err := p.pipeStage(at)
			if err != nil {
				return nil, err
			}
			lq.Stages = append(lq.Stages, st)
			continue
		default:
			return lq, nil
		}
		text, err := p.str()
		if err != nil {
			return nil, err
		}
		lf := LineFilter{Op: op, Text: text}
		if op == LineMatch || op == LineNotMatch {
			if lf.re, err = regexp.Compile(text); err != nil {
				return nil, p.errf(at, "invalid regex %q: %v", text, err)
			}
		}
		lq.Stages = append(lq.Stages, Stage{Kind: StageLineFilter, LineFilter: lf})
	}
}

// pipeStage reads what follows a '|': a parser or a label filter.
func (p *parser) pipeStage(at int) (Stage, error) {
	name, ok := p.ident(false)
	if !ok {
		return Stage{}, p.errf(p.pos, "expected json, logfmt or a label filter after '|', found %s", p.found())
	}
	switch name {
	case "json":
		return Stage{Kind: StageJSON}, nil
	case "logfmt":
		return Stage{Kind: StageLogfmt}, nil
	case "line_format", "label_format", "unwrap", "drop", "keep", "pattern", "regexp", "unpack", "decolorize", "distinct":
		return Stage{}, p.errf(at, "the %s stage is not supported (supported: json, logfmt, label filters)", name)
	}
	lf := LabelFilter{Name: name}
	p.skipSpace()
	opAt := p.pos
	switch {
	case p.accept("=~"):
		lf.Op = CmpRegexp
	case p.accept("!~"):
		lf.Op = CmpNotRegexp
	case p.accept("=="):
		lf.Op = CmpNumEqual
	case p.accept("!="):
		lf.Op = CmpNotEqual
	case p.accept(">="):
		lf.Op = CmpGreaterEqual
	case p.accept("<="):
		lf.Op = CmpLessEqual
	case p.accept(">"):
		lf.Op = CmpGreater
	case p.accept("<"):
		lf.Op = CmpLess
	case p.accept("="):
		lf.Op = CmpEqual
	default:
		return Stage{}, p.errf(p.pos, "expected a comparison after label %s, found %s", name, p.found())
	}
	rest := p.peek()
	if rest != "" && (rest[0] == '"' || rest[0] == '`' || rest[0] == '\'') {
		v, err := p.str()
		if err != nil {
			return Stage{}, err
		}
		var mt tsdb.MatchType
		switch lf.Op {
		case CmpEqual:
			mt = tsdb.MatchEqual
		case CmpNotEqual:
			mt = tsdb.MatchNotEqual
		case CmpRegexp:
			mt = tsdb.MatchRegexp
		case CmpNotRegexp:
			mt = tsdb.MatchNotRegexp
		default:
			return Stage{}, p.errf(opAt, "a numeric comparison needs a number, not a string")
		}
		m, err := tsdb.NewMatcher(mt, name, v)
		if err != nil {
			return Stage{}, p.errf(opAt, "%v", err)
		}
		lf.Value, lf.matcher = v, m
		return Stage{Kind: StageLabelFilter, LabelFilter: lf}, nil
	}
	numAt := p.pos
	i := p.pos
	for i < len(p.q) && strings.IndexByte("0123456789.eE+-", p.q[i]) >= 0 {
		i++
	}
	f, err := strconv.ParseFloat(p.q[p.pos:i], 64)
	if err != nil || i == p.pos {
		return Stage{}, p.errf(numAt, "expected a string or a number after label %s, found %s", name, p.found())
	}
	p.pos = i
	switch lf.Op {
	case CmpEqual:
		lf.Op = CmpNumEqual
	case CmpNotEqual:
		lf.Op = CmpNumNotEqual
	case CmpRegexp, CmpNotRegexp:
		return Stage{}, p.errf(opAt, "a regex match needs a string")
	}
	lf.Num = f
	return Stage{Kind: StageLabelFilter, LabelFilter: lf}, nil
}

var rangeFuncs = map[string]bool{"count_over_time": true, "rate": true, "bytes_over_time": true, "bytes_rate": true}
var aggOps = map[string]bool{"sum": true, "count": true, "min": true, "max": true, "avg": true}

func (p *parser) grouping(a *Aggregation) error {
	switch {
	case p.accept("by"):
	case p.accept("without"):
		a.Without = true
	default:
		return nil
	}
	if err := p.expect("("); err != nil {
		return err
	}
	a.Grouping = []string{}
	for !p.accept(")") {
		if len(a.Grouping) > 0 {
			if err := p.expect(","); err != nil {
				return err
			}
		}
		l, ok := p.ident(false)
		if !ok {
			return p.errf(p.pos, "expected a label name in the grouping, found %s", p.found())
		}
		a.Grouping = append(a.Grouping, l)
	}
	return nil
}

func (p *parser) metricQuery() (*MetricQuery, error) {
	at := p.pos
	name, ok := p.ident(false)
	if !ok {
		return nil, p.errf(p.pos, "expected a stream selector or a function, found %s", p.found())
	}
	switch {
	case rangeFuncs[name]:
		if err := p.expect("("); err != nil {
			return nil, err
		}
		lq, err := p.logQuery()
		if err != nil {
			return nil, err
		}
		if err := p.expect("["); err != nil {
			return nil, err
		}
		dAt := p.pos
		end := strings.IndexByte(p.q[p.pos:], ']')
		if end < 0 {
			return nil, p.errf(dAt, "unterminated range")
		}
		d, err := ParseDuration(strings.TrimSpace(p.q[p.pos : p.pos+end]))
		if err != nil || d <= 0 {
			return nil, p.errf(dAt, "invalid range %q", p.q[p.pos:p.pos+end])
		}
		p.pos += end + 1
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return &MetricQuery{Func: name, Range: d, Log: lq}, nil
	case aggOps[name]:
		a := &Aggregation{Op: name}
		if err := p.grouping(a); err != nil {
			return nil, err
		}
		if err := p.expect("("); err != nil {
			return nil, err
		}
		inner, err := p.metricQuery()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		if a.Grouping == nil {
			if err := p.grouping(a); err != nil {
				return nil, err
			}
		}
		a.Inner = inner
		return &MetricQuery{Agg: a}, nil
	}
	return nil, p.errf(at, "function or aggregation %q is not supported (supported: count_over_time, rate, bytes_over_time, bytes_rate; sum, count, min, max, avg)", name)
}

// ParseDuration reads a Prometheus/Loki duration: "90s", "1m30s", "500ms",
// "1h", "2d", "1w", "1y" (units ms, s, m, h, d, w, y), or plain seconds.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || f > float64(1<<62)/1e9 || f != f {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(f * 1e9), nil
	}
	var total time.Duration
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && '0' <= s[j] && s[j] <= '9' {
			j++
		}
		if j == i || j-i > 12 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		n, _ := strconv.ParseInt(s[i:j], 10, 64)
		k := j
		for k < len(s) && ('a' <= s[k] && s[k] <= 'z') {
			k++
		}
		var unit time.Duration
		switch s[j:k] {
		case "ms":
			unit = time.Millisecond
		case "s":
			unit = time.Second
		case "m":
			unit = time.Minute
		case "h":
			unit = time.Hour
		case "d":
			unit = 24 * time.Hour
		case "w":
			unit = 7 * 24 * time.Hour
		case "y":
			unit = 365 * 24 * time.Hour
		default:
			return 0, fmt.Errorf("invalid unit %q in duration %q", s[j:k], s)
		}
		if n > int64(1<<62)/int64(unit) {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		total += time.Duration(n) * unit
		if total < 0 || total > 1<<62 {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		i = k
	}
	return total, nil
}
