// Package encoding holds Pillar's byte formats: bit streams, the Gorilla
// float chunk and its denser variants, the native-histogram chunk, varints,
// and checksummed snappy blocks. Every decoder here checks what it reads and
// returns an error wrapping ErrCorrupt instead of decoding damaged bytes.
package encoding
