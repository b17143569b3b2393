package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tracestore/otlpconv"
	"github.com/pillar-db/pillar/tsdb"
)

// Ingest load: clients concurrent senders, each request a batch of
// seriesPerReq series × samplesPerSeries samples (remote-write) or
// spansPerReq spans (OTLP). The in-process variants store the same batches
// through the Go API with the same concurrency, so the ratio is what HTTP
// (framing, snappy, protobuf, loopback) costs.
const (
	clients          = 4
	seriesPerReq     = 100
	samplesPerSeries = 10
	spansPerReq      = 100
)

// reportRate reports n items' throughput per second of wall-clock time
// and per second of the process' CPU time (client and server together),
// the steadier figure on a shared machine.
func reportRate(b *testing.B, n int, unit string, start time.Time, cpu0 time.Duration) {
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), unit+"/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(n)/cpu.Seconds(), unit+"/cpu-s")
	}
}

// rwBatch builds worker w's batch number n.
func rwBatch(w, n int) *prompb.WriteRequest {
	wr := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, seriesPerReq)}
	base := int64(1767225600000) + int64(n)*samplesPerSeries*1000
	for s := range seriesPerReq {
		ts := &wr.Timeseries[s]
		ts.Labels = []prompb.Label{{Name: "__name__", Value: "bench_metric"}, {Name: "instance", Value: strconv.Itoa(s)}, {Name: "worker", Value: strconv.Itoa(w)}}
		ts.Samples = make([]prompb.Sample, samplesPerSeries)
		for i := range ts.Samples {
			ts.Samples[i] = prompb.Sample{Timestamp: base + int64(i)*1000, Value: float64(n*samplesPerSeries + i)}
		}
	}
	return wr
}

func BenchmarkRemoteWrite(b *testing.B) {
	b.Run("http", func(b *testing.B) {
		ts := newTestServer(b, nil)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		var worker atomic.Int64
		b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
		bodies := prebuild(b.N, func(w, n int) []byte {
			raw, _ := rwBatch(w, n).Marshal()
			return snappy.Encode(nil, raw)
		})
		start, cpu0 := time.Now(), cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			w := int(worker.Add(1))
			for n := 0; pb.Next(); n++ {
				resp, err := client.Post(ts.hs.URL+"/api/v1/write", "application/x-protobuf", bytes.NewReader(bodies.get(w, n)))
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
		reportRate(b, b.N*seriesPerReq*samplesPerSeries, "samples", start, cpu0)
	})
	// In process, the way a careful embedder writes: labels built once per
	// series and the refs Append hands back passed to the next batch.
	b.Run("inprocess", func(b *testing.B) {
		ts := newTestServer(b, nil)
		var worker atomic.Int64
		b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
		reqs := prebuild(b.N, rwBatch)
		start, cpu0 := time.Now(), cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			w := int(worker.Add(1))
			refs := make([]tsdb.SeriesRef, seriesPerReq)
			lsets := make([]tsdb.Labels, seriesPerReq)
			for n := 0; pb.Next(); n++ {
				wr := reqs.get(w, n)
				app := ts.db.Metrics().Appender(context.Background())
				for si, s := range wr.Timeseries {
					if lsets[si] == nil {
						for _, l := range s.Labels {
							lsets[si] = append(lsets[si], tsdb.Label{Name: l.Name, Value: l.Value})
						}
					}
					for _, smp := range s.Samples {
						var err error
						if refs[si], err = app.Append(refs[si], lsets[si], smp.Timestamp, smp.Value); err != nil {
							b.Error(err)
							return
						}
					}
				}
				if err := app.Commit(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, b.N*seriesPerReq*samplesPerSeries, "samples", start, cpu0)
	})
}

// spanBatch builds a batch of spansPerReq spans in 10 traces.
func spanBatch(w, n int) *tracepb.TracesData {
	now := uint64(time.Now().UnixNano())
	ss := &tracepb.ScopeSpans{}
	for i := range spansPerReq {
		tid := make([]byte, 16)
		copy(tid, fmt.Sprintf("%04d%06d%04d", w, n, i/10))
		sid := make([]byte, 8)
		copy(sid, fmt.Sprintf("s%07d", i+1))
		ss.Spans = append(ss.Spans, &tracepb.Span{TraceId: tid, SpanId: sid, Name: "GET /api/" + strconv.Itoa(i%5),
			Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: now, EndTimeUnixNano: now + uint64(i)*1e6,
			Attributes: []*commonpb.KeyValue{otlpAttr("http.status_code", "200"), otlpAttr("http.route", "/api")}})
	}
	return &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlpAttr("service.name", "svc"+strconv.Itoa(w))}},
		ScopeSpans: []*tracepb.ScopeSpans{ss},
	}}}
}

func BenchmarkOTLPSpans(b *testing.B) {
	b.Run("http", func(b *testing.B) {
		ts := newTestServer(b, nil)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		var worker atomic.Int64
		b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
		bodies := prebuild(b.N, func(w, n int) []byte {
			body, _ := proto.Marshal(spanBatch(w, n))
			return body
		})
		start, cpu0 := time.Now(), cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			w := int(worker.Add(1))
			for n := 0; pb.Next(); n++ {
				resp, err := client.Post(ts.hs.URL+"/v1/traces", "application/x-protobuf", bytes.NewReader(bodies.get(w, n)))
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
		reportRate(b, b.N*spansPerReq, "spans", start, cpu0)
	})
	b.Run("inprocess", func(b *testing.B) {
		ts := newTestServer(b, nil)
		var worker atomic.Int64
		b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
		reqs := prebuild(b.N, spanBatch)
		start, cpu0 := time.Now(), cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			w := int(worker.Add(1))
			var spans []tracestore.Span
			for n := 0; pb.Next(); n++ {
				var err error
				if spans, err = otlpconv.FromResourceSpans(spans[:0], reqs.get(w, n).ResourceSpans); err != nil {
					b.Error(err)
					return
				}
				if err := ts.db.Traces().Write(context.Background(), spans); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, b.N*spansPerReq, "spans", start, cpu0)
	})
}

// payloads holds each client's requests, built before the clock starts so
// that both sides of a comparison time the store and the protocol, not the
// generator or the client's encoder.
type payloads[T any] struct {
	perWorker [][]T
	build     func(w, n int) T
}

// prebuild builds about n requests spread over the clients, with room for
// RunParallel handing one client more than its share; get builds any
// request beyond that on the spot.
func prebuild[T any](n int, build func(w, n int) T) *payloads[T] {
	p := &payloads[T]{perWorker: make([][]T, clients+1), build: build}
	per := 2*n/clients + 8
	for w := 1; w <= clients; w++ {
		p.perWorker[w] = make([]T, per)
		for i := range per {
			p.perWorker[w][i] = build(w, i)
		}
	}
	return p
}

// get returns client w's request n.
func (p *payloads[T]) get(w, n int) T {
	if w < len(p.perWorker) && n < len(p.perWorker[w]) {
		return p.perWorker[w][n]
	}
	return p.build(w, n)
}
