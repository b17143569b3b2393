// Package histcmp compares Pillar's native-histogram chunk with Prometheus'
// chunkenc.HistogramChunk on the same series: bytes per sample, append and
// decode time per sample, and what each does with a truncated chunk.
package histcmp
