package keys

// Kinds of the metrics store ('m') that hold downsampled rollups:
//
//	m r <res u8> <series u32>                 → the series' rollup mark at that resolution: how far
//	                                            its rollups go (every window ending at or before it
//	                                            is rolled up and final)
//	m r <res u8> <series u32> <blockEnd i64>  → one block of consecutive windows' aggregates, the
//	                                            windows ending in (blockEnd-span, blockEnd]
//
// The mark sorts just before the series' blocks, so a reader gets the mark
// and the blocks of one series at one resolution from a single iterator,
// that is from one consistent view: a Downsample batch writes a series'
// blocks and its mark together. Blocks are keyed series first, so a series'
// range is one bounded scan; dropping old blocks is one range delete per
// series and resolution, which leaves the mark in place.
const (
	MetricRollup byte = 'r'
)

// AppendMetricRollupMark appends the key of a series' rollup mark at resolution res.
func AppendMetricRollupMark(dst []byte, res uint8, id uint32) []byte {
	return AppendUint32(AppendMetricRollupResPrefix(dst, res), id)
}

// AppendMetricRollupResPrefix appends the prefix shared by every series'
// rollup marks and blocks at resolution res.
func AppendMetricRollupResPrefix(dst []byte, res uint8) []byte {
	return append(AppendPrefix(dst, StoreMetrics, MetricRollup), res)
}

// AppendMetricRollupPrefix appends the prefix shared by a series' rollup
// mark and blocks at resolution res (it equals the mark's key).
func AppendMetricRollupPrefix(dst []byte, res uint8, id uint32) []byte {
	return AppendMetricRollupMark(dst, res, id)
}

// AppendMetricRollupBlock appends the key of the block of windows ending in
// (blockEnd-span, blockEnd]. A block key with blockEnd = math.MinInt64 is
// also the lower bound of a scan over all of a series' blocks.
func AppendMetricRollupBlock(dst []byte, res uint8, id uint32, blockEnd int64) []byte {
	return AppendInt64(AppendMetricRollupMark(dst, res, id), blockEnd)
}

// ParseMetricRollup parses a rollup key: a mark (isMark, blockEnd 0) or a block.
func ParseMetricRollup(key []byte) (res uint8, id uint32, blockEnd int64, isMark bool, err error) {
	rest, err := Split(key, StoreMetrics, MetricRollup)
	if err != nil {
		return 0, 0, 0, false, err
	}
	if len(rest) < 1 {
		return 0, 0, 0, false, metricTail(rest)
	}
	res, rest = rest[0], rest[1:]
	if id, rest, err = Uint32(rest); err != nil {
		return 0, 0, 0, false, err
	}
	if len(rest) == 0 {
		return res, id, 0, true, nil
	}
	if blockEnd, rest, err = Int64(rest); err != nil {
		return 0, 0, 0, false, err
	}
	if len(rest) != 0 {
		return 0, 0, 0, false, metricTail(rest)
	}
	return res, id, blockEnd, false, nil
}
