package keys

import "fmt"

// Trace store (StoreTraces, 't') kinds. Layouts, fields in order:
//
//	t s <traceID 16B> <partition u32> <seq u64>    → one framed block of spans of one trace
//	t p <partition u32> <term bytes> <seq u64>      → roaring postings (trace ordinals) of one term
//	t o <partition u32> <traceID 16B>               → trace ordinal u32 (big-endian)
//	t r <partition u32> <ordinal u32>               → traceID (16 bytes)
//	t m <partition u32>                             → marker: the partition has data
//	t v <service string>                            → marker: a service has spans
//	t n <service string> <name string> <kind u32>   → marker: an operation of a service
//	t e                                             → the open epoch u32, high half of every seq
//	t d <id u32>                                    → a string of the shared span dictionary
//	t x <service string> <name string> <time i64> <traceID 16B> → exemplar: span duration ns (uvarint)
//	t f                                             → index format version u32
//	t c <partition u32>                             → filter of a closed partition's terms
//	t w <traceID 16B>                               → extent of a whole trace: start, duration
//
// A trace's blocks share the prefix `t s <traceID>`, so reading a trace is one
// prefix scan; the partition and write sequence after it keep blocks written
// by different calls (even with repeated span IDs) from overwriting each
// other and let retention drop one partition's blocks of a trace with one
// range delete.
const (
	KindTraceSpans     byte = 's'
	KindTracePostings  byte = 'p'
	KindTraceOrdinal   byte = 'o'
	KindTraceByOrdinal byte = 'r'
	KindTracePartition byte = 'm'
	KindTraceService   byte = 'v'
	KindTraceOperation byte = 'n'
	KindTraceEpoch     byte = 'e'
	KindTraceExemplar  byte = 'x'
	KindTraceDict      byte = 'd'
	KindTraceFormat    byte = 'f'
	KindTraceFilter    byte = 'c'
	KindTraceExtent    byte = 'w'
)

// TraceIDLen is the length of a trace ID in trace keys.
const TraceIDLen = 16

// AppendTraceSpansPrefix appends `t s <traceID>`: the prefix of all blocks of one trace.
func AppendTraceSpansPrefix(dst []byte, traceID [16]byte) []byte {
	dst = AppendPrefix(dst, StoreTraces, KindTraceSpans)
	return append(dst, traceID[:]...)
}

// AppendTraceSpansPartitionPrefix appends `t s <traceID> <partition>`: the
// prefix of the blocks of one trace in one partition.
func AppendTraceSpansPartitionPrefix(dst []byte, traceID [16]byte, part uint32) []byte {
	return AppendUint32(AppendTraceSpansPrefix(dst, traceID), part)
}

// AppendTraceSpansKey appends the key of one block of spans.
func AppendTraceSpansKey(dst []byte, traceID [16]byte, part uint32, seq uint64) []byte {
	return AppendUint64(AppendTraceSpansPartitionPrefix(dst, traceID, part), seq)
}

// ParseTraceSpansKey returns the fields of a key built by AppendTraceSpansKey.
func ParseTraceSpansKey(key []byte) (traceID [16]byte, part uint32, seq uint64, err error) {
	rest, err := Split(key, StoreTraces, KindTraceSpans)
	if err != nil {
		return traceID, 0, 0, err
	}
	if len(rest) != TraceIDLen+4+8 {
		return traceID, 0, 0, malformedLen("trace spans", len(rest), TraceIDLen+12)
	}
	copy(traceID[:], rest)
	part, rest, _ = Uint32(rest[TraceIDLen:])
	seq, _, _ = Uint64(rest)
	return traceID, part, seq, nil
}

// AppendTracePartitionPrefix appends `t <kind> <partition>`, the prefix of
// every key of kind in one partition (postings, ordinals, reverse ordinals).
func AppendTracePartitionPrefix(dst []byte, kind byte, part uint32) []byte {
	return AppendUint32(AppendPrefix(dst, StoreTraces, kind), part)
}

// AppendTracePostingsTermPrefix appends `t p <partition> <term>`: the prefix
// of all postings segments of one term.
func AppendTracePostingsTermPrefix(dst []byte, part uint32, term []byte) []byte {
	return AppendBytes(AppendTracePartitionPrefix(dst, KindTracePostings, part), term)
}

// AppendTracePostingsKey appends the key of one postings segment.
func AppendTracePostingsKey(dst []byte, part uint32, term []byte, seq uint64) []byte {
	return AppendUint64(AppendTracePostingsTermPrefix(dst, part, term), seq)
}

// ParseTracePostingsKey returns the fields of a postings key, appending the
// term to termBuf.
func ParseTracePostingsKey(termBuf, key []byte) (part uint32, term []byte, seq uint64, err error) {
	rest, err := Split(key, StoreTraces, KindTracePostings)
	if err != nil {
		return 0, termBuf, 0, err
	}
	if part, rest, err = Uint32(rest); err != nil {
		return 0, termBuf, 0, err
	}
	if term, rest, err = Bytes(termBuf, rest); err != nil {
		return 0, term, 0, err
	}
	if seq, rest, err = Uint64(rest); err != nil {
		return 0, term, 0, err
	}
	if len(rest) != 0 {
		return 0, term, 0, malformedLen("trace postings tail", len(rest), 0)
	}
	return part, term, seq, nil
}

// AppendTracePostingsTermStart appends `t p <partition>` and the escaped,
// unterminated bytes of termPrefix: every postings key of a term that starts
// with termPrefix starts with the result, so PrefixEnd of it bounds a scan
// of those terms.
func AppendTracePostingsTermStart(dst []byte, part uint32, termPrefix []byte) []byte {
	return AppendStringPrefix(AppendTracePartitionPrefix(dst, KindTracePostings, part), string(termPrefix))
}

// AppendTraceOrdinalKey appends `t o <partition> <traceID>`.
func AppendTraceOrdinalKey(dst []byte, part uint32, traceID [16]byte) []byte {
	return append(AppendTracePartitionPrefix(dst, KindTraceOrdinal, part), traceID[:]...)
}

// AppendTraceByOrdinalKey appends `t r <partition> <ordinal>`.
func AppendTraceByOrdinalKey(dst []byte, part, ord uint32) []byte {
	return AppendUint32(AppendTracePartitionPrefix(dst, KindTraceByOrdinal, part), ord)
}

// ParseTraceByOrdinalKey returns the partition and ordinal of a `t r` key.
func ParseTraceByOrdinalKey(key []byte) (part, ord uint32, err error) {
	rest, err := Split(key, StoreTraces, KindTraceByOrdinal)
	if err != nil {
		return 0, 0, err
	}
	if len(rest) != 8 {
		return 0, 0, malformedLen("trace ordinal", len(rest), 8)
	}
	part, rest, _ = Uint32(rest)
	ord, _, _ = Uint32(rest)
	return part, ord, nil
}

// AppendTracePartitionKey appends `t m <partition>`.
func AppendTracePartitionKey(dst []byte, part uint32) []byte {
	return AppendTracePartitionPrefix(dst, KindTracePartition, part)
}

// ParseTracePartitionKey returns the partition of a `t m` key.
func ParseTracePartitionKey(key []byte) (uint32, error) {
	rest, err := Split(key, StoreTraces, KindTracePartition)
	if err != nil {
		return 0, err
	}
	if len(rest) != 4 {
		return 0, malformedLen("trace partition", len(rest), 4)
	}
	p, _, _ := Uint32(rest)
	return p, nil
}

// AppendTraceServiceKey appends `t v <service>`.
func AppendTraceServiceKey(dst []byte, service string) []byte {
	return AppendString(AppendPrefix(dst, StoreTraces, KindTraceService), service)
}

// ParseTraceServiceKey returns the service of a `t v` key.
func ParseTraceServiceKey(key []byte) (string, error) {
	rest, err := Split(key, StoreTraces, KindTraceService)
	if err != nil {
		return "", err
	}
	s, _, err := String(rest)
	return s, err
}

// AppendTraceOperationPrefix appends `t n <service>`, the prefix of the
// operations of one service.
func AppendTraceOperationPrefix(dst []byte, service string) []byte {
	return AppendString(AppendPrefix(dst, StoreTraces, KindTraceOperation), service)
}

// AppendTraceOperationKey appends `t n <service> <name> <kind>`.
func AppendTraceOperationKey(dst []byte, service, name string, kind uint32) []byte {
	return AppendUint32(AppendString(AppendTraceOperationPrefix(dst, service), name), kind)
}

// ParseTraceOperationKey returns the fields of a `t n` key.
func ParseTraceOperationKey(key []byte) (service, name string, kind uint32, err error) {
	rest, err := Split(key, StoreTraces, KindTraceOperation)
	if err != nil {
		return "", "", 0, err
	}
	if service, rest, err = String(rest); err != nil {
		return "", "", 0, err
	}
	if name, rest, err = String(rest); err != nil {
		return "", "", 0, err
	}
	if kind, rest, err = Uint32(rest); err != nil {
		return "", "", 0, err
	}
	if len(rest) != 0 {
		return "", "", 0, malformedLen("trace operation tail", len(rest), 0)
	}
	return service, name, kind, nil
}

// AppendTraceEpochKey appends `t e`.
func AppendTraceEpochKey(dst []byte) []byte { return AppendPrefix(dst, StoreTraces, KindTraceEpoch) }

// AppendTraceDictKey appends `t d <id>`.
func AppendTraceDictKey(dst []byte, id uint32) []byte {
	return AppendUint32(AppendPrefix(dst, StoreTraces, KindTraceDict), id)
}

// ParseTraceDictKey returns the ID of a `t d` key.
func ParseTraceDictKey(key []byte) (uint32, error) {
	rest, err := Split(key, StoreTraces, KindTraceDict)
	if err != nil {
		return 0, err
	}
	if len(rest) != 4 {
		return 0, malformedLen("trace dictionary id", len(rest), 4)
	}
	id, _, _ := Uint32(rest)
	return id, nil
}

// AppendTraceExemplarPrefix appends `t x <service> <name>`, the prefix of the
// exemplars of one operation; they follow in time order.
func AppendTraceExemplarPrefix(dst []byte, service, name string) []byte {
	return AppendString(AppendString(AppendPrefix(dst, StoreTraces, KindTraceExemplar), service), name)
}

// AppendTraceExemplarKey appends `t x <service> <name> <time> <traceID>`.
func AppendTraceExemplarKey(dst []byte, service, name string, t int64, traceID [16]byte) []byte {
	return append(AppendInt64(AppendTraceExemplarPrefix(dst, service, name), t), traceID[:]...)
}

// ParseTraceExemplarKey returns the time and trace ID of an exemplar key.
func ParseTraceExemplarKey(key []byte) (service, name string, t int64, traceID [16]byte, err error) {
	rest, err := Split(key, StoreTraces, KindTraceExemplar)
	if err != nil {
		return "", "", 0, traceID, err
	}
	if service, rest, err = String(rest); err != nil {
		return "", "", 0, traceID, err
	}
	if name, rest, err = String(rest); err != nil {
		return "", "", 0, traceID, err
	}
	if t, rest, err = Int64(rest); err != nil {
		return "", "", 0, traceID, err
	}
	if len(rest) != TraceIDLen {
		return "", "", 0, traceID, malformedLen("trace exemplar id", len(rest), TraceIDLen)
	}
	copy(traceID[:], rest)
	return service, name, t, traceID, nil
}

// AppendTraceFormatKey appends `t f`.
func AppendTraceFormatKey(dst []byte) []byte { return AppendPrefix(dst, StoreTraces, KindTraceFormat) }

// AppendTraceFilterKey appends `t c <partition>`.
func AppendTraceFilterKey(dst []byte, part uint32) []byte {
	return AppendTracePartitionPrefix(dst, KindTraceFilter, part)
}

// ParseTraceFilterKey returns the partition of a `t c` key.
func ParseTraceFilterKey(key []byte) (uint32, error) {
	rest, err := Split(key, StoreTraces, KindTraceFilter)
	if err != nil {
		return 0, err
	}
	if len(rest) != 4 {
		return 0, malformedLen("trace filter partition", len(rest), 4)
	}
	p, _, _ := Uint32(rest)
	return p, nil
}

// AppendTraceExtentKey appends `t w <traceID>`.
func AppendTraceExtentKey(dst []byte, traceID [16]byte) []byte {
	return append(AppendPrefix(dst, StoreTraces, KindTraceExtent), traceID[:]...)
}

func malformedLen(what string, have, want int) error {
	return fmt.Errorf("%w: %s field has %d bytes, want %d", ErrMalformed, what, have, want)
}
