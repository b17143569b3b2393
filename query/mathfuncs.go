package query

import (
	"math"
	"slices"
	"sort"
)

// This file holds the pure numeric kernels, each a faithful port of the
// definition Prometheus uses, so results agree to the last bit wherever the
// operation order is the same.

// kahanInc adds inc to sum with Neumaier-compensated summation, returning
// the new sum and compensation. The explicit float64 conversions stop the
// compiler fusing operations across the call (FMA), which would change the
// rounding and so the result.
func kahanInc(inc, sum, c float64) (newSum, newC float64) {
	inc = float64(inc)
	sum = float64(sum)
	c = float64(c)
	t := sum + inc
	switch {
	case math.IsInf(t, 0):
		c = 0
	case math.Abs(sum) >= math.Abs(inc):
		c += (sum - t) + inc
	default:
		c += (inc - t) + sum
	}
	return float64(t), float64(c)
}

// lessNaNFirst orders floats ascending with every NaN before every number,
// the order Prometheus' quantile sorts values into.
func lessNaNFirst(a, b float64) bool {
	if math.IsNaN(a) {
		return !math.IsNaN(b)
	}
	return a < b
}

// quantileOf returns the φ-quantile of values (Prometheus' definition:
// linear interpolation between the closest ranks, rank = q·(n−1)), −Inf for
// q < 0, +Inf for q > 1 and NaN for no values or q NaN. values is reordered
// in place (a selection, not a full sort).
func quantileOf(q float64, values []float64) float64 {
	if len(values) == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	if q < 0 {
		return math.Inf(-1)
	}
	if q > 1 {
		return math.Inf(+1)
	}
	n := float64(len(values))
	rank := q * (n - 1)
	lowerIndex := math.Max(0, math.Floor(rank))
	upperIndex := math.Min(n-1, lowerIndex+1)
	weight := rank - math.Floor(rank)
	lo := int(lowerIndex)
	hi := int(upperIndex)
	selectNth(values, lo)
	lower := values[lo]
	upper := lower
	if hi != lo {
		// After selecting lo, the element of rank lo+1 is the minimum of
		// the part above lo.
		upper = values[hi]
		for _, v := range values[hi+1:] {
			if lessNaNFirst(v, upper) {
				upper = v
			}
		}
	}
	return lower*(1-weight) + upper*weight
}

// quantileOfSorted is quantileOf over values already sorted with
// lessNaNFirst; values is not changed.
func quantileOfSorted(q float64, values []float64) float64 {
	if len(values) == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	if q < 0 {
		return math.Inf(-1)
	}
	if q > 1 {
		return math.Inf(+1)
	}
	n := float64(len(values))
	rank := q * (n - 1)
	lowerIndex := math.Max(0, math.Floor(rank))
	upperIndex := math.Min(n-1, lowerIndex+1)
	weight := rank - math.Floor(rank)
	return values[int(lowerIndex)]*(1-weight) + values[int(upperIndex)]*weight
}

// slidingSorted keeps the values of a range window sorted as the window
// slides over one series, step after step. Consecutive windows of a range
// query share most of their samples, so dropping the few that left and
// inserting the few that arrived costs far less than sorting (or selecting
// in) a fresh copy at every step, which is what quantile_over_time would
// otherwise do.
type slidingSorted struct {
	series uint64
	prev   []FPoint  // the window the values belong to
	values []float64 // prev's values, sorted with lessNaNFirst
}

// slide moves the sorted values to window f of the given series and
// returns them, valid until the next call.
func (s *slidingSorted) slide(series uint64, f []FPoint) []float64 {
	reuse := s.series == series && len(s.prev) > 0 && len(f) > 0 &&
		f[0].T >= s.prev[0].T && f[len(f)-1].T >= s.prev[len(s.prev)-1].T
	if reuse {
		// Samples are in time order: those that left are at the front of
		// prev, those that arrived at the back of f.
		gone := 0
		for gone < len(s.prev) && s.prev[gone].T < f[0].T {
			gone++
		}
		last := s.prev[len(s.prev)-1].T
		added := len(f)
		for added > 0 && f[added-1].T > last {
			added--
		}
		// Many changes at once (a step wider than the range): re-sorting
		// is cheaper than that many single moves.
		reuse = 2*(gone+len(f)-added) <= len(f)
		if reuse {
			for _, p := range s.prev[:gone] {
				s.values = removeSorted(s.values, p.F)
			}
			for _, p := range f[added:] {
				s.values = insertSorted(s.values, p.F)
			}
		}
	}
	if !reuse {
		s.values = s.values[:0]
		for _, p := range f {
			s.values = append(s.values, p.F)
		}
		slices.SortFunc(s.values, cmpNaNFirst)
	}
	s.series = series
	s.prev = append(s.prev[:0], f...)
	return s.values
}

func cmpNaNFirst(a, b float64) int {
	switch {
	case lessNaNFirst(a, b):
		return -1
	case lessNaNFirst(b, a):
		return 1
	}
	return 0
}

// searchNaNFirst returns the index of the first value not below x.
func searchNaNFirst(v []float64, x float64) int {
	lo, hi := 0, len(v)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if lessNaNFirst(v[m], x) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func insertSorted(v []float64, x float64) []float64 {
	return slices.Insert(v, searchNaNFirst(v, x), x)
}

// removeSorted removes one value that sorts equal to x; x came from the
// window the values were built from, so one is there.
func removeSorted(v []float64, x float64) []float64 {
	i := searchNaNFirst(v, x)
	if i == len(v) {
		return v
	}
	return slices.Delete(v, i, i+1)
}

// selectNth reorders v so that v[k] is the element that would be there if
// v were sorted with lessNaNFirst, everything before it is not greater and
// everything after it not smaller (Hoare's quickselect, median of three).
func selectNth(v []float64, k int) {
	lo, hi := 0, len(v)-1
	for hi > lo {
		if hi-lo < 16 {
			// Insertion sort for short ranges.
			for i := lo + 1; i <= hi; i++ {
				for j := i; j > lo && lessNaNFirst(v[j], v[j-1]); j-- {
					v[j], v[j-1] = v[j-1], v[j]
				}
			}
			return
		}
		mid := lo + (hi-lo)/2
		if lessNaNFirst(v[mid], v[lo]) {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if lessNaNFirst(v[hi], v[lo]) {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if lessNaNFirst(v[hi], v[mid]) {
			v[hi], v[mid] = v[mid], v[hi]
		}
		pivot := v[mid]
		i, j := lo, hi
		for i <= j {
			for lessNaNFirst(v[i], pivot) {
				i++
			}
			for lessNaNFirst(pivot, v[j]) {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return
		}
	}
}

// bucket is one classic histogram bucket: the cumulative count of
// observations ≤ upperBound.
type bucket struct {
	upperBound float64
	count      float64
}

// smallDeltaTolerance is the relative difference under which two adjacent
// cumulative bucket counts are taken as equal (floating point noise from
// rate() over buckets), as in Prometheus.
const smallDeltaTolerance = 1e-12

func sortBuckets(buckets []bucket) {
	slices.SortFunc(buckets, func(a, b bucket) int {
		if a.upperBound < b.upperBound {
			return -1
		}
		if a.upperBound > b.upperBound {
			return +1
		}
		return 0
	})
}

// bucketQuantile is histogram_quantile over classic buckets: buckets are
// sorted, buckets with the same bound merged, counts forced monotonic; the
// result interpolates linearly inside the bucket holding the rank, with the
// lowest bucket starting at 0 (unless its bound is ≤ 0) and the +Inf bucket
// answering with the bound below it. It needs a +Inf bucket, else NaN.
// buckets is reordered and modified.
func bucketQuantile(q float64, buckets []bucket) float64 {
	switch {
	case math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(+1)
	}
	sortBuckets(buckets)
	if !math.IsInf(buckets[len(buckets)-1].upperBound, +1) {
		return math.NaN()
	}
	buckets = coalesceBuckets(buckets)
	ensureMonotonic(buckets, smallDeltaTolerance)
	if len(buckets) < 2 {
		return math.NaN()
	}
	observations := buckets[len(buckets)-1].count
	if observations == 0 {
		return math.NaN()
	}
	rank := q * observations
	b := sort.Search(len(buckets)-1, func(i int) bool { return buckets[i].count >= rank })
	switch {
	case b == len(buckets)-1:
		return buckets[len(buckets)-2].upperBound
	case b == 0 && buckets[0].upperBound <= 0:
		return buckets[0].upperBound
	}
	var (
		bucketStart float64
		bucketEnd   = buckets[b].upperBound
		count       = buckets[b].count
	)
	if b > 0 {
		bucketStart = buckets[b-1].upperBound
		count -= buckets[b-1].count
		rank -= buckets[b-1].count
	}
	return bucketStart + (bucketEnd-bucketStart)*(rank/count)
}

// bucketFraction is histogram_fraction over classic buckets.
func bucketFraction(lower, upper float64, buckets []bucket) float64 {
	sortBuckets(buckets)
	if !math.IsInf(buckets[len(buckets)-1].upperBound, +1) {
		return math.NaN()
	}
	buckets = coalesceBuckets(buckets)
	count := buckets[len(buckets)-1].count
	if count == 0 || math.IsNaN(lower) || math.IsNaN(upper) {
		return math.NaN()
	}
	if lower >= upper {
		return 0
	}
	var (
		rank, lowerRank, upperRank float64
		lowerSet, upperSet         bool
	)
	lowerBound := 0.0
	if buckets[0].upperBound <= 0 {
		lowerBound = math.Inf(-1)
	}
	for i, b := range buckets {
		if i > 0 {
			lowerBound = buckets[i-1].upperBound
		}
		upperBound := b.upperBound
		interpolate := func(v float64) float64 {
			if lowerBound == math.Inf(-1) {
				return b.count
			}
			return rank + (b.count-rank)*(v-lowerBound)/(upperBound-lowerBound)
		}
		if !lowerSet && lowerBound >= lower {
			lowerRank, lowerSet = rank, true
		}
		if !upperSet && lowerBound >= upper {
			upperRank, upperSet = rank, true
		}
		if lowerSet && upperSet {
			break
		}
		if !lowerSet && lowerBound < lower && upperBound > lower {
			lowerRank, lowerSet = interpolate(lower), true
		}
		if !upperSet && lowerBound < upper && upperBound > upper {
			upperRank, upperSet = interpolate(upper), true
		}
		if lowerSet && upperSet {
			break
		}
		rank = b.count
	}
	if !lowerSet || lowerRank > count {
		lowerRank = count
	}
	if !upperSet || upperRank > count {
		upperRank = count
	}
	return (upperRank - lowerRank) / count
}

func coalesceBuckets(buckets []bucket) []bucket {
	last := buckets[0]
	i := 0
	for _, b := range buckets[1:] {
		if b.upperBound == last.upperBound {
			last.count += b.count
		} else {
			buckets[i] = last
			last = b
			i++
		}
	}
	buckets[i] = last
	return buckets[:i+1]
}

// ensureMonotonic raises any cumulative count lower than the one before it
// (buckets scraped at slightly different moments, or rate() noise) and
// flattens differences below tolerance, as Prometheus does before
// interpolating.
func ensureMonotonic(buckets []bucket, tolerance float64) {
	prev := buckets[0].count
	for i := 1; i < len(buckets); i++ {
		curr := buckets[i].count
		if curr == prev {
			continue
		}
		if almostEqual(prev, curr, tolerance) {
			buckets[i].count = prev
			continue
		}
		if curr < prev {
			buckets[i].count = prev
			continue
		}
		prev = curr
	}
}

// minNormal is the smallest positive normal float64.
const minNormal = 0x1p-1022

func almostEqual(a, b, epsilon float64) bool {
	if isStaleNaN(a) || isStaleNaN(b) {
		return isStaleNaN(a) && isStaleNaN(b)
	}
	if math.IsNaN(a) && math.IsNaN(b) {
		return true
	}
	if a == b {
		return true
	}
	absSum := math.Abs(a) + math.Abs(b)
	diff := math.Abs(a - b)
	if a == 0 || b == 0 || absSum < minNormal {
		return diff < epsilon*minNormal
	}
	return diff/math.Min(absSum, math.MaxFloat64) < epsilon
}

// linearRegression fits samples by least squares with x the seconds since
// interceptTime, with Kahan-compensated sums, as deriv and predict_linear
// do. A constant series has slope 0 (NaN when the constant is infinite).
func linearRegression(samples []FPoint, interceptTime int64) (slope, intercept float64) {
	var (
		n          float64
		sumX, cX   float64
		sumY, cY   float64
		sumXY, cXY float64
		sumX2, cX2 float64
		initY      = samples[0].F
		constY     = true
	)
	for i, s := range samples {
		if constY && i > 0 && s.F != initY {
			constY = false
		}
		n += 1.0
		x := float64(s.T-interceptTime) / 1e3
		sumX, cX = kahanInc(x, sumX, cX)
		sumY, cY = kahanInc(s.F, sumY, cY)
		sumXY, cXY = kahanInc(x*s.F, sumXY, cXY)
		sumX2, cX2 = kahanInc(x*x, sumX2, cX2)
	}
	if constY {
		if math.IsInf(initY, 0) {
			return math.NaN(), math.NaN()
		}
		return 0, initY
	}
	sumX += cX
	sumY += cY
	sumXY += cXY
	sumX2 += cX2
	covXY := sumXY - sumX*sumY/n
	varX := sumX2 - sumX*sumX/n
	slope = covXY / varX
	intercept = sumY/n - slope*sumX/n
	return slope, intercept
}

// extrapolatedRate is rate (isCounter, isRate), increase (isCounter) and
// delta (neither) over the float samples of one window (rangeStart,
// rangeEnd]: the difference between the last and first sample, corrected
// for counter resets, extrapolated towards the window's edges when the
// samples come close enough to them (within 110% of the average interval),
// otherwise by half an interval, and for counters never below zero. One
// sample gives no result.
//
// noDrops may be set when the caller knows no value in f is lower than the
// one before it; the reset scan is then skipped (it would add nothing).
func extrapolatedRate(f []FPoint, rangeStart, rangeEnd int64, rangeSeconds float64, isCounter, isRate, noDrops bool) (float64, bool) {
	if len(f) < 2 {
		return 0, false
	}
	numSamplesMinusOne := len(f) - 1
	firstT := f[0].T
	lastT := f[numSamplesMinusOne].T
	result := f[numSamplesMinusOne].F - f[0].F
	if isCounter && !noDrops {
		prev := f[0].F
		for _, p := range f[1:] {
			if p.F < prev {
				result += prev
			}
			prev = p.F
		}
	}
	return extrapolate(result, firstT, lastT, f[0].F, numSamplesMinusOne, rangeStart, rangeEnd, rangeSeconds, isCounter, isRate), true
}

// extrapolate scales result, the (reset-corrected) difference between the
// first and last of numSamplesMinusOne+1 samples in (rangeStart, rangeEnd],
// to the whole range as Prometheus does; rollups call it with the fields
// they keep.
func extrapolate(result float64, firstT, lastT int64, firstV float64, numSamplesMinusOne int, rangeStart, rangeEnd int64, rangeSeconds float64, isCounter, isRate bool) float64 {
	durationToStart := float64(firstT-rangeStart) / 1000
	durationToEnd := float64(rangeEnd-lastT) / 1000
	sampledInterval := float64(lastT-firstT) / 1000
	averageDurationBetweenSamples := sampledInterval / float64(numSamplesMinusOne)
	extrapolationThreshold := averageDurationBetweenSamples * 1.1
	if durationToStart >= extrapolationThreshold {
		durationToStart = averageDurationBetweenSamples / 2
	}
	if isCounter {
		durationToZero := durationToStart
		if result > 0 && firstV >= 0 {
			durationToZero = sampledInterval * (firstV / result)
		}
		if durationToZero < durationToStart {
			durationToStart = durationToZero
		}
	}
	if durationToEnd >= extrapolationThreshold {
		durationToEnd = averageDurationBetweenSamples / 2
	}
	factor := 1.0
	if sampledInterval != 0 {
		factor = (sampledInterval + durationToStart + durationToEnd) / sampledInterval
	}
	if isRate {
		factor /= rangeSeconds
	}
	return result * factor
}

// instantRate is irate (isRate) and idelta over the last two samples of a
// window; irate treats a drop as a counter reset and uses the last value.
func instantRate(f []FPoint, isRate bool) (float64, bool) {
	if len(f) < 2 {
		return 0, false
	}
	a, b := f[len(f)-2], f[len(f)-1]
	sampledInterval := b.T - a.T
	if sampledInterval == 0 {
		return 0, false
	}
	res := b.F
	if !isRate || !(b.F < a.F) {
		res = b.F - a.F
	}
	if isRate {
		res /= float64(sampledInterval) / 1000
	}
	return res, true
}

// sumOverTime is the Kahan-compensated sum of the window's values.
func sumOverTime(f []FPoint) float64 {
	var sum, c float64
	for _, p := range f {
		sum, c = kahanInc(p.F, sum, c)
	}
	if math.IsInf(sum, 0) {
		return sum
	}
	return sum + c
}

// avgOverTime is the mean of the window's values: a compensated sum divided
// by the count, switching to an incremental mean if the sum overflows.
func avgOverTime(f []FPoint) float64 {
	var (
		sum, count      = f[0].F, 1.
		mean, kahanC    float64
		incrementalMean bool
	)
	for i, p := range f[1:] {
		count = float64(i + 2)
		if !incrementalMean {
			newSum, newC := kahanInc(p.F, sum, kahanC)
			if !math.IsInf(newSum, 0) {
				sum, kahanC = newSum, newC
				continue
			}
			incrementalMean = true
			mean = sum / (count - 1)
			kahanC /= count - 1
		}
		q := (count - 1) / count
		mean, kahanC = kahanInc(p.F/count, q*mean, q*kahanC)
	}
	if incrementalMean {
		return mean + kahanC
	}
	return sum/count + kahanC/count
}

// varianceOverTime is the population variance of the window's values
// (Welford's method with compensated accumulators).
func varianceOverTime(f []FPoint) float64 {
	var count, mean, cMean, aux, cAux float64
	for _, p := range f {
		count++
		delta := p.F - (mean + cMean)
		mean, cMean = kahanInc(delta/count, mean, cMean)
		aux, cAux = kahanInc(delta*(p.F-(mean+cMean)), aux, cAux)
	}
	return (aux + cAux) / count
}

// extremeOverTime is max_over_time (max) or min_over_time: NaN only when
// every value is NaN.
func extremeOverTime(f []FPoint, max bool) float64 {
	v := f[0].F
	for _, p := range f {
		if max {
			if p.F > v || math.IsNaN(v) {
				v = p.F
			}
		} else if p.F < v || math.IsNaN(v) {
			v = p.F
		}
	}
	return v
}
