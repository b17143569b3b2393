package server

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pillar-db/pillar/server/logql"
	"github.com/pillar-db/pillar/tracestore"
)

// ParseTraceQL reads the one-span-set TraceQL that Grafana's Tempo search
// builder writes, a conjunction of conditions on one span:
//
//	{ resource.service.name = "api" && name = "GET /" && span.http.status_code = 500
//	  && duration > 100ms && duration <= 2s }
//
// into a tracestore.Query (whose conditions, as in TraceQL's span sets, all
// hold on one span). Anything else — ||, pipelines, other operators or
// intrinsics — is an error, so no query is silently answered differently.
func ParseTraceQL(q string) (tracestore.Query, error) {
	var out tracestore.Query
	s := strings.TrimSpace(q)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return out, fmt.Errorf("traceql: want a single span set { ... }: %q", q)
	}
	body := strings.TrimSpace(s[1 : len(s)-1])
	if body == "" {
		return out, nil
	}
	for _, cond := range splitAnd(body) {
		cond = strings.TrimSpace(cond)
		op, i := "", -1
		for _, o := range []string{">=", "<=", "!=", "=~", "!~", "=", ">", "<"} {
			if j := strings.Index(cond, o); j > 0 && (i < 0 || j < i) {
				op, i = o, j
			}
		}
		if i < 0 {
			return out, fmt.Errorf("traceql: condition %q has no operator", cond)
		}
		key := strings.TrimSpace(cond[:i])
		val := strings.TrimSpace(cond[i+len(op):])
		if uq, err := strconv.Unquote(val); err == nil {
			val = uq
		} else if strings.HasPrefix(val, `"`) {
			return out, fmt.Errorf("traceql: bad string %s", val)
		}
		switch {
		case key == "duration":
			d, err := logql.ParseDuration(val)
			if err != nil {
				return out, fmt.Errorf("traceql: bad duration %q", val)
			}
			switch op {
			case ">", ">=":
				if op == ">" {
					d++
				}
				out.MinDuration = d
			case "<", "<=":
				if op == "<" {
					d--
				}
				out.MaxDuration = d
			case "=":
				out.MinDuration, out.MaxDuration = d, d
			default:
				return out, fmt.Errorf("traceql: operator %s on duration is not supported", op)
			}
			continue
		case op != "=":
			return out, fmt.Errorf("traceql: operator %s on %s is not supported (only = on attributes)", op, key)
		case key == "resource.service.name" || key == ".service.name":
			out.Service = val
		case key == "name":
			out.Operation = val
		case strings.HasPrefix(key, "span.") || strings.HasPrefix(key, "resource.") || strings.HasPrefix(key, "."):
			k := key[strings.IndexByte(key, '.')+1:]
			if k == "" {
				return out, fmt.Errorf("traceql: empty attribute name in %q", cond)
			}
			if out.Attributes == nil {
				out.Attributes = map[string]string{}
			}
			out.Attributes[k] = val
		default:
			return out, fmt.Errorf("traceql: %q is not supported (use resource.*, span.*, name, duration)", key)
		}
	}
	return out, nil
}

// splitAnd splits on && outside quotes and rejects ||.
func splitAnd(s string) []string {
	var parts []string
	inQ := false
	last := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && inQ:
			i++
		case s[i] == '"':
			inQ = !inQ
		case !inQ && strings.HasPrefix(s[i:], "&&"):
			parts = append(parts, s[last:i])
			last = i + 2
			i++
		case !inQ && strings.HasPrefix(s[i:], "||"):
			return []string{"||"}
		}
	}
	return append(parts, s[last:])
}
