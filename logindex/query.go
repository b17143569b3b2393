package logindex

import (
	"errors"
	"fmt"
	"strings"
)

// ErrSyntax is wrapped by every *ParseError.
var ErrSyntax = errors.New("logindex: query syntax error")

// ParseError is a malformed query: what was wrong and the byte offset in
// the query where it was found.
type ParseError struct {
	Query string
	Pos   int
	Msg   string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("logindex: query %q: %s at position %d", e.Query, e.Msg, e.Pos)
}

// Unwrap makes errors.Is(err, ErrSyntax) hold.
func (e *ParseError) Unwrap() error { return ErrSyntax }

type nodeKind uint8

const (
	nodeAll nodeKind = iota // matches every record in the time range
	nodeTerm
	nodePrefix
	nodePhrase
	nodeField
	nodeFieldPrefix
	nodeAnd
	nodeOr
	nodeNot
)

// node is a parsed query. Terms, prefixes and phrase tokens are lowercased
// tokens; field names and values are lowercased.
type node struct {
	kind   nodeKind
	field  string
	value  string
	tokens []string
	kids   []*node
}

// Field names the query language maps onto indexed fields.
const (
	fieldLevel   = "level"
	fieldService = "service"
	fieldTraceID = "trace_id"
	fieldSpanID  = "span_id"
	fieldStream  = "_stream"
)

// canonicalField maps the names users type onto indexed field names.
func canonicalField(f string) string {
	f = strings.ToLower(f)
	switch f {
	case "severity", "severity_text", "level":
		return fieldLevel
	case "service", "service.name", "service_name":
		return fieldService
	case "trace_id", "traceid", "trace":
		return fieldTraceID
	case "span_id", "spanid":
		return fieldSpanID
	}
	return f
}

type lexKind uint8

const (
	lexEOF lexKind = iota
	lexWord
	lexQuoted
	lexLParen
	lexRParen
	lexAnd
	lexOr
	lexNot
)

type lexeme struct {
	kind lexKind
	text string
	pos  int
}

type parser struct {
	q    string
	lex  []lexeme
	i    int
	tokz Tokenizer
}

// Query is a parsed query, safe to reuse and share between goroutines.
type Query struct {
	text string
	root *node
}

// String returns the query's text.
func (q *Query) String() string { return q.text }

// ParseQuery parses a Kibana/Lucene-style query: bare terms, "phrases",
// field:value, field:"exact value", field:prefix*, term*, AND / OR / NOT
// (also &&, ||, ! and a leading -), AND implied between terms, and
// parentheses. An empty query or * matches everything. A malformed query
// gives a *ParseError with the byte position of the problem.
func ParseQuery(q string) (*Query, error) {
	p := &parser{q: q}
	if err := p.lexAll(); err != nil {
		return nil, err
	}
	if len(p.lex) == 1 { // only EOF
		return &Query{text: q, root: &node{kind: nodeAll}}, nil
	}
	root, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if l := p.peek(); l.kind != lexEOF {
		return nil, p.errAt(l.pos, "unexpected %s", describe(l))
	}
	return &Query{text: q, root: root}, nil
}

func describe(l lexeme) string {
	switch l.kind {
	case lexEOF:
		return "end of query"
	case lexRParen:
		return "')'"
	case lexLParen:
		return "'('"
	case lexAnd, lexOr, lexNot:
		return "operator " + l.text
	}
	return fmt.Sprintf("%q", l.text)
}

func (p *parser) errAt(pos int, format string, args ...any) error {
	return &ParseError{Query: p.q, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) lexAll() error {
	q := p.q
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case isSpace(c):
			i++
		case c == '(':
			p.lex = append(p.lex, lexeme{lexLParen, "(", i})
			i++
		case c == ')':
			p.lex = append(p.lex, lexeme{lexRParen, ")", i})
			i++
		case c == '"':
			s, n, err := p.quoted(i)
			if err != nil {
				return err
			}
			p.lex = append(p.lex, lexeme{lexQuoted, s, i})
			i += n
		case c == '!' || (c == '-' && i+1 < len(q) && !isSpace(q[i+1])):
			p.lex = append(p.lex, lexeme{lexNot, q[i : i+1], i})
			i++
		default:
			start := i
			for i < len(q) && !isSpace(q[i]) && q[i] != '(' && q[i] != ')' && q[i] != '"' {
				if q[i] == '\\' && i+1 < len(q) {
					i++
				}
				i++
			}
			w := q[start:i]
			// field:"value" keeps the quoted part with the word.
			if strings.HasSuffix(w, ":") && i < len(q) && q[i] == '"' {
				s, n, err := p.quoted(i)
				if err != nil {
					return err
				}
				p.lex = append(p.lex, lexeme{lexWord, w + "\"" + s, start})
				i += n
				continue
			}
			k := lexWord
			switch w {
			case "AND", "&&":
				k = lexAnd
			case "OR", "||":
				k = lexOr
			case "NOT":
				k = lexNot
			}
			p.lex = append(p.lex, lexeme{k, w, start})
		}
	}
	p.lex = append(p.lex, lexeme{lexEOF, "", len(q)})
	return nil
}

// quoted reads a "..." string starting at q[i] == '"', with \" and \\
// escapes, returning its content and length in the query.
func (p *parser) quoted(i int) (string, int, error) {
	q := p.q
	var b strings.Builder
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			if j+1 < len(q) {
				j++
				b.WriteByte(q[j])
			}
		case '"':
			return b.String(), j + 1 - i, nil
		default:
			b.WriteByte(q[j])
		}
	}
	return "", 0, p.errAt(i, "unterminated quote")
}

func (p *parser) peek() lexeme { return p.lex[p.i] }
func (p *parser) next() lexeme {
	l := p.lex[p.i]
	if l.kind != lexEOF {
		p.i++
	}
	return l
}

func (p *parser) parseOr() (*node, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == lexOr {
		p.next()
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		if left.kind == nodeOr {
			left.kids = append(left.kids, right)
		} else {
			left = &node{kind: nodeOr, kids: []*node{left, right}}
		}
	}
	return left, nil
}

func startsUnary(k lexKind) bool {
	return k == lexWord || k == lexQuoted || k == lexLParen || k == lexNot
}

func (p *parser) parseAnd() (*node, error) {
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		k := p.peek().kind
		if k == lexAnd {
			p.next()
		} else if !startsUnary(k) {
			return left, nil
		}
		right, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		if left.kind == nodeAnd {
			left.kids = append(left.kids, right)
		} else {
			left = &node{kind: nodeAnd, kids: []*node{left, right}}
		}
	}
}

func (p *parser) parseUnary() (*node, error) {
	if p.peek().kind == lexNot {
		p.next()
		kid, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return &node{kind: nodeNot, kids: []*node{kid}}, nil
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (*node, error) {
	l := p.next()
	switch l.kind {
	case lexLParen:
		if p.peek().kind == lexRParen {
			return nil, p.errAt(p.peek().pos, "empty parentheses")
		}
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if r := p.next(); r.kind != lexRParen {
			return nil, p.errAt(r.pos, "expected ')' to close '(' at position %d, found %s", l.pos, describe(r))
		}
		return n, nil
	case lexQuoted:
		return p.phrase(l.text, l.pos)
	case lexWord:
		return p.word(l)
	}
	return nil, p.errAt(l.pos, "expected a term, phrase or '(', found %s", describe(l))
}

// phrase turns quoted text into a phrase of its tokens (a term if one).
func (p *parser) phrase(s string, pos int) (*node, error) {
	toks := p.tokens(s)
	switch len(toks) {
	case 0:
		return nil, p.errAt(pos, "phrase %q has no letters or digits", s)
	case 1:
		return &node{kind: nodeTerm, value: toks[0]}, nil
	}
	return &node{kind: nodePhrase, tokens: toks}, nil
}

func (p *parser) tokens(s string) []string {
	var out []string
	p.tokz.ResetString(s)
	for p.tokz.Next() {
		out = append(out, string(p.tokz.Token()))
	}
	return out
}

func unescape(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// word handles term, term*, field:value, field:value*, field:"value".
func (p *parser) word(l lexeme) (*node, error) {
	w := l.text
	if c := indexUnescaped(w, ':'); c >= 0 {
		field, val := unescape(w[:c]), w[c+1:]
		if field == "" {
			return nil, p.errAt(l.pos, "missing field name before ':'")
		}
		field = canonicalField(field)
		if strings.HasPrefix(val, "\"") {
			return &node{kind: nodeField, field: field, value: strings.ToLower(val[1:])}, nil
		}
		if val == "" {
			return nil, p.errAt(l.pos+c+1, "missing value after %q", w[:c+1])
		}
		if val == "*" {
			return &node{kind: nodeFieldPrefix, field: field}, nil
		}
		if strings.HasSuffix(val, "*") && !strings.HasSuffix(val, "\\*") {
			return &node{kind: nodeFieldPrefix, field: field, value: strings.ToLower(unescape(val[:len(val)-1]))}, nil
		}
		return &node{kind: nodeField, field: field, value: strings.ToLower(unescape(val))}, nil
	}
	if w == "*" {
		return &node{kind: nodeAll}, nil
	}
	if strings.HasSuffix(w, "*") && !strings.HasSuffix(w, "\\*") {
		toks := p.tokens(unescape(w[:len(w)-1]))
		if len(toks) != 1 || !isASCIIWordOrRune(w[len(w)-2:]) {
			return nil, p.errAt(l.pos, "prefix %q must be a single token followed by *", w)
		}
		return &node{kind: nodePrefix, value: toks[0]}, nil
	}
	return p.phrase(unescape(w), l.pos)
}

// isASCIIWordOrRune reports whether the byte before the trailing * (s is
// its last two bytes) belongs to a token, so "foo.*" is refused.
func isASCIIWordOrRune(s string) bool {
	c := s[0]
	return c >= 0x80 || isASCIIWord(c)
}

func indexUnescaped(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == c {
			return i
		}
	}
	return -1
}

// narrows reports whether n's matches are bounded by some postings list,
// i.e. whether evaluating it needs no scan of the whole time range.
func (n *node) narrows() bool {
	switch n.kind {
	case nodeAll, nodeNot:
		return false
	case nodeAnd:
		for _, k := range n.kids {
			if k.narrows() {
				return true
			}
		}
		return false
	case nodeOr:
		for _, k := range n.kids {
			if !k.narrows() {
				return false
			}
		}
		return true
	}
	return true
}

// hasPhrase reports whether n contains a phrase, whose word order postings
// cannot check.
func (n *node) hasPhrase() bool {
	if n.kind == nodePhrase {
		return true
	}
	for _, k := range n.kids {
		if k.hasPhrase() {
			return true
		}
	}
	return false
}
