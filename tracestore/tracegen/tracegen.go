// Package tracegen generates a reproducible synthetic trace workload for
// tests and benchmarks: a fixed set of services calling each other, 5–50
// spans per trace, about 11 attributes per span (3 resource, 8 span), a
// small share of errors and slow spans. The same Config always yields the
// same spans.
package tracegen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/pillar-db/pillar/tracestore"
)

// Config shapes the workload. The zero value is the default workload.
type Config struct {
	// Seed fixes the random sequence. Default 1.
	Seed uint64
	// Services is the number of services. Default 10.
	Services int
	// MinSpans and MaxSpans bound the spans per trace. Default 5 and 50.
	MinSpans, MaxSpans int
	// Start is the start time of the first trace (Unix ns). Default
	// 2026-01-01T00:00:00Z.
	Start int64
	// Interval is the time between the starts of consecutive traces.
	// Default 1ms.
	Interval time.Duration
}

// Generator produces traces. It is not safe for concurrent use.
type Generator struct {
	cfg      Config
	rng      *rand.Rand
	next     int64
	n        uint64
	services []service
	scope    tracestore.Scope
	routes   []string
	peers    []string
	tiers    []string
	regions  []string
}

type service struct {
	name     string
	resource tracestore.Resource
	ops      []string
}

var serviceNames = []string{"frontend", "auth", "cart", "checkout", "payment", "shipping", "catalog", "search", "recommend", "db-proxy"}

// New returns a generator for cfg.
func New(cfg Config) *Generator {
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Services <= 0 {
		cfg.Services = 10
	}
	if cfg.MinSpans <= 0 {
		cfg.MinSpans = 5
	}
	if cfg.MaxSpans < cfg.MinSpans {
		cfg.MaxSpans = max(50, cfg.MinSpans)
	}
	if cfg.Start == 0 {
		cfg.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Millisecond
	}
	g := &Generator{
		cfg:     cfg,
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		next:    cfg.Start,
		scope:   tracestore.Scope{Name: "pillar.tracegen", Version: "1.0.0"},
		tiers:   []string{"free", "pro", "enterprise"},
		regions: []string{"eu-west-1", "us-east-1", "ap-south-1"},
	}
	for i := range cfg.Services {
		name := fmt.Sprintf("svc-%d", i)
		if i < len(serviceNames) {
			name = serviceNames[i]
		}
		s := service{name: name, resource: tracestore.Resource{Attributes: []tracestore.KeyValue{
			{Key: tracestore.ServiceNameKey, Value: tracestore.StringValue(name)},
			{Key: "host.name", Value: tracestore.StringValue(fmt.Sprintf("%s-%d", name, i%3))},
			{Key: "service.version", Value: tracestore.StringValue("1." + fmt.Sprint(i%4) + ".0")},
		}}}
		for j := range 5 {
			s.ops = append(s.ops, fmt.Sprintf("GET /%s/%d", name, j))
		}
		g.services = append(g.services, s)
	}
	for i := range 20 {
		g.routes = append(g.routes, fmt.Sprintf("/api/v1/items/{id}/%d", i))
	}
	for _, s := range g.services {
		g.peers = append(g.peers, s.name+".internal")
	}
	return g
}

// Services returns the names of the generated services.
func (g *Generator) Services() []string {
	out := make([]string, len(g.services))
	for i, s := range g.services {
		out[i] = s.name
	}
	return out
}

// Trace appends the spans of the next trace to dst.
func (g *Generator) Trace(dst []tracestore.Span) []tracestore.Span {
	g.n++
	var tid tracestore.TraceID
	putU64(tid[:8], g.rng.Uint64())
	putU64(tid[8:], g.n)
	n := g.cfg.MinSpans + g.rng.IntN(g.cfg.MaxSpans-g.cfg.MinSpans+1)
	start := g.next + int64(g.rng.IntN(int(g.cfg.Interval)))
	g.next += int64(g.cfg.Interval)
	first := len(dst)
	rootDur := int64(5*time.Millisecond) + int64(g.rng.ExpFloat64()*float64(20*time.Millisecond))
	for i := range n {
		var sp tracestore.Span
		sp.TraceID = tid
		putU64(sp.SpanID[:], g.rng.Uint64()|1)
		svc := &g.services[0]
		var pStart, pEnd int64 = start, start + rootDur
		if i > 0 {
			parent := &dst[first+g.rng.IntN(i)]
			sp.ParentSpanID = parent.SpanID
			pStart, pEnd = parent.StartTime, parent.EndTime
			svc = &g.services[1+g.rng.IntN(len(g.services)-1)]
		}
		span := pEnd - pStart
		off := int64(g.rng.Float64() * 0.3 * float64(span))
		dur := int64(g.rng.Float64() * 0.7 * float64(span))
		if g.rng.IntN(200) == 0 {
			dur = span - off // a slow child that fills its parent
		}
		sp.StartTime, sp.EndTime = pStart+off, pStart+off+max(dur, 1000)
		if i == 0 {
			sp.StartTime, sp.EndTime = pStart, pEnd
		}
		sp.Name = svc.ops[g.rng.IntN(len(svc.ops))]
		sp.Kind = tracestore.SpanKindServer
		if i%3 == 2 {
			sp.Kind = tracestore.SpanKindClient
		}
		sp.Resource = svc.resource
		sp.Scope = g.scope
		code := int64(200)
		switch r := g.rng.IntN(100); {
		case r < 2:
			code = 500
			sp.Status = tracestore.Status{Code: tracestore.StatusError, Message: "internal error"}
		case r < 5:
			code = 404
		}
		sp.Attributes = []tracestore.KeyValue{
			{Key: "http.method", Value: tracestore.StringValue([]string{"GET", "POST"}[g.rng.IntN(2)])},
			{Key: "http.status_code", Value: tracestore.Int64Value(code)},
			{Key: "http.route", Value: tracestore.StringValue(g.routes[g.rng.IntN(len(g.routes))])},
			{Key: "net.peer.name", Value: tracestore.StringValue(g.peers[g.rng.IntN(len(g.peers))])},
			{Key: "user.tier", Value: tracestore.StringValue(g.tiers[g.rng.IntN(len(g.tiers))])},
			{Key: "cloud.region", Value: tracestore.StringValue(g.regions[g.rng.IntN(len(g.regions))])},
			{Key: "retry", Value: tracestore.BoolValue(g.rng.IntN(20) == 0)},
			{Key: "load", Value: tracestore.Float64Value(math.Round(g.rng.Float64()*100) / 10)},
		}
		dst = append(dst, sp)
	}
	return dst
}

// Batch appends whole traces to dst until at least n spans were added.
func (g *Generator) Batch(dst []tracestore.Span, n int) []tracestore.Span {
	start := len(dst)
	for len(dst)-start < n {
		dst = g.Trace(dst)
	}
	return dst
}

func putU64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}
