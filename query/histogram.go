package query

import (
	"math"
	"strconv"

	"github.com/prometheus/prometheus/model/histogram"

	"github.com/pillar-db/pillar/tsdb"
)

// histogramRate is rate/increase/delta over a window of native histograms:
// the last minus the first, plus every histogram before a detected counter
// reset, reduced to the lowest schema in the window, extrapolated like
// floats (using the count for the zero point).
func histogramRate(w *windowArgs, isCounter, isRate bool) (*FloatHistogram, bool) {
	points := w.h
	if len(points) < 2 {
		return nil, false
	}
	prev := points[0].H
	usingCustom := prev.UsesCustomBuckets()
	last := points[len(points)-1].H
	if isCounter {
		second := points[1].H
		if second.DetectReset(prev) {
			prev = &histogram.FloatHistogram{}
			prev.Schema = second.Schema
			prev.CustomValues = second.CustomValues
			usingCustom = second.UsesCustomBuckets()
		}
	}
	if last.UsesCustomBuckets() != usingCustom {
		return nil, false
	}
	minSchema := min(last.Schema, prev.Schema)
	for _, p := range points[1 : len(points)-1] {
		if !isCounter {
			continue
		}
		if p.H.Schema < minSchema {
			minSchema = p.H.Schema
		}
		if p.H.UsesCustomBuckets() != usingCustom {
			return nil, false
		}
	}
	h := last.CopyToSchema(minSchema)
	if _, _, _, err := h.Sub(prev); err != nil {
		return nil, false
	}
	if isCounter {
		for _, p := range points[1:] {
			curr := p.H
			if curr.DetectReset(prev) {
				if _, _, _, err := h.Add(prev); err != nil {
					return nil, false
				}
			}
			prev = curr
		}
	}
	h.CounterResetHint = histogram.GaugeType
	h = h.Compact(0)

	firstT, lastT := points[0].T, points[len(points)-1].T
	n := len(points) - 1
	durationToStart := float64(firstT-w.rangeStart) / 1000
	durationToEnd := float64(w.rangeEnd-lastT) / 1000
	sampledInterval := float64(lastT-firstT) / 1000
	avg := sampledInterval / float64(n)
	threshold := avg * 1.1
	if durationToStart >= threshold {
		durationToStart = avg / 2
	}
	if isCounter {
		durationToZero := durationToStart
		if h.Count > 0 && points[0].H.Count >= 0 {
			durationToZero = sampledInterval * (points[0].H.Count / h.Count)
		}
		if durationToZero < durationToStart {
			durationToStart = durationToZero
		}
	}
	if durationToEnd >= threshold {
		durationToEnd = avg / 2
	}
	factor := 1.0
	if sampledInterval != 0 {
		factor = (sampledInterval + durationToStart + durationToEnd) / sampledInterval
	}
	if isRate {
		factor /= w.rangeSeconds
	}
	h.Mul(factor)
	return h, true
}

// instantHistogramRate is irate/idelta over the last two histograms.
func instantHistogramRate(points []HPoint, isRate bool) (*FloatHistogram, bool) {
	if len(points) < 2 {
		return nil, false
	}
	a, b := points[len(points)-2], points[len(points)-1]
	interval := b.T - a.T
	if interval == 0 {
		return nil, false
	}
	res := b.H.Copy()
	if !isRate || !b.H.DetectReset(a.H) {
		if _, _, _, err := res.Sub(a.H); err != nil {
			return nil, false
		}
	}
	res.CounterResetHint = histogram.GaugeType
	res.Compact(0)
	if isRate {
		res.Div(float64(interval) / 1000)
	}
	return res, true
}

// sumHistograms is sum_over_time over histograms (Kahan-compensated).
func sumHistograms(points []HPoint) (*FloatHistogram, bool) {
	sum := points[0].H.Copy()
	var comp *FloatHistogram
	var err error
	for _, p := range points[1:] {
		comp, _, _, err = sum.KahanAdd(p.H, comp)
		if err != nil {
			return nil, false
		}
	}
	if comp != nil {
		if sum, _, _, err = sum.Add(comp); err != nil {
			return nil, false
		}
	}
	return sum, true
}

// avgHistograms is avg_over_time over histograms.
func avgHistograms(points []HPoint) (*FloatHistogram, bool) {
	var (
		sum             = points[0].H.Copy()
		mean, kahanC    *FloatHistogram
		count           = 1.
		incrementalMean bool
		err             error
	)
	for i, p := range points[1:] {
		count = float64(i + 2)
		if !incrementalMean {
			sumCopy := sum.Copy()
			var cCopy *FloatHistogram
			if kahanC != nil {
				cCopy = kahanC.Copy()
			}
			cCopy, _, _, err = sumCopy.KahanAdd(p.H, cCopy)
			if err != nil {
				return nil, false
			}
			if !sumCopy.HasOverflow() {
				sum, kahanC = sumCopy, cCopy
				continue
			}
			incrementalMean = true
			mean = sum.Copy().Div(count - 1)
			if kahanC != nil {
				kahanC.Div(count - 1)
			}
		}
		q := (count - 1) / count
		if kahanC != nil {
			kahanC.Mul(q)
		}
		toAdd := p.H.Copy().Div(count)
		kahanC, _, _, err = mean.Mul(q).KahanAdd(toAdd, kahanC)
		if err != nil {
			return nil, false
		}
	}
	if incrementalMean {
		if kahanC != nil {
			if _, _, _, err := mean.Add(kahanC); err != nil {
				return nil, false
			}
		}
		return mean, true
	}
	if kahanC != nil {
		if _, _, _, err := sum.Div(count).Add(kahanC.Div(count)); err != nil {
			return nil, false
		}
		return sum, true
	}
	return sum.Div(count), true
}

// classicGroups groups the float samples of v into classic histograms by
// their labels without `le`, in order of first appearance, and collects the
// native histogram samples. A series whose `le` does not parse is skipped;
// a group that also has a native histogram with the same labels is dropped
// along with that histogram, as in Prometheus.
type classicGroup struct {
	labels  tsdb.Labels
	buckets []bucket
}

func groupBuckets(v Vector) (groups []*classicGroup, natives []Sample) {
	index := map[uint64]*classicGroup{}
	for _, s := range v {
		if s.H != nil {
			natives = append(natives, s)
			continue
		}
		ub, err := strconv.ParseFloat(s.Labels.Get("le"), 64)
		if err != nil {
			continue
		}
		key := bucketGroupKey(s.Labels)
		g, ok := index[key]
		if !ok {
			g = &classicGroup{labels: tsdb.NewBuilder(s.Labels).Del("le").Labels()}
			index[key] = g
			groups = append(groups, g)
		}
		g.buckets = append(g.buckets, bucket{upperBound: ub, count: s.F})
	}
	if len(natives) > 0 && len(groups) > 0 {
		kept := natives[:0]
		for _, n := range natives {
			key := bucketGroupKey(n.Labels)
			if g, ok := index[key]; ok && len(g.buckets) > 0 {
				g.buckets = nil
				continue
			}
			kept = append(kept, n)
		}
		natives = kept
	}
	return groups, natives
}

// bucketGroupKey hashes all labels but `le`, the metric name included,
// without allocating.
func bucketGroupKey(ls tsdb.Labels) uint64 {
	name := tsdb.Labels{{Name: tsdb.MetricName, Value: ls.Get(tsdb.MetricName)}}
	return ls.HashWithoutLabels("le")*0x9e3779b97f4a7c15 ^ name.Hash()
}

func (ev *evaluator) histogramQuantile(q float64, v Vector, enh *evalHelper) Vector {
	groups, natives := groupBuckets(v)
	for _, s := range natives {
		enh.out = append(enh.out, Sample{Labels: dropName(s.Labels), F: nativeQuantile(q, s.H)})
	}
	for _, g := range groups {
		if len(g.buckets) == 0 {
			continue
		}
		enh.out = append(enh.out, Sample{Labels: dropName(g.labels), F: bucketQuantile(q, g.buckets)})
	}
	return enh.out
}

func (ev *evaluator) histogramFraction(lower, upper float64, v Vector, enh *evalHelper) Vector {
	groups, natives := groupBuckets(v)
	for _, s := range natives {
		enh.out = append(enh.out, Sample{Labels: dropName(s.Labels), F: nativeFraction(lower, upper, s.H)})
	}
	for _, g := range groups {
		if len(g.buckets) == 0 {
			continue
		}
		enh.out = append(enh.out, Sample{Labels: dropName(g.labels), F: bucketFraction(lower, upper, g.buckets)})
	}
	return enh.out
}

// nativeQuantile is histogram_quantile over a native histogram:
// exponential interpolation inside the bucket holding the rank (linear in
// the zero bucket and for custom buckets), counting from the top for q ≥
// 0.5 to limit floating point error.
func nativeQuantile(q float64, h *FloatHistogram) float64 {
	if q < 0 {
		return math.Inf(-1)
	}
	if q > 1 {
		return math.Inf(+1)
	}
	if h.Count == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	var (
		b     histogram.Bucket[float64]
		count float64
		it    histogram.BucketIterator[float64]
		rank  float64
	)
	if math.IsNaN(h.Sum) || q < 0.5 {
		it = h.AllBucketIterator()
		rank = q * h.Count
	} else {
		it = h.AllReverseBucketIterator()
		rank = (1 - q) * h.Count
	}
	for it.Next() {
		b = it.At()
		if b.Count == 0 {
			continue
		}
		count += b.Count
		if count >= rank {
			break
		}
	}
	if !h.UsesCustomBuckets() && b.Lower < 0 && b.Upper > 0 {
		switch {
		case len(h.NegativeBuckets) == 0 && len(h.PositiveBuckets) > 0:
			b.Lower = 0
		case len(h.PositiveBuckets) == 0 && len(h.NegativeBuckets) > 0:
			b.Upper = 0
		}
	} else if h.UsesCustomBuckets() {
		if b.Lower == math.Inf(-1) {
			if b.Upper <= 0 {
				return b.Upper
			}
			b.Lower = 0
		} else if b.Upper == math.Inf(1) {
			return b.Lower
		}
	}
	if count > h.Count {
		count = h.Count
	}
	if count < rank {
		if math.IsNaN(h.Sum) {
			return math.NaN()
		}
		return b.Upper
	}
	if math.IsNaN(h.Sum) || q < 0.5 {
		rank -= count - b.Count
	} else {
		rank = count - rank
	}
	fraction := rank / b.Count
	if h.UsesCustomBuckets() || (b.Lower <= 0 && b.Upper >= 0) {
		return b.Lower + (b.Upper-b.Lower)*fraction
	}
	logLower := math.Log2(math.Abs(b.Lower))
	logUpper := math.Log2(math.Abs(b.Upper))
	if b.Lower > 0 {
		return math.Exp2(logLower + (logUpper-logLower)*fraction)
	}
	return -math.Exp2(logUpper + (logLower-logUpper)*(1-fraction))
}

// nativeFraction is histogram_fraction over a native histogram.
func nativeFraction(lower, upper float64, h *FloatHistogram) float64 {
	if h.Count == 0 || math.IsNaN(lower) || math.IsNaN(upper) {
		return math.NaN()
	}
	if lower >= upper {
		return 0
	}
	var (
		count, rank, lowerRank, upperRank float64
		lowerSet, upperSet                bool
		it                                = h.AllBucketIterator()
	)
	for it.Next() {
		b := it.At()
		count += b.Count
		zeroBucket := false
		linear := func(v float64) float64 {
			if b.Lower == math.Inf(-1) {
				return b.Count
			}
			return rank + b.Count*b.FractionBelow(v, true)
		}
		exponential := func(v float64) float64 {
			return rank + b.Count*b.FractionBelow(v, false)
		}
		if b.Lower <= 0 && b.Upper >= 0 {
			zeroBucket = true
			switch {
			case len(h.NegativeBuckets) == 0 && len(h.PositiveBuckets) > 0:
				b.Lower = 0
			case len(h.PositiveBuckets) == 0 && len(h.NegativeBuckets) > 0:
				b.Upper = 0
			}
		}
		if !lowerSet && b.Lower >= lower {
			lowerRank, lowerSet = rank, true
		}
		if !upperSet && b.Lower >= upper {
			upperRank, upperSet = rank, true
		}
		if lowerSet && upperSet {
			break
		}
		if !lowerSet && b.Lower < lower && b.Upper > lower {
			if h.UsesCustomBuckets() || zeroBucket {
				lowerRank = linear(lower)
			} else {
				lowerRank = exponential(lower)
			}
			lowerSet = true
		}
		if !upperSet && b.Lower < upper && b.Upper > upper {
			if h.UsesCustomBuckets() || zeroBucket {
				upperRank = linear(upper)
			} else {
				upperRank = exponential(upper)
			}
			upperSet = true
		}
		if lowerSet && upperSet {
			break
		}
		rank += b.Count
	}
	if math.IsNaN(h.Sum) {
		for it.Next() {
			count += it.At().Count
		}
	} else {
		count = h.Count
	}
	if !lowerSet || lowerRank > count {
		lowerRank = count
	}
	if !upperSet || upperRank > count {
		upperRank = count
	}
	return (upperRank - lowerRank) / h.Count
}
