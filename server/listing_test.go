package server_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/logindex"
	"github.com/pillar-db/pillar/server"
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
