package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/pillar-db/pillar"
	"github.com/pillar-db/pillar/logindex"
	"github.com/pillar-db/pillar/server"
	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tracestore/otlpconv"
	"github.com/pillar-db/pillar/tracestore/tracegen"
	"github.com/pillar-db/pillar/tsdb"
)

// The serve workload measures `pillar serve`'s wire protocols on loopback:
// serveClients concurrent clients send pre-encoded remote-write and OTLP
// trace requests to a server over a fresh store, and the same payloads are
// written in process, through the Go API with the same concurrency, into
// another fresh store, so the ratio is what HTTP costs (framing,
// compression, protobuf, the loopback socket). Then the clients write again
// while a reader runs a PromQL range query, a Tempo search and a Loki
// query_range in turn, for query latency under ingest load. Every phase is
// bounded in requests and in time (serveMaxPhase).
const (
	serveClients     = 4
	serveSeries      = 100 // series per remote-write request
	serveSamples     = 10  // samples per series per request
	serveRWRequests  = 250 // remote-write requests per client at scale 1
	serveSpans       = 100 // spans per OTLP request, about
	serveOTLPRequest = 100 // OTLP requests per client at scale 1
	serveLogLines    = 50_000
	serveRounds      = 4 // HTTP and in-process ingest alternate in this many rounds
	serveMaxPhase    = 2 * time.Minute
)

// serveStart is the first sample's and log line's time; the traces start
// at tracegen's default, the same instant.
var serveStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// rwPayload is one remote-write request: the message (for the in-process
// writer) and its snappy-compressed encoding (for the HTTP client).
type rwPayload struct {
	req  *prompb.WriteRequest
	body []byte
}

// otlpPayload is one OTLP trace request: the spans and their protobuf.
type otlpPayload struct {
	spans []tracestore.Span
	body  []byte
}

// serveLoad is every client's requests for one ingest phase.
type serveLoad struct {
	rw   [][]rwPayload
	otlp [][]otlpPayload
}

func (l *serveLoad) samples() int {
	n := 0
	for _, c := range l.rw {
		n += len(c) * serveSeries * serveSamples
	}
	return n
}

func (l *serveLoad) spans() int {
	n := 0
	for _, c := range l.otlp {
		for _, p := range c {
			n += len(p.spans)
		}
	}
	return n
}

// rwRequest builds client w's remote-write request number n: serveSeries
// series of the client's own, serveSamples samples each, 1 s apart and
// after those of request n-1.
func rwRequest(w, n int) (rwPayload, error) {
	wr := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, serveSeries)}
	base := serveStart.UnixMilli() + int64(n)*serveSamples*1000
	for s := range wr.Timeseries {
		ts := &wr.Timeseries[s]
		ts.Labels = []prompb.Label{{Name: "__name__", Value: "bench_requests_total"}, {Name: "client", Value: strconv.Itoa(w)},
			{Name: "instance", Value: "host-" + strconv.Itoa(s)}}
		ts.Samples = make([]prompb.Sample, serveSamples)
		for i := range ts.Samples {
			ts.Samples[i] = prompb.Sample{Timestamp: base + int64(i)*1000, Value: float64((n*serveSamples + i) * (s + 1))}
		}
	}
	raw, err := wr.Marshal()
	if err != nil {
		return rwPayload{}, err
	}
	return rwPayload{req: wr, body: snappy.Encode(nil, raw)}, nil
}

// buildServeLoad makes perClient requests of each kind for every client;
// remote-write requests are numbered from first, so a later phase's
// samples follow an earlier one's.
func buildServeLoad(perRW, perOTLP, first int, seed uint64) (*serveLoad, error) {
	l := &serveLoad{rw: make([][]rwPayload, serveClients), otlp: make([][]otlpPayload, serveClients)}
	for w := range serveClients {
		for n := range perRW {
			p, err := rwRequest(w, first+n)
			if err != nil {
				return nil, err
			}
			l.rw[w] = append(l.rw[w], p)
		}
		gen := tracegen.New(tracegen.Config{Seed: seed*uint64(serveClients) + uint64(w) + 1})
		for range perOTLP {
			spans := gen.Batch(nil, serveSpans)
			body, err := otlpconv.MarshalProto(spans)
			if err != nil {
				return nil, err
			}
			l.otlp[w] = append(l.otlp[w], otlpPayload{spans: spans, body: body})
		}
	}
	return l, nil
}

// runClients runs serveClients goroutines, client w calling f(ctx, w, i)
// for i in [0, n(w)), and returns the wall-clock time they took. It stops
// at the first error or when ctx ends, returning how many calls finished.
func runClients(ctx context.Context, n func(w int) int, f func(ctx context.Context, w, i int) error) (done int, took time.Duration, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		calls atomic.Int64
		once  sync.Once
		first error
	)
	start := time.Now()
	for w := range serveClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n(w) {
				if ctx.Err() != nil {
					return
				}
				if err := f(ctx, w, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
				calls.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(calls.Load()), time.Since(start), first
}

// httpWriter posts the payloads to a server.
type httpWriter struct {
	client *http.Client
	base   string
}

func (h *httpWriter) post(ctx context.Context, path, contentType, encoding string, body []byte, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: status %d: %s", path, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

func (h *httpWriter) get(ctx context.Context, path string, params url.Values) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %s", path, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// round returns the requests [lo, hi) of round k of rounds among n.
func round(n, k, rounds int) (lo, hi int) { return n * k / rounds, n * (k + 1) / rounds }

// ingestHTTP sends round k of a load's remote-write requests, then of its
// OTLP requests, and returns each kind's wall-clock time.
func ingestHTTP(ctx context.Context, h *httpWriter, l *serveLoad, k, rounds int) (rw, otlp time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, serveMaxPhase)
	defer cancel()
	rwLo, rwHi := round(len(l.rw[0]), k, rounds)
	if _, rw, err = runClients(ctx, func(int) int { return rwHi - rwLo }, func(ctx context.Context, w, i int) error {
		return h.post(ctx, "/api/v1/write", "application/x-protobuf", "snappy", l.rw[w][rwLo+i].body, http.StatusNoContent)
	}); err != nil {
		return 0, 0, fmt.Errorf("remote-write: %w", err)
	}
	otLo, otHi := round(len(l.otlp[0]), k, rounds)
	if _, otlp, err = runClients(ctx, func(int) int { return otHi - otLo }, func(ctx context.Context, w, i int) error {
		return h.post(ctx, "/v1/traces", "application/x-protobuf", "", l.otlp[w][otLo+i].body, http.StatusOK)
	}); err != nil {
		return 0, 0, fmt.Errorf("otlp: %w", err)
	}
	return rw, otlp, nil
}

// inProcess writes loads through the Go API: each client builds a
// series' labels once and passes back the refs Append returns, as a
// careful embedder does.
type inProcess struct {
	db    *pillar.DB
	refs  [][]tsdb.SeriesRef
	lsets [][]tsdb.Labels
}

func newInProcess(db *pillar.DB) *inProcess {
	ip := &inProcess{db: db, refs: make([][]tsdb.SeriesRef, serveClients), lsets: make([][]tsdb.Labels, serveClients)}
	for w := range serveClients {
		ip.refs[w], ip.lsets[w] = make([]tsdb.SeriesRef, serveSeries), make([]tsdb.Labels, serveSeries)
	}
	return ip
}

// ingest writes round k of the load as ingestHTTP sends it.
func (ip *inProcess) ingest(ctx context.Context, l *serveLoad, k, rounds int) (rw, otlp time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, serveMaxPhase)
	defer cancel()
	db, refs, lsets := ip.db, ip.refs, ip.lsets
	rwLo, rwHi := round(len(l.rw[0]), k, rounds)
	if _, rw, err = runClients(ctx, func(int) int { return rwHi - rwLo }, func(ctx context.Context, w, i int) error {
		i += rwLo
		app := db.Metrics().Appender(ctx)
		for si := range l.rw[w][i].req.Timeseries {
			s := &l.rw[w][i].req.Timeseries[si]
			if lsets[w][si] == nil {
				for _, lb := range s.Labels {
					lsets[w][si] = append(lsets[w][si], tsdb.Label{Name: lb.Name, Value: lb.Value})
				}
			}
			for _, smp := range s.Samples {
				var err error
				if refs[w][si], err = app.Append(refs[w][si], lsets[w][si], smp.Timestamp, smp.Value); err != nil {
					_ = app.Rollback()
					return err
				}
			}
		}
		return app.Commit()
	}); err != nil {
		return 0, 0, fmt.Errorf("metrics: %w", err)
	}
	otLo, otHi := round(len(l.otlp[0]), k, rounds)
	if _, otlp, err = runClients(ctx, func(int) int { return otHi - otLo }, func(ctx context.Context, w, i int) error {
		return db.Traces().Write(ctx, l.otlp[w][otLo+i].spans)
	}); err != nil {
		return 0, 0, fmt.Errorf("traces: %w", err)
	}
	return rw, otlp, nil
}

// startServer serves db on a loopback port until the returned stop is
// first called; stop returns what Serve returned, every time.
func startServer(ctx context.Context, db *pillar.DB) (base string, stop func() error, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- server.Serve(sctx, ln, server.New(db, nil), &server.ServeOptions{ShutdownTimeout: 10 * time.Second})
	}()
	return "http://" + ln.Addr().String(), sync.OnceValue(func() error {
		cancel()
		return <-errc
	}), nil
}

// serveLogs writes the log lines the Loki query reads: services × levels,
// spread over the first hour.
func serveLogs(ctx context.Context, db *pillar.DB, n int) error {
	levels := []string{"INFO", "INFO", "INFO", "WARN", "ERROR"}
	recs := make([]logindex.Record, 0, 1000)
	for i := range n {
		svc := "svc-" + strconv.Itoa(i%5)
		recs = append(recs, logindex.Record{
			Timestamp:    serveStart.Add(time.Duration(i) * time.Hour / time.Duration(n)).UnixNano(),
			SeverityText: levels[i%len(levels)],
			Resource:     []logindex.Attribute{{Key: logindex.ServiceAttr, Value: logindex.StringValue(svc)}},
			Body:         logindex.StringValue(fmt.Sprintf("GET /api/items/%d took %d ms user=u%d", i%1000, i%300, i%97)),
		})
		if len(recs) == cap(recs) || i == n-1 {
			if err := db.Logs().Write(ctx, recs); err != nil {
				return err
			}
			recs = recs[:0]
		}
	}
	return nil
}

// serve runs the workload; see the comment on the constants above.
func (r *runner) serve(ctx context.Context, dir string) error {
	perRW := max(1, int(serveRWRequests*r.cfg.Scale))
	perOTLP := max(1, int(serveOTLPRequest*r.cfg.Scale))
	r.progress("serve: build payloads", 0)
	load, err := buildServeLoad(perRW, perOTLP, 0, 0)
	if err != nil {
		return err
	}
	underLoad, err := buildServeLoad(perRW, perOTLP, perRW, 1)
	if err != nil {
		return err
	}

	// HTTP first, then the same payloads in process, each on a fresh store.
	db, err := pillar.Open(filepath.Join(dir, "http"), nil)
	if err != nil {
		return err
	}
	defer db.Close()
	base, stop, err := startServer(ctx, db)
	if err != nil {
		return err
	}
	defer func() { _ = stop() }()
	h := &httpWriter{base: base, client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: serveClients + 1}}}
	defer h.client.CloseIdleConnections()
	ipDB, err := pillar.Open(filepath.Join(dir, "inprocess"), nil)
	if err != nil {
		return err
	}
	closeIP := sync.OnceValue(ipDB.Close)
	defer closeIP()
	ip := newInProcess(ipDB)
	// The two alternate in rounds, so a change in the machine's load
	// weighs on both alike.
	var httpRW, httpOTLP, ipRW, ipOTLP time.Duration
	for k := range serveRounds {
		r.progress(fmt.Sprintf("serve: ingest, round %d of %d", k+1, serveRounds), 0.1+0.4*float64(k)/serveRounds)
		rw, otlp, err := ingestHTTP(ctx, h, load, k, serveRounds)
		if err != nil {
			return err
		}
		httpRW, httpOTLP = httpRW+rw, httpOTLP+otlp
		if rw, otlp, err = ip.ingest(ctx, load, k, serveRounds); err != nil {
			return err
		}
		ipRW, ipOTLP = ipRW+rw, ipOTLP+otlp
	}
	if err := closeIP(); err != nil {
		return err
	}
	samples, spans := load.samples(), load.spans()
	note := fmt.Sprintf("%d clients, loopback", serveClients)
	r.add("serve", "remote-write through HTTP", float64(samples)/httpRW.Seconds(), "samples/s",
		fmt.Sprintf("%s, %d samples in requests of %d", note, samples, serveSeries*serveSamples))
	r.add("serve", "remote-write in process, same payloads", float64(samples)/ipRW.Seconds(), "samples/s", fmt.Sprintf("%d goroutines", serveClients))
	r.add("serve", "remote-write HTTP / in process", 100*ipRW.Seconds()/httpRW.Seconds(), "%", "")
	r.add("serve", "OTLP spans through HTTP", float64(spans)/httpOTLP.Seconds(), "spans/s",
		fmt.Sprintf("%s, %d spans in requests of ~%d", note, spans, serveSpans))
	r.add("serve", "OTLP spans in process, same payloads", float64(spans)/ipOTLP.Seconds(), "spans/s", fmt.Sprintf("%d goroutines", serveClients))
	r.add("serve", "OTLP spans HTTP / in process", 100*ipOTLP.Seconds()/httpOTLP.Seconds(), "%", "")

	// Query latency while the clients write the second load.
	r.progress("serve: queries under ingest load", 0.5)
	if err := serveLogs(ctx, db, max(1000, int(serveLogLines*r.cfg.Scale))); err != nil {
		return err
	}
	lat, loadRW, loadOTLP, err := r.queriesUnderLoad(ctx, h, underLoad)
	if err != nil {
		return err
	}
	for _, q := range lat {
		r.add("serve", q.name+" under ingest load, p50", ms(q.p50), "ms", fmt.Sprintf("p99 %.2f ms, %d queries", ms(q.p99), q.n))
	}
	r.add("serve", "remote-write through HTTP while querying", float64(underLoad.samples())/loadRW.Seconds(), "samples/s", note)
	r.add("serve", "OTLP spans through HTTP while querying", float64(underLoad.spans())/loadOTLP.Seconds(), "spans/s", note)
	r.progress("serve: stop", 0.95)
	return stop()
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// queryLatency is one query's latency percentiles.
type queryLatency struct {
	name     string
	p50, p99 time.Duration
	n        int
}

// queriesUnderLoad ingests l through h while one reader runs the three
// queries in turn, until the ingest is done and each query ran at least 5
// times (at most 10,000 times in all).
func (r *runner) queriesUnderLoad(ctx context.Context, h *httpWriter, l *serveLoad) ([]queryLatency, time.Duration, time.Duration, error) {
	startS := serveStart.Unix()
	endS := startS + int64(2*len(l.rw[0])*serveSamples)
	queries := []struct {
		name   string
		path   string
		params url.Values
	}{
		{"PromQL range query (rate, sum by instance, 100 steps)", "/api/v1/query_range", url.Values{
			"query": {`sum by (instance) (rate(bench_requests_total[1m]))`},
			"start": {strconv.FormatInt(startS, 10)}, "end": {strconv.FormatInt(endS, 10)},
			"step": {strconv.FormatInt(max(1, (endS-startS)/100), 10)}}},
		{"Tempo search (service + attribute, limit 20)", "/api/search", url.Values{
			"tags": {`service.name=checkout http.status_code=500`}, "limit": {"20"},
			"start": {strconv.FormatInt(startS-60, 10)}, "end": {strconv.FormatInt(startS+3600, 10)}}},
		{"Loki query_range (stream + line filter, limit 100)", "/loki/api/v1/query_range", url.Values{
			"query": {`{service_name="svc-1", level="ERROR"} |= "took 42 ms"`}, "limit": {"100"},
			"start": {strconv.FormatInt(serveStart.UnixNano(), 10)}, "end": {strconv.FormatInt(serveStart.Add(time.Hour).UnixNano(), 10)}}},
	}
	ds := make([][]time.Duration, len(queries))
	ingestDone := make(chan struct{})
	var (
		rwTook, otlpTook time.Duration
		ingestErr        error
	)
	go func() {
		defer close(ingestDone)
		rwTook, otlpTook, ingestErr = ingestHTTP(ctx, h, l, 0, 1)
	}()
	var queryErr error
	deadline := time.Now().Add(serveMaxPhase)
	for i := 0; i < 10_000 && time.Now().Before(deadline); i++ {
		q := i % len(queries)
		if q == 0 && isClosed(ingestDone) && len(ds[len(ds)-1]) >= 5 {
			break
		}
		t := time.Now()
		if err := h.get(ctx, queries[q].path, queries[q].params); err != nil {
			queryErr = fmt.Errorf("%s: %w", queries[q].name, err)
			break
		}
		ds[q] = append(ds[q], time.Since(t))
	}
	<-ingestDone
	if err := errors.Join(ingestErr, queryErr); err != nil {
		return nil, 0, 0, err
	}
	out := make([]queryLatency, len(queries))
	for q := range queries {
		d := ds[q]
		if len(d) == 0 {
			return nil, 0, 0, fmt.Errorf("%s: no query finished in %v", queries[q].name, serveMaxPhase)
		}
		slices.Sort(d)
		out[q] = queryLatency{name: queries[q].name, p50: d[len(d)/2], p99: d[min(len(d)-1, len(d)*99/100)], n: len(d)}
	}
	return out, rwTook, otlpTook, nil
}
