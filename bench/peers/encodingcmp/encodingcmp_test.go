package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// sizes measures every workload without timing it.
func sizes(t testing.TB, wls []Workload) []Row {
	rows, err := Compare(wallClock{}, wls, 0)
	require.NoError(t, err)
	return rows
}

// groupRatio is total bytes of codec i over Prometheus' in a group.
func groupRatio(rows []Row, group string, i int) float64 {
	var ours, prom int
	for _, r := range rows {
		if r.Workload.Group == group {
			ours += r.Results[i].Bytes
			prom += r.Results[0].Bytes
		}
	}
	return float64(ours) / float64(prom)
}

func TestGeneratedSizes(t *testing.T) {
	rows := sizes(t, Generated(1))
	for _, r := range rows {
		p, g, b := r.Results[0], r.Results[1], r.Results[2]
		require.LessOrEqual(t, g.Bytes, p.Bytes, "%s: gorilla must not be larger than Prometheus' XOR chunk", r.Workload.Name)
		require.LessOrEqual(t, b.Bytes, g.Bytes, "%s: the best encoding is never larger than gorilla", r.Workload.Name)
	}
	require.LessOrEqual(t, groupRatio(rows, "generated", 2), 0.6)
}

func TestNABSizes(t *testing.T) {
	dir, ok := NABDir("")
	if !ok {
		t.Skip("NAB data set not found beside the repository")
	}
	wls, err := LoadNAB(dir)
	require.NoError(t, err)
	require.NotEmpty(t, wls)
	rows := sizes(t, wls)
	for _, r := range rows {
		require.LessOrEqual(t, r.Results[1].Bytes, r.Results[0].Bytes, "%s: gorilla vs Prometheus", r.Workload.Name)
	}
	require.LessOrEqual(t, groupRatio(rows, "nab", 2), 0.5)
}

func TestPrintTable(t *testing.T) {
	wls := Generated(2)[:2]
	rows, err := Compare(wallClock{}, wls, 1)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, PrintTable(&buf, rows))
	require.Contains(t, buf.String(), "counter+jitter")
	require.Contains(t, buf.String(), "TOTAL generated")
}

// BenchmarkCodecs encodes and decodes each generated workload with each
// codec, reporting B/sample and ns/sample.
func BenchmarkCodecs(b *testing.B) {
	for _, w := range Generated(1) {
		chunks := cut(w)
		for _, c := range Codecs() {
			p, err := prepare(c, chunks, w)
			require.NoError(b, err)
			b.Run("encode/"+w.Name+"/"+c.Name(), func(b *testing.B) {
				for b.Loop() {
					for _, ch := range chunks {
						_, _ = c.Encode(ch.t, ch.v)
					}
				}
				report(b, p.res)
			})
			b.Run("decode/"+w.Name+"/"+c.Name(), func(b *testing.B) {
				for b.Loop() {
					for _, e := range p.enc {
						_, _ = c.Decode(e, nil)
					}
				}
				report(b, p.res)
			})
		}
	}
}

// BenchmarkNAB encodes and decodes every NAB series with the best
// encoding, the real-world mix the encoder's choices are tuned on.
func BenchmarkNAB(b *testing.B) {
	dir, ok := NABDir("")
	if !ok {
		b.Skip("NAB data set not found")
	}
	wls, err := LoadNAB(dir)
	require.NoError(b, err)
	for _, w := range wls {
		chunks := cut(w)
		c := &Best{}
		p, err := prepare(c, chunks, w)
		require.NoError(b, err)
		b.Run("encode/"+w.Name, func(b *testing.B) {
			for b.Loop() {
				for _, ch := range chunks {
					_, _ = c.Encode(ch.t, ch.v)
				}
			}
			report(b, p.res)
		})
		b.Run("decode/"+w.Name, func(b *testing.B) {
			for b.Loop() {
				for _, e := range p.enc {
					_, _ = c.Decode(e, nil)
				}
			}
			report(b, p.res)
		})
	}
}

func report(b *testing.B, r Result) {
	b.ReportMetric(r.BytesPerSample(), "B/sample")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(r.Samples), "ns/sample")
}

// TestTruncatedPrefixes cuts chunks at every byte length and counts the
// prefixes each decoder accepts without an error. Prometheus' XOR chunk
// silently decodes many of them (into fewer or wrong samples; below two
// bytes it panics, so those are skipped for it); Pillar's must reject
// every one.
func TestTruncatedPrefixes(t *testing.T) {
	w := Generated(3)[1] // counter+jitter
	var prefixes, promSilent, oursSilent int
	for _, c := range Codecs() {
		for _, ch := range cut(w)[:20] {
			b, err := c.Encode(ch.t, ch.v)
			require.NoError(t, err)
			b = bytes.Clone(b)
			for n := range len(b) {
				if n < 2 && c.Name() == "prometheus-xor" {
					continue // shorter than its header: Prometheus panics
				}
				prefix := b[:n]
				if _, err := c.Decode(prefix, nil); err == nil {
					if c.Name() == "prometheus-xor" {
						promSilent++
					} else {
						oursSilent++
					}
				}
				if c.Name() == "prometheus-xor" {
					prefixes++
				}
			}
		}
	}
	t.Logf("Prometheus accepted %d of %d truncated prefixes without an error", promSilent, prefixes)
	require.Zero(t, oursSilent, "a truncated Pillar chunk must never decode")
}
