package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/pillar-db/pillar/query"
	"github.com/pillar-db/pillar/server/logql"
	"github.com/pillar-db/pillar/tsdb"
)

// Prometheus API error types, as its HTTP API names them.
const (
	errBadData   = "bad_data"
	errExecution = "execution"
	errTimeout   = "timeout"
	errCanceled  = "canceled"
	errInternal  = "internal"
)

// maxPoints is Prometheus' bound on a range query's points per series.
const maxPoints = 11000

// Series endpoints without start/end cover all time.
const (
	minTime = math.MinInt64 / 4
	maxTime = math.MaxInt64 / 4
)

func promError(w http.ResponseWriter, typ string, err error) {
	status := http.StatusInternalServerError
	switch typ {
	case errBadData:
		status = http.StatusBadRequest
	case errExecution:
		status = http.StatusUnprocessableEntity
	case errTimeout:
		status = http.StatusServiceUnavailable
	case errCanceled:
		status = 499
	}
	b := []byte(`{"status":"error","errorType":"` + typ + `","error":`)
	b = appendJSONString(b, err.Error())
	writeJSON(w, status, append(b, '}'))
}

// queryErrorType classifies an engine error as Prometheus does.
func queryErrorType(err error) string {
	var pe *query.ParseError
	switch {
	case errors.As(err, &pe), errors.Is(err, query.ErrInvalidArgument):
		return errBadData
	case errors.Is(err, context.DeadlineExceeded):
		return errTimeout
	case errors.Is(err, context.Canceled):
		return errCanceled
	case errors.Is(err, query.ErrUnsupported), errors.Is(err, query.ErrTooManySamples), errors.Is(err, query.ErrDuplicateLabelset):
		return errExecution
	}
	return errInternal
}

// parsePromTime reads RFC 3339 or Unix seconds (fractions allowed).
func parsePromTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e13 {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

func (s *Server) timeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.FormValue(name)
	if v == "" {
		return def, nil
	}
	t, err := parsePromTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid parameter %q: %w", name, err)
	}
	return t, nil
}

// queryContext applies the request's timeout parameter, if any.
func (s *Server) queryContext(r *http.Request) (context.Context, context.CancelFunc, error) {
	if v := r.FormValue("timeout"); v != "" {
		d, err := logql.ParseDuration(v)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid parameter \"timeout\": %w", err)
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		return ctx, cancel, nil
	}
	ctx, cancel := context.WithCancel(r.Context())
	return ctx, cancel, nil
}

func (s *Server) handlePromQuery(w http.ResponseWriter, r *http.Request) {
	qs := r.FormValue("query")
	if qs == "" {
		promError(w, errBadData, errors.New(`invalid parameter "query": empty query`))
		return
	}
	ts, err := s.timeParam(r, "time", s.opts.Now())
	if err != nil {
		promError(w, errBadData, err)
		return
	}
	ctx, cancel, err := s.queryContext(r)
	if err != nil {
		promError(w, errBadData, err)
		return
	}
	defer cancel()
	v, err := s.engine.Instant(ctx, qs, ts)
	if err != nil {
		promError(w, queryErrorType(err), err)
		return
	}
	b := []byte(`{"status":"success","data":`)
	b = appendValue(b, v, ts.UnixMilli())
	writeJSON(w, http.StatusOK, append(b, '}'))
}

func (s *Server) handlePromQueryRange(w http.ResponseWriter, r *http.Request) {
	qs := r.FormValue("query")
	if qs == "" {
		promError(w, errBadData, errors.New(`invalid parameter "query": empty query`))
		return
	}
	start, err := s.timeParam(r, "start", time.Time{})
	if err == nil && start.IsZero() {
		err = errors.New(`invalid parameter "start": missing`)
	}
	if err != nil {
		promError(w, errBadData, err)
		return
	}
	end, err := s.timeParam(r, "end", time.Time{})
	if err == nil && end.IsZero() {
		err = errors.New(`invalid parameter "end": missing`)
	}
	if err != nil {
		promError(w, errBadData, err)
		return
	}
	if end.Before(start) {
		promError(w, errBadData, errors.New(`invalid parameter "end": end timestamp must not be before start time`))
		return
	}
	step, err := logql.ParseDuration(r.FormValue("step"))
	if err != nil || step <= 0 {
		promError(w, errBadData, errors.New(`invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer`))
		return
	}
	if end.Sub(start)/step > maxPoints {
		promError(w, errBadData, errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"))
		return
	}
	ctx, cancel, err := s.queryContext(r)
	if err != nil {
		promError(w, errBadData, err)
		return
	}
	defer cancel()
	m, err := s.engine.Range(ctx, qs, start, end, step)
	if err != nil {
		promError(w, queryErrorType(err), err)
		return
	}
	b := []byte(`{"status":"success","data":`)
	b = appendValue(b, m, 0)
	writeJSON(w, http.StatusOK, append(b, '}'))
}

// appendValue writes a query result as {"resultType":...,"result":...}.
func appendValue(b []byte, v query.Value, ts int64) []byte {
	switch v := v.(type) {
	case query.Matrix:
		b = append(b, `{"resultType":"matrix","result":[`...)
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"metric":`...)
			b = appendLabels(b, s.Labels)
			b = appendPointList(b, `,"values":[`, s.Floats, func(b []byte, p query.FPoint) []byte {
				return appendPromFloat(append(appendPromTime(b, p.T), ','), p.F)
			})
			b = appendPointList(b, `,"histograms":[`, s.Histograms, func(b []byte, p query.HPoint) []byte {
				return appendHistogram(append(appendPromTime(b, p.T), ','), p.H)
			})
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	case query.Vector:
		b = append(b, `{"resultType":"vector","result":[`...)
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"metric":`...)
			b = appendLabels(b, s.Labels)
			if s.H != nil {
				b = append(b, `,"histogram":[`...)
				b = appendPromTime(b, s.T)
				b = append(b, ',')
				b = appendHistogram(b, s.H)
			} else {
				b = append(b, `,"value":[`...)
				b = appendPromTime(b, s.T)
				b = append(b, ',')
				b = appendPromFloat(b, s.F)
			}
			b = append(b, "]}"...)
		}
		b = append(b, "]}"...)
	case query.Scalar:
		b = append(b, `{"resultType":"scalar","result":[`...)
		b = appendPromTime(b, v.T)
		b = append(b, ',')
		b = appendPromFloat(b, v.F)
		b = append(b, "]}"...)
	case query.String:
		b = append(b, `{"resultType":"string","result":[`...)
		b = appendPromTime(b, v.T)
		b = append(b, ',')
		b = appendJSONString(b, v.V)
		b = append(b, "]}"...)
	default:
		b = append(b, `{"resultType":"vector","result":[]}`...)
	}
	return b
}

// appendHistogram writes a native histogram as Prometheus' API does:
// count, sum and the non-empty buckets as [boundaryRule, lower, upper, count].
func appendHistogram(b []byte, h *query.FloatHistogram) []byte {
	b = append(b, `{"count":`...)
	b = appendPromFloat(b, h.Count)
	b = append(b, `,"sum":`...)
	b = appendPromFloat(b, h.Sum)
	b = append(b, `,"buckets":[`...)
	it := h.AllBucketIterator()
	first := true
	for it.Next() {
		bk := it.At()
		if bk.Count == 0 {
			continue
		}
		rule := 2 // open on both sides
		if bk.LowerInclusive {
			if bk.UpperInclusive {
				rule = 3
			} else {
				rule = 1
			}
		} else if bk.UpperInclusive {
			rule = 0
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(rule), 10)
		b = append(b, ',')
		b = appendPromFloat(b, bk.Lower)
		b = append(b, ',')
		b = appendPromFloat(b, bk.Upper)
		b = append(b, ',')
		b = appendPromFloat(b, bk.Count)
		b = append(b, ']')
	}
	return append(b, "]}"...)
}

// matchSets parses the match[] parameters.
func matchSets(r *http.Request) ([][]*tsdb.Matcher, error) {
	var sets [][]*tsdb.Matcher
	for _, m := range r.Form["match[]"] {
		ms, err := logql.ParseSeriesSelector(m)
		if err != nil {
			return nil, fmt.Errorf("invalid parameter \"match[]\": %w", err)
		}
		sets = append(sets, ms)
	}
	return sets, nil
}

func (s *Server) seriesRange(r *http.Request) (int64, int64, error) {
	start, err := s.timeParam(r, "start", time.Time{})
	if err != nil {
		return 0, 0, err
	}
	end, err := s.timeParam(r, "end", time.Time{})
	if err != nil {
		return 0, 0, err
	}
	mint, maxt := int64(minTime), int64(maxTime)
	if !start.IsZero() {
		mint = start.UnixMilli()
	}
	if !end.IsZero() {
		maxt = end.UnixMilli()
	}
	if maxt < mint {
		return 0, 0, errors.New(`invalid parameter "end": end timestamp must not be before start time`)
	}
	return mint, maxt, nil
}

// metadataQuery parses the match[] sets and time range shared by the
// series, labels and label-values endpoints and opens a querier over the
// range; on a bad request it has already answered and returns ok false.
func (s *Server) metadataQuery(w http.ResponseWriter, r *http.Request, needMatch bool) (sets [][]*tsdb.Matcher, q *tsdb.Querier, ok bool) {
	if err := r.ParseForm(); err != nil {
		promError(w, errBadData, err)
		return nil, nil, false
	}
	sets, err := matchSets(r)
	if err == nil && needMatch && len(sets) == 0 {
		err = errors.New("no match[] parameter provided")
	}
	if err != nil {
		promError(w, errBadData, err)
		return nil, nil, false
	}
	mint, maxt, err := s.seriesRange(r)
	if err != nil {
		promError(w, errBadData, err)
		return nil, nil, false
	}
	if q, err = s.db.Metrics().Querier(mint, maxt); err != nil {
		promError(w, errInternal, err)
		return nil, nil, false
	}
	return sets, q, true
}

func (s *Server) handlePromSeries(w http.ResponseWriter, r *http.Request) {
	sets, q, ok := s.metadataQuery(w, r, true)
	if !ok {
		return
	}
	defer q.Close()
	var all []tsdb.Labels
	for _, ms := range sets {
		ss := q.Select(r.Context(), true, ms...)
		for ss.Next() {
			all = append(all, ss.At().Labels().Copy())
		}
		if err := ss.Err(); err != nil {
			promError(w, errInternal, err)
			return
		}
	}
	slices.SortFunc(all, tsdb.Compare)
	all = slices.CompactFunc(all, tsdb.Equal)
	b := []byte(`{"status":"success","data":[`)
	for i, ls := range all {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLabels(b, ls)
	}
	writeJSON(w, http.StatusOK, append(b, "]}"...))
}

// labelQuery runs f once per match[] set (once with none when there are
// none) and merges the sorted results.
func (s *Server) labelQuery(w http.ResponseWriter, r *http.Request, f func(q *tsdb.Querier, ms []*tsdb.Matcher) ([]string, error)) {
	sets, q, ok := s.metadataQuery(w, r, false)
	if !ok {
		return
	}
	defer q.Close()
	if len(sets) == 0 {
		sets = [][]*tsdb.Matcher{nil}
	}
	var out []string
	for _, ms := range sets {
		vs, err := f(q, ms)
		if err != nil {
			promError(w, errInternal, err)
			return
		}
		out = append(out, vs...)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	b := []byte(`{"status":"success","data":`)
	b = appendStrings(b, out)
	writeJSON(w, http.StatusOK, append(b, '}'))
}

func (s *Server) handlePromLabels(w http.ResponseWriter, r *http.Request) {
	s.labelQuery(w, r, func(q *tsdb.Querier, ms []*tsdb.Matcher) ([]string, error) {
		return q.LabelNames(r.Context(), ms...)
	})
}

func (s *Server) handlePromLabelValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.labelQuery(w, r, func(q *tsdb.Querier, ms []*tsdb.Matcher) ([]string, error) {
		return q.LabelValues(r.Context(), name, ms...)
	})
}

// handlePromExemplars answers with no exemplars: the metric store keeps none.
func (s *Server) handlePromExemplars(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"status":"success","data":[]}`))
}

// handlePromMetadata answers with no metadata: the store keeps no metric
// types or help texts.
func (s *Server) handlePromMetadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"status":"success","data":{}}`))
}

// promAPIVersion is the Prometheus release whose HTTP API the server
// follows; clients such as Grafana pick their features by it.
const promAPIVersion = "2.53.0"

func (s *Server) handlePromBuildInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"status":"success","data":{"version":"`+promAPIVersion+
		`","revision":"pillar","branch":"","buildUser":"","buildDate":"","goVersion":"go1.26"}}`))
}

// appendPointList appends a matrix series' points under open (a key and
// its opening bracket) as [time, value] pairs, nothing when pts is empty;
// point writes the time, a comma and the value.
func appendPointList[P any](b []byte, open string, pts []P, point func(b []byte, p P) []byte) []byte {
	if len(pts) == 0 {
		return b
	}
	b = append(b, open...)
	for j, p := range pts {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = point(b, p)
		b = append(b, ']')
	}
	return append(b, ']')
}
