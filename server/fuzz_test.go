package server

import (
	"testing"
	"time"

	"github.com/pillar-db/pillar/server/logql"
	"github.com/pillar-db/pillar/tsdb"
)

// The fuzz targets feed each decoder behind an endpoint arbitrary bytes:
// none may panic, and what one accepts must be usable.

func FuzzRemoteWrite(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		raw, err := decodeSnappyBlock(body, 1<<20, nil)
		if err != nil {
			raw = body
		}
		var sr rwSeries
		_ = walkWriteRequest(raw, &sr, func(s *rwSeries) error {
			_, err := s.seriesLabels()
			return err
		})
		wr, err := DecodeWriteRequest(raw)
		if err != nil {
			return
		}
		for i := range wr.Timeseries {
			_ = promLabels(wr.Timeseries[i].Labels)
			for j := range wr.Timeseries[i].Histograms {
				var h tsdb.Histogram
				_ = histogramFromProm(&h, &wr.Timeseries[i].Histograms[j])
			}
		}
	})
}

func FuzzOTLPJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = DecodeOTLPTraces(body, true)
		_, _, _, _ = DecodeOTLPLogs(body, true)
		if md, err := DecodeOTLPMetrics(body, true); err == nil {
			_ = md.GetResourceMetrics()
		}
	})
}

func FuzzOTLPProto(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = DecodeOTLPTraces(body, false)
		_, _, _, _ = DecodeOTLPLogs(body, false)
		_, _ = DecodeOTLPMetrics(body, false)
	})
}

func FuzzTextFormat(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		samples, err := ParseText(body, 0)
		if err != nil {
			return
		}
		for _, s := range samples {
			if s.Labels.Get("__name__") == "" {
				t.Fatalf("sample without a name: %v", s.Labels)
			}
		}
	})
}

func FuzzLogQL(f *testing.F) {
	f.Fuzz(func(t *testing.T, q string) {
		e, err := logql.Parse(q)
		if err != nil {
			return
		}
		lq, ok := e.(*logql.LogQuery)
		if mq, isMetric := e.(*logql.MetricQuery); isMetric {
			lq, ok = mq.LogQuery(), true
			_ = mq.Eval([]logql.Entry{{T: 5, Bytes: 3}}, 0, 10, time.Second)
		}
		if ok {
			_ = lq.IndexQuery()
			_, _ = lq.Process(nil, `{"a":{"b":1},"c":"d"} x=y q="r s"`)
		}
	})
}

func FuzzSelectorAndTags(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = logql.ParseSeriesSelector(s)
		_, _ = ParseLogfmtTags(s)
		_, _ = ParseTraceQL(s)
		_, _ = logql.ParseDuration(s)
	})
}
