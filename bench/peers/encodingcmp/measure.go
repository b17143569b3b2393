package main

import (
	"fmt"
	"math"
	"slices"

	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/pillar-db/pillar/encoding"
)

// ChunkSamples is where both sides cut a series into chunks, Prometheus'
// head chunk target.
const ChunkSamples = 120

// Codec encodes one chunk of samples and decodes it again.
type Codec interface {
	Name() string
	// Encode returns the chunk; the slice may be reused by the next call.
	Encode(ts []int64, vs []float64) ([]byte, error)
	// Decode iterates the whole chunk, calling f per sample when f is not
	// nil, and returns the sample count.
	Decode(b []byte, f func(t int64, v float64)) (int, error)
}

// Prometheus is chunkenc.XORChunk as the Prometheus head builds it: a new
// chunk per 120 samples, an iterator reused across chunks.
type Prometheus struct{ it chunkenc.Iterator }

func (*Prometheus) Name() string { return "prometheus-xor" }

func (*Prometheus) Encode(ts []int64, vs []float64) ([]byte, error) {
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	if err != nil {
		return nil, err
	}
	for i := range ts {
		app.Append(0, ts[i], vs[i])
	}
	return c.Bytes(), nil
}

func (p *Prometheus) Decode(b []byte, f func(int64, float64)) (int, error) {
	c, err := chunkenc.FromData(chunkenc.EncXOR, b)
	if err != nil {
		return 0, err
	}
	p.it = c.Iterator(p.it)
	n := 0
	for p.it.Next() != chunkenc.ValNone {
		if f != nil {
			f(p.it.At())
		}
		n++
	}
	return n, p.it.Err()
}

// Gorilla is Pillar's open chunk (EncGorilla), reused across chunks with
// Reset as the Pillar head does.
type Gorilla struct {
	c  *encoding.FloatChunk
	it encoding.FloatIterator
}

func (*Gorilla) Name() string { return "pillar-gorilla" }

func (g *Gorilla) Encode(ts []int64, vs []float64) ([]byte, error) {
	if g.c == nil {
		g.c = encoding.NewFloatChunk()
	}
	g.c.Reset()
	for i := range ts {
		if err := g.c.Append(ts[i], vs[i]); err != nil {
			return nil, err
		}
	}
	return g.c.Bytes(), nil
}

func (g *Gorilla) Decode(b []byte, f func(int64, float64)) (int, error) {
	return decodePillar(&g.it, b, f)
}

func decodePillar(it *encoding.FloatIterator, b []byte, f func(int64, float64)) (int, error) {
	if err := it.Reset(b); err != nil {
		return 0, err
	}
	n := 0
	for it.Next() {
		if f != nil {
			f(it.At())
		}
		n++
	}
	return n, it.Err()
}

// Result is one codec on one workload.
type Result struct {
	Codec          string
	Bytes, Samples int
	EncodeNs       float64 // median ns/sample
	DecodeNs       float64 // median ns/sample
}

// BytesPerSample is the encoded size per sample.
func (r Result) BytesPerSample() float64 { return float64(r.Bytes) / float64(r.Samples) }

// chunk is one cut of a series.
type chunk struct {
	t []int64
	v []float64
}

func cut(w Workload) []chunk {
	var out []chunk
	for _, s := range w.Series {
		for i := 0; i < len(s.T); i += ChunkSamples {
			j := min(i+ChunkSamples, len(s.T))
			out = append(out, chunk{s.T[i:j], s.V[i:j]})
		}
	}
	return out
}

// prepared is a codec's encoded chunks of one workload.
type prepared struct {
	codec Codec
	enc   [][]byte
	res   Result
	encT  []float64
	decT  []float64
}

// prepare encodes every chunk of w with c and checks that each decodes
// back bit-exactly.
func prepare(c Codec, chunks []chunk, w Workload) (*prepared, error) {
	p := &prepared{codec: c, enc: make([][]byte, len(chunks)), res: Result{Codec: c.Name(), Samples: w.Samples()}}
	for i, ch := range chunks {
		b, err := c.Encode(ch.t, ch.v)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", c.Name(), w.Name, err)
		}
		p.enc[i] = slices.Clone(b)
		p.res.Bytes += len(b)
		k := 0
		var bad error
		n, err := c.Decode(p.enc[i], func(t int64, v float64) {
			if bad == nil && (k >= len(ch.t) || t != ch.t[k] || math.Float64bits(v) != math.Float64bits(ch.v[k])) {
				bad = fmt.Errorf("sample %d decodes differently", k)
			}
			k++
		})
		if err == nil {
			err = bad
		}
		if err == nil && n != len(ch.t) {
			err = fmt.Errorf("%d samples decoded, %d encoded", n, len(ch.t))
		}
		if err != nil {
			return nil, fmt.Errorf("%s on %s chunk %d: %w", c.Name(), w.Name, i, err)
		}
	}
	return p, nil
}

// time encodes and decodes every chunk once, recording ns/sample on clk.
func (p *prepared) time(clk clock, chunks []chunk) error {
	start := clk.now()
	for _, ch := range chunks {
		if _, err := p.codec.Encode(ch.t, ch.v); err != nil {
			return err
		}
	}
	p.encT = append(p.encT, float64(clk.now()-start)/float64(p.res.Samples))
	start = clk.now()
	for _, b := range p.enc {
		if _, err := p.codec.Decode(b, nil); err != nil {
			return err
		}
	}
	p.decT = append(p.decT, float64(clk.now()-start)/float64(p.res.Samples))
	return nil
}

// MeasureAll runs every codec on w, timing with clk. Repetitions
// interleave the codecs, so a burst of load from elsewhere on the machine
// hits all of them alike; medians are reported.
func MeasureAll(clk clock, codecs []Codec, w Workload, reps int) ([]Result, error) {
	chunks := cut(w)
	ps := make([]*prepared, len(codecs))
	for i, c := range codecs {
		p, err := prepare(c, chunks, w)
		if err != nil {
			return nil, err
		}
		ps[i] = p
	}
	clk.start()
	defer clk.stop()
	for range reps {
		for _, p := range ps {
			if err := p.time(clk, chunks); err != nil {
				return nil, err
			}
		}
	}
	out := make([]Result, len(ps))
	for i, p := range ps {
		if reps > 0 {
			p.res.EncodeNs, p.res.DecodeNs = median(p.encT), median(p.decT)
		}
		out[i] = p.res
	}
	return out, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Best is what Pillar stores for a sealed chunk: the smallest of its float
// encodings for the chunk's data, from an encoding.BestFloatEncoder held
// across chunks as the store's compactor holds one.
type Best struct {
	buf []byte
	enc encoding.BestFloatEncoder
	it  encoding.FloatIterator
}

func (*Best) Name() string { return "pillar-best" }

func (b *Best) Encode(ts []int64, vs []float64) ([]byte, error) {
	var err error
	b.buf, err = b.enc.AppendFloats(b.buf[:0], ts, vs)
	return b.buf, err
}

func (b *Best) Decode(c []byte, f func(int64, float64)) (int, error) {
	return decodePillar(&b.it, c, f)
}
