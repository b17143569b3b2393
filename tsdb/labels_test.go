package tsdb

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLabelsBasics(t *testing.T) {
	ls := FromStrings("job", "api", MetricName, "up", "empty", "", "instance", "a:1")
	require.Equal(t, Labels{{MetricName, "up"}, {"instance", "a:1"}, {"job", "api"}}, ls)
	require.Equal(t, "api", ls.Get("job"))
	require.Equal(t, "", ls.Get("empty"))
	require.True(t, ls.Has("instance"))
	require.False(t, ls.Has("empty"))
	require.Equal(t, `{__name__="up", instance="a:1", job="api"}`, ls.String())
	require.Equal(t, ls, FromMap(ls.Map()))
	require.True(t, Equal(ls, ls.Copy()))
	require.Equal(t, ls.Hash(), FromStrings("instance", "a:1", "job", "api", MetricName, "up").Hash())
	require.NotEqual(t, ls.Hash(), FromStrings("instance", "a:1", "job", "ap", MetricName, "iup").Hash())
	require.Equal(t, ls.HashForLabels("job"), FromStrings("job", "api", "x", "y").HashForLabels("job"))
	require.Equal(t, ls.HashWithoutLabels("instance"), FromStrings("job", "api", MetricName, "other").HashWithoutLabels("instance"))
	require.Equal(t, FromStrings("a", "2"), FromStrings("a", "1", "a", "2"))
}

func TestCompare(t *testing.T) {
	a := FromStrings("a", "1")
	b := FromStrings("a", "1", "b", "1")
	c := FromStrings("a", "2")
	require.Negative(t, Compare(a, b))
	require.Negative(t, Compare(b, c))
	require.Positive(t, Compare(c, a))
	require.Zero(t, Compare(a, a.Copy()))
}

func TestBuilder(t *testing.T) {
	base := FromStrings(MetricName, "m", "a", "1", "b", "2")
	b := NewBuilder(base)
	got := b.Set("c", "3").Set("a", "").Del("b").Set("b", "9").Labels()
	require.Equal(t, FromStrings(MetricName, "m", "b", "9", "c", "3"), got)
	require.Equal(t, FromStrings(MetricName, "m", "a", "1", "b", "2"), base, "base must not change")
	require.Equal(t, FromStrings("c", "3"), b.Keep("c").Labels())
}

func TestValidateLabels(t *testing.T) {
	cases := []struct {
		ls   Labels
		utf8 bool
		name string
	}{
		{Labels{{"", "x"}}, false, ""},
		{Labels{{"a", "1"}, {"a", "2"}}, false, "a"},
		{Labels{{"b", "1"}, {"a", "2"}}, false, "a"},
		{Labels{{"1a", "1"}}, false, "1a"},
		{Labels{{"a-b", "1"}}, false, "a-b"},
		{Labels{{"a", ""}}, false, "a"},
		{Labels{{"a", "\xff"}}, false, "a"},
		{Labels{{"\xff", "x"}}, true, "\xff"},
		{Labels{}, false, ""},
	}
	for _, c := range cases {
		err := validateLabels(c.ls, c.utf8)
		require.ErrorIs(t, err, ErrInvalidLabels, "%v", c.ls)
		var le *LabelError
		require.True(t, errors.As(err, &le))
		require.Equal(t, c.name, le.Name)
	}
	require.NoError(t, validateLabels(Labels{{"a-b.c", "1"}}, true))
	require.NoError(t, validateLabels(FromStrings(MetricName, "x", "_a9", "v"), false))
}

func TestMatcher(t *testing.T) {
	cases := []struct {
		t     MatchType
		value string
		yes   []string
		no    []string
	}{
		{MatchEqual, "a", []string{"a"}, []string{"", "ab"}},
		{MatchNotEqual, "a", []string{"", "b"}, []string{"a"}},
		{MatchRegexp, "a|bc", []string{"a", "bc"}, []string{"", "abc", "b"}},
		{MatchRegexp, "foo.*", []string{"foo", "foobar", "foo\nx"}, []string{"fo", "xfoo"}},
		{MatchRegexp, ".*", []string{"", "x"}, nil},
		{MatchRegexp, "a+", []string{"a", "aaa"}, []string{"", "ab"}},
		{MatchRegexp, "|x", []string{"", "x"}, []string{"y"}},
		{MatchRegexp, "(?i)abc", []string{"ABC", "abc"}, []string{"ab"}},
		{MatchNotRegexp, "a|b", []string{"", "c"}, []string{"a", "b"}},
		{MatchNotRegexp, "foo.*", []string{"", "fo"}, []string{"foo1"}},
	}
	for _, c := range cases {
		m, err := NewMatcher(c.t, "l", c.value)
		require.NoError(t, err)
		for _, v := range c.yes {
			require.True(t, m.Matches(v), "%s on %q", m, v)
		}
		for _, v := range c.no {
			require.False(t, m.Matches(v), "%s on %q", m, v)
		}
	}
	_, err := NewMatcher(MatchRegexp, "l", "(")
	require.ErrorIs(t, err, ErrInvalidMatcher)
	_, err = NewMatcher(MatchType(9), "l", "")
	require.ErrorIs(t, err, ErrInvalidMatcher)
	m, _ := NewMatcher(MatchNotRegexp, "job", "a.*")
	require.Equal(t, `job!~"a.*"`, m.String())
}
