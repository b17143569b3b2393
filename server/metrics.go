package server

import (
	"bufio"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pillar-db/pillar/compaction"
)

// latencyBuckets are the upper bounds, in seconds, of the request latency
// histogram.
var latencyBuckets = [...]float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60}

// routeStats counts one route's requests by status class and times them.
type routeStats struct {
	name    string
	codes   [6]atomic.Uint64 // index = status/100 (0 unused)
	buckets [len(latencyBuckets)]atomic.Uint64
	count   atomic.Uint64
	sumNs   atomic.Uint64
}

// serverMetrics are the server's own counters. They live in the Server (no
// global registry) and are written out by hand in the text format.
type serverMetrics struct {
	routes []*routeStats // fixed after New, so reads need no lock

	samples, histograms, exemplarsDropped, rejectedSamples atomic.Uint64
	spans, rejectedSpans                                   atomic.Uint64
	logRecords, rejectedLogRecords                         atomic.Uint64
	unauthorized                                           atomic.Uint64
	start                                                  time.Time
}

func newServerMetrics() *serverMetrics { return &serverMetrics{start: time.Now()} }

func (m *serverMetrics) route(name string) *routeStats {
	st := &routeStats{name: name}
	m.routes = append(m.routes, st)
	return st
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) instrument(st *routeStats, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		d := time.Since(t0)
		code := sw.status
		if code == 0 {
			code = http.StatusOK
		}
		if c := code / 100; c > 0 && c < len(st.codes) {
			st.codes[c].Add(1)
		}
		sec := d.Seconds()
		for i, b := range latencyBuckets {
			if sec <= b {
				st.buckets[i].Add(1)
			}
		}
		st.count.Add(1)
		st.sumNs.Add(uint64(d.Nanoseconds()))
	})
}

// handleMetrics writes the server's metrics in the Prometheus text format.
func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	m := s.metrics
	counter := func(name, help string, v uint64) {
		bw.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " ")
		bw.WriteString(strconv.FormatUint(v, 10))
		bw.WriteByte('\n')
	}
	gauge := func(name, help string, v float64) {
		bw.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " ")
		bw.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		bw.WriteByte('\n')
	}
	counter("pillar_server_samples_ingested_total", "Float samples stored from remote-write, OTLP and text imports.", m.samples.Load())
	counter("pillar_server_histograms_ingested_total", "Native histogram samples stored.", m.histograms.Load())
	counter("pillar_server_samples_rejected_total", "Samples and histograms refused (bad input or storage errors).", m.rejectedSamples.Load())
	counter("pillar_server_exemplars_dropped_total", "Remote-write exemplars dropped (not stored).", m.exemplarsDropped.Load())
	counter("pillar_server_spans_ingested_total", "Spans stored from OTLP.", m.spans.Load())
	counter("pillar_server_spans_rejected_total", "Spans refused.", m.rejectedSpans.Load())
	counter("pillar_server_log_records_ingested_total", "Log records stored from OTLP.", m.logRecords.Load())
	counter("pillar_server_log_records_rejected_total", "Log records refused.", m.rejectedLogRecords.Load())
	counter("pillar_server_unauthorized_requests_total", "Requests refused for a missing or wrong bearer token.", m.unauthorized.Load())

	st := s.db.Metrics().Stats()
	gauge("pillar_store_disk_bytes", "Bytes the store occupies on disk.", float64(s.db.DiskUsage()))
	gauge("pillar_metrics_series", "Series registered in the metric store.", float64(st.Series))
	gauge("pillar_metrics_head_samples", "Samples in memory, not yet sealed into chunks.", float64(st.HeadSamples))
	ls := s.db.Logs().Stats()
	gauge("pillar_logs_records", "Log records stored.", float64(ls.Records))
	gauge("pillar_logs_partitions", "Log time partitions.", float64(ls.Partitions))
	gauge("pillar_server_start_time_seconds", "Unix time the server started.", float64(m.start.UnixNano())/1e9)
	if sch := s.db.Maintenance(); sch != nil {
		writeMaintenance(bw, sch.Metrics())
	}

	routes := slices.Clone(m.routes)
	bw.WriteString("# HELP pillar_server_requests_total Requests served, by route and status class.\n# TYPE pillar_server_requests_total counter\n")
	for _, r := range routes {
		for c := 1; c < len(r.codes); c++ {
			if v := r.codes[c].Load(); v > 0 {
				bw.WriteString(`pillar_server_requests_total{route="` + r.name + `",code="` + strconv.Itoa(c) + `xx"} `)
				bw.WriteString(strconv.FormatUint(v, 10))
				bw.WriteByte('\n')
			}
		}
	}
	bw.WriteString("# HELP pillar_server_request_duration_seconds Request latency by route.\n# TYPE pillar_server_request_duration_seconds histogram\n")
	for _, r := range routes {
		// Requests finishing meanwhile may show in a bucket but not yet in
		// the count: the count is raised to the largest bucket so the
		// histogram stays cumulative.
		var bucket [len(latencyBuckets)]uint64
		for i := range bucket {
			bucket[i] = r.buckets[i].Load()
		}
		n := max(r.count.Load(), bucket[len(bucket)-1])
		if n == 0 {
			continue
		}
		for i, b := range latencyBuckets {
			bw.WriteString(`pillar_server_request_duration_seconds_bucket{route="` + r.name + `",le="` + strconv.FormatFloat(b, 'g', -1, 64) + `"} `)
			bw.WriteString(strconv.FormatUint(bucket[i], 10))
			bw.WriteByte('\n')
		}
		bw.WriteString(`pillar_server_request_duration_seconds_bucket{route="` + r.name + `",le="+Inf"} ` + strconv.FormatUint(n, 10) + "\n")
		bw.WriteString(`pillar_server_request_duration_seconds_sum{route="` + r.name + `"} ` + strconv.FormatFloat(float64(r.sumNs.Load())/1e9, 'g', -1, 64) + "\n")
		bw.WriteString(`pillar_server_request_duration_seconds_count{route="` + r.name + `"} ` + strconv.FormatUint(n, 10) + "\n")
	}
	_ = bw.Flush()
}

// writeMaintenance exports what each background maintenance job has done,
// so a dashboard shows what maintenance costs and what it reclaims.
func writeMaintenance(bw *bufio.Writer, mm compaction.Metrics) {
	series := func(name, typ, help string, v func(j *compaction.JobMetrics) float64) {
		bw.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
		for i := range mm.Jobs {
			j := &mm.Jobs[i]
			bw.WriteString(name + `{job="` + j.Name + `"} ` + strconv.FormatFloat(v(j), 'g', -1, 64) + "\n")
		}
	}
	series("pillar_maintenance_runs_total", "counter", "Finished runs of each maintenance job, failed ones included.",
		func(j *compaction.JobMetrics) float64 { return float64(j.Runs) })
	series("pillar_maintenance_errors_total", "counter", "Runs of each maintenance job that returned an error.",
		func(j *compaction.JobMetrics) float64 { return float64(j.Errors) })
	series("pillar_maintenance_items_total", "counter", "What each maintenance job changed (chunks, windows, segments, partitions).",
		func(j *compaction.JobMetrics) float64 { return float64(j.Items) })
	series("pillar_maintenance_read_bytes_total", "counter", "Encoded bytes each maintenance job read or removed.",
		func(j *compaction.JobMetrics) float64 { return float64(j.BytesIn) })
	series("pillar_maintenance_written_bytes_total", "counter", "Encoded bytes each maintenance job wrote.",
		func(j *compaction.JobMetrics) float64 { return float64(j.BytesOut) })
	series("pillar_maintenance_duration_seconds_total", "counter", "Time spent in each maintenance job's runs.",
		func(j *compaction.JobMetrics) float64 { return j.Duration.Seconds() })
	series("pillar_maintenance_running", "gauge", "1 while a run of the job is under way.",
		func(j *compaction.JobMetrics) float64 {
			if j.Running {
				return 1
			}
			return 0
		})
}
