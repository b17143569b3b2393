package server

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pillar-db/pillar/server/logql"
	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tracestore/otlpconv"
)

// defaultTagValues is how many values the tag values endpoint lists when
// the request names no limit; maxTagValues bounds the limit it may name.
const (
	defaultTagValues = 1000
	maxTagValues     = 10000
)

func tempoError(w http.ResponseWriter, status int, msg string) {
	http.Error(w, msg, status)
}

// handleTempoTrace returns one trace: OTLP/JSON by default, protobuf
// (TracesData, which is wire-identical to Tempo's tempopb.Trace) when the
// client accepts application/protobuf.
func (s *Server) handleTempoTrace(w http.ResponseWriter, r *http.Request) {
	id, err := tracestore.ParseTraceID(padTraceID(r.PathValue("id")))
	if err != nil {
		tempoError(w, http.StatusBadRequest, err.Error())
		return
	}
	tr, err := s.db.Traces().Trace(r.Context(), id)
	if errors.Is(err, tracestore.ErrNotFound) {
		tempoError(w, http.StatusNotFound, "trace not found")
		return
	}
	if err != nil {
		tempoError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "application/protobuf") {
		b, err := otlpconv.MarshalProto(tr.Spans)
		if err != nil {
			tempoError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/protobuf")
		_, _ = w.Write(b)
		return
	}
	b, err := otlpconv.MarshalJSON(tr.Spans)
	if err != nil {
		tempoError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// padTraceID left-pads a hex trace ID to 32 digits, as Tempo accepts
// 64-bit IDs.
func padTraceID(s string) string {
	if len(s) < 32 {
		return strings.Repeat("0", 32-len(s)) + s
	}
	return s
}

// ParseLogfmtTags parses Tempo's tags parameter: space-separated key=value
// pairs, values optionally double-quoted.
func ParseLogfmtTags(s string) (map[string]string, error) {
	out := map[string]string{}
	for i := 0; i < len(s); {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) {
			break
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq <= 0 {
			return nil, fmt.Errorf("invalid tags %q: expected key=value at %d", s, i)
		}
		key := s[i : i+eq]
		if strings.ContainsRune(key, ' ') {
			return nil, fmt.Errorf("invalid tags %q: key %q has a space", s, key)
		}
		j := i + eq + 1
		var val string
		if j < len(s) && s[j] == '"' {
			k := j + 1
			for k < len(s) && s[k] != '"' {
				if s[k] == '\\' {
					k++
				}
				k++
			}
			if k >= len(s) {
				return nil, fmt.Errorf("invalid tags %q: unterminated quote", s)
			}
			v, err := strconv.Unquote(s[j : k+1])
			if err != nil {
				return nil, fmt.Errorf("invalid tags %q: %v", s, err)
			}
			val, j = v, k+1
		} else {
			k := j
			for k < len(s) && s[k] != ' ' {
				k++
			}
			val, j = s[j:k], k
		}
		out[key] = val
		i = j
	}
	return out, nil
}

func (s *Server) handleTempoSearch(w http.ResponseWriter, r *http.Request) {
	var q tracestore.Query
	if tq := r.FormValue("q"); tq != "" {
		var err error
		if q, err = ParseTraceQL(tq); err != nil {
			tempoError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	q.Limit = 20
	tags, err := ParseLogfmtTags(r.FormValue("tags"))
	if err != nil {
		tempoError(w, http.StatusBadRequest, err.Error())
		return
	}
	for k, v := range tags {
		switch k {
		case "service.name", "resource.service.name":
			q.Service = v
		case "name", "span.name":
			q.Operation = v
		default:
			if q.Attributes == nil {
				q.Attributes = map[string]string{}
			}
			q.Attributes[strings.TrimPrefix(strings.TrimPrefix(k, "span."), "resource.")] = v
		}
	}
	for _, p := range []struct {
		name string
		dst  *time.Duration
	}{{"minDuration", &q.MinDuration}, {"maxDuration", &q.MaxDuration}} {
		if v := r.FormValue(p.name); v != "" {
			d, err := logql.ParseDuration(v)
			if err != nil {
				tempoError(w, http.StatusBadRequest, fmt.Sprintf("invalid %s: %v", p.name, err))
				return
			}
			*p.dst = d
		}
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"start", &q.Start}, {"end", &q.End}} {
		if v := r.FormValue(p.name); v != "" {
			sec, err := strconv.ParseInt(v, 10, 64)
			if err != nil || sec < 0 || sec > 1<<33 {
				tempoError(w, http.StatusBadRequest, fmt.Sprintf("invalid %s %q: want Unix seconds", p.name, v))
				return
			}
			*p.dst = sec * 1e9
		}
	}
	if q.End != 0 {
		q.End += 1e9 - 1 // the whole last second
	}
	if v := r.FormValue("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			tempoError(w, http.StatusBadRequest, fmt.Sprintf("invalid limit %q", v))
			return
		}
		q.Limit = min(n, 10000)
	}
	found, err := s.db.Traces().Find(r.Context(), q)
	if err != nil {
		tempoError(w, http.StatusInternalServerError, err.Error())
		return
	}
	b := []byte(`{"traces":[`)
	for i, t := range found {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"traceID":"`...)
		b = append(b, t.TraceID.String()...)
		b = append(b, `","rootServiceName":`...)
		b = appendJSONString(b, t.RootService)
		b = append(b, `,"rootTraceName":`...)
		b = appendJSONString(b, t.RootOperation)
		b = append(b, `,"startTimeUnixNano":"`...)
		b = strconv.AppendInt(b, t.Start, 10)
		b = append(b, `","durationMs":`...)
		b = strconv.AppendInt(b, t.Duration.Milliseconds(), 10)
		b = append(b, '}')
	}
	b = append(b, `],"metrics":{"inspectedTraces":`...)
	b = strconv.AppendInt(b, int64(len(found)), 10)
	b = append(b, "}}"...)
	writeJSON(w, http.StatusOK, b)
}

// tagRange reads the tag endpoints' optional start and end (Unix
// seconds, as Tempo takes them) into the store's inclusive nanosecond
// range, zero meaning open.
func tagRange(r *http.Request) (start, end int64, err error) {
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"start", &start}, {"end", &end}} {
		if v := r.FormValue(p.name); v != "" {
			sec, err := strconv.ParseInt(v, 10, 64)
			if err != nil || sec < 0 || sec > 1<<33 {
				return 0, 0, fmt.Errorf("invalid %s %q: want Unix seconds", p.name, v)
			}
			*p.dst = sec * 1e9
		}
	}
	if end != 0 {
		end += 1e9 - 1 // the whole last second
	}
	return start, end, nil
}

// handleTempoTags lists the attribute keys of the spans in the range from
// the store's attribute index, with the intrinsic tags Tempo lists too.
func (s *Server) handleTempoTags(w http.ResponseWriter, r *http.Request) {
	start, end, err := tagRange(r)
	if err != nil {
		tempoError(w, http.StatusBadRequest, err.Error())
		return
	}
	keys, err := s.db.Traces().AttributeKeys(r.Context(), start, end)
	if err != nil {
		tempoError(w, http.StatusInternalServerError, err.Error())
		return
	}
	names := append(keys, "service.name", "name")
	slices.Sort(names)
	names = slices.Compact(names)
	b := []byte(`{"tagNames":`)
	b = appendStrings(b, names)
	writeJSON(w, http.StatusOK, append(b, '}'))
}

func (s *Server) handleTempoTagValues(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	var vals []string
	switch tag {
	case "service.name", "resource.service.name":
		svcs, err := s.db.Traces().Services(r.Context())
		if err != nil {
			tempoError(w, http.StatusInternalServerError, err.Error())
			return
		}
		vals = svcs
	case "name", "span.name":
		svcs, err := s.db.Traces().Services(r.Context())
		if err != nil {
			tempoError(w, http.StatusInternalServerError, err.Error())
			return
		}
		for _, svc := range svcs {
			ops, err := s.db.Traces().Operations(r.Context(), svc)
			if err != nil {
				tempoError(w, http.StatusInternalServerError, err.Error())
				return
			}
			for _, op := range ops {
				vals = append(vals, op.Name)
			}
		}
	default:
		start, end, err := tagRange(r)
		if err != nil {
			tempoError(w, http.StatusBadRequest, err.Error())
			return
		}
		limit := defaultTagValues
		if v := r.FormValue("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				tempoError(w, http.StatusBadRequest, fmt.Sprintf("invalid limit %q", v))
				return
			}
			limit = min(n, maxTagValues)
		}
		key := strings.TrimPrefix(strings.TrimPrefix(tag, "span."), "resource.")
		if vals, err = s.db.Traces().AttributeValues(r.Context(), key, start, end, limit); err != nil {
			tempoError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	slices.Sort(vals)
	vals = slices.Compact(vals)
	if vals == nil {
		vals = []string{}
	}
	b := []byte(`{"tagValues":`)
	b = appendStrings(b, vals)
	writeJSON(w, http.StatusOK, append(b, '}'))
}
