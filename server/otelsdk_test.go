package server_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// TestOpenTelemetrySDK sends spans and logs with the OpenTelemetry Go SDK's
// OTLP/HTTP exporters and reads them back through the Tempo and Loki APIs.
func TestOpenTelemetrySDK(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := t.Context()
	endpoint := strings.TrimPrefix(ts.hs.URL, "http://")
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName("frontend"))

	texp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(endpoint), otlptracehttp.WithInsecure(),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(texp), sdktrace.WithResource(res))
	lexp, err := otlploghttp.New(ctx, otlploghttp.WithEndpoint(endpoint), otlploghttp.WithInsecure())
	require.NoError(t, err)
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewSimpleProcessor(lexp)), sdklog.WithResource(res))

	tracer := tp.Tracer("checkout")
	logger := lp.Logger("checkout")
	start := time.Now()
	var traceIDs []trace.TraceID
	for i := range 3 {
		rctx, root := tracer.Start(ctx, "GET /checkout", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.Int("http.status_code", 200+100*i)))
		_, child := tracer.Start(rctx, "SELECT orders")
		child.End(trace.WithTimestamp(time.Now().Add(time.Duration(i+1) * 100 * time.Millisecond)))
		root.End(trace.WithTimestamp(time.Now().Add(time.Duration(i+1) * 200 * time.Millisecond)))
		traceIDs = append(traceIDs, root.SpanContext().TraceID())

		var rec otellog.Record
		rec.SetTimestamp(time.Now())
		rec.SetSeverity(otellog.SeverityError)
		rec.SetSeverityText("error")
		rec.SetBody(attribute.StringValue(fmt.Sprintf("checkout failed order=%d", i)))
		logger.Emit(rctx, rec)
	}
	require.NoError(t, tp.Shutdown(context.Background()))
	require.NoError(t, lp.Shutdown(context.Background()))

	// Tempo: each trace whole, and search by attribute and duration.
	for _, id := range traceIDs {
		code, b := ts.get("/api/traces/"+id.String(), nil)
		require.Equal(t, 200, code, "%s", b)
		require.Contains(t, string(b), "SELECT orders")
		require.Contains(t, string(b), `"frontend"`)
	}
	var sr struct {
		Traces []struct{ TraceID, RootServiceName, RootTraceName string }
	}
	ts.getJSON("/api/search", url.Values{"tags": {"service.name=frontend http.status_code=400"},
		"start": {fmt.Sprint(start.Unix() - 1)}, "end": {fmt.Sprint(time.Now().Unix() + 1)}}, &sr)
	require.Len(t, sr.Traces, 1)
	require.Equal(t, traceIDs[2].String(), sr.Traces[0].TraceID)
	require.Equal(t, "frontend", sr.Traces[0].RootServiceName)
	ts.getJSON("/api/search", url.Values{"tags": {"service.name=frontend"}, "minDuration": {"350ms"}}, &sr)
	require.Len(t, sr.Traces, 2)

	// Loki: the logs, tied to their traces.
	var lr lokiResp
	ts.getJSON("/loki/api/v1/query_range", url.Values{"query": {`{service_name="frontend"} |= "failed" | logfmt | order="1"`},
		"start": {fmt.Sprint(start.Add(-time.Minute).UnixNano())}, "end": {fmt.Sprint(time.Now().Add(time.Minute).UnixNano())}}, &lr)
	require.Len(t, lr.Data.Result, 1)
	require.Equal(t, "checkout failed order=1", lr.Data.Result[0].Values[0][1])
	require.Equal(t, "error", lr.Data.Result[0].Stream["level"])
	hits, err := ts.db.Logs().Search(ctx, "trace_id:"+traceIDs[1].String(), 0, time.Now().Add(time.Hour).UnixNano(), 10)
	require.NoError(t, err)
	require.Len(t, hits, 1)
}
