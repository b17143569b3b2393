package encoding

import (
	"errors"
	"fmt"
	"iter"
	"math"
	"math/bits"
	"slices"
)

// CounterResetHint says how a native histogram relates to the one before it
// in its series, as in Prometheus.
type CounterResetHint uint8

const (
	// UnknownCounterReset: whether a reset happened is not known; readers
	// detect resets by comparing with the previous histogram.
	UnknownCounterReset CounterResetHint = iota
	// CounterReset: a counter reset happened at this histogram.
	CounterReset
	// NotCounterReset: no reset happened since the previous histogram.
	NotCounterReset
	// GaugeType: the histogram is a gauge histogram; buckets may go down.
	GaugeType
)

// BucketSpan is a run of consecutive populated buckets: Offset is the gap
// (in bucket indexes) from the end of the previous span, or the index of the
// first bucket for the first span; Length is the number of buckets in it.
type BucketSpan struct {
	Offset int32
	Length uint32
}

// Histogram is a native (sparse, exponential) histogram with integer counts,
// the model Prometheus uses. Bucket boundaries are powers of
// 2^(2^-Schema); Schema is in −4…8. Bucket counts are stored as deltas: each
// element of PositiveBuckets is the difference from the previous bucket's
// count (the first is absolute), and likewise for NegativeBuckets.
type Histogram struct {
	CounterResetHint CounterResetHint
	Schema           int32
	ZeroThreshold    float64
	ZeroCount        uint64
	Count            uint64
	Sum              float64
	PositiveSpans    []BucketSpan
	NegativeSpans    []BucketSpan
	PositiveBuckets  []int64
	NegativeBuckets  []int64
}

// Copy returns a deep copy of h.
func (h *Histogram) Copy() *Histogram {
	c := *h
	c.PositiveSpans = append([]BucketSpan(nil), h.PositiveSpans...)
	c.NegativeSpans = append([]BucketSpan(nil), h.NegativeSpans...)
	c.PositiveBuckets = append([]int64(nil), h.PositiveBuckets...)
	c.NegativeBuckets = append([]int64(nil), h.NegativeBuckets...)
	return &c
}

// CopyTo deep-copies h into dst, reusing dst's slices.
func (h *Histogram) CopyTo(dst *Histogram) {
	ps, ns, pb, nb := dst.PositiveSpans[:0], dst.NegativeSpans[:0], dst.PositiveBuckets[:0], dst.NegativeBuckets[:0]
	*dst = *h
	dst.PositiveSpans = append(ps, h.PositiveSpans...)
	dst.NegativeSpans = append(ns, h.NegativeSpans...)
	dst.PositiveBuckets = append(pb, h.PositiveBuckets...)
	dst.NegativeBuckets = append(nb, h.NegativeBuckets...)
}

// Schema limits of the exponential bucket layout, as in Prometheus.
const (
	MinHistogramSchema int32 = -4 // buckets grow by 2^16 per step
	MaxHistogramSchema int32 = 8  // buckets grow by 2^(1/256) per step
)

// ErrInvalidHistogram is wrapped by every error Validate returns, so callers
// can tell bad input from other failures with errors.Is.
var ErrInvalidHistogram = errors.New("encoding: invalid histogram")

// HistogramError names the field of a histogram that is invalid and why. It
// unwraps to ErrInvalidHistogram.
type HistogramError struct {
	Field  string // the offending field, e.g. "Schema" or "PositiveSpans[2].Offset"
	Reason string // what is wrong with it
}

// Error implements error.
func (e *HistogramError) Error() string {
	return "encoding: invalid histogram: " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalidHistogram.
func (e *HistogramError) Unwrap() error { return ErrInvalidHistogram }

func invalidf(field, format string, args ...any) error {
	return &HistogramError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks h the way Prometheus does before storing a native
// histogram: the schema is in range; the zero threshold is a non-negative
// number; every span after the first has a non-negative offset; the span
// lengths add up to the number of buckets on each side; no bucket's
// absolute count is negative; and the zero count plus all bucket counts
// equal Count — or, when Sum is NaN (NaN observations, or the stale
// marker), do not exceed it. The error is a *HistogramError.
func (h *Histogram) Validate() error {
	if h.Schema < MinHistogramSchema || h.Schema > MaxHistogramSchema {
		return invalidf("Schema", "%d is outside %d…%d", h.Schema, MinHistogramSchema, MaxHistogramSchema)
	}
	if !(h.ZeroThreshold >= 0) || math.IsInf(h.ZeroThreshold, 1) {
		return invalidf("ZeroThreshold", "%v is not a finite non-negative number", h.ZeroThreshold)
	}
	if h.CounterResetHint > GaugeType {
		return invalidf("CounterResetHint", "unknown hint %d", h.CounterResetHint)
	}
	if err := checkSpans("PositiveSpans", h.PositiveSpans, len(h.PositiveBuckets)); err != nil {
		return err
	}
	if err := checkSpans("NegativeSpans", h.NegativeSpans, len(h.NegativeBuckets)); err != nil {
		return err
	}
	pos, err := checkBuckets("PositiveBuckets", h.PositiveBuckets)
	if err != nil {
		return err
	}
	neg, err := checkBuckets("NegativeBuckets", h.NegativeBuckets)
	if err != nil {
		return err
	}
	total, c1 := bits.Add64(pos, neg, 0)
	total, c2 := bits.Add64(total, h.ZeroCount, 0)
	if c1|c2 != 0 {
		return invalidf("Count", "bucket counts overflow 64 bits")
	}
	if math.IsNaN(h.Sum) {
		if total > h.Count {
			return invalidf("Count", "%d observations in buckets, more than Count %d", total, h.Count)
		}
	} else if total != h.Count {
		return invalidf("Count", "%d observations in buckets, but Count is %d", total, h.Count)
	}
	return nil
}

func checkSpans(field string, spans []BucketSpan, numBuckets int) error {
	var n uint64
	for i, s := range spans {
		if i > 0 && s.Offset < 0 {
			return invalidf(fmt.Sprintf("%s[%d].Offset", field, i), "%d is negative", s.Offset)
		}
		n += uint64(s.Length)
	}
	if n != uint64(numBuckets) {
		return invalidf(field, "spans cover %d buckets, but there are %d", n, numBuckets)
	}
	return nil
}

// checkBuckets resolves delta-coded buckets and returns the sum of their
// absolute counts, or an error if one is negative or overflows.
func checkBuckets(field string, deltas []int64) (uint64, error) {
	var cur int64
	var sum uint64
	for i, d := range deltas {
		next := cur + d
		if (d > 0 && next < cur) || (d < 0 && next > cur) {
			return 0, invalidf(fmt.Sprintf("%s[%d]", field, i), "absolute count overflows")
		}
		cur = next
		if cur < 0 {
			return 0, invalidf(fmt.Sprintf("%s[%d]", field, i), "absolute count %d is negative", cur)
		}
		var carry uint64
		sum, carry = bits.Add64(sum, uint64(cur), 0)
		if carry != 0 {
			return 0, invalidf(field, "bucket counts overflow 64 bits")
		}
	}
	return sum, nil
}

// Equal reports whether h and o hold the same histogram: every field equal,
// floats compared by bit pattern (so NaN sums and the stale marker compare
// equal to themselves), and nil and empty slices treated alike.
func (h *Histogram) Equal(o *Histogram) bool {
	if h == nil || o == nil {
		return h == o
	}
	return h.CounterResetHint == o.CounterResetHint &&
		h.Schema == o.Schema &&
		math.Float64bits(h.ZeroThreshold) == math.Float64bits(o.ZeroThreshold) &&
		h.ZeroCount == o.ZeroCount &&
		h.Count == o.Count &&
		math.Float64bits(h.Sum) == math.Float64bits(o.Sum) &&
		slices.Equal(h.PositiveSpans, o.PositiveSpans) &&
		slices.Equal(h.NegativeSpans, o.NegativeSpans) &&
		slices.Equal(h.PositiveBuckets, o.PositiveBuckets) &&
		slices.Equal(h.NegativeBuckets, o.NegativeBuckets)
}

// histogramFracBounds[s][f] is 2^(f/2^s)/2: the mantissa of the upper
// bound of every bucket whose index is f modulo 2^s at schema s ≥ 0. The
// values are Prometheus' own table (model/histogram, Apache License 2.0),
// copied rather than computed: some differ by one ulp from the correctly
// rounded value, and bounds must match Prometheus' bit for bit so that
// quantiles do.
var histogramFracBounds = [MaxHistogramSchema + 1][]float64{
	// Schema "0":
	{0.5},
	// Schema 1:
	{0.5, 0.7071067811865475},
	// Schema 2:
	{0.5, 0.5946035575013605, 0.7071067811865475, 0.8408964152537144},
	// Schema 3:
	{
		0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
		0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711,
	},
	// Schema 4:
	{
		0.5, 0.5221368912137069, 0.5452538663326288, 0.5693943173783458,
		0.5946035575013605, 0.620928906036742, 0.6484197773255048, 0.6771277734684463,
		0.7071067811865475, 0.7384130729697496, 0.7711054127039704, 0.805245165974627,
		0.8408964152537144, 0.8781260801866495, 0.9170040432046711, 0.9576032806985735,
	},
	// Schema 5:
	{
		0.5, 0.5109485743270583, 0.5221368912137069, 0.5335702003384117,
		0.5452538663326288, 0.5571933712979462, 0.5693943173783458, 0.5818624293887887,
		0.5946035575013605, 0.6076236799902344, 0.620928906036742, 0.6345254785958666,
		0.6484197773255048, 0.6626183215798706, 0.6771277734684463, 0.6919549409819159,
		0.7071067811865475, 0.7225904034885232, 0.7384130729697496, 0.7545822137967112,
		0.7711054127039704, 0.7879904225539431, 0.805245165974627, 0.8228777390769823,
		0.8408964152537144, 0.8593096490612387, 0.8781260801866495, 0.8973545375015533,
		0.9170040432046711, 0.9370838170551498, 0.9576032806985735, 0.9785720620876999,
	},
	// Schema 6:
	{
		0.5, 0.5054446430258502, 0.5109485743270583, 0.5165124395106142,
		0.5221368912137069, 0.5278225891802786, 0.5335702003384117, 0.5393803988785598,
		0.5452538663326288, 0.5511912916539204, 0.5571933712979462, 0.5632608093041209,
		0.5693943173783458, 0.5755946149764913, 0.5818624293887887, 0.5881984958251406,
		0.5946035575013605, 0.6010783657263515, 0.6076236799902344, 0.6142402680534349,
		0.620928906036742, 0.6276903785123455, 0.6345254785958666, 0.6414350080393891,
		0.6484197773255048, 0.6554806057623822, 0.6626183215798706, 0.6698337620266515,
		0.6771277734684463, 0.6845012114872953, 0.6919549409819159, 0.6994898362691555,
		0.7071067811865475, 0.7148066691959849, 0.7225904034885232, 0.7304588970903234,
		0.7384130729697496, 0.7464538641456323, 0.7545822137967112, 0.762799075372269,
		0.7711054127039704, 0.7795022001189185, 0.7879904225539431, 0.7965710756711334,
		0.805245165974627, 0.8140137109286738, 0.8228777390769823, 0.8318382901633681,
		0.8408964152537144, 0.8500531768592616, 0.8593096490612387, 0.8686669176368529,
		0.8781260801866495, 0.8876882462632604, 0.8973545375015533, 0.9071260877501991,
		0.9170040432046711, 0.9269895625416926, 0.9370838170551498, 0.9472879907934827,
		0.9576032806985735, 0.9680308967461471, 0.9785720620876999, 0.9892280131939752,
	},
	// Schema 7:
	{
		0.5, 0.5027149505564014, 0.5054446430258502, 0.5081891574554764,
		0.5109485743270583, 0.5137229745593818, 0.5165124395106142, 0.5193170509806894,
		0.5221368912137069, 0.5249720429003435, 0.5278225891802786, 0.5306886136446309,
		0.5335702003384117, 0.5364674337629877, 0.5393803988785598, 0.5423091811066545,
		0.5452538663326288, 0.5482145409081883, 0.5511912916539204, 0.5541842058618393,
		0.5571933712979462, 0.5602188762048033, 0.5632608093041209, 0.5663192597993595,
		0.5693943173783458, 0.572486072215902, 0.5755946149764913, 0.5787200368168754,
		0.5818624293887887, 0.585021884841625, 0.5881984958251406, 0.5913923554921704,
		0.5946035575013605, 0.5978321960199137, 0.6010783657263515, 0.6043421618132907,
		0.6076236799902344, 0.6109230164863786, 0.6142402680534349, 0.6175755319684665,
		0.620928906036742, 0.6243004885946023, 0.6276903785123455, 0.6310986751971253,
		0.6345254785958666, 0.637970889198196, 0.6414350080393891, 0.6449179367033329,
		0.6484197773255048, 0.6519406325959679, 0.6554806057623822, 0.659039800633032,
		0.6626183215798706, 0.6662162735415805, 0.6698337620266515, 0.6734708931164728,
		0.6771277734684463, 0.6808045103191123, 0.6845012114872953, 0.688217985377265,
		0.6919549409819159, 0.6957121878859629, 0.6994898362691555, 0.7032879969095076,
		0.7071067811865475, 0.7109463010845827, 0.7148066691959849, 0.718687998724491,
		0.7225904034885232, 0.7265139979245261, 0.7304588970903234, 0.7344252166684908,
		0.7384130729697496, 0.7424225829363761, 0.7464538641456323, 0.7505070348132126,
		0.7545822137967112, 0.7586795205991071, 0.762799075372269, 0.7669409989204777,
		0.7711054127039704, 0.7752924388424999, 0.7795022001189185, 0.7837348199827764,
		0.7879904225539431, 0.7922691326262467, 0.7965710756711334, 0.8008963778413465,
		0.805245165974627, 0.8096175675974316, 0.8140137109286738, 0.8184337248834821,
		0.8228777390769823, 0.8273458838280969, 0.8318382901633681, 0.8363550898207981,
		0.8408964152537144, 0.8454623996346523, 0.8500531768592616, 0.8546688815502312,
		0.8593096490612387, 0.8639756154809185, 0.8686669176368529, 0.8733836930995842,
		0.8781260801866495, 0.8828942179666361, 0.8876882462632604, 0.8925083056594671,
		0.8973545375015533, 0.9022270839033115, 0.9071260877501991, 0.9120516927035263,
		0.9170040432046711, 0.9219832844793128, 0.9269895625416926, 0.9320230241988943,
		0.9370838170551498, 0.9421720895161669, 0.9472879907934827, 0.9524316709088368,
		0.9576032806985735, 0.9628029718180622, 0.9680308967461471, 0.9732872087896164,
		0.9785720620876999, 0.9838856116165875, 0.9892280131939752, 0.9945994234836328,
	},
	// Schema 8:
	{
		0.5, 0.5013556375251013, 0.5027149505564014, 0.5040779490592088,
		0.5054446430258502, 0.5068150424757447, 0.5081891574554764, 0.509566998038869,
		0.5109485743270583, 0.5123338964485679, 0.5137229745593818, 0.5151158188430205,
		0.5165124395106142, 0.5179128468009786, 0.5193170509806894, 0.520725062344158,
		0.5221368912137069, 0.5235525479396449, 0.5249720429003435, 0.526395386502313,
		0.5278225891802786, 0.5292536613972564, 0.5306886136446309, 0.5321274564422321,
		0.5335702003384117, 0.5350168559101208, 0.5364674337629877, 0.5379219445313954,
		0.5393803988785598, 0.5408428074966075, 0.5423091811066545, 0.5437795304588847,
		0.5452538663326288, 0.5467321995364429, 0.5482145409081883, 0.549700901315111,
		0.5511912916539204, 0.5526857228508706, 0.5541842058618393, 0.5556867516724088,
		0.5571933712979462, 0.5587040757836845, 0.5602188762048033, 0.5617377836665098,
		0.5632608093041209, 0.564787964283144, 0.5663192597993595, 0.5678547070789026,
		0.5693943173783458, 0.5709381019847808, 0.572486072215902, 0.5740382394200894,
		0.5755946149764913, 0.5771552102951081, 0.5787200368168754, 0.5802891060137493,
		0.5818624293887887, 0.5834400184762408, 0.585021884841625, 0.5866080400818185,
		0.5881984958251406, 0.5897932637314379, 0.5913923554921704, 0.5929957828304968,
		0.5946035575013605, 0.5962156912915756, 0.5978321960199137, 0.5994530835371903,
		0.6010783657263515, 0.6027080545025619, 0.6043421618132907, 0.6059806996384005,
		0.6076236799902344, 0.6092711149137041, 0.6109230164863786, 0.6125793968185725,
		0.6142402680534349, 0.6159056423670379, 0.6175755319684665, 0.6192499490999082,
		0.620928906036742, 0.622612415087629, 0.6243004885946023, 0.6259931389331581,
		0.6276903785123455, 0.6293922197748583, 0.6310986751971253, 0.6328097572894031,
		0.6345254785958666, 0.6362458516947014, 0.637970889198196, 0.6397006037528346,
		0.6414350080393891, 0.6431741147730128, 0.6449179367033329, 0.6466664866145447,
		0.6484197773255048, 0.6501778216898253, 0.6519406325959679, 0.6537082229673385,
		0.6554806057623822, 0.6572577939746774, 0.659039800633032, 0.6608266388015788,
		0.6626183215798706, 0.6644148621029772, 0.6662162735415805, 0.6680225691020727,
		0.6698337620266515, 0.6716498655934177, 0.6734708931164728, 0.6752968579460171,
		0.6771277734684463, 0.6789636531064505, 0.6808045103191123, 0.6826503586020058,
		0.6845012114872953, 0.6863570825438342, 0.688217985377265, 0.690083933630119,
		0.6919549409819159, 0.6938310211492645, 0.6957121878859629, 0.6975984549830999,
		0.6994898362691555, 0.7013863456101023, 0.7032879969095076, 0.7051948041086352,
		0.7071067811865475, 0.7090239421602076, 0.7109463010845827, 0.7128738720527471,
		0.7148066691959849, 0.7167447066838943, 0.718687998724491, 0.7206365595643126,
		0.7225904034885232, 0.7245495448210174, 0.7265139979245261, 0.7284837772007218,
		0.7304588970903234, 0.7324393720732029, 0.7344252166684908, 0.7364164454346837,
		0.7384130729697496, 0.7404151139112358, 0.7424225829363761, 0.7444354947621984,
		0.7464538641456323, 0.7484777058836176, 0.7505070348132126, 0.7525418658117031,
		0.7545822137967112, 0.7566280937263048, 0.7586795205991071, 0.7607365094544071,
		0.762799075372269, 0.7648672334736434, 0.7669409989204777, 0.7690203869158282,
		0.7711054127039704, 0.7731960915705107, 0.7752924388424999, 0.7773944698885442,
		0.7795022001189185, 0.7816156449856788, 0.7837348199827764, 0.7858597406461707,
		0.7879904225539431, 0.7901268813264122, 0.7922691326262467, 0.7944171921585818,
		0.7965710756711334, 0.7987307989543135, 0.8008963778413465, 0.8030678282083853,
		0.805245165974627, 0.8074284071024302, 0.8096175675974316, 0.8118126635086642,
		0.8140137109286738, 0.8162207259936375, 0.8184337248834821, 0.820652723822003,
		0.8228777390769823, 0.8251087869603088, 0.8273458838280969, 0.8295890460808079,
		0.8318382901633681, 0.8340936325652911, 0.8363550898207981, 0.8386226785089391,
		0.8408964152537144, 0.8431763167241966, 0.8454623996346523, 0.8477546807446661,
		0.8500531768592616, 0.8523579048290255, 0.8546688815502312, 0.8569861239649629,
		0.8593096490612387, 0.8616394738731368, 0.8639756154809185, 0.8663180910111553,
		0.8686669176368529, 0.871022112577578, 0.8733836930995842, 0.8757516765159389,
		0.8781260801866495, 0.8805069215187917, 0.8828942179666361, 0.8852879870317771,
		0.8876882462632604, 0.890095013257712, 0.8925083056594671, 0.8949281411607002,
		0.8973545375015533, 0.8997875124702672, 0.9022270839033115, 0.9046732696855155,
		0.9071260877501991, 0.909585556079304, 0.9120516927035263, 0.9145245157024483,
		0.9170040432046711, 0.9194902933879467, 0.9219832844793128, 0.9244830347552253,
		0.9269895625416926, 0.92950288621441, 0.9320230241988943, 0.9345499949706191,
		0.9370838170551498, 0.93962450902828, 0.9421720895161669, 0.9447265771954693,
		0.9472879907934827, 0.9498563490882775, 0.9524316709088368, 0.9550139751351947,
		0.9576032806985735, 0.9601996065815236, 0.9628029718180622, 0.9654133954938133,
		0.9680308967461471, 0.9706554947643201, 0.9732872087896164, 0.9759260581154889,
		0.9785720620876999, 0.9812252401044634, 0.9838856116165875, 0.9865531961276168,
		0.9892280131939752, 0.9919100824251095, 0.9945994234836328, 0.9972960560854698,
	},
}

// BucketBound returns the upper bound of the positive bucket with index idx
// at schema (−4…8), bit for bit the value Prometheus uses: bucket idx
// covers (BucketBound(idx−1), BucketBound(idx)], and the negative bucket idx
// covers [−BucketBound(idx), −BucketBound(idx−1)). The bucket that ends at
// the largest float ends at math.MaxFloat64, leaving +Inf to the one after.
func BucketBound(schema, idx int32) float64 {
	if schema < 0 {
		exp := int(idx) << -schema
		if exp == 1024 {
			return math.MaxFloat64
		}
		return math.Ldexp(1, exp)
	}
	schema = min(schema, MaxHistogramSchema)
	frac := histogramFracBounds[schema][idx&(1<<schema-1)]
	exp := int(idx>>schema) + 1
	if frac == 0.5 && exp == 1025 {
		return math.MaxFloat64
	}
	return math.Ldexp(frac, exp)
}

// Bucket is one bucket of a histogram: its bounds, which ends belong to it,
// its index in the schema's layout (0 for the zero bucket) and its absolute
// count.
type Bucket struct {
	Lower, Upper                   float64
	LowerInclusive, UpperInclusive bool
	Index                          int32
	Count                          uint64
}

// Buckets yields h's buckets in ascending order of value, as Prometheus'
// AllBucketIterator does: the negative buckets from the most negative, then
// the zero bucket [−ZeroThreshold, ZeroThreshold] when its count is not
// zero, then the positive buckets. Positive buckets include their upper
// bound, negative ones their lower bound; a bound falling inside the zero
// bucket is moved to its edge; buckets of count zero inside a span are
// yielded too. h must be valid.
func (h *Histogram) Buckets() iter.Seq[Bucket] {
	return func(yield func(Bucket) bool) {
		// Negative buckets: indexes run from near zero outwards, so walk
		// the spans backwards from the last bucket.
		if len(h.NegativeBuckets) > 0 {
			idx, abs := lastBucket(h.NegativeSpans, h.NegativeBuckets)
			i := len(h.NegativeBuckets) - 1
			for si := len(h.NegativeSpans) - 1; si >= 0; si-- {
				for range h.NegativeSpans[si].Length {
					b := Bucket{Lower: -BucketBound(h.Schema, idx), Upper: -BucketBound(h.Schema, idx-1),
						LowerInclusive: true, Index: idx, Count: uint64(abs)}
					if b.Upper < 0 && b.Upper > -h.ZeroThreshold {
						b.Upper = -h.ZeroThreshold
					}
					if !yield(b) {
						return
					}
					abs -= h.NegativeBuckets[i]
					i--
					idx--
				}
				if si > 0 {
					idx -= h.NegativeSpans[si].Offset
				}
			}
		}
		if h.ZeroCount > 0 {
			b := Bucket{Lower: -h.ZeroThreshold, Upper: h.ZeroThreshold, LowerInclusive: true, UpperInclusive: true, Count: h.ZeroCount}
			if !yield(b) {
				return
			}
		}
		var abs int64
		i := 0
		var idx int32
		for si, s := range h.PositiveSpans {
			if si == 0 {
				idx = s.Offset
			} else {
				idx += s.Offset
			}
			for range s.Length {
				abs += h.PositiveBuckets[i]
				b := Bucket{Lower: BucketBound(h.Schema, idx-1), Upper: BucketBound(h.Schema, idx),
					UpperInclusive: true, Index: idx, Count: uint64(abs)}
				if b.Lower > 0 && b.Lower < h.ZeroThreshold {
					b.Lower = h.ZeroThreshold
				}
				if !yield(b) {
					return
				}
				i++
				idx++
			}
		}
	}
}

// lastBucket returns the index and absolute count of the last bucket.
func lastBucket(spans []BucketSpan, deltas []int64) (int32, int64) {
	var idx int32
	for i, s := range spans {
		if i == 0 {
			idx = s.Offset
		} else {
			idx += s.Offset
		}
		idx += int32(s.Length)
	}
	var abs int64
	for _, d := range deltas {
		abs += d
	}
	return idx - 1, abs
}
