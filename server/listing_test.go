package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/logindex"
	"github.com/pillar-db/pillar/server"
	"github.com/pillar-db/pillar/tracestore"
)

// The Loki label endpoints list every stream in the range from the log
// index, not a sample of the newest lines: a quiet stream buried under a
// busy one still shows, with its values as written.
func TestLokiLabelsFromIndex(t *testing.T) {
	ts := newTestServer(t, &server.Options{LabelSampleLines: 10})
	ctx := t.Context()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	res := func(svc string, kv ...string) []logindex.Attribute {
		out := []logindex.Attribute{{Key: logindex.ServiceAttr, Value: logindex.StringValue(svc)}}
		for i := 0; i < len(kv); i += 2 {
			out = append(out, logindex.Attribute{Key: kv[i], Value: logindex.StringValue(kv[i+1])})
		}
		return out
	}
	// The quiet stream first, then 100 newer lines of a busy one.
	recs := []logindex.Record{{Timestamp: t0.UnixNano(), SeverityText: "FATAL", Resource: res("Billing", "k8s.namespace", "Prod-EU"),
		Body: logindex.StringValue("disk full")}}
	for i := range 100 {
		recs = append(recs, logindex.Record{Timestamp: t0.Add(time.Duration(i+1) * time.Second).UnixNano(), SeverityText: "info",
			Resource: res("api", "host.name", fmt.Sprintf("h%d", i%3)), Body: logindex.StringValue("served")})
	}
	require.NoError(t, ts.db.Logs().Write(ctx, recs))
	rng := url.Values{"start": {fmt.Sprint(t0.Add(-time.Minute).UnixNano())}, "end": {fmt.Sprint(t0.Add(time.Hour).UnixNano())}}
	get := func(path string, extra ...string) []string {
		p := url.Values{}
		for k, v := range rng {
			p[k] = v
		}
		for i := 0; i < len(extra); i += 2 {
			p.Set(extra[i], extra[i+1])
		}
		var r struct{ Data []string }
		ts.getJSON(path, p, &r)
		return r.Data
	}
	require.Equal(t, []string{"host_name", "k8s_namespace", "level", "service_name"}, get("/loki/api/v1/labels"))
	require.Equal(t, []string{"FATAL", "info"}, get("/loki/api/v1/label/level/values"))
	require.Equal(t, []string{"Billing", "api"}, get("/loki/api/v1/label/service_name/values"))
	require.Equal(t, []string{"Prod-EU"}, get("/loki/api/v1/label/k8s_namespace/values"))
	require.Equal(t, []string{"h0", "h1", "h2"}, get("/loki/api/v1/label/host_name/values"))
	require.Empty(t, get("/loki/api/v1/label/absent/values"))

	// A selector on the stream's own labels is answered from the index.
	require.Equal(t, []string{"k8s_namespace", "level", "service_name"}, get("/loki/api/v1/labels", "query", `{service_name="Billing"}`))
	require.Equal(t, []string{"info"}, get("/loki/api/v1/label/level/values", "query", `{service_name=~"a.*"}`))
	// Other selectors read the newest lines (Options.LabelSampleLines).
	require.Equal(t, []string{"h1"}, get("/loki/api/v1/label/host_name/values", "query", `{host_name="h1"}`))
	require.Empty(t, get("/loki/api/v1/label/service_name/values", "query", `{service_name="api"} |= "disk"`))
}

// The Tempo tag endpoints list from the trace store's attribute index:
// an attribute of one old trace among many newer ones shows, and start
// and end narrow the listing.
func TestTempoTagsFromIndex(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := t.Context()
	now := time.Now().Truncate(time.Second)
	old := now.Add(-48 * time.Hour)
	span := func(i int, at time.Time, attrs ...tracestore.KeyValue) tracestore.Span {
		sp := tracestore.Span{Name: "GET /", Kind: tracestore.SpanKindServer, StartTime: at.UnixNano(), EndTime: at.Add(time.Millisecond).UnixNano(),
			Attributes: attrs, Resource: tracestore.Resource{Attributes: []tracestore.KeyValue{{Key: tracestore.ServiceNameKey, Value: tracestore.StringValue("api")}}}}
		sp.TraceID[0], sp.TraceID[15] = 1, byte(i)
		sp.SpanID[7] = 1
		return sp
	}
	spans := []tracestore.Span{span(0, old, tracestore.KeyValue{Key: "db.system", Value: tracestore.StringValue("postgresql")})}
	for i := 1; i <= 100; i++ {
		spans = append(spans, span(i, now.Add(-time.Duration(i)*time.Second), tracestore.KeyValue{Key: "http.status_code", Value: tracestore.Int64Value(int64(200 + i%3))}))
	}
	require.NoError(t, ts.db.Traces().Write(ctx, spans))

	var tags struct{ TagNames []string }
	ts.getJSON("/api/search/tags", nil, &tags)
	require.Equal(t, []string{"db.system", "http.status_code", "name", "service.name"}, tags.TagNames)
	recent := url.Values{"start": {fmt.Sprint(now.Add(-time.Hour).Unix())}, "end": {fmt.Sprint(now.Unix())}}
	ts.getJSON("/api/search/tags", recent, &tags)
	require.Equal(t, []string{"http.status_code", "name", "service.name"}, tags.TagNames)

	var vals struct{ TagValues []string }
	ts.getJSON("/api/search/tag/db.system/values", nil, &vals)
	require.Equal(t, []string{"postgresql"}, vals.TagValues)
	ts.getJSON("/api/search/tag/span.http.status_code/values", recent, &vals)
	require.Equal(t, []string{"200", "201", "202"}, vals.TagValues)
	ts.getJSON("/api/search/tag/http.status_code/values", url.Values{"limit": {"2"}}, &vals)
	require.Equal(t, []string{"200", "201"}, vals.TagValues)
	code, _ := ts.get("/api/search/tag/http.status_code/values", url.Values{"limit": {"x"}})
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = ts.get("/api/search/tags", url.Values{"start": {"yesterday"}})
	require.Equal(t, http.StatusBadRequest, code)
}
