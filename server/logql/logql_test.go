package logql

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/tsdb"
)

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		q   string
		pos int
		msg string
	}{
		{`{}`, 2, "at least one matcher"},
		{`{a="b"`, 6, `expected ","`},
		{`{a~"b"}`, 2, "expected =, !=, =~ or !~"},
		{`{a="b"} | line_format "x"`, 8, "line_format stage is not supported"},
		{`{a="b"} |~ "("`, 8, "invalid regex"},
		{`topk(1, rate({a="b"}[1m]))`, 0, `"topk" is not supported`},
		{`rate({a="b"}[zz])`, 13, "invalid range"},
		{`{a="b"} | x =~ 3`, 12, "regex match needs a string"},
		{`{a="b"} extra`, 8, "unexpected"},
		{`{a="unterminated}`, 3, "unterminated string"},
	} {
		_, err := Parse(c.q)
		require.Error(t, err, c.q)
		require.True(t, errors.Is(err, ErrSyntax), c.q)
		var pe *ParseError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, c.pos, pe.Pos, "%s: %v", c.q, err)
		require.Contains(t, pe.Msg, c.msg, c.q)
	}
}

func TestProcess(t *testing.T) {
	stream := tsdb.FromStrings("service_name", "api", "level", "error")
	for _, c := range []struct {
		q    string
		line string
		keep bool
		want map[string]string // extra labels expected
	}{
		{`{service_name="api"}`, "x", true, nil},
		{`{service_name="web"}`, "x", false, nil},
		{`{service_name=~"a.*", level!="info"}`, "x", true, nil},
		{`{service_name="api"} |= "slow" != "fast"`, "slow query", true, nil},
		{`{service_name="api"} |= "slow" != "fast"`, "slow fast", false, nil},
		{`{service_name="api"} |~ "took=\\d+ms"`, "op took=15ms", true, nil},
		{`{service_name="api"} !~ "^GET"`, "GET /", false, nil},
		{`{service_name="api"} | json | status="500"`, `{"status":"500","req":{"path":"/x"}}`, true, map[string]string{"req_path": "/x"}},
		{`{service_name="api"} | json | status="500"`, `{"status":"200"}`, false, nil},
		{`{service_name="api"} | json | level_extracted="warn"`, `{"level":"warn"}`, true, map[string]string{"level_extracted": "warn"}},
		{`{service_name="api"} | json`, `not json`, true, map[string]string{"__error__": "JSONParserErr"}},
		{`{service_name="api"} | logfmt | dur > 2.5`, `msg="a b" dur=3`, true, map[string]string{"msg": "a b"}},
		{`{service_name="api"} | logfmt | dur <= 2.5`, `dur=3`, false, nil},
		{`{service_name="api"} | logfmt | dur == 3`, `dur=abc`, false, nil},
	} {
		e, err := Parse(c.q)
		require.NoError(t, err, c.q)
		ls, ok := e.(*LogQuery).Process(stream, c.line)
		require.Equal(t, c.keep, ok, "%s on %s", c.q, c.line)
		for k, v := range c.want {
			require.Equal(t, v, ls.Get(k), "%s: label %s", c.q, k)
		}
	}
}

func TestIndexQuery(t *testing.T) {
	for q, want := range map[string]string{
		`{service_name="api", level="error"}`:            `service_name:"api" AND level:"error"`,
		`{service_name=~"api"}`:                          `*`,
		`{a="b"} |= "slow query took"`:                   `"query"`,
		`{a="b"} |= " exact "`:                           `"exact"`,
		`{a="b"} |= "rror"`:                              `*`,
		`{service_name="x\"y"} |= "disk full on /dev/x"`: `"full" AND "on" AND "dev"`,
	} {
		e, err := Parse(q)
		require.NoError(t, err, q)
		require.Equal(t, want, e.(*LogQuery).IndexQuery(), q)
	}
}

func TestEval(t *testing.T) {
	a := tsdb.FromStrings("level", "error", "pod", "a")
	b := tsdb.FromStrings("level", "error", "pod", "b")
	s := int64(time.Second)
	entries := []Entry{{T: 1 * s, Labels: a, Bytes: 10}, {T: 2 * s, Labels: b, Bytes: 5}, {T: 61 * s, Labels: a, Bytes: 1}}
	e, err := Parse(`sum by (level) (count_over_time({level="error"}[1m]))`)
	require.NoError(t, err)
	got := e.(*MetricQuery).Eval(entries, 0, 120*s, time.Minute)
	require.Len(t, got, 1)
	require.Equal(t, tsdb.FromStrings("level", "error"), got[0].Labels)
	// (−60, 0]: none; (0, 60]: 2; (60, 120]: 1.
	require.Equal(t, []Point{{60 * s, 2}, {120 * s, 1}}, got[0].Points)

	e, err = Parse(`bytes_rate({level="error"}[1m])`)
	require.NoError(t, err)
	got = e.(*MetricQuery).Eval(entries, 60*s, 60*s, 0)
	require.Len(t, got, 2)
	require.Equal(t, []Point{{60 * s, 10.0 / 60}}, got[0].Points)

	e, err = Parse(`max without (pod) (count_over_time({level="error"}[2m]))`)
	require.NoError(t, err)
	got = e.(*MetricQuery).Eval(entries, 120*s, 120*s, time.Minute)
	require.Equal(t, []Point{{120 * s, 2}}, got[0].Points)
}

func TestParseDuration(t *testing.T) {
	for s, want := range map[string]time.Duration{"90s": 90 * time.Second, "1h30m": 90 * time.Minute, "500ms": 500 * time.Millisecond,
		"2d": 48 * time.Hour, "1w": 7 * 24 * time.Hour, "15": 15 * time.Second, "0.5": 500 * time.Millisecond} {
		d, err := ParseDuration(s)
		require.NoError(t, err, s)
		require.Equal(t, want, d, s)
	}
	for _, bad := range []string{"", "5x", "m", "-1", "99999999999999y", "NaN"} {
		_, err := ParseDuration(bad)
		require.Error(t, err, bad)
	}
}

func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, q string) {
		e, err := Parse(q)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Pos < 0 || pe.Pos > len(q) {
				t.Fatalf("error %v is not a ParseError with a position in the query", err)
			}
			return
		}
		if mq, ok := e.(*MetricQuery); ok {
			require.NotNil(t, mq.LogQuery())
		}
	})
}
