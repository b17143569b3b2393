package tsdb

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// MatchType is the operator of a label matcher.
type MatchType int

// Matcher operators, as in PromQL.
const (
	MatchEqual     MatchType = iota // =
	MatchNotEqual                   // !=
	MatchRegexp                     // =~
	MatchNotRegexp                  // !~
)

// String returns the PromQL operator.
func (t MatchType) String() string {
	switch t {
	case MatchEqual:
		return "="
	case MatchNotEqual:
		return "!="
	case MatchRegexp:
		return "=~"
	case MatchNotRegexp:
		return "!~"
	}
	return "MatchType(" + strconv.Itoa(int(t)) + ")"
}

// Matcher selects series by one label. A series without the label is matched
// as if its value were "", so `a!="x"` and `a=~"|y"` select series lacking a,
// exactly as in Prometheus. Regexes are fully anchored.
type Matcher struct {
	Type  MatchType
	Name  string
	Value string

	re *regexp.Regexp
	// Fast paths, tried before re: set holds the alternatives of a literal
	// alternation (a|b|c); prefix is set for `prefix.*` (prefixOnly) forms.
	set        []string
	prefix     string
	prefixOnly bool
}

// NewMatcher builds a matcher, compiling regexes once.
func NewMatcher(t MatchType, name, value string) (*Matcher, error) {
	m := &Matcher{Type: t, Name: name, Value: value}
	switch t {
	case MatchEqual, MatchNotEqual:
	case MatchRegexp, MatchNotRegexp:
		re, err := regexp.Compile("^(?s:" + value + ")$")
		if err != nil {
			return nil, fmt.Errorf("%w: matcher %s%s%q: %w", ErrInvalidMatcher, name, t, value, err)
		}
		m.re = re
		m.set, m.prefix, m.prefixOnly = fastPaths(value)
	default:
		return nil, fmt.Errorf("%w: unknown match type %d", ErrInvalidMatcher, int(t))
	}
	return m, nil
}

// fastPaths recognises literal alternations and `literal.*` so that the
// common matchers skip the regex engine (and, for sets, the postings scan).
func fastPaths(expr string) (set []string, prefix string, prefixOnly bool) {
	re, err := syntax.Parse(expr, syntax.Perl|syntax.DotNL)
	if err != nil {
		return nil, "", false
	}
	re = re.Simplify()
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase == 0 {
			return []string{string(re.Rune)}, "", false
		}
	case syntax.OpEmptyMatch:
		return []string{""}, "", false
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			switch {
			case s.Op == syntax.OpLiteral && s.Flags&syntax.FoldCase == 0:
				set = append(set, string(s.Rune))
			case s.Op == syntax.OpEmptyMatch:
				set = append(set, "")
			default:
				return nil, "", false
			}
		}
		return set, "", false
	case syntax.OpConcat:
		if len(re.Sub) == 2 && re.Sub[0].Op == syntax.OpLiteral && re.Sub[0].Flags&syntax.FoldCase == 0 &&
			re.Sub[1].Op == syntax.OpStar && re.Sub[1].Sub[0].Op == syntax.OpAnyChar {
			return nil, string(re.Sub[0].Rune), true
		}
	case syntax.OpStar:
		if re.Sub[0].Op == syntax.OpAnyChar {
			return nil, "", true
		}
	}
	return nil, "", false
}

// Matches reports whether the label value v satisfies the matcher ("" stands
// for an absent label).
func (m *Matcher) Matches(v string) bool {
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.matchRe(v)
	case MatchNotRegexp:
		return !m.matchRe(v)
	}
	return false
}

func (m *Matcher) matchRe(v string) bool {
	if m.set != nil {
		for _, s := range m.set {
			if s == v {
				return true
			}
		}
		return false
	}
	if m.prefixOnly {
		return strings.HasPrefix(v, m.prefix)
	}
	return m.re.MatchString(v)
}

// String prints the matcher as PromQL does: name="value".
func (m *Matcher) String() string {
	return m.Name + m.Type.String() + strconv.Quote(m.Value)
}
