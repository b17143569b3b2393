package keys

import "fmt"

// Kinds of the metrics store ('m'):
//
//	m s <series u32>                                → the series' labels
//	m w <seq u64>                                   → one committed batch of samples (write-ahead)
//	m c <series u32> <minT i64> <maxT i64> <seq u64> → one sealed chunk
//	m k <series u32>                                → the series' seal mark: the last write-ahead
//	                                                  seq and timestamp its sealed chunks cover
//	m t <minT i64> <hash u64>                       → a timestamp column that compacted chunks of
//	                                                  several series share (hash: of its bytes)
//
// A series' chunks are contiguous and ordered by first timestamp, so a time
// range of one series is one bounded scan. maxT in the chunk key lets a scan
// skip chunks without reading them; seq (the write-ahead seq at sealing,
// always >= 1) keeps two chunks of one series with equal bounds apart, and
// seq 0 marks a chunk that merged a window's sealed chunks.
const (
	MetricSeries byte = 's'
	MetricWAL    byte = 'w'
	MetricChunk  byte = 'c'
	MetricMark   byte = 'k'
	MetricTimes  byte = 't'
)

// AppendMetricSeries appends the key of a series' label record.
func AppendMetricSeries(dst []byte, id uint32) []byte {
	return AppendUint32(AppendPrefix(dst, StoreMetrics, MetricSeries), id)
}

// ParseMetricSeries returns the series ID of a label record key.
func ParseMetricSeries(key []byte) (uint32, error) { return parseMetricID(key, MetricSeries) }

// AppendMetricMark appends the key of a series' seal mark.
func AppendMetricMark(dst []byte, id uint32) []byte {
	return AppendUint32(AppendPrefix(dst, StoreMetrics, MetricMark), id)
}

// ParseMetricMark returns the series ID of a seal mark key.
func ParseMetricMark(key []byte) (uint32, error) { return parseMetricID(key, MetricMark) }

func parseMetricID(key []byte, kind byte) (uint32, error) {
	rest, err := Split(key, StoreMetrics, kind)
	if err != nil {
		return 0, err
	}
	id, rest, err := Uint32(rest)
	if err != nil {
		return 0, err
	}
	if len(rest) != 0 {
		return 0, metricTail(rest)
	}
	return id, nil
}

// AppendMetricWAL appends the key of the write-ahead entry seq.
func AppendMetricWAL(dst []byte, seq uint64) []byte {
	return AppendUint64(AppendPrefix(dst, StoreMetrics, MetricWAL), seq)
}

// ParseMetricWAL returns the seq of a write-ahead key.
func ParseMetricWAL(key []byte) (uint64, error) {
	rest, err := Split(key, StoreMetrics, MetricWAL)
	if err != nil {
		return 0, err
	}
	seq, rest, err := Uint64(rest)
	if err != nil {
		return 0, err
	}
	if len(rest) != 0 {
		return 0, metricTail(rest)
	}
	return seq, nil
}

// AppendMetricChunkPrefix appends the prefix of every chunk of a series.
func AppendMetricChunkPrefix(dst []byte, id uint32) []byte {
	return AppendUint32(AppendPrefix(dst, StoreMetrics, MetricChunk), id)
}

// AppendMetricChunkFrom appends the lower bound of a scan over a series'
// chunks whose first timestamp is at least minT.
func AppendMetricChunkFrom(dst []byte, id uint32, minT int64) []byte {
	return AppendInt64(AppendMetricChunkPrefix(dst, id), minT)
}

// AppendMetricChunk appends the key of one sealed chunk.
func AppendMetricChunk(dst []byte, id uint32, minT, maxT int64, seq uint64) []byte {
	dst = AppendInt64(AppendMetricChunkFrom(dst, id, minT), maxT)
	return AppendUint64(dst, seq)
}

// ParseMetricChunk returns the fields of a chunk key.
func ParseMetricChunk(key []byte) (id uint32, minT, maxT int64, seq uint64, err error) {
	rest, err := Split(key, StoreMetrics, MetricChunk)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if id, rest, err = Uint32(rest); err != nil {
		return 0, 0, 0, 0, err
	}
	if minT, rest, err = Int64(rest); err != nil {
		return 0, 0, 0, 0, err
	}
	if maxT, rest, err = Int64(rest); err != nil {
		return 0, 0, 0, 0, err
	}
	if seq, rest, err = Uint64(rest); err != nil {
		return 0, 0, 0, 0, err
	}
	if len(rest) != 0 {
		return 0, 0, 0, 0, metricTail(rest)
	}
	return id, minT, maxT, seq, nil
}

// AppendMetricTimesFrom appends the lower bound of a scan over the
// timestamp columns whose first timestamp is at least minT.
func AppendMetricTimesFrom(dst []byte, minT int64) []byte {
	return AppendInt64(AppendPrefix(dst, StoreMetrics, MetricTimes), minT)
}

// AppendMetricTimes appends the key of one shared timestamp column.
func AppendMetricTimes(dst []byte, minT int64, hash uint64) []byte {
	return AppendUint64(AppendMetricTimesFrom(dst, minT), hash)
}

// ParseMetricTimes returns the fields of a timestamp column key.
func ParseMetricTimes(key []byte) (minT int64, hash uint64, err error) {
	rest, err := Split(key, StoreMetrics, MetricTimes)
	if err != nil {
		return 0, 0, err
	}
	if minT, rest, err = Int64(rest); err != nil {
		return 0, 0, err
	}
	if hash, rest, err = Uint64(rest); err != nil {
		return 0, 0, err
	}
	if len(rest) != 0 {
		return 0, 0, metricTail(rest)
	}
	return minT, hash, nil
}

func metricTail(rest []byte) error {
	return fmt.Errorf("%w: %d unexpected trailing bytes in metrics key", ErrMalformed, len(rest))
}
