package server

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pillar-db/pillar/tsdb"
)

// TextSample is one sample of a text exposition body.
type TextSample struct {
	Labels tsdb.Labels
	T      int64 // Unix ms
	V      float64
}

// ParseText parses the Prometheus text exposition format. Samples without
// a timestamp get now (Unix ms). Counters, gauges and untyped metrics give
// one sample each; summaries their quantiles, _sum and _count; histograms
// their cumulative _bucket{le}, _sum and _count. The result is sorted by
// labels then time, so one series' samples are in order. Errors wrap
// ErrBadPayload.
func ParseText(body []byte, now int64) ([]TextSample, error) {
	fams, err := textToFamilies(body)
	if err != nil {
		return nil, err
	}
	var out []TextSample
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			t := now
			if m.TimestampMs != nil {
				t = m.GetTimestampMs()
			}
			add := func(n string, v float64, extra ...string) {
				ss := make([]string, 0, 2*len(m.GetLabel())+2+len(extra))
				for _, l := range m.GetLabel() {
					ss = append(ss, l.GetName(), l.GetValue())
				}
				ss = append(ss, extra...)
				ss = append(ss, tsdb.MetricName, n)
				out = append(out, TextSample{Labels: tsdb.FromStrings(ss...), T: t, V: v})
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m.GetGauge().GetValue())
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add(name, q.GetValue(), "quantile", strconv.FormatFloat(q.GetQuantile(), 'f', -1, 64))
				}
				add(name+"_sum", s.GetSampleSum())
				add(name+"_count", float64(s.GetSampleCount()))
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				inf := false
				for _, b := range h.GetBucket() {
					le := strconv.FormatFloat(b.GetUpperBound(), 'f', -1, 64)
					if b.GetUpperBound() > 1e308 {
						le, inf = "+Inf", true
					}
					add(name+"_bucket", float64(b.GetCumulativeCount()), "le", le)
				}
				if !inf {
					add(name+"_bucket", float64(h.GetSampleCount()), "le", "+Inf")
				}
				add(name+"_sum", h.GetSampleSum())
				add(name+"_count", float64(h.GetSampleCount()))
			default:
				add(name, m.GetUntyped().GetValue())
			}
		}
	}
	slices.SortStableFunc(out, func(a, b TextSample) int {
		if c := tsdb.Compare(a.Labels, b.Labels); c != 0 {
			return c
		}
		return cmpInt64(a.T, b.T)
	})
	return out, nil
}

// textToFamilies runs expfmt's parser. It panics on some malformed
// inputs (a bare label list after a TYPE line, "# TYPE a histogram\n{}", found by
// FuzzTextFormat and kept in its corpus), so the panic is turned into a
// malformed-payload error: no body may crash the server.
func textToFamilies(body []byte) (fams map[string]*dto.MetricFamily, err error) {
	defer func() {
		if r := recover(); r != nil {
			fams, err = nil, fmt.Errorf("%w: text format: parser failed: %v", ErrBadPayload, r)
		}
	}()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err = p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: text format: %v", ErrBadPayload, err)
	}
	return fams, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// handleImportText stores a text exposition body in one commit; like
// remote-write, a sample the store refuses rejects the whole body with 400.
func (s *Server) handleImportText(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(r, false)
	if err != nil {
		http.Error(w, err.Error(), statusOf(err))
		return
	}
	samples, err := ParseText(body, s.opts.Now().UnixMilli())
	if err != nil {
		http.Error(w, err.Error(), statusOf(err))
		return
	}
	app := s.db.Metrics().Appender(r.Context())
	var ref tsdb.SeriesRef
	var prev tsdb.Labels
	for _, smp := range samples {
		if !tsdb.Equal(prev, smp.Labels) {
			ref, prev = 0, smp.Labels
		}
		if ref, err = app.Append(ref, smp.Labels, smp.T, smp.V); err != nil {
			_ = app.Rollback()
			s.metrics.rejectedSamples.Add(uint64(len(samples)))
			http.Error(w, fmt.Sprintf("series %s: %v", smp.Labels, err), storeStatus(err))
			return
		}
	}
	if err := app.Commit(); err != nil {
		s.metrics.rejectedSamples.Add(uint64(len(samples)))
		http.Error(w, err.Error(), storeStatus(err))
		return
	}
	s.metrics.samples.Add(uint64(len(samples)))
	w.WriteHeader(http.StatusNoContent)
}
