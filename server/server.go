// Package server serves a Pillar store over the wire protocols that
// observability tools already speak, so Prometheus, OpenTelemetry SDKs and
// collectors, and Grafana's built-in data sources work with it unchanged:
//
//	ingest                                   query
//	POST /api/v1/write            (Prometheus remote-write 1.0)
//	POST /v1/traces, /v1/logs, /v1/metrics   (OTLP/HTTP, protobuf or JSON, gzip)
//	POST /api/v1/import/prometheus           (text exposition format)
//	                                         /api/v1/query, /api/v1/query_range, /api/v1/series,
//	                                         /api/v1/labels, /api/v1/label/<name>/values (Prometheus)
//	                                         /api/traces/<id>, /api/search, /api/search/tags,
//	                                         /api/search/tag/<tag>/values (Tempo)
//	                                         /loki/api/v1/query_range, /loki/api/v1/query,
//	                                         /loki/api/v1/labels, /loki/api/v1/label/<name>/values (Loki)
//	/metrics, /-/healthy, /-/ready           (operations)
//
// A Server is an http.Handler; Serve runs it on a listener with graceful
// shutdown. Every request body is bounded twice — on the wire
// (Options.MaxBodyBytes) and after decompression (Options.MaxDecodedBytes) —
// so compression bombs are refused, and a malformed payload gets a 4xx with a
// message and changes nothing.
package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pillar-db/pillar"
	"github.com/pillar-db/pillar/query"
)

// Options configure a Server. A nil *Options means all defaults.
type Options struct {
	// AuthToken, when set, requires every request except /-/healthy and
	// /-/ready to carry "Authorization: Bearer <AuthToken>". Default "":
	// no authentication.
	AuthToken string
	// MaxBodyBytes bounds a request body as sent (compressed or not).
	// Default 32 MiB.
	MaxBodyBytes int64
	// MaxDecodedBytes bounds a request body after snappy or gzip
	// decompression. Default 128 MiB.
	MaxDecodedBytes int64
	// QueryTimeout bounds each query's evaluation. Default 2 minutes.
	QueryTimeout time.Duration
	// LookbackDelta is PromQL's lookback for instant vectors. Default 5m.
	LookbackDelta time.Duration
	// MaxLogLines bounds the lines one Loki log query returns (its limit
	// parameter is clamped to it). Default 5000.
	MaxLogLines int
	// MaxScanLines bounds the log lines one Loki query may read before its
	// filters are applied, and the lines a metric query counts. Default
	// 1,000,000.
	MaxScanLines int
	// LabelSampleLines bounds the Loki label endpoints: how many values of
	// a resource-attribute label they list, and, for a selector with line
	// filters or matchers on other labels than service_name and level
	// (which the log index cannot answer per stream), how many of the
	// newest matching lines they read. Default 5000.
	LabelSampleLines int
	// Now is the clock for defaults of query times and for samples pushed
	// without a timestamp. Default time.Now.
	Now func() time.Time
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.MaxBodyBytes <= 0 {
		r.MaxBodyBytes = 32 << 20
	}
	if r.MaxDecodedBytes <= 0 {
		r.MaxDecodedBytes = 128 << 20
	}
	if r.QueryTimeout <= 0 {
		r.QueryTimeout = 2 * time.Minute
	}
	if r.LookbackDelta <= 0 {
		r.LookbackDelta = 5 * time.Minute
	}
	if r.MaxLogLines <= 0 {
		r.MaxLogLines = 5000
	}
	if r.MaxScanLines <= 0 {
		r.MaxScanLines = 1_000_000
	}
	if r.LabelSampleLines <= 0 {
		r.LabelSampleLines = 5000
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r
}

// Server serves one Pillar store over HTTP. It is safe for concurrent use.
type Server struct {
	db      *pillar.DB
	opts    Options
	engine  *query.Engine
	mux     *http.ServeMux
	metrics *serverMetrics
	refs    *refCache

	traceScratch sync.Pool // *traceScratch, one per concurrent OTLP trace request
	rwBuffers    sync.Pool // *bodyBuffers, one per concurrent remote-write request
}

// New returns a Server over db. The caller keeps ownership of db and closes
// it after the server has stopped.
func New(db *pillar.DB, o *Options) *Server {
	s := &Server{db: db, opts: o.withDefaults(), mux: http.NewServeMux()}
	s.engine = query.NewEngine(db.Metrics(), query.Options{
		LookbackDelta: s.opts.LookbackDelta,
		Timeout:       s.opts.QueryTimeout,
	})
	s.metrics = newServerMetrics()
	s.refs = newRefCache(1 << 20)
	s.routes()
	return s
}

// route registers h under pattern, counted and timed as name.
func (s *Server) route(pattern, name string, h http.HandlerFunc) {
	st := s.metrics.route(name)
	s.mux.Handle(pattern, s.instrument(st, h))
}

func (s *Server) routes() {
	s.route("POST /api/v1/write", "remote_write", s.handleRemoteWrite)
	s.route("POST /api/v1/import/prometheus", "import_prometheus", s.handleImportText)
	s.route("POST /v1/traces", "otlp_traces", s.handleOTLPTraces)
	s.route("POST /v1/logs", "otlp_logs", s.handleOTLPLogs)
	s.route("POST /v1/metrics", "otlp_metrics", s.handleOTLPMetrics)

	s.route("/api/v1/query", "prom_query", s.handlePromQuery)
	s.route("/api/v1/query_range", "prom_query_range", s.handlePromQueryRange)
	s.route("/api/v1/series", "prom_series", s.handlePromSeries)
	s.route("/api/v1/labels", "prom_labels", s.handlePromLabels)
	s.route("/api/v1/label/{name}/values", "prom_label_values", s.handlePromLabelValues)
	s.route("/api/v1/query_exemplars", "prom_query_exemplars", s.handlePromExemplars)
	s.route("/api/v1/metadata", "prom_metadata", s.handlePromMetadata)
	s.route("GET /api/v1/status/buildinfo", "prom_buildinfo", s.handlePromBuildInfo)

	s.route("GET /api/traces/{id}", "tempo_trace", s.handleTempoTrace)
	s.route("GET /api/search", "tempo_search", s.handleTempoSearch)
	s.route("GET /api/search/tags", "tempo_search_tags", s.handleTempoTags)
	s.route("GET /api/search/tag/{tag}/values", "tempo_search_tag_values", s.handleTempoTagValues)
	s.route("GET /api/echo", "tempo_echo", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("echo"))
	})

	s.route("/loki/api/v1/query_range", "loki_query_range", s.handleLokiQueryRange)
	s.route("/loki/api/v1/query", "loki_query", s.handleLokiQuery)
	s.route("/loki/api/v1/labels", "loki_labels", s.handleLokiLabels)
	s.route("/loki/api/v1/label/{name}/values", "loki_label_values", s.handleLokiLabelValues)

	s.route("GET /metrics", "metrics", s.handleMetrics)
	s.route("GET /-/healthy", "healthy", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("Pillar is Healthy.\n"))
	})
	s.route("GET /-/ready", "ready", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("Pillar is Ready.\n"))
	})
}

// ServeHTTP implements http.Handler: authentication, then the route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.AuthToken != "" && r.URL.Path != "/-/healthy" && r.URL.Path != "/-/ready" && !s.authorized(r) {
		s.metrics.unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="pillar"`)
		http.Error(w, "unauthorized: missing or wrong bearer token", http.StatusUnauthorized)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.opts.AuthToken)) == 1
}

// ServeOptions configure Serve.
type ServeOptions struct {
	// TLSCertFile and TLSKeyFile, when both set, serve HTTPS with that
	// certificate. Default: plain HTTP.
	TLSCertFile, TLSKeyFile string
	// ShutdownTimeout bounds how long in-flight requests may run once ctx
	// is cancelled. Default 30 s.
	ShutdownTimeout time.Duration
}

// Serve serves s on ln until ctx is cancelled, then stops accepting
// connections, waits for in-flight requests (up to ShutdownTimeout) and
// returns. It returns nil after a clean shutdown. It does not close the
// store.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, o *ServeOptions) error {
	var so ServeOptions
	if o != nil {
		so = *o
	}
	if so.ShutdownTimeout <= 0 {
		so.ShutdownTimeout = 30 * time.Second
	}
	if (so.TLSCertFile == "") != (so.TLSKeyFile == "") {
		return errors.New("server: TLS needs both a certificate and a key file")
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() {
		if so.TLSCertFile != "" {
			errc <- hs.ServeTLS(ln, so.TLSCertFile, so.TLSKeyFile)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), so.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}
