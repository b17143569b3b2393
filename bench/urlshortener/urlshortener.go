// Package urlshortener generates the telemetry of a small URL-shortener
// system — services edge, redirect, cache, db and analytics — into a Pillar
// store: requests as traces, per-service request counters and latency
// histograms scraped every 15 s, and JSON logs that carry trace and span IDs.
//
// In a configurable window a missing index makes the redirect service's
// `SELECT destination FROM links WHERE short_code=$1` take about 3 s for a
// share of requests; everything else is steady. The generator is
// deterministic for a given Config.
package urlshortener

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/pillar-db/pillar"
	"github.com/pillar-db/pillar/logindex"
	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tsdb"
)

// Services are the services of the system, in call order.
var Services = []string{"edge", "redirect", "cache", "db", "analytics"}

// SlowStatement is the query that turns slow during the incident.
const SlowStatement = "SELECT destination FROM links WHERE short_code=$1"

// Metric names written by the generator.
const (
	RequestsMetric = "http_server_requests_total"           // {service, code}
	DurationMetric = "http_server_request_duration_seconds" // classic histogram {service, le}
	CacheMetric    = "cache_requests_total"                 // {result="hit"|"miss"}
)

// Buckets are the upper bounds of the latency histograms, in seconds.
var Buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Config shapes the generated data. The zero value is not useful; start
// from DefaultConfig.
type Config struct {
	Start         time.Time     // first request
	Duration      time.Duration // how long the system runs
	RatePerSecond float64       // mean redirect requests per second
	IncidentStart time.Duration // offset of the slow-query window from Start
	IncidentLen   time.Duration // its length
	SlowShare     float64       // share of cache misses hitting the slow query during the incident
	Seed          uint64
}

// DefaultConfig is an hour at 5 requests per second with the incident from
// minute 30 to minute 40.
func DefaultConfig(start time.Time) Config {
	return Config{
		Start: start, Duration: time.Hour, RatePerSecond: 5,
		IncidentStart: 30 * time.Minute, IncidentLen: 10 * time.Minute,
		SlowShare: 0.6, Seed: 20261122,
	}
}

// Summary counts what was written.
type Summary struct {
	Requests, SlowRequests, Errors int
	Spans, Logs, Samples           int
}

// service keeps one service's counters between scrapes.
type service struct {
	name    string
	codes   map[int]float64
	buckets []float64 // cumulative counts per Buckets bound
	count   float64
	sum     float64
}

func (s *service) observe(d time.Duration, code int) {
	sec := d.Seconds()
	for i, b := range Buckets {
		if sec <= b {
			s.buckets[i]++
		}
	}
	s.count++
	s.sum += sec
	s.codes[code]++
}

type generator struct {
	cfg      Config
	r        *rand.Rand
	db       *pillar.DB
	svcs     map[string]*service
	spans    []tracestore.Span
	logs     []logindex.Record
	cacheHit float64
	cacheMis float64
	refs     map[string]tsdb.SeriesRef
	sum      Summary
	spanSeq  uint64
}

// Generate writes the system's telemetry for cfg into db.
func Generate(ctx context.Context, db *pillar.DB, cfg Config) (Summary, error) {
	g := &generator{
		cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), db: db,
		svcs: map[string]*service{}, refs: map[string]tsdb.SeriesRef{},
	}
	for _, name := range Services {
		g.svcs[name] = &service{name: name, codes: map[int]float64{200: 0}, buckets: make([]float64, len(Buckets))}
	}
	const scrape = 15 * time.Second
	end := cfg.Start.Add(cfg.Duration)
	next := cfg.Start
	for now := cfg.Start; now.Before(end); now = now.Add(scrape) {
		if err := ctx.Err(); err != nil {
			return g.sum, err
		}
		// Requests arrive as a Poisson process between two scrapes.
		for {
			next = next.Add(time.Duration(g.r.ExpFloat64() / cfg.RatePerSecond * float64(time.Second)))
			if !next.Before(now.Add(scrape)) || !next.Before(end) {
				break
			}
			g.request(next)
		}
		if err := g.flush(ctx, now.Add(scrape)); err != nil {
			return g.sum, err
		}
	}
	return g.sum, nil
}

// flush writes the spans and logs gathered since the last scrape, then the
// metric samples of a scrape at ts.
func (g *generator) flush(ctx context.Context, ts time.Time) error {
	if len(g.spans) > 0 {
		if err := g.db.Traces().Write(ctx, g.spans); err != nil {
			return fmt.Errorf("write spans: %w", err)
		}
		g.sum.Spans += len(g.spans)
		g.spans = g.spans[:0]
	}
	if len(g.logs) > 0 {
		if err := g.db.Logs().Write(ctx, g.logs); err != nil {
			return fmt.Errorf("write logs: %w", err)
		}
		g.sum.Logs += len(g.logs)
		g.logs = g.logs[:0]
	}
	app := g.db.Metrics().Appender(ctx)
	t := ts.UnixMilli()
	add := func(v float64, kv ...string) error {
		key := fmt.Sprint(kv)
		ref, err := app.Append(g.refs[key], tsdb.FromStrings(kv...), t, v)
		if err != nil {
			return err
		}
		g.refs[key] = ref
		g.sum.Samples++
		return nil
	}
	for _, name := range Services {
		s := g.svcs[name]
		codes := make([]int, 0, len(s.codes))
		for c := range s.codes {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		for _, c := range codes {
			if err := add(s.codes[c], "__name__", RequestsMetric, "service", name, "code", strconv.Itoa(c)); err != nil {
				return err
			}
		}
		for i, b := range Buckets {
			if err := add(s.buckets[i], "__name__", DurationMetric+"_bucket", "service", name, "le", strconv.FormatFloat(b, 'f', -1, 64)); err != nil {
				return err
			}
		}
		if err := add(s.count, "__name__", DurationMetric+"_bucket", "service", name, "le", "+Inf"); err != nil {
			return err
		}
		if err := add(s.count, "__name__", DurationMetric+"_count", "service", name); err != nil {
			return err
		}
		if err := add(s.sum, "__name__", DurationMetric+"_sum", "service", name); err != nil {
			return err
		}
	}
	if err := add(g.cacheHit, "__name__", CacheMetric, "result", "hit"); err != nil {
		return err
	}
	if err := add(g.cacheMis, "__name__", CacheMetric, "result", "miss"); err != nil {
		return err
	}
	return app.Commit()
}

func (g *generator) inIncident(t time.Time) bool {
	off := t.Sub(g.cfg.Start)
	return off >= g.cfg.IncidentStart && off < g.cfg.IncidentStart+g.cfg.IncidentLen
}

// lat draws a log-normal latency around median.
func (g *generator) lat(median time.Duration) time.Duration {
	return time.Duration(float64(median) * math.Exp(g.r.NormFloat64()*0.35))
}

func (g *generator) newSpanID() tracestore.SpanID {
	g.spanSeq++
	var id tracestore.SpanID
	binary.BigEndian.PutUint64(id[:], g.spanSeq*0x9e3779b97f4a7c15|1)
	return id
}

func resource(svc string) tracestore.Resource {
	return tracestore.Resource{Attributes: []tracestore.KeyValue{
		{Key: "service.name", Value: tracestore.StringValue(svc)},
		{Key: "deployment.environment", Value: tracestore.StringValue("prod")},
	}}
}

func str(k, v string) tracestore.KeyValue {
	return tracestore.KeyValue{Key: k, Value: tracestore.StringValue(v)}
}
func num(k string, v int64) tracestore.KeyValue {
	return tracestore.KeyValue{Key: k, Value: tracestore.Int64Value(v)}
}

// span appends a span and returns its index in g.spans.
func (g *generator) span(tid tracestore.TraceID, parent tracestore.SpanID, svc, name string, kind tracestore.SpanKind,
	start time.Time, d time.Duration, attrs ...tracestore.KeyValue) *tracestore.Span {
	g.spans = append(g.spans, tracestore.Span{
		TraceID: tid, SpanID: g.newSpanID(), ParentSpanID: parent, Name: name, Kind: kind,
		StartTime: start.UnixNano(), EndTime: start.Add(d).UnixNano(), Attributes: attrs,
		Resource: resource(svc), Scope: tracestore.Scope{Name: "urlshortener/" + svc, Version: "1.4.2"},
	})
	return &g.spans[len(g.spans)-1]
}

func (g *generator) log(t time.Time, svc, level string, tid tracestore.TraceID, sid tracestore.SpanID, msg string, fields ...any) {
	body := fmt.Sprintf(`{"ts":%q,"level":%q,"service":%q,"msg":%q,"trace_id":%q,"span_id":%q`,
		t.UTC().Format(time.RFC3339Nano), level, svc, msg, hex.EncodeToString(tid[:]), hex.EncodeToString(sid[:]))
	for i := 0; i+1 < len(fields); i += 2 {
		switch v := fields[i+1].(type) {
		case string:
			body += fmt.Sprintf(",%q:%q", fields[i], v)
		default:
			body += fmt.Sprintf(",%q:%v", fields[i], v)
		}
	}
	body += "}"
	sev := map[string]int32{"debug": 5, "info": 9, "warn": 13, "error": 17}[level]
	g.logs = append(g.logs, logindex.Record{
		Timestamp: t.UnixNano(), ObservedTimestamp: t.UnixNano(), SeverityNumber: sev, SeverityText: level,
		Body: logindex.StringValue(body), TraceID: tid, SpanID: sid,
		Resource: []logindex.Attribute{{Key: "service.name", Value: logindex.StringValue(svc)}},
	})
}

// request generates one redirect request: edge → redirect → cache (→ db on
// a miss) → analytics, with a few internal spans.
func (g *generator) request(t time.Time) {
	var tid tracestore.TraceID
	binary.BigEndian.PutUint64(tid[:8], g.r.Uint64()|1)
	binary.BigEndian.PutUint64(tid[8:], g.r.Uint64())
	g.sum.Requests++
	code := fmt.Sprintf("%06x", g.r.IntN(1<<24))
	route := "/r/:code"
	slow := false

	// Times are laid out child by child; parents end after their children.
	edgeStart := t
	redirStart := edgeStart.Add(g.lat(300 * time.Microsecond))
	cur := redirStart.Add(g.lat(200 * time.Microsecond))
	type pending struct {
		svc, name string
		kind      tracestore.SpanKind
		start     time.Time
		d         time.Duration
		attrs     []tracestore.KeyValue
		parentIdx int // -1: redirect server span
		status    tracestore.StatusCode
	}
	var children []pending
	// Internal work before the lookup.
	for range g.r.IntN(4) {
		d := g.lat(150 * time.Microsecond)
		children = append(children, pending{svc: "redirect", name: []string{"validate_code", "auth.check", "rate_limit"}[g.r.IntN(3)],
			kind: tracestore.SpanKindInternal, start: cur, d: d, parentIdx: -1})
		cur = cur.Add(d)
	}
	hit := g.r.Float64() < 0.8
	cd := g.lat(600 * time.Microsecond)
	children = append(children, pending{svc: "redirect", name: "GET", kind: tracestore.SpanKindClient, start: cur, d: cd, parentIdx: -1,
		attrs: []tracestore.KeyValue{str("db.system", "redis"), str("db.operation", "GET"), str("cache.hit", strconv.FormatBool(hit))}})
	children = append(children, pending{svc: "cache", name: "GET short:" + code[:2], kind: tracestore.SpanKindServer,
		start: cur.Add(50 * time.Microsecond), d: cd - 100*time.Microsecond, parentIdx: len(children) - 1,
		attrs: []tracestore.KeyValue{str("cache.hit", strconv.FormatBool(hit)), str("db.system", "redis")}})
	cur = cur.Add(cd)
	status := 302
	if hit {
		g.cacheHit++
	} else {
		g.cacheMis++
		dd := g.lat(4 * time.Millisecond)
		if g.inIncident(t) && g.r.Float64() < g.cfg.SlowShare {
			dd = time.Duration(float64(3*time.Second) * (0.85 + 0.3*g.r.Float64()))
			slow = true
		}
		children = append(children, pending{svc: "redirect", name: "SELECT links", kind: tracestore.SpanKindClient, start: cur, d: dd, parentIdx: -1,
			attrs: []tracestore.KeyValue{str("db.system", "postgresql"), str("db.statement", SlowStatement)}})
		children = append(children, pending{svc: "db", name: "SELECT links", kind: tracestore.SpanKindServer,
			start: cur.Add(100 * time.Microsecond), d: dd - 200*time.Microsecond, parentIdx: len(children) - 1,
			attrs: []tracestore.KeyValue{str("db.system", "postgresql"), str("db.statement", SlowStatement), str("db.name", "links")}})
		if slow {
			// The planner's sequential scan is visible as a child of the query.
			children = append(children, pending{svc: "db", name: "seq scan links", kind: tracestore.SpanKindInternal,
				start: cur.Add(300 * time.Microsecond), d: dd - 800*time.Microsecond, parentIdx: len(children) - 1,
				attrs: []tracestore.KeyValue{str("db.plan", "Seq Scan on links"), num("db.rows_examined", 4_800_000)}})
		} else {
			children = append(children, pending{svc: "db", name: "index scan links_short_code_idx", kind: tracestore.SpanKindInternal,
				start: cur.Add(300 * time.Microsecond), d: dd / 3, parentIdx: len(children) - 1,
				attrs: []tracestore.KeyValue{str("db.plan", "Index Scan"), num("db.rows_examined", 1)}})
		}
		cur = cur.Add(dd)
		if g.r.Float64() < 0.02 {
			status = 404
		}
	}
	if slow && g.r.Float64() < 0.15 {
		status = 504
	} else if g.r.Float64() < 0.003 {
		status = 500
	}
	// Analytics is fire-and-forget: a producer span here, a consumer span later.
	pd := g.lat(200 * time.Microsecond)
	children = append(children, pending{svc: "redirect", name: "publish click", kind: tracestore.SpanKindProducer, start: cur, d: pd, parentIdx: -1,
		attrs: []tracestore.KeyValue{str("messaging.system", "kafka"), str("messaging.destination.name", "clicks")}})
	children = append(children, pending{svc: "analytics", name: "record click", kind: tracestore.SpanKindConsumer,
		start: cur.Add(g.lat(2 * time.Millisecond)), d: g.lat(1 * time.Millisecond), parentIdx: len(children) - 1,
		attrs: []tracestore.KeyValue{str("messaging.system", "kafka"), str("short_code", code)}})
	consumer := len(children) - 1
	at := children[consumer].start
	for range g.r.IntN(8) {
		d := g.lat(100 * time.Microsecond)
		children = append(children, pending{svc: "analytics", name: "enrich " + []string{"geo", "device", "referrer"}[g.r.IntN(3)],
			kind: tracestore.SpanKindInternal, start: at, d: d, parentIdx: consumer})
		at = at.Add(d)
	}
	cur = cur.Add(pd)
	redirD := cur.Add(g.lat(300 * time.Microsecond)).Sub(redirStart)
	edgeD := redirStart.Add(redirD).Add(g.lat(300 * time.Microsecond)).Sub(edgeStart)
	if status == 504 {
		edgeD = max(edgeD, 2500*time.Millisecond)
	}

	httpAttrs := func(svc string) []tracestore.KeyValue {
		return []tracestore.KeyValue{str("http.request.method", "GET"), str("http.route", route),
			num("http.status_code", int64(status)), str("url.path", "/r/"+code), str("service.version", "1.4.2")}
	}
	edge := g.span(tid, tracestore.SpanID{}, "edge", "GET "+route, tracestore.SpanKindServer, edgeStart, edgeD, httpAttrs("edge")...)
	edgeID := edge.SpanID
	if status >= 500 {
		edge.Status = tracestore.Status{Code: tracestore.StatusError, Message: http(status)}
	}
	redir := g.span(tid, edgeID, "redirect", "GET "+route, tracestore.SpanKindServer, redirStart, redirD, httpAttrs("redirect")...)
	redirID := redir.SpanID
	if status >= 500 {
		redir.Status = tracestore.Status{Code: tracestore.StatusError, Message: http(status)}
	}
	ids := make([]tracestore.SpanID, len(children))
	for i, c := range children {
		parent := redirID
		if c.parentIdx >= 0 {
			parent = ids[c.parentIdx]
		}
		s := g.span(tid, parent, c.svc, c.name, c.kind, c.start, c.d, c.attrs...)
		ids[i] = s.SpanID
		if c.svc == "db" && c.kind == tracestore.SpanKindServer {
			g.svcs["db"].observe(c.d, 200)
			level, msg := "debug", "query done"
			if c.d > time.Second {
				level, msg = "warn", "slow query"
			}
			g.log(c.start.Add(c.d), "db", level, tid, s.SpanID, msg, "statement", SlowStatement, "duration_ms", c.d.Milliseconds())
		}
		if c.svc == "cache" {
			g.svcs["cache"].observe(c.d, 200)
		}
		if c.svc == "analytics" && c.kind == tracestore.SpanKindConsumer {
			g.svcs["analytics"].observe(c.d, 200)
			g.log(c.start, "analytics", "info", tid, s.SpanID, "click recorded", "short_code", code)
		}
	}
	g.svcs["redirect"].observe(redirD, status)
	g.svcs["edge"].observe(edgeD, status)
	level := "info"
	if status >= 500 {
		level = "error"
		g.sum.Errors++
		g.log(edgeStart.Add(edgeD), "edge", "error", tid, edgeID, "upstream timeout", "status", status, "route", route)
	}
	g.log(redirStart.Add(redirD), "redirect", level, tid, redirID, "redirect served",
		"code", code, "status", status, "duration_ms", redirD.Milliseconds(), "cache", map[bool]string{true: "hit", false: "miss"}[hit])
	if slow {
		g.sum.SlowRequests++
	}
}

func http(code int) string { return fmt.Sprintf("HTTP %d", code) }
