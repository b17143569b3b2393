package tsdb

import (
	"testing"
)

// FuzzRollupBlock feeds arbitrary bytes to the rollup block and mark
// decoders: they must never panic, and a block that decodes must encode
// back to a block that decodes to the same windows.
func FuzzRollupBlock(f *testing.F) {
	var c rollupCodec
	rows := []Rollup{
		{End: 600_000, Count: 3, FirstT: 300_001, LastT: 600_000, First: 1, Last: 4, Min: 1, Max: 4, Sum: 7, Increase: 3},
		{End: 1_200_000, Count: 1, FirstT: 1_000_000, LastT: 1_000_000, First: 2, Last: 2, Min: 2, Max: 2, Sum: 2},
	}
	b, err := c.encodeRollupBlock(nil, rows, 300_000, rollupBlockEnd(600_000, 300_000))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(appendRollupMark(nil, rollupMark{through: 3_600_000, ooo: 60_000}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeRollupMark(data)
		var c rollupCodec
		const width = 300_000
		be := rollupBlockEnd(600_000, width)
		got, err := c.decodeRollupBlock(nil, data, width, be)
		if err != nil {
			return
		}
		re, err := c.encodeRollupBlock(nil, got, width, be)
		if err != nil {
			t.Fatalf("decoded windows do not encode: %v", err)
		}
		again, err := c.decodeRollupBlock(nil, re, width, be)
		if err != nil || len(again) != len(got) {
			t.Fatalf("re-encoded block: %v, %d vs %d windows", err, len(again), len(got))
		}
	})
}
