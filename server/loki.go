package server

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/pillar-db/pillar/logindex"
	"github.com/pillar-db/pillar/server/logql"
	"github.com/pillar-db/pillar/tsdb"
)

// Loki's view of a log record: its line is the body, its stream labels are
// service_name (the resource's service.name), level (the severity text)
// and the other resource attributes with sanitised names. Record
// attributes are not stream labels; `| json` and `| logfmt` extract labels
// from the line.

// ErrTooManyLines: a log query would read more lines than
// Options.MaxScanLines.
var ErrTooManyLines = errors.New("server: log query reads too many lines")

// errBadParam marks a malformed query parameter.
var errBadParam = errors.New("bad parameter")

func lokiError(w http.ResponseWriter, status int, err error) {
	http.Error(w, err.Error(), status)
}

// streamLabels returns the Loki stream labels of a record.
func streamLabels(rec *logindex.Record) tsdb.Labels {
	ss := make([]string, 0, 4+2*len(rec.Resource))
	for _, a := range rec.Resource {
		if a.Key == logindex.ServiceAttr {
			continue
		}
		ss = append(ss, logql.SanitizeLabel(a.Key), a.Value.Text())
	}
	ss = append(ss, "service_name", rec.Service(), "level", rec.SeverityText)
	return tsdb.FromStrings(ss...)
}

// parseLokiTime reads Unix nanoseconds (an integer), Unix seconds with a
// fraction, or RFC 3339.
func parseLokiTime(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 1e12 { // seconds, as Loki accepts too
			return n * 1e9, nil
		}
		return n, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && math.Abs(f) < 1e11 {
		return int64(f * 1e9), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixNano(), nil
	}
	return 0, fmt.Errorf("invalid time %q", s)
}

// lokiRange reads start and end (default: the last hour).
func (s *Server) lokiRange(r *http.Request) (int64, int64, error) {
	end := s.opts.Now().UnixNano()
	if v := r.FormValue("end"); v != "" {
		t, err := parseLokiTime(v)
		if err != nil {
			return 0, 0, fmt.Errorf("%w: end: %w", errBadParam, err)
		}
		end = t
	}
	start := end - int64(time.Hour)
	if v := r.FormValue("start"); v != "" {
		t, err := parseLokiTime(v)
		if err != nil {
			return 0, 0, fmt.Errorf("%w: start: %w", errBadParam, err)
		}
		start = t
	}
	if end < start {
		return 0, 0, fmt.Errorf("%w: end timestamp must not be before start time", errBadParam)
	}
	return start, end, nil
}

// keptLine is a record a log query kept, with its final labels.
type keptLine struct {
	t      int64
	labels tsdb.Labels
	line   string
}

// scanLogs reads records matching lq in [t0, t1), newest first, and calls
// keep for each line the query keeps until keep returns false. It pages
// through the index so post-filters (regexes, parsers) see every
// candidate, and fails past Options.MaxScanLines candidates.
func (s *Server) scanLogs(r *http.Request, lq *logql.LogQuery, t0, t1 int64, keep func(keptLine) bool) error {
	iq := lq.IndexQuery()
	batch := 1000
	scanned := 0
	seen := map[logindex.RecordID]bool{}
	for t1 > t0 {
		hits, err := s.db.Logs().Search(r.Context(), iq, t0, t1, batch)
		if err != nil {
			return err
		}
		for i := range hits {
			h := &hits[i]
			if seen[h.ID] {
				continue
			}
			scanned++
			if scanned > s.opts.MaxScanLines {
				return fmt.Errorf("%w: more than %d; narrow the time range or the stream selector", ErrTooManyLines, s.opts.MaxScanLines)
			}
			ls, ok := lq.Process(streamLabels(&h.Record), string(h.BodyText()))
			if !ok {
				continue
			}
			if !keep(keptLine{t: h.Timestamp, labels: ls, line: string(h.BodyText())}) {
				return nil
			}
		}
		if len(hits) < batch {
			return nil
		}
		oldest := hits[len(hits)-1].Timestamp
		if oldest+1 >= t1 {
			// A whole batch at one timestamp: widen the batch to get past it.
			batch *= 4
			continue
		}
		// Next page: up to and including the oldest timestamp seen, since
		// more records may share it; seen skips the repeats.
		clear(seen)
		for i := range hits {
			if hits[i].Timestamp == oldest {
				seen[hits[i].ID] = true
			}
		}
		t1 = oldest + 1
	}
	return nil
}

func (s *Server) handleLokiQueryRange(w http.ResponseWriter, r *http.Request) {
	start, end, err := s.lokiRange(r)
	if err != nil {
		lokiError(w, http.StatusBadRequest, err)
		return
	}
	step := time.Duration(0)
	if v := r.FormValue("step"); v != "" {
		if step, err = logql.ParseDuration(v); err != nil || step <= 0 {
			lokiError(w, http.StatusBadRequest, fmt.Errorf("invalid step %q", v))
			return
		}
	} else {
		step = max(time.Second, time.Duration(end-start)/250).Truncate(time.Second)
	}
	if time.Duration(end-start)/step > maxPoints {
		lokiError(w, http.StatusBadRequest, errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try increasing the value of the step parameter"))
		return
	}
	s.lokiQuery(w, r, start, end, step)
}

func (s *Server) handleLokiQuery(w http.ResponseWriter, r *http.Request) {
	t := s.opts.Now().UnixNano()
	if v := r.FormValue("time"); v != "" {
		var err error
		if t, err = parseLokiTime(v); err != nil {
			lokiError(w, http.StatusBadRequest, err)
			return
		}
	}
	s.lokiQuery(w, r, t-int64(time.Hour), t, 0)
}

// lokiQuery answers a log query with streams and a metric query with a
// matrix (step > 0) or a vector (step 0, evaluated at end).
func (s *Server) lokiQuery(w http.ResponseWriter, r *http.Request, start, end int64, step time.Duration) {
	qs := r.FormValue("query")
	expr, err := logql.Parse(qs)
	if err != nil {
		lokiError(w, http.StatusBadRequest, err)
		return
	}
	switch e := expr.(type) {
	case *logql.LogQuery:
		s.lokiStreams(w, r, e, start, end)
	case *logql.MetricQuery:
		from := start - int64(e.RangeOf())
		if step == 0 {
			from = end - int64(e.RangeOf())
		}
		var entries []logql.Entry
		// Windows are (t-range, t]; the index range is [t0, t1).
		err := s.scanLogs(r, e.LogQuery(), from+1, end+1, func(k keptLine) bool {
			entries = append(entries, logql.Entry{T: k.t, Labels: k.labels, Bytes: len(k.line)})
			return true
		})
		if err != nil {
			lokiError(w, lokiStatus(err), err)
			return
		}
		series := e.Eval(entries, start, end, step)
		b := []byte(`{"status":"success","data":{"resultType":`)
		if step == 0 {
			b = append(b, `"vector","result":[`...)
			for i, sr := range series {
				if i > 0 {
					b = append(b, ',')
				}
				p := sr.Points[len(sr.Points)-1]
				b = append(b, `{"metric":`...)
				b = appendLabels(b, sr.Labels)
				b = append(b, `,"value":[`...)
				b = strconv.AppendFloat(b, float64(p.T)/1e9, 'f', -1, 64)
				b = append(b, ',')
				b = appendPromFloat(b, p.V)
				b = append(b, "]}"...)
			}
		} else {
			b = append(b, `"matrix","result":[`...)
			for i, sr := range series {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"metric":`...)
				b = appendLabels(b, sr.Labels)
				b = append(b, `,"values":[`...)
				for j, p := range sr.Points {
					if j > 0 {
						b = append(b, ',')
					}
					b = append(b, '[')
					b = strconv.AppendFloat(b, float64(p.T)/1e9, 'f', -1, 64)
					b = append(b, ',')
					b = appendPromFloat(b, p.V)
					b = append(b, ']')
				}
				b = append(b, "]}"...)
			}
		}
		b = append(b, `],"stats":{}}}`...)
		writeJSON(w, http.StatusOK, b)
	}
}

func lokiStatus(err error) int {
	var pe *logindex.ParseError
	switch {
	case errors.As(err, &pe), errors.Is(err, logindex.ErrBadRange), errors.Is(err, logindex.ErrScanLimit):
		return http.StatusBadRequest
	case errors.Is(err, logql.ErrSyntax), errors.Is(err, ErrTooManyLines), errors.Is(err, errBadParam):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func (s *Server) lokiStreams(w http.ResponseWriter, r *http.Request, lq *logql.LogQuery, start, end int64) {
	limit := 100
	if v := r.FormValue("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			lokiError(w, http.StatusBadRequest, fmt.Errorf("invalid limit %q", v))
			return
		}
		limit = n
	}
	limit = min(limit, s.opts.MaxLogLines)
	forward := r.FormValue("direction") == "forward"
	var lines []keptLine
	err := s.scanLogs(r, lq, start, end+1, func(k keptLine) bool {
		lines = append(lines, k)
		// Backward wants the newest lines: stop at the limit. Forward
		// wants the oldest, so it reads the whole range.
		return forward || len(lines) < limit
	})
	if err != nil {
		lokiError(w, lokiStatus(err), err)
		return
	}
	if forward {
		slices.Reverse(lines)
		if len(lines) > limit {
			lines = lines[:limit]
		}
	}
	// Group into streams, keeping each stream's lines in result order.
	type stream struct {
		ls    tsdb.Labels
		lines []keptLine
	}
	var streams []*stream
	byKey := map[string]*stream{}
	for _, l := range lines {
		k := l.labels.String()
		st := byKey[k]
		if st == nil {
			st = &stream{ls: l.labels}
			byKey[k] = st
			streams = append(streams, st)
		}
		st.lines = append(st.lines, l)
	}
	b := []byte(`{"status":"success","data":{"resultType":"streams","result":[`)
	for i, st := range streams {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"stream":`...)
		b = appendLabels(b, st.ls)
		b = append(b, `,"values":[`...)
		for j, l := range st.lines {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `["`...)
			b = strconv.AppendInt(b, l.t, 10)
			b = append(b, `",`...)
			b = appendJSONString(b, l.line)
			b = append(b, ']')
		}
		b = append(b, "]}"...)
	}
	b = append(b, `],"stats":{}}}`...)
	writeJSON(w, http.StatusOK, b)
}

// lokiLabelQuery reads the request's range and optional selector. indexed
// says the selector can be answered per stream from the index: it has no
// pipeline stages and matches only service_name and level, which are
// what a stream (service, severity text) is.
func (s *Server) lokiLabelQuery(r *http.Request) (start, end int64, lq *logql.LogQuery, indexed bool, err error) {
	if start, end, err = s.lokiRange(r); err != nil {
		return 0, 0, nil, false, err
	}
	indexed = true
	if q := r.FormValue("query"); q != "" {
		e, err := logql.Parse(q)
		if err != nil {
			return 0, 0, nil, false, err
		}
		if l, ok := e.(*logql.LogQuery); ok {
			lq = l
			indexed = len(l.Stages) == 0
			for _, m := range l.Matchers {
				indexed = indexed && (m.Name == "service_name" || m.Name == "level")
			}
		}
	}
	return start, end, lq, indexed, nil
}

// indexedStreams returns the stream labels of the newest record of every
// stream in [start, end] that lq (if any) selects, from the log index's
// listings: every stream is seen, however many lines it has.
func (s *Server) indexedStreams(r *http.Request, start, end int64, lq *logql.LogQuery) ([]tsdb.Labels, error) {
	hits, err := s.db.Logs().StreamExamples(r.Context(), start, end+1, 0)
	if err != nil {
		return nil, err
	}
	out := make([]tsdb.Labels, 0, len(hits))
	for i := range hits {
		ls := streamLabels(&hits[i].Record)
		if lq != nil {
			if _, ok := lq.Process(ls, ""); !ok {
				continue
			}
		}
		out = append(out, ls)
	}
	return out, nil
}

// sampleStreams returns the stream labels of the newest records in
// [start, end] that lq selects (Options.LabelSampleLines of them), for
// selectors the index cannot answer per stream.
func (s *Server) sampleStreams(r *http.Request, start, end int64, lq *logql.LogQuery) ([]tsdb.Labels, error) {
	iq := "*"
	if lq != nil {
		iq = lq.IndexQuery()
	}
	hits, err := s.db.Logs().Search(r.Context(), iq, start, end+1, s.opts.LabelSampleLines)
	if err != nil {
		return nil, err
	}
	out := make([]tsdb.Labels, 0, len(hits))
	for i := range hits {
		ls := streamLabels(&hits[i].Record)
		if lq != nil {
			if _, ok := lq.Process(ls, string(hits[i].BodyText())); !ok {
				continue
			}
		}
		out = append(out, ls)
	}
	return out, nil
}

func lokiStrings(w http.ResponseWriter, vals []string) {
	slices.Sort(vals)
	vals = slices.Compact(vals)
	if vals == nil {
		vals = []string{}
	}
	b := []byte(`{"status":"success","data":`)
	b = appendStrings(b, vals)
	writeJSON(w, http.StatusOK, append(b, '}'))
}

func (s *Server) handleLokiLabels(w http.ResponseWriter, r *http.Request) {
	start, end, lq, indexed, err := s.lokiLabelQuery(r)
	if err != nil {
		lokiError(w, lokiStatus(err), err)
		return
	}
	var streams []tsdb.Labels
	if indexed {
		streams, err = s.indexedStreams(r, start, end, lq)
	} else {
		streams, err = s.sampleStreams(r, start, end, lq)
	}
	if err != nil {
		lokiError(w, lokiStatus(err), err)
		return
	}
	var names []string
	for _, ls := range streams {
		for _, l := range ls {
			names = append(names, l.Name)
		}
	}
	lokiStrings(w, names)
}

func (s *Server) handleLokiLabelValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	start, end, lq, indexed, err := s.lokiLabelQuery(r)
	if err != nil {
		lokiError(w, lokiStatus(err), err)
		return
	}
	var vals []string
	if indexed {
		vals, err = s.indexedLabelValues(r, name, start, end, lq)
	} else {
		var streams []tsdb.Labels
		streams, err = s.sampleStreams(r, start, end, lq)
		for _, ls := range streams {
			if v := ls.Get(name); v != "" {
				vals = append(vals, v)
			}
		}
	}
	if err != nil {
		lokiError(w, lokiStatus(err), err)
		return
	}
	lokiStrings(w, vals)
}

// indexedLabelValues lists the values of one stream label from the index.
// service_name and level are a stream's own, so the stream listing holds
// them all. Another label is a resource attribute: its values come from
// the field index (lowercased there), each with the newest record that has
// it, whose stream labels give the value as written.
func (s *Server) indexedLabelValues(r *http.Request, name string, start, end int64, lq *logql.LogQuery) ([]string, error) {
	streams, err := s.indexedStreams(r, start, end, lq)
	if err != nil {
		return nil, err
	}
	var vals []string
	if name == "service_name" || name == "level" {
		for _, ls := range streams {
			if v := ls.Get(name); v != "" {
				vals = append(vals, v)
			}
		}
		return vals, nil
	}
	// The attribute keys that sanitise to name, from the streams' records.
	fields := map[string]bool{}
	hits, err := s.db.Logs().StreamExamples(r.Context(), start, end+1, 0)
	if err != nil {
		return nil, err
	}
	for i := range hits {
		for _, a := range hits[i].Resource {
			if a.Key != logindex.ServiceAttr && logql.SanitizeLabel(a.Key) == name {
				fields[a.Key] = true
			}
		}
	}
	for f := range fields {
		ex, err := s.db.Logs().FieldExamples(r.Context(), f, start, end+1, s.opts.LabelSampleLines)
		if err != nil {
			return nil, err
		}
		for i := range ex {
			ls := streamLabels(&ex[i].Hit.Record)
			if lq != nil {
				if _, ok := lq.Process(ls, ""); !ok {
					continue
				}
			}
			if v := ls.Get(name); v != "" {
				vals = append(vals, v)
			}
		}
	}
	return vals, nil
}
