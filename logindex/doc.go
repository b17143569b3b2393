// Package logindex stores log records (shaped like OTLP logs) in
// compressed blocks per time partition, indexes them with roaring postings,
// and answers the queries people type into Kibana: bare terms, "phrases",
// field:value, field:prefix*, term*, AND / OR / NOT and parentheses.
//
// # Data model
//
// A Record has a timestamp and observed timestamp (Unix ns), a severity
// number and text, a body (string, or bytes when it is not valid UTF-8),
// typed attributes, resource attributes (service.name among them) and a
// trace ID, span ID and flags. A token is a maximal run of Unicode letters,
// digits and '_', lowercased; terms match tokens of the body and a phrase
// matches consecutive tokens, so "10.0.0.1" finds that address. Fields are
// the severity text (level:, severity:), the service name (service:), the
// trace and span IDs as hex (trace_id:, span_id:), every attribute and
// resource attribute by key, the top-level scalars of a JSON object body,
// and the key=value pairs of a logfmt body; field values match whole and
// case-insensitively.
//
// # Storage
//
// Time is cut into partitions (Options.PartitionDuration, an hour by
// default). Within a partition each record gets a 32-bit ordinal; one
// Write's records of one stream (severity text and resource) form blocks of
// up to 256 consecutive ordinals, framed by encoding.AppendBlock (snappy,
// CRC32C; the payload layout is drawn in block.go). Write commits all of
// its blocks in one Pebble batch with kv.WriteOptions, so an acknowledged
// Write survives a crash and a batch is stored whole or not at all.
//
// Postings (token → ordinals, field:value → ordinals) accumulate in memory
// per partition and are flushed in bulk, every Options.FlushRecords records
// and on Close, as a segment: the segment's term dictionary in chunks of up
// to 64 front-coded tokens, field postings one key per value, and a segment
// meta with the ordinal range and the timestamps. Open rebuilds the postings
// of records past the last segment from their blocks. The key layout is in
// internal/keys/logs.go and the postings formats in postings.go.
//
// SealPartitions puts a partition that time has closed into its final
// form: its segments merged into one (numbered as the last of them, so
// segments are always a run [first, next)), whose meta also holds a bloom
// filter of the partition's terms (filter.go) that lets a query skip the
// partition's postings for a term it lacks; and runs of small blocks of one
// stream merged, keeping their ordinals. Each step commits in one batch.
// Records that arrive for a sealed partition later go into new segments
// as usual, and the next seal folds them in.
//
// # Queries
//
// A query visits the partitions overlapping [t0, t1). In each it evaluates
// the query on postings (a superset when a phrase must be checked, exact
// otherwise), intersects with the ordinals inside the time range, and checks
// phrases' word order on the stored body. Search walks partitions newest
// first and ordinals backwards within a partition whose ordinals are in time
// order, so it stops at the limit without sorting every match. Queries that
// narrow on no term or field (a lone NOT x, or *) examine at most
// Options.MaxScan records, else ErrScanLimit. Retention drops whole
// partitions with one range delete per key kind.
//
// An Index is safe for concurrent use: writes are serialised among
// themselves; readers take a consistent snapshot (the committed ordinals of
// each partition and a Pebble iterator) and never block writers for long.
package logindex
