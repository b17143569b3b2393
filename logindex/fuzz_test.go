package logindex

import (
	"errors"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/pillar-db/pillar/encoding"
)

// FuzzParseQuery checks that any query text either parses or gives a
// *ParseError whose position lies inside the query, without panicking.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{`service:redirect AND level:error AND "slow query" AND NOT timeout`, `(a OR b) -c`, `f:"x\"y"`, `pre*`, `"unterminated`, `((`, `a AND`, `trace_id:4bf92f3577b34da6a3ce929d0e0e4736`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		_, err := ParseQuery(q)
		if err == nil {
			return
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("%q: error %v is not a *ParseError", q, err)
		}
		if pe.Pos < 0 || pe.Pos > len(q) {
			t.Fatalf("%q: position %d outside the query", q, pe.Pos)
		}
	})
}

// FuzzDecodeBlock checks that arbitrary bytes never panic the record block
// decoder and that every failure is marked corrupt; and that what decodes
// re-encodes to a block that decodes the same.
func FuzzDecodeBlock(f *testing.F) {
	good, _ := encodeRecords(nil, nil, []Record{
		rec(t0, "svc", "ERROR", "slow query on 10.0.0.1"),
		{Timestamp: t0 + 5, Body: BytesValue([]byte{0xff, 0}), TraceID: [16]byte{1}, SpanID: [8]byte{2},
			Attributes: []Attribute{{"i", IntValue(-3)}, {"d", DoubleValue(1.5)}, {"b", BoolValue(true)}}},
	})
	f.Add(good)
	f.Add(encoding.AppendBlock(nil, encoding.BlockRaw, []byte{blockVersion, 0, 0, 1, 0}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := decodeRecords(b)
		if err != nil {
			if !errors.Is(err, encoding.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(recs) == 0 {
			t.Fatal("a block decoded to no records")
		}
	})
}

// FuzzTokenizer checks the tokenizer on arbitrary bytes: tokens are
// non-empty, their spans lie inside the input and in order.
func FuzzTokenizer(f *testing.F) {
	f.Add([]byte("10.0.0.1 GET /r_x Größe,東京 \xff\xfe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var tk Tokenizer
		tk.Reset(b)
		last := 0
		for tk.Next() {
			s, e := tk.Span()
			if len(tk.Token()) == 0 || s < last || e <= s || e > len(b) {
				t.Fatalf("bad token %q at [%d,%d) after %d", tk.Token(), s, e, last)
			}
			last = e
		}
	})
}

// FuzzDecodePostings checks the postings and dictionary chunk decoders on
// arbitrary bytes: no panic, and every failure marked corrupt.
func FuzzDecodePostings(f *testing.F) {
	small, _ := appendPostings(nil, roaring.BitmapOf(1, 5, 900))
	big := roaring.New()
	big.AddRange(10, 5000)
	large, _ := appendPostings(nil, big)
	var cw chunkWriter
	cw.add([]byte("error"), small)
	cw.add([]byte("errors"), large)
	f.Add(small)
	f.Add(large)
	f.Add(cw.appendTo(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		bm := roaring.New()
		if err := decodePostings(bm, b, nil); err != nil && !errors.Is(err, encoding.ErrCorrupt) {
			t.Fatalf("postings error %v does not wrap ErrCorrupt", err)
		}
		var cr chunkReader
		cr.reset(b)
		var prev []byte
		for cr.next() {
			prev = append(prev[:0], cr.tok...)
		}
		if cr.err != nil && !errors.Is(cr.err, encoding.ErrCorrupt) {
			t.Fatalf("chunk error %v does not wrap ErrCorrupt", cr.err)
		}
	})
}

// FuzzBlockPayload feeds arbitrary payloads to the column parser past the
// block checksum, where a checksum would hide most mutations: no panic,
// every failure corrupt, and every record of a parsed block decodable.
func FuzzBlockPayload(f *testing.F) {
	f.Add(appendBlockPayload(nil, []Record{
		rec(t0, "svc", "ERROR", "slow query on 10.0.0.1"),
		{Timestamp: t0 + 5, Body: BytesValue([]byte{0xff, 0}), TraceID: [16]byte{1}, SpanID: [8]byte{2},
			Attributes: []Attribute{{"i", IntValue(-3)}, {"d", DoubleValue(1.5)}, {"b", BoolValue(true)}}},
		{Timestamp: t0 + 9, Body: IntValue(42)},
	}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var br blockReader
		if err := br.reset(b); err != nil {
			if !errors.Is(err, encoding.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		for i := 0; i < br.len(); i++ {
			if _, err := br.record(i); err != nil && !errors.Is(err, encoding.ErrCorrupt) {
				t.Fatalf("record %d: error %v does not wrap ErrCorrupt", i, err)
			}
			br.body(i)
		}
	})
}

// FuzzSegmentMeta checks that arbitrary segment meta values (timestamps
// and a sealed segment's filter) never panic the reader and that every
// failure is marked corrupt.
func FuzzSegmentMeta(f *testing.F) {
	f.Add([]byte{0, 2, 10, 0}, true)
	f.Add(newBloom([]uint64{1, 2, 3}).appendTo([]byte{0, 1, 4}), true)
	f.Add([]byte{0, 1, 4, 'B', 7, 200, 1}, false)
	f.Fuzz(func(t *testing.T, v []byte, first bool) {
		p := newPartition(1)
		err := p.loadSegment(v, first)
		if err != nil {
			if !errors.Is(err, encoding.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if int(p.indexed) != len(p.ts) {
			t.Fatalf("segment loaded %d timestamps for %d ordinals", len(p.ts), p.indexed)
		}
		if p.filter != nil {
			p.filter.mayContain(bloomHash(v))
		}
	})
}
