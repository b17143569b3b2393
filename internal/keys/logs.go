package keys

import "fmt"

// Kinds of the logs store ('l'). Every log key starts with StoreLogs, a kind
// and the time partition, so dropping a partition is one range delete per
// kind and a query visits a partition's keys in one contiguous range:
//
//	l b <partition u32> <first ordinal u32>                → a framed block of records
//	l i <partition u32> <segment u32> <first token string> → a chunk of the segment's term
//	                                                         dictionary: sorted tokens, each
//	                                                         with its postings
//	l f <partition u32> <field string> <value string> <segment u32>
//	                                                       → postings of field:value
//	l s <partition u32> <segment u32>                      → segment meta: ordinal range, timestamps
//	l m                                                    → settings fixed at creation
//
// A segment is one bulk flush of a partition's in-memory postings; a term's
// postings are the union of its segments. Token postings are packed many to
// a value, because most tokens of real logs are ids that occur once and a
// key per token would cost more than its postings.
const (
	LogBlock    byte = 'b'
	LogToken    byte = 'i'
	LogField    byte = 'f'
	LogSegment  byte = 's'
	LogMeta     byte = 'm' // l m → the index's own settings (partition duration)
	logPartSize      = 4
)

// LogKinds lists every kind of the logs store that is keyed by partition
// first, the kinds a partition's range delete must cover.
var LogKinds = [...]byte{LogBlock, LogToken, LogField, LogSegment}

// AppendLogPartition appends the prefix shared by every key of one kind in
// one partition.
func AppendLogPartition(dst []byte, kind byte, part uint32) []byte {
	dst = AppendPrefix(dst, StoreLogs, kind)
	return AppendUint32(dst, part)
}

// AppendLogBlock appends the key of the record block of part whose first
// record has ordinal first.
func AppendLogBlock(dst []byte, part, first uint32) []byte {
	return AppendUint32(AppendLogPartition(dst, LogBlock, part), first)
}

// ParseLogBlock returns the partition and first ordinal of a block key.
func ParseLogBlock(key []byte) (part, first uint32, err error) {
	rest, err := Split(key, StoreLogs, LogBlock)
	if err != nil {
		return 0, 0, err
	}
	if part, rest, err = Uint32(rest); err != nil {
		return 0, 0, err
	}
	if first, rest, err = Uint32(rest); err != nil {
		return 0, 0, err
	}
	if len(rest) != 0 {
		return 0, 0, malformedTail(rest)
	}
	return part, first, nil
}

// AppendLogTokenSegment appends the prefix of every dictionary chunk of
// one segment of part.
func AppendLogTokenSegment(dst []byte, part, seg uint32) []byte {
	return AppendUint32(AppendLogPartition(dst, LogToken, part), seg)
}

// AppendLogTokenChunk appends the key of the dictionary chunk of segment
// seg of part whose first token is first.
func AppendLogTokenChunk(dst []byte, part, seg uint32, first []byte) []byte {
	return AppendBytes(AppendLogTokenSegment(dst, part, seg), first)
}

// ParseLogTokenChunk returns the parts of a dictionary chunk key. The
// first token is appended to buf, which may be reused.
func ParseLogTokenChunk(buf, key []byte) (part, seg uint32, first []byte, err error) {
	rest, err := Split(key, StoreLogs, LogToken)
	if err != nil {
		return 0, 0, buf, err
	}
	if part, rest, err = Uint32(rest); err != nil {
		return 0, 0, buf, err
	}
	if seg, rest, err = Uint32(rest); err != nil {
		return 0, 0, buf, err
	}
	if first, rest, err = Bytes(buf, rest); err != nil {
		return 0, 0, buf, err
	}
	if len(rest) != 0 {
		return 0, 0, buf, malformedTail(rest)
	}
	return part, seg, first, nil
}

// AppendLogFieldName appends the prefix of every value of field in part.
func AppendLogFieldName(dst []byte, part uint32, field []byte) []byte {
	return AppendBytes(AppendLogPartition(dst, LogField, part), field)
}

// AppendLogFieldPrefix appends the prefix of every segment of field:value in part.
func AppendLogFieldPrefix(dst []byte, part uint32, field, value []byte) []byte {
	return AppendBytes(AppendLogFieldName(dst, part, field), value)
}

// AppendLogFieldRange appends the lower bound of a scan over the values of
// field in part that start with prefix; PrefixEnd of it is the upper bound.
func AppendLogFieldRange(dst []byte, part uint32, field []byte, prefix string) []byte {
	return AppendStringPrefix(AppendLogFieldName(dst, part, field), prefix)
}

// AppendLogField appends the key of one segment's postings of field:value.
func AppendLogField(dst []byte, part uint32, field, value []byte, seg uint32) []byte {
	return AppendUint32(AppendLogFieldPrefix(dst, part, field, value), seg)
}

// ParseLogField returns the parts of a field postings key. Field and value
// are appended to buf (which may be reused) and alias it.
func ParseLogField(buf, key []byte) (part uint32, field, value []byte, seg uint32, err error) {
	rest, err := Split(key, StoreLogs, LogField)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	if part, rest, err = Uint32(rest); err != nil {
		return 0, nil, nil, 0, err
	}
	buf = buf[:0]
	if buf, rest, err = Bytes(buf, rest); err != nil {
		return 0, nil, nil, 0, err
	}
	n := len(buf)
	if buf, rest, err = Bytes(buf, rest); err != nil {
		return 0, nil, nil, 0, err
	}
	if seg, rest, err = Uint32(rest); err != nil {
		return 0, nil, nil, 0, err
	}
	if len(rest) != 0 {
		return 0, nil, nil, 0, malformedTail(rest)
	}
	return part, buf[:n:n], buf[n:], seg, nil
}

// AppendLogSegment appends the key of segment seg's meta in part.
func AppendLogSegment(dst []byte, part, seg uint32) []byte {
	return AppendUint32(AppendLogPartition(dst, LogSegment, part), seg)
}

// ParseLogSegment returns the partition and segment of a segment meta key.
func ParseLogSegment(key []byte) (part, seg uint32, err error) {
	rest, err := Split(key, StoreLogs, LogSegment)
	if err != nil {
		return 0, 0, err
	}
	if part, rest, err = Uint32(rest); err != nil {
		return 0, 0, err
	}
	if seg, rest, err = Uint32(rest); err != nil {
		return 0, 0, err
	}
	if len(rest) != 0 {
		return 0, 0, malformedTail(rest)
	}
	return part, seg, nil
}

// ParseLogPartition returns the kind and partition of any log key.
func ParseLogPartition(key []byte) (kind byte, part uint32, err error) {
	if len(key) < prefixSz+logPartSize || key[0] != StoreLogs {
		return 0, 0, ErrMalformed
	}
	part, _, err = Uint32(key[prefixSz:])
	return key[1], part, err
}

func malformedTail(rest []byte) error {
	return fmt.Errorf("%w: %d unexpected trailing bytes", ErrMalformed, len(rest))
}
