package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/pillar-db/pillar"
	"github.com/pillar-db/pillar/server"
	"github.com/pillar-db/pillar/tsdb"
)

// testServer runs a Server over a fresh store on a loopback port.
type testServer struct {
	t   testing.TB
	db  *pillar.DB
	srv *server.Server
	hs  *httptest.Server
}

func newTestServer(t testing.TB, o *server.Options) *testServer {
	t.Helper()
	db, err := pillar.Open(t.TempDir(), nil)
	require.NoError(t, err)
	s := server.New(db, o)
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		hs.Close()
		require.NoError(t, db.Close())
	})
	return &testServer{t: t, db: db, srv: s, hs: hs}
}

func (ts *testServer) post(path, contentType, encoding string, body []byte) (int, string) {
	ts.t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.hs.URL+path, bytes.NewReader(body))
	require.NoError(ts.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := ts.hs.Client().Do(req)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(ts.t, err)
	return resp.StatusCode, string(b)
}

func (ts *testServer) get(path string, params url.Values) (int, []byte) {
	ts.t.Helper()
	u := ts.hs.URL + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	resp, err := ts.hs.Client().Get(u)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(ts.t, err)
	return resp.StatusCode, b
}

// getJSON GETs path and decodes a 200 JSON answer into v.
func (ts *testServer) getJSON(path string, params url.Values, v any) {
	ts.t.Helper()
	code, b := ts.get(path, params)
	require.Equal(ts.t, http.StatusOK, code, "%s: %s", path, b)
	require.NoError(ts.t, json.Unmarshal(b, v), "%s", b)
}

func remoteWriteBody(t testing.TB, wr *prompb.WriteRequest) []byte {
	b, err := wr.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

type promMatrix struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric     map[string]string `json:"metric"`
			Values     [][2]any          `json:"values"`
			Value      [2]any            `json:"value"`
			Histograms [][2]any          `json:"histograms"`
		} `json:"result"`
	} `json:"data"`
}

func TestRemoteWriteRoundTrip(t *testing.T) {
	ts := newTestServer(t, nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	wr := &prompb.WriteRequest{}
	for _, job := range []string{"api", "web"} {
		series := prompb.TimeSeries{Labels: []prompb.Label{
			{Name: "__name__", Value: "http_requests_total"}, {Name: "job", Value: job},
		}}
		for i := range 60 {
			series.Samples = append(series.Samples, prompb.Sample{Timestamp: t0 + int64(i)*15000, Value: float64(i * 10)})
		}
		series.Exemplars = []prompb.Exemplar{{Value: 1, Timestamp: t0}}
		wr.Timeseries = append(wr.Timeseries, series)
	}
	// A native histogram: 3 observations, two in bucket 1 and one in bucket 2.
	wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
		Labels: []prompb.Label{{Name: "__name__", Value: "latency_seconds"}, {Name: "job", Value: "api"}},
		Histograms: []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 3}, Sum: 2.5, Schema: 0,
			ZeroCount:     &prompb.Histogram_ZeroCountInt{ZeroCountInt: 0},
			PositiveSpans: []prompb.BucketSpan{{Offset: 1, Length: 2}}, PositiveDeltas: []int64{2, -1},
			Timestamp: t0,
		}},
	})
	code, msg := ts.post("/api/v1/write", "application/x-protobuf", "snappy", remoteWriteBody(t, wr))
	require.Equal(t, http.StatusNoContent, code, msg)

	var m promMatrix
	ts.getJSON("/api/v1/query_range", url.Values{
		"query": {`http_requests_total`}, "start": {fmt.Sprint(t0 / 1000)},
		"end": {fmt.Sprint(t0/1000 + 885)}, "step": {"60"},
	}, &m)
	require.Equal(t, "success", m.Status)
	require.Equal(t, "matrix", m.Data.ResultType)
	require.Len(t, m.Data.Result, 2)
	require.Equal(t, "web", m.Data.Result[1].Metric["job"])
	require.Len(t, m.Data.Result[0].Values, 15)
	require.Equal(t, "40", m.Data.Result[0].Values[1][1]) // t0+60s is sample 4
	require.InDelta(t, float64(t0)/1000+60, m.Data.Result[0].Values[1][0], 1e-9)

	// rate over the counter (10 per 15 s).
	ts.getJSON("/api/v1/query", url.Values{"query": {`sum(rate(http_requests_total[5m]))`}, "time": {fmt.Sprint(t0/1000 + 600)}}, &m)
	require.Equal(t, "vector", m.Data.ResultType)
	require.Len(t, m.Data.Result, 1)
	v, err := strconv.ParseFloat(m.Data.Result[0].Value[1].(string), 64)
	require.NoError(t, err)
	require.InDelta(t, 2*10.0/15, v, 1e-9)

	// The native histogram comes back as one.
	code, raw := ts.get("/api/v1/query", url.Values{"query": {`latency_seconds`}, "time": {fmt.Sprint(t0 / 1000)}})
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(raw), `"histogram":[1767225600,{"count":"3","sum":"2.5","buckets":[[0,"1","2","2"],[0,"2","4","1"]]}]`)

	// An out-of-order sample rejects the whole request, which stores nothing.
	bad := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "fresh_metric"}}, Samples: []prompb.Sample{{Timestamp: t0, Value: 1}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "job", Value: "api"}},
			Samples: []prompb.Sample{{Timestamp: t0, Value: 5}}},
	}}
	code, msg = ts.post("/api/v1/write", "application/x-protobuf", "snappy", remoteWriteBody(t, bad))
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, msg, "out of order")
	var names struct{ Data []string }
	ts.getJSON("/api/v1/label/__name__/values", nil, &names)
	require.Equal(t, []string{"http_requests_total", "latency_seconds"}, names.Data)

	// Series, labels and status endpoints.
	var series struct{ Data []map[string]string }
	ts.getJSON("/api/v1/series", url.Values{"match[]": {`http_requests_total{job=~"a.*"}`}}, &series)
	require.Equal(t, []map[string]string{{"__name__": "http_requests_total", "job": "api"}}, series.Data)
	ts.getJSON("/api/v1/labels", nil, &names)
	require.Equal(t, []string{"__name__", "job"}, names.Data)
	code, b := ts.get("/api/v1/status/buildinfo", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(b), `"version"`)

	// POST form bodies work like GET.
	resp, err := ts.hs.Client().PostForm(ts.hs.URL+"/api/v1/query", url.Values{"query": {"count(http_requests_total)"}, "time": {fmt.Sprint(t0/1000 + 60)}})
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.Contains(t, string(b), `"2"`)
}

func TestPromAPIErrors(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, c := range []struct {
		path   string
		params url.Values
		code   int
		typ    string
	}{
		{"/api/v1/query", url.Values{"query": {"sum(("}}, 400, "bad_data"},
		{"/api/v1/query", url.Values{}, 400, "bad_data"},
		{"/api/v1/query", url.Values{"query": {"up"}, "time": {"yesterday"}}, 400, "bad_data"},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"10"}, "end": {"5"}, "step": {"1"}}, 400, "bad_data"},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"100000"}, "step": {"1"}}, 400, "bad_data"},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"10"}, "step": {"0"}}, 400, "bad_data"},
		{"/api/v1/series", url.Values{}, 400, "bad_data"},
		{"/api/v1/series", url.Values{"match[]": {`{job=`}}, 400, "bad_data"},
	} {
		code, b := ts.get(c.path, c.params)
		require.Equal(t, c.code, code, "%s %v: %s", c.path, c.params, b)
		var e struct{ Status, ErrorType, Error string }
		require.NoError(t, json.Unmarshal(b, &e))
		require.Equal(t, "error", e.Status)
		require.Equal(t, c.typ, e.ErrorType)
		require.NotEmpty(t, e.Error)
	}
}

func otlpAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func TestOTLPTracesProtoAndJSON(t *testing.T) {
	ts := newTestServer(t, nil)
	now := uint64(time.Now().UnixNano())
	tid := bytes.Repeat([]byte{0xab}, 16)
	td := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlpAttr("service.name", "checkout")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			{TraceId: tid, SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "GET /cart", StartTimeUnixNano: now, EndTimeUnixNano: now + 600e6,
				Attributes: []*commonpb.KeyValue{otlpAttr("http.status_code", "500")}},
			// Rejected: zero span ID. The rest is stored (partial success).
			{TraceId: tid, SpanId: make([]byte, 8), Name: "bad", StartTimeUnixNano: now, EndTimeUnixNano: now + 1},
		}}},
	}}}
	body, err := proto.Marshal(td)
	require.NoError(t, err)
	code, resp := ts.post("/v1/traces", "application/x-protobuf", "", body)
	require.Equal(t, http.StatusOK, code, resp)
	require.Contains(t, resp, "zero span ID")

	// JSON with hex IDs, gzip-compressed.
	js := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"payments"}}]},
	  "scopeSpans":[{"spans":[{"traceId":"%032x","spanId":"0102030405060709","name":"charge","startTimeUnixNano":"%d","endTimeUnixNano":"%d"}]}]}]}`, 7, now, now+1e6)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(js))
	require.NoError(t, zw.Close())
	code, resp = ts.post("/v1/traces", "application/json", "gzip", gz.Bytes())
	require.Equal(t, http.StatusOK, code, resp)
	require.Equal(t, "{}", resp)

	// Tempo: the trace by ID, as JSON and as protobuf.
	code, b := ts.get("/api/traces/"+fmt.Sprintf("%x", tid), nil)
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.Contains(t, string(b), "GET /cart")
	require.NotContains(t, string(b), `"bad"`)
	req, _ := http.NewRequest(http.MethodGet, ts.hs.URL+"/api/traces/7", nil)
	req.Header.Set("Accept", "application/protobuf")
	hr, err := ts.hs.Client().Do(req)
	require.NoError(t, err)
	pb, _ := io.ReadAll(hr.Body)
	hr.Body.Close()
	require.Equal(t, http.StatusOK, hr.StatusCode)
	var back tracepb.TracesData
	require.NoError(t, proto.Unmarshal(pb, &back))
	require.Equal(t, "charge", back.ResourceSpans[0].ScopeSpans[0].Spans[0].Name)
	code, _ = ts.get("/api/traces/"+strings.Repeat("1", 32), nil)
	require.Equal(t, http.StatusNotFound, code)

	// Tempo search.
	var sr struct {
		Traces []struct {
			TraceID, RootServiceName, RootTraceName string
			DurationMs                              int
		}
	}
	ts.getJSON("/api/search", url.Values{"tags": {`service.name=checkout http.status_code=500`}, "minDuration": {"500ms"}}, &sr)
	require.Len(t, sr.Traces, 1)
	require.Equal(t, fmt.Sprintf("%x", tid), sr.Traces[0].TraceID)
	require.Equal(t, "GET /cart", sr.Traces[0].RootTraceName)
	require.Equal(t, 600, sr.Traces[0].DurationMs)
	ts.getJSON("/api/search", url.Values{"tags": {`service.name=checkout`}, "maxDuration": {"100ms"}}, &sr)
	require.Empty(t, sr.Traces)
	// The TraceQL Grafana's search builder writes.
	ts.getJSON("/api/search", url.Values{"q": {`{ resource.service.name = "checkout" && span.http.status_code = "500" && duration > 500ms }`}}, &sr)
	require.Len(t, sr.Traces, 1)
	ts.getJSON("/api/search", url.Values{"q": {`{ name = "charge" && duration <= 1ms }`}}, &sr)
	require.Len(t, sr.Traces, 1)
	require.Equal(t, "payments", sr.Traces[0].RootServiceName)
	for _, bad := range []string{`{ .a = 1 || .b = 2 }`, `{ span.x > 3 }`, `{ kind = server }`, `{ .a = 1 } | count() > 2`} {
		code, b := ts.get("/api/search", url.Values{"q": {bad}})
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", bad, b)
		require.Contains(t, string(b), "traceql")
	}
	var tags struct{ TagNames []string }
	ts.getJSON("/api/search/tags", nil, &tags)
	require.Contains(t, tags.TagNames, "http.status_code")
	var vals struct{ TagValues []string }
	ts.getJSON("/api/search/tag/service.name/values", nil, &vals)
	require.Equal(t, []string{"checkout", "payments"}, vals.TagValues)
	ts.getJSON("/api/search/tag/http.status_code/values", nil, &vals)
	require.Equal(t, []string{"500"}, vals.TagValues)
}

func logRecord(t time.Time, level, body string, attrs ...*commonpb.KeyValue) *logspb.LogRecord {
	return &logspb.LogRecord{TimeUnixNano: uint64(t.UnixNano()), SeverityText: level,
		Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: body}}, Attributes: attrs}
}

type lokiResp struct {
	Status string
	Data   struct {
		ResultType string
		Result     []struct {
			Stream map[string]string
			Metric map[string]string
			Values [][2]any
			Value  [2]any
		}
	}
}

func TestOTLPLogsThroughLoki(t *testing.T) {
	ts := newTestServer(t, nil)
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	var recs []*logspb.LogRecord
	for i := range 40 {
		level, body := "info", fmt.Sprintf(`{"msg":"served request","status":"200","latency_ms":%d}`, i)
		if i%4 == 0 {
			level, body = "error", fmt.Sprintf(`{"msg":"slow query took too long","status":"500","latency_ms":%d}`, 1000+i)
		}
		recs = append(recs, logRecord(t0.Add(time.Duration(i)*time.Second), level, body))
	}
	recs = append(recs, logRecord(t0.Add(50*time.Second), "warn", `user=bob action="log in" took=12ms`))
	ld := &logspb.LogsData{ResourceLogs: []*logspb.ResourceLogs{{
		Resource:  &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlpAttr("service.name", "api"), otlpAttr("k8s.namespace", "prod")}},
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: recs}},
	}}}
	body, err := proto.Marshal(ld)
	require.NoError(t, err)
	code, resp := ts.post("/v1/logs", "application/x-protobuf", "", body)
	require.Equal(t, http.StatusOK, code, resp)

	rng := url.Values{"start": {fmt.Sprint(t0.Add(-time.Minute).UnixNano())}, "end": {fmt.Sprint(t0.Add(2 * time.Minute).UnixNano())}}
	q := func(query string, extra ...string) lokiResp {
		p := url.Values{"query": {query}}
		for k, v := range rng {
			p[k] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			p.Set(extra[i], extra[i+1])
		}
		var r lokiResp
		ts.getJSON("/loki/api/v1/query_range", p, &r)
		require.Equal(t, "success", r.Status)
		return r
	}
	r := q(`{service_name="api", level="error"}`)
	require.Equal(t, "streams", r.Data.ResultType)
	require.Len(t, r.Data.Result, 1)
	require.Equal(t, map[string]string{"service_name": "api", "level": "error", "k8s_namespace": "prod"}, r.Data.Result[0].Stream)
	require.Len(t, r.Data.Result[0].Values, 10)
	// Newest first by default.
	require.Equal(t, fmt.Sprint(t0.Add(36*time.Second).UnixNano()), r.Data.Result[0].Values[0][0])

	// Extracted labels are stream labels, so each line is its own stream.
	r = q(`{service_name="api"} |= "query took" | json | latency_ms > 1030`)
	require.Len(t, r.Data.Result, 2) // 1036, 1032
	require.Equal(t, "500", r.Data.Result[0].Stream["status"])
	require.Equal(t, "1036", r.Data.Result[0].Stream["latency_ms"])

	r = q(`{service_name=~"a.*", level!="error"} |~ "took=\\d+ms" | logfmt | user="bob"`)
	require.Len(t, r.Data.Result, 1)
	require.Equal(t, "log in", r.Data.Result[0].Stream["action"])

	r = q(`{service_name="api"} != "served" !~ "slow"`, "limit", "5", "direction", "forward")
	require.Len(t, r.Data.Result, 1)
	require.Len(t, r.Data.Result[0].Values, 1)

	r = q(`{service_name="api"}`, "limit", "3", "direction", "forward")
	total := 0
	for _, s := range r.Data.Result {
		total += len(s.Values)
	}
	require.Equal(t, 3, total)
	require.Equal(t, fmt.Sprint(t0.UnixNano()), r.Data.Result[0].Values[0][0])

	// Metric queries.
	r = q(`sum by (level) (count_over_time({service_name="api"}[1m]))`, "step", "60")
	require.Equal(t, "matrix", r.Data.ResultType)
	require.Len(t, r.Data.Result, 3)
	byLevel := map[string]float64{}
	for _, s := range r.Data.Result {
		for _, v := range s.Values {
			f, _ := strconv.ParseFloat(v[1].(string), 64)
			byLevel[s.Metric["level"]] = math.Max(byLevel[s.Metric["level"]], f)
		}
	}
	// Windows are left-open: the error at t0 falls out of (t0, t0+1m].
	require.Equal(t, map[string]float64{"error": 9, "info": 30, "warn": 1}, byLevel)

	var iv lokiResp
	ts.getJSON("/loki/api/v1/query", url.Values{"query": {`sum(rate({service_name="api", level="error"}[5m]))`},
		"time": {fmt.Sprint(t0.Add(2 * time.Minute).UnixNano())}}, &iv)
	require.Equal(t, "vector", iv.Data.ResultType)
	require.Len(t, iv.Data.Result, 1)
	f, _ := strconv.ParseFloat(iv.Data.Result[0].Value[1].(string), 64)
	require.InDelta(t, 10.0/300, f, 1e-12)

	// Labels.
	var labels struct{ Data []string }
	ts.getJSON("/loki/api/v1/labels", rng, &labels)
	require.Equal(t, []string{"k8s_namespace", "level", "service_name"}, labels.Data)
	ts.getJSON("/loki/api/v1/label/level/values", rng, &labels)
	require.Equal(t, []string{"error", "info", "warn"}, labels.Data)

	// Unsupported LogQL is a clear 400.
	for _, bad := range []string{`{service_name="api"} | line_format "{{.msg}}"`, `topk(3, count_over_time({a="b"}[1m]))`, `{`, `{a="b"} |= `} {
		p := url.Values{"query": {bad}}
		code, b := ts.get("/loki/api/v1/query_range", p)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", bad, b)
		require.Contains(t, string(b), "logql")
	}
}

func TestOTLPMetrics(t *testing.T) {
	ts := newTestServer(t, nil)
	now := time.Now().Truncate(time.Second)
	ns := uint64(now.UnixNano())
	attrs := []*commonpb.KeyValue{otlpAttr("http.method", "GET")}
	md := &metricspb.MetricsData{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlpAttr("service.name", "shop")}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{
			{Name: "queue.depth", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{
				{TimeUnixNano: ns, Value: &metricspb.NumberDataPoint_AsInt{AsInt: 7}, Attributes: attrs}}}}},
			{Name: "http.requests", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{IsMonotonic: true,
				AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
				DataPoints:             []*metricspb.NumberDataPoint{{TimeUnixNano: ns, Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 42}}}}}},
			{Name: "latency", Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{
				AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
				DataPoints: []*metricspb.HistogramDataPoint{{TimeUnixNano: ns, Count: 6, Sum: proto.Float64(3),
					ExplicitBounds: []float64{0.1, 1}, BucketCounts: []uint64{1, 2, 3}}}}}},
			{Name: "size", Data: &metricspb.Metric_ExponentialHistogram{ExponentialHistogram: &metricspb.ExponentialHistogram{
				AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
				DataPoints: []*metricspb.ExponentialHistogramDataPoint{{TimeUnixNano: ns, Count: 5, Sum: proto.Float64(20), Scale: 10,
					ZeroCount: 1, Positive: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: 3, BucketCounts: []uint64{1, 1, 2}}}}}}},
			{Name: "delta.sum", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
				AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
				DataPoints:             []*metricspb.NumberDataPoint{{TimeUnixNano: ns}}}}},
		}}},
	}}}
	body, err := proto.Marshal(md)
	require.NoError(t, err)
	code, resp := ts.post("/v1/metrics", "application/x-protobuf", "", body)
	require.Equal(t, http.StatusOK, code, resp)
	require.Contains(t, resp, "delta temporality")

	at := url.Values{"time": {fmt.Sprint(now.Unix())}}
	check := func(q, want string) {
		t.Helper()
		p := url.Values{"query": {q}, "time": at["time"]}
		var m promMatrix
		ts.getJSON("/api/v1/query", p, &m)
		require.Len(t, m.Data.Result, 1, q)
		require.Equal(t, want, m.Data.Result[0].Value[1], q)
	}
	check(`queue_depth{job="shop", http_method="GET"}`, "7")
	check(`http_requests_total`, "42")
	check(`latency_bucket{le="1"}`, "3")
	check(`latency_bucket{le="+Inf"}`, "6")
	check(`latency_count`, "6")
	check(`histogram_count(size)`, "5")
}

func TestImportText(t *testing.T) {
	ts := newTestServer(t, nil)
	body := `# TYPE jobs_done counter
jobs_done{queue="a"} 10 1767225600000
jobs_done{queue="a"} 12 1767225660000
# TYPE temp gauge
temp 21.5 1767225600000
# TYPE rt histogram
rt_bucket{le="0.5"} 1 1767225600000
rt_bucket{le="+Inf"} 4 1767225600000
rt_sum 3 1767225600000
rt_count 4 1767225600000
`
	code, msg := ts.post("/api/v1/import/prometheus", "text/plain", "", []byte(body))
	require.Equal(t, http.StatusNoContent, code, msg)
	var m promMatrix
	ts.getJSON("/api/v1/query", url.Values{"query": {`jobs_done`}, "time": {"1767225660"}}, &m)
	require.Equal(t, "12", m.Data.Result[0].Value[1])
	ts.getJSON("/api/v1/query", url.Values{"query": {`rt_bucket`}, "time": {"1767225600"}}, &m)
	require.Len(t, m.Data.Result, 2)

	for _, bad := range []string{"temp{ 1\n", "# TYPE A histogram\n{}"} {
		code, msg = ts.post("/api/v1/import/prometheus", "text/plain", "", []byte(bad))
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, msg, "malformed payload")
	}
}

func TestAuthAndTLS(t *testing.T) {
	db, err := pillar.Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer db.Close()
	hs := httptest.NewTLSServer(server.New(db, &server.Options{AuthToken: "s3cret"}))
	defer hs.Close()
	do := func(path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, hs.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hs.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, do("/api/v1/labels", ""))
	require.Equal(t, http.StatusUnauthorized, do("/api/v1/labels", "wrong"))
	require.Equal(t, http.StatusOK, do("/api/v1/labels", "s3cret"))
	require.Equal(t, http.StatusOK, do("/-/healthy", ""))
	require.Equal(t, http.StatusOK, do("/-/ready", ""))
	// Plain HTTP to the TLS port fails.
	resp, err := http.Get(strings.Replace(hs.URL, "https", "http", 1) + "/-/healthy")
	if err == nil {
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		resp.Body.Close()
	}
}

func TestBadBodies(t *testing.T) {
	ts := newTestServer(t, &server.Options{MaxBodyBytes: 1 << 16, MaxDecodedBytes: 1 << 20})
	// Snappy bomb: the block declares far more than the limit.
	bomb := snappy.Encode(nil, make([]byte, 4<<20))
	code, msg := ts.post("/api/v1/write", "application/x-protobuf", "snappy", bomb)
	require.Equal(t, http.StatusRequestEntityTooLarge, code, msg)
	// Gzip bomb.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(make([]byte, 8<<20))
	_ = zw.Close()
	require.Less(t, gz.Len(), 1<<16)
	code, msg = ts.post("/v1/logs", "application/x-protobuf", "gzip", gz.Bytes())
	require.Equal(t, http.StatusRequestEntityTooLarge, code, msg)
	// Oversize on the wire.
	code, _ = ts.post("/v1/traces", "application/x-protobuf", "", make([]byte, 1<<17))
	require.Equal(t, http.StatusRequestEntityTooLarge, code)
	// Garbage to every ingest endpoint: 4xx, and nothing stored.
	garbage := []byte("\xff\xfe not a protobuf {{{ \x00\x01\x02")
	for _, c := range []struct{ path, ct, enc string }{
		{"/api/v1/write", "application/x-protobuf", "snappy"},
		{"/api/v1/write", "application/x-protobuf", "gzip"},
		{"/v1/traces", "application/x-protobuf", ""},
		{"/v1/traces", "application/json", ""},
		{"/v1/logs", "application/json", ""},
		{"/v1/metrics", "application/json", ""},
		{"/v1/metrics", "text/html", ""},
		{"/api/v1/import/prometheus", "text/plain", ""},
	} {
		code, msg := ts.post(c.path, c.ct, c.enc, garbage)
		require.True(t, code >= 400 && code < 500, "%s %s: %d %s", c.path, c.ct, code, msg)
		require.NotEmpty(t, msg)
	}
	require.Zero(t, ts.db.Metrics().Stats().Series)
	require.Zero(t, ts.db.Logs().Stats().Records)
	code, b := ts.get("/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(b), `pillar_server_requests_total{route="remote_write",code="4xx"} 3`)
}

func TestConcurrentWritersAndReaders(t *testing.T) {
	ts := newTestServer(t, nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	const writers, batches, perBatch = 4, 10, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				ser := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "load"}, {Name: "writer", Value: strconv.Itoa(w)}}}
				for i := range perBatch {
					ser.Samples = append(ser.Samples, prompb.Sample{Timestamp: t0 + int64(b*perBatch+i)*1000, Value: float64(i)})
				}
				code, msg := ts.post("/api/v1/write", "", "", remoteWriteBody(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ser}}))
				if code != http.StatusNoContent {
					t.Errorf("write: %d %s", code, msg)
					return
				}
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				code, b := ts.get("/api/v1/query", url.Values{"query": {"count(load)"}, "time": {fmt.Sprint(t0/1000 + 10)}})
				if code != http.StatusOK {
					t.Errorf("query: %d %s", code, b)
					return
				}
				ts.get("/metrics", nil)
			}
		}()
	}
	wg.Wait()
	var m promMatrix
	ts.getJSON("/api/v1/query", url.Values{"query": {"sum(count_over_time(load[2h]))"}, "time": {fmt.Sprint(t0/1000 + 3600)}}, &m)
	require.Equal(t, strconv.Itoa(writers*batches*perBatch), m.Data.Result[0].Value[1])
	require.Equal(t, uint64(writers), ts.db.Metrics().Stats().Series)
	_ = tsdb.MetricName
}

func TestOTLPJSONLogsAndMetrics(t *testing.T) {
	ts := newTestServer(t, nil)
	now := time.Now().Truncate(time.Second)
	logs := fmt.Sprintf(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},
	  "scopeLogs":[{"logRecords":[
	    {"timeUnixNano":"%d","severityText":"warn","body":{"stringValue":"card declined"},"traceId":"%032x","spanId":"%016x",
	     "attributes":[{"key":"attempt","value":{"intValue":"3"}}]},
	    {"timeUnixNano":"%d","severityText":"info","body":{"stringValue":"bad ids"},"traceId":"abcd"}]}]}]}`,
		now.UnixNano(), 42, 7, now.UnixNano())
	// A record whose trace ID has the wrong length is rejected alone
	// (OTLP partial success); the other is stored.
	code, resp := ts.post("/v1/logs", "application/json", "", []byte(logs))
	require.Equal(t, http.StatusOK, code, resp)
	require.Contains(t, resp, `"rejectedLogRecords":"1"`)
	require.Equal(t, uint64(1), ts.db.Logs().Stats().Records)
	hits, err := ts.db.Logs().Search(t.Context(), fmt.Sprintf("trace_id:%032x", 42), 0, now.Add(time.Hour).UnixNano(), 10)
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Equal(t, "card declined", string(hits[0].BodyText()))

	metrics := fmt.Sprintf(`{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},
	  "scopeMetrics":[{"metrics":[{"name":"queue.size","gauge":{"dataPoints":[{"timeUnixNano":"%d","asDouble":2.5}]}}]}]}]}`, now.UnixNano())
	code, resp = ts.post("/v1/metrics", "application/json", "", []byte(metrics))
	require.Equal(t, http.StatusOK, code, resp)
	var m promMatrix
	ts.getJSON("/api/v1/query", url.Values{"query": {`queue_size{job="billing"}`}, "time": {fmt.Sprint(now.Unix())}}, &m)
	require.Len(t, m.Data.Result, 1)
	require.Equal(t, "2.5", m.Data.Result[0].Value[1])
}

func TestGracefulShutdown(t *testing.T) {
	db, err := pillar.Open(t.TempDir(), nil)
	require.NoError(t, err)
	srv := server.New(db, nil)
	release := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
			_, _ = w.Write([]byte("done"))
			return
		}
		srv.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- server.Serve(ctx, ln, slow, nil) }()
	base := "http://" + ln.Addr().String()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	time.Sleep(100 * time.Millisecond) // the request is in flight
	cancel()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-served:
		t.Fatalf("Serve returned before the in-flight request finished: %v", err)
	default:
	}
	close(release)
	require.Equal(t, "done", <-got)
	require.NoError(t, <-served)
	_, err = http.Get(base + "/-/healthy")
	require.Error(t, err, "the listener is closed")
	require.NoError(t, db.Close())
}

func TestMetricsExportMaintenance(t *testing.T) {
	ts := newTestServer(t, nil)
	require.NoError(t, ts.db.Compact(t.Context()))
	code, b := ts.get("/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	body := string(b)
	for _, j := range ts.db.Maintenance().Metrics().Jobs {
		require.GreaterOrEqual(t, j.Runs, uint64(1), j.Name)
		require.Contains(t, body, `pillar_maintenance_runs_total{job="`+j.Name+`"} `+strconv.FormatUint(j.Runs, 10)+"\n")
		require.Contains(t, body, `pillar_maintenance_errors_total{job="`+j.Name+`"} 0`+"\n")
	}
	require.Contains(t, body, "# TYPE pillar_maintenance_running gauge\n")
}
