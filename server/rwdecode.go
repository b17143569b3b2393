package server

import (
	"fmt"
	"math"
	"sync"

	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pillar-db/pillar/tsdb"
)

// A remote-write request is decoded in one pass straight into the
// appender, without building the prompb message: per series, the raw bytes
// of its label fields are looked up in a cache of series refs, so a series
// seen before costs no label strings at all, and samples go from the wire
// to Append with nothing allocated per sample. (The generic gogo decoder
// spent as much CPU as the commit itself, mostly allocating.)
//
//	WriteRequest { repeated TimeSeries timeseries = 1; ... }
//	TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2;
//	               repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
//	Label        { string name = 1; string value = 2; }
//	Sample       { double value = 1; int64 timestamp = 2; }

// rwSeries is one decoded TimeSeries; its slices are reused across series.
type rwSeries struct {
	key       []byte   // the raw label fields, concatenated
	labels    [][]byte // each Label message
	ts        []int64
	vs        []float64
	hists     [][]byte // each Histogram message
	exemplars int
}

func (s *rwSeries) reset() {
	s.key, s.labels, s.ts, s.vs, s.hists, s.exemplars = s.key[:0], s.labels[:0], s.ts[:0], s.vs[:0], s.hists[:0], 0
}

// walkWriteRequest decodes b and calls f once per TimeSeries. The series
// and its slices are only valid during the call. Errors wrap ErrBadPayload.
func walkWriteRequest(b []byte, s *rwSeries, f func(*rwSeries) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: remote-write: %v", ErrBadPayload, protowire.ParseError(n))
		}
		b = b[n:]
		if num != 1 || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return fmt.Errorf("%w: remote-write: %v", ErrBadPayload, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		msg, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("%w: remote-write: %v", ErrBadPayload, protowire.ParseError(n))
		}
		b = b[n:]
		s.reset()
		if err := s.decode(msg); err != nil {
			return err
		}
		if err := f(s); err != nil {
			return err
		}
	}
	return nil
}

func (s *rwSeries) decode(b []byte) error {
	bad := func(n int) error {
		return fmt.Errorf("%w: remote-write series: %v", ErrBadPayload, protowire.ParseError(n))
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return bad(n)
		}
		b = b[n:]
		if typ != protowire.BytesType || num < 1 || num > 4 {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return bad(n)
			}
			b = b[n:]
			continue
		}
		msg, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return bad(n)
		}
		b = b[n:]
		switch num {
		case 1:
			s.key = protowire.AppendBytes(s.key, msg)
			s.labels = append(s.labels, msg)
		case 2:
			t, v, err := decodeSample(msg)
			if err != nil {
				return err
			}
			s.ts = append(s.ts, t)
			s.vs = append(s.vs, v)
		case 3:
			s.exemplars++
		case 4:
			s.hists = append(s.hists, msg)
		}
	}
	return nil
}

func decodeSample(b []byte) (int64, float64, error) {
	var t int64
	var v float64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, fmt.Errorf("%w: remote-write sample: %v", ErrBadPayload, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			u, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return 0, 0, fmt.Errorf("%w: remote-write sample value: %v", ErrBadPayload, protowire.ParseError(n))
			}
			v, b = math.Float64frombits(u), b[n:]
		case num == 2 && typ == protowire.VarintType:
			u, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, 0, fmt.Errorf("%w: remote-write sample timestamp: %v", ErrBadPayload, protowire.ParseError(n))
			}
			t, b = int64(u), b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, 0, fmt.Errorf("%w: remote-write sample: %v", ErrBadPayload, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return t, v, nil
}

// seriesLabels builds the series' label set from its Label messages,
// sorted, empty values dropped.
func (s *rwSeries) seriesLabels() (tsdb.Labels, error) {
	pl := make([]prompb.Label, 0, len(s.labels))
	for _, m := range s.labels {
		var l prompb.Label
		if err := l.Unmarshal(m); err != nil {
			return nil, fmt.Errorf("%w: remote-write label: %v", ErrBadPayload, err)
		}
		pl = append(pl, l)
	}
	return promLabels(pl), nil
}

// refCache maps the raw label bytes of a series to its ref. Entries are
// added only after the commit that used them succeeded, so every cached
// ref names a committed series. It is cleared when it reaches its bound.
type refCache struct {
	mu  sync.RWMutex
	m   map[string]tsdb.SeriesRef
	max int
}

func newRefCache(max int) *refCache {
	return &refCache{m: make(map[string]tsdb.SeriesRef), max: max}
}

func (c *refCache) get(key []byte) tsdb.SeriesRef {
	c.mu.RLock()
	ref := c.m[string(key)]
	c.mu.RUnlock()
	return ref
}

func (c *refCache) addAll(keys []string, refs []tsdb.SeriesRef) {
	if len(keys) == 0 {
		return
	}
	c.mu.Lock()
	if len(c.m)+len(keys) > c.max {
		clear(c.m)
	}
	for i, k := range keys {
		c.m[k] = refs[i]
	}
	c.mu.Unlock()
}

var rwSeriesPool = sync.Pool{New: func() any { return new(rwSeries) }}
