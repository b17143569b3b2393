// Package loggen generates a large, realistic log corpus from the loghub 2k
// samples: the 16 real logs repeated as replicas, where replica r shifts
// every run of digits by r·7919, so ids, addresses and counters become new
// tokens while the text keeps the shape of real logs. Benchmarks and tests
// share it so they measure the same lines.
package loggen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Shift is the per-replica shift of every digit run.
const Shift = 7919

// ErrNoData is returned by Load when the directory holds no loghub logs.
var ErrNoData = errors.New("loggen: no loghub logs found")

// Dataset is one loghub log: its name and its lines without line endings.
type Dataset struct {
	Name  string
	Lines []string
}

// Load reads every <D>/<D>_2k.log under dir, splitting on \n and trimming
// a trailing \r, in name order.
func Load(dir string) ([]Dataset, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*", "*_2k.log"))
	if err != nil {
		return nil, fmt.Errorf("loggen: %w", err)
	}
	sort.Strings(paths)
	var out []Dataset
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("loggen: %w", err)
		}
		d := Dataset{Name: filepath.Base(filepath.Dir(p))}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := bytes.TrimSuffix(sc.Bytes(), []byte{'\r'})
			d.Lines = append(d.Lines, string(line))
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("loggen: %s: %w", p, err)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoData, dir)
	}
	return out, nil
}

// AppendReplica appends line as it reads in replica r: every maximal run of
// ASCII digits d becomes d + r·Shift. Runs longer than 18 digits shift
// their last 18 digits, keeping their length.
func AppendReplica(dst []byte, line string, r int) []byte {
	if r == 0 {
		return append(dst, line...)
	}
	add := uint64(r) * Shift
	for i := 0; i < len(line); {
		c := line[i]
		if c < '0' || c > '9' {
			dst = append(dst, c)
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] >= '0' && line[j] <= '9' {
			j++
		}
		run := line[i:j]
		if len(run) <= 18 {
			v, _ := strconv.ParseUint(run, 10, 64)
			dst = strconv.AppendUint(dst, v+add, 10)
		} else {
			head, tail := run[:len(run)-18], run[len(run)-18:]
			v, _ := strconv.ParseUint(tail, 10, 64)
			v = (v + add) % 1_000_000_000_000_000_000
			dst = append(dst, head...)
			s := strconv.FormatUint(v, 10)
			for k := len(s); k < 18; k++ {
				dst = append(dst, '0')
			}
			dst = append(dst, s...)
		}
		i = j
	}
	return dst
}

// Line is one generated log line.
type Line struct {
	// Dataset names the loghub log the line comes from (the service).
	Dataset string
	// Level is the severity found in the line ("INFO", "ERROR", ...) or "".
	Level string
	// Text is the line, valid until the next call to Generator.Next.
	Text []byte
	// Time is the line's timestamp, Unix nanoseconds.
	Time int64
	// Replica is the replica the line belongs to.
	Replica int
}

// Generator yields the corpus line by line without holding it in memory:
// replica 0 of every dataset, then replica 1, and so on, with timestamps
// evenly spread over [Start, Start+Span) in that order.
type Generator struct {
	sets     []Dataset
	replicas int
	start    int64
	span     int64
	total    int
	n        int // lines produced
	buf      []byte
}

// NewGenerator returns a generator of replicas copies of sets over span
// starting at start.
func NewGenerator(sets []Dataset, replicas int, start time.Time, span time.Duration) *Generator {
	g := &Generator{sets: sets, replicas: replicas, start: start.UnixNano(), span: int64(span)}
	for _, d := range sets {
		g.total += len(d.Lines)
	}
	g.total *= replicas
	return g
}

// Total returns the number of lines the generator yields.
func (g *Generator) Total() int { return g.total }

// Next fills l with the next line and reports whether there was one. The
// line's Text is overwritten by the next call.
func (g *Generator) Next(l *Line) bool {
	if g.n >= g.total {
		return false
	}
	per := g.total / g.replicas
	r, k := g.n/per, g.n%per
	var d *Dataset
	for i := range g.sets {
		if k < len(g.sets[i].Lines) {
			d = &g.sets[i]
			break
		}
		k -= len(g.sets[i].Lines)
	}
	g.buf = AppendReplica(g.buf[:0], d.Lines[k], r)
	*l = Line{Dataset: d.Name, Level: DetectLevel(d.Lines[k]), Text: g.buf, Replica: r,
		Time: g.start + int64(float64(g.span)*float64(g.n)/float64(g.total))}
	g.n++
	return true
}

var levels = []struct{ word, level string }{
	{"FATAL", "FATAL"}, {"ERROR", "ERROR"}, {"[error]", "ERROR"}, {"SEVERE", "ERROR"},
	{"WARNING", "WARN"}, {"WARN", "WARN"}, {"[warn]", "WARN"},
	{"INFO", "INFO"}, {"Info", "INFO"}, {"[notice]", "INFO"}, {"DEBUG", "DEBUG"},
}

// DetectLevel returns the severity written in a loghub line, if any: the
// first of FATAL, ERROR, WARN(ING), INFO, DEBUG (or Apache's [error],
// [warn], [notice]) standing as a word, and Android's one-letter levels.
func DetectLevel(line string) string {
	for _, l := range levels {
		if indexWord(line, l.word) >= 0 {
			return l.level
		}
	}
	// Android: "03-17 16:13:38.811  1702  2395 D WindowManager: ..."
	if len(line) > 32 {
		for _, f := range []struct {
			s, l string
		}{{" D ", "DEBUG"}, {" I ", "INFO"}, {" W ", "WARN"}, {" E ", "ERROR"}, {" V ", "DEBUG"}} {
			if strings.Contains(line[:min(len(line), 40)], f.s) {
				return f.l
			}
		}
	}
	return ""
}

func indexWord(s, w string) int {
	for off := 0; ; {
		i := strings.Index(s[off:], w)
		if i < 0 {
			return -1
		}
		i += off
		before := i == 0 || !isWord(s[i-1])
		after := i+len(w) >= len(s) || !isWord(s[i+len(w)])
		if before && after {
			return i
		}
		off = i + 1
	}
}

func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}
