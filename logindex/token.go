package logindex

import (
	"unicode"
	"unicode/utf8"
)

// Tokenizer splits text into tokens: maximal runs of Unicode letters,
// digits and '_', lowercased. Bytes that are not valid UTF-8 separate tokens,
// so a body with invalid UTF-8 is still found by the tokens around them.
//
// The cursor shape follows bufio.Scanner: Next advances, Token returns the
// current token. Token's slice is overwritten by the next call to Next or
// Reset; copy it to keep it. A Tokenizer allocates nothing once its buffer
// has grown to the longest non-ASCII token seen.
type Tokenizer struct {
	src []byte
	pos int
	tok []byte
	buf []byte
	// start and end are the byte offsets of the current token in src.
	start, end int
}

// Reset points t at src, which it reads but never modifies or keeps past
// the next Reset.
func (t *Tokenizer) Reset(src []byte) {
	t.src, t.pos, t.tok = src, 0, nil
}

// ResetString is Reset for a string, without copying it.
func (t *Tokenizer) ResetString(s string) {
	t.Reset(unsafeBytes(s))
}

// Next advances to the next token and reports whether there is one.
func (t *Tokenizer) Next() bool {
	src := t.src
	i := t.pos
	// Skip separators.
	for i < len(src) {
		c := src[i]
		if c < utf8.RuneSelf {
			if isASCIIWord(c) {
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(src[i:])
		if r != utf8.RuneError && isWordRune(r) {
			break
		}
		i += n
	}
	if i >= len(src) {
		t.pos = i
		t.tok = nil
		return false
	}
	start := i
	ascii, lower := true, true
	for i < len(src) {
		c := src[i]
		if c < utf8.RuneSelf {
			if !isASCIIWord(c) {
				break
			}
			if 'A' <= c && c <= 'Z' {
				lower = false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError || !isWordRune(r) {
			break
		}
		ascii = false
		i += n
	}
	t.start, t.end, t.pos = start, i, i
	word := src[start:i]
	switch {
	case ascii && lower:
		t.tok = word
	case ascii:
		b := t.buf[:0]
		for _, c := range word {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		}
		t.buf, t.tok = b, b
	default:
		b := t.buf[:0]
		for j := 0; j < len(word); {
			r, n := utf8.DecodeRune(word[j:])
			b = utf8.AppendRune(b, unicode.ToLower(r))
			j += n
		}
		t.buf, t.tok = b, b
	}
	return true
}

// Token returns the current token, lowercased. It aliases t's buffer or the
// input and is valid until the next call to Next or Reset.
func (t *Tokenizer) Token() []byte { return t.tok }

// Span returns the byte offsets of the current token in the input.
func (t *Tokenizer) Span() (start, end int) { return t.start, t.end }

func isASCIIWord(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// Tokens returns the tokens of s as strings, a convenience for tests and
// cold paths.
func Tokens(s string) []string {
	var t Tokenizer
	t.ResetString(s)
	var out []string
	for t.Next() {
		out = append(out, string(t.Token()))
	}
	return out
}

func toLower(r rune) rune { return unicode.ToLower(r) }
