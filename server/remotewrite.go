package server

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/prompb"

	"github.com/pillar-db/pillar/encoding"
	"github.com/pillar-db/pillar/tsdb"
)

// handleRemoteWrite ingests a Prometheus remote-write 1.0 request: a snappy
// block holding a protobuf WriteRequest. The whole request is one Commit.
//
// As Prometheus' own receiver does, a request with any sample that cannot
// be stored (out of order, duplicate timestamp, invalid labels or
// histogram) is rejected whole with 400 and a message naming the series and
// timestamp, so the sender drops it instead of retrying it forever; nothing
// of it is stored. Exemplars are dropped (and counted in
// pillar_server_exemplars_dropped_total): the metric store keeps none.
func (s *Server) handleRemoteWrite(w http.ResponseWriter, r *http.Request) {
	// Nothing keeps the body past the request (label strings are copied
	// out of it), so its buffers are reused.
	bufs, _ := s.rwBuffers.Get().(*bodyBuffers)
	if bufs == nil {
		bufs = new(bodyBuffers)
	}
	defer func() {
		bufs.keep()
		s.rwBuffers.Put(bufs)
	}()
	body, err := s.readBodyInto(r, true, bufs)
	if err != nil {
		http.Error(w, err.Error(), statusOf(err))
		return
	}
	n, err := s.appendWriteRequest(r, body)
	if err != nil {
		s.metrics.rejectedSamples.Add(uint64(n.samples + n.histograms))
		http.Error(w, err.Error(), storeStatus(err))
		return
	}
	s.metrics.samples.Add(uint64(n.samples))
	s.metrics.histograms.Add(uint64(n.histograms))
	s.metrics.exemplarsDropped.Add(uint64(n.exemplars))
	w.WriteHeader(http.StatusNoContent)
}

// DecodeWriteRequest decodes an uncompressed remote-write protobuf
// message. Errors wrap ErrBadPayload.
func DecodeWriteRequest(b []byte) (*prompb.WriteRequest, error) {
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: remote-write protobuf: %v", ErrBadPayload, err)
	}
	return &wr, nil
}

type writeCounts struct{ samples, histograms, exemplars int }

// storeStatus maps a store error to 400 when the input was at fault, 500
// otherwise.
func storeStatus(err error) int {
	switch {
	case errors.Is(err, tsdb.ErrOutOfOrderSample), errors.Is(err, tsdb.ErrDuplicateSampleForTimestamp),
		errors.Is(err, tsdb.ErrInvalidLabels), errors.Is(err, tsdb.ErrInvalidSample), errors.Is(err, ErrBadPayload):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// appendWriteRequest decodes an uncompressed WriteRequest into one
// appender and commits it; any error rolls the whole request back.
func (s *Server) appendWriteRequest(r *http.Request, body []byte) (writeCounts, error) {
	var n writeCounts
	app := s.db.Metrics().Appender(r.Context())
	sr := rwSeriesPool.Get().(*rwSeries)
	defer rwSeriesPool.Put(sr)
	var (
		h       tsdb.Histogram
		ph      prompb.Histogram
		newKeys []string
		newRefs []tsdb.SeriesRef
	)
	err := walkWriteRequest(body, sr, func(ser *rwSeries) error {
		ref := s.refs.get(ser.key)
		var ls tsdb.Labels // nil while the cached ref stands for the series
		if ref == 0 {
			var err error
			if ls, err = ser.seriesLabels(); err != nil {
				return err
			}
			if len(ls) == 0 {
				return fmt.Errorf("%w: a series without labels", tsdb.ErrInvalidLabels)
			}
		}
		cached := ref != 0
		for i, t := range ser.ts {
			var err error
			if ref, err = app.Append(ref, ls, t, ser.vs[i]); err != nil {
				return fmt.Errorf("series %s: %w", s.describe(ser, ls), err)
			}
			n.samples++
		}
		for _, m := range ser.hists {
			ph.Reset()
			if err := ph.Unmarshal(m); err != nil {
				return fmt.Errorf("%w: remote-write histogram: %v", ErrBadPayload, err)
			}
			if err := histogramFromProm(&h, &ph); err != nil {
				return fmt.Errorf("series %s at %d: %w", s.describe(ser, ls), ph.Timestamp, err)
			}
			var err error
			if ref, err = app.AppendHistogram(ref, ls, ph.Timestamp, &h); err != nil {
				return fmt.Errorf("series %s: %w", s.describe(ser, ls), err)
			}
			n.histograms++
		}
		n.exemplars += ser.exemplars
		if !cached && ref != 0 {
			newKeys = append(newKeys, string(ser.key))
			newRefs = append(newRefs, ref)
		}
		return nil
	})
	if err != nil {
		_ = app.Rollback()
		return n, err
	}
	if err := app.Commit(); err != nil {
		return n, err
	}
	s.refs.addAll(newKeys, newRefs)
	return n, nil
}

// describe names a series for an error message.
func (s *Server) describe(ser *rwSeries, ls tsdb.Labels) string {
	if ls == nil {
		ls, _ = ser.seriesLabels()
	}
	return ls.String()
}

// promLabels converts remote-write labels, sorting them when the sender
// did not and dropping empty values (an empty value means absent).
func promLabels(pl []prompb.Label) tsdb.Labels {
	ls := make(tsdb.Labels, 0, len(pl))
	for _, l := range pl {
		if l.Value != "" {
			ls = append(ls, tsdb.Label{Name: l.Name, Value: l.Value})
		}
	}
	if !slices.IsSortedFunc(ls, func(a, b tsdb.Label) int { return strings.Compare(a.Name, b.Name) }) {
		slices.SortStableFunc(ls, func(a, b tsdb.Label) int { return strings.Compare(a.Name, b.Name) })
	}
	return ls
}

// histogramFromProm fills h from a remote-write histogram. A float
// histogram is accepted when all its counts are whole numbers (the store
// keeps integer counts); otherwise it is an error wrapping ErrBadPayload.
func histogramFromProm(h *tsdb.Histogram, p *prompb.Histogram) error {
	h.Schema = p.Schema
	h.ZeroThreshold = p.ZeroThreshold
	h.Sum = p.Sum
	h.CounterResetHint = encoding.UnknownCounterReset
	switch p.ResetHint {
	case prompb.Histogram_YES:
		h.CounterResetHint = encoding.CounterReset
	case prompb.Histogram_NO:
		h.CounterResetHint = encoding.NotCounterReset
	case prompb.Histogram_GAUGE:
		h.CounterResetHint = encoding.GaugeType
	}
	h.PositiveSpans = convSpans(h.PositiveSpans[:0], p.PositiveSpans)
	h.NegativeSpans = convSpans(h.NegativeSpans[:0], p.NegativeSpans)
	if p.IsFloatHistogram() {
		var ok bool
		if h.Count, ok = whole(p.GetCountFloat()); !ok {
			return fmt.Errorf("%w: float histogram with fractional count %g", ErrBadPayload, p.GetCountFloat())
		}
		if h.ZeroCount, ok = whole(p.GetZeroCountFloat()); !ok {
			return fmt.Errorf("%w: float histogram with fractional zero count", ErrBadPayload)
		}
		var err error
		if h.PositiveBuckets, err = countsToDeltas(h.PositiveBuckets[:0], p.PositiveCounts); err != nil {
			return err
		}
		if h.NegativeBuckets, err = countsToDeltas(h.NegativeBuckets[:0], p.NegativeCounts); err != nil {
			return err
		}
	} else {
		h.Count = p.GetCountInt()
		h.ZeroCount = p.GetZeroCountInt()
		h.PositiveBuckets = append(h.PositiveBuckets[:0], p.PositiveDeltas...)
		h.NegativeBuckets = append(h.NegativeBuckets[:0], p.NegativeDeltas...)
	}
	if err := h.Validate(); err != nil {
		return fmt.Errorf("%w: %w", tsdb.ErrInvalidSample, err)
	}
	return nil
}

func whole(f float64) (uint64, bool) {
	if f < 0 || f > 1<<53 || f != math.Trunc(f) {
		return 0, false
	}
	return uint64(f), true
}

func countsToDeltas(dst []int64, counts []float64) ([]int64, error) {
	var prev int64
	for _, c := range counts {
		u, ok := whole(c)
		if !ok {
			return dst, fmt.Errorf("%w: float histogram with fractional bucket count %g", ErrBadPayload, c)
		}
		dst = append(dst, int64(u)-prev)
		prev = int64(u)
	}
	return dst, nil
}

func convSpans(dst []encoding.BucketSpan, ps []prompb.BucketSpan) []encoding.BucketSpan {
	for _, s := range ps {
		dst = append(dst, encoding.BucketSpan{Offset: s.Offset, Length: s.Length})
	}
	return dst
}
