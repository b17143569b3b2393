package server

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/golang/snappy"
)

// Errors for request bodies. A handler answers each with a 4xx status.
var (
	// ErrBodyTooLarge: the body, as sent or decompressed, is over a limit.
	ErrBodyTooLarge = errors.New("server: request body too large")
	// ErrBadEncoding: the body's Content-Encoding is unknown or its
	// compressed stream is corrupt.
	ErrBadEncoding = errors.New("server: bad content encoding")
	// ErrBadPayload: the decoded body is not a valid message of the
	// endpoint's format.
	ErrBadPayload = errors.New("server: malformed payload")
	// ErrUnsupportedMediaType: the Content-Type is not one the endpoint reads.
	ErrUnsupportedMediaType = errors.New("server: unsupported media type")
)

// statusOf maps the body errors to HTTP statuses.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnsupportedMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrBadEncoding), errors.Is(err, ErrBadPayload):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// bodyBuffers are the memory a handler may reuse from one request to the
// next for a body as sent and as decoded; readBodyInto hands back slices
// of them. Only a handler that keeps nothing of the body past the request
// may pass them.
type bodyBuffers struct {
	raw, dec []byte
}

// maxPooledBody bounds the buffers kept for reuse, so one huge request
// does not pin its memory in a pool.
const maxPooledBody = 4 << 20

// keep drops buffers too large to pool.
func (b *bodyBuffers) keep() {
	if cap(b.raw) > maxPooledBody {
		b.raw = nil
	}
	if cap(b.dec) > maxPooledBody {
		b.dec = nil
	}
}

// readRaw reads at most limit bytes of r's body, into buf when it is
// large enough.
func readRaw(r *http.Request, limit int64, buf []byte) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: %d bytes sent, limit %d", ErrBodyTooLarge, r.ContentLength, limit)
	}
	if r.ContentLength > 0 {
		// The announced length (which net/http holds the body to) is
		// read into one buffer instead of one grown by doubling.
		var b []byte
		if int64(cap(buf)) >= r.ContentLength {
			b = buf[:r.ContentLength]
		} else {
			b = make([]byte, r.ContentLength)
		}
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, fmt.Errorf("%w: reading body: %v", ErrBadPayload, err)
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %v", ErrBadPayload, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes sent", ErrBodyTooLarge, limit)
	}
	return b, nil
}

// decodeSnappyBlock decodes a snappy block (remote-write framing) into
// dst when it is large enough, checking the length the block declares
// against limit before allocating.
func decodeSnappyBlock(b []byte, limit int64, dst []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(b)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %v", ErrBadEncoding, err)
	}
	if int64(n) > limit {
		return nil, fmt.Errorf("%w: snappy body decodes to %d bytes, limit %d", ErrBodyTooLarge, n, limit)
	}
	out, err := snappy.Decode(dst[:cap(dst)], b)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %v", ErrBadEncoding, err)
	}
	return out, nil
}

// readBody reads r's body within the server's limits and undoes its
// Content-Encoding (identity, gzip, snappy block). A snappy body without
// a Content-Encoding header is accepted when snappyDefault is set, as
// remote-write senders do.
func (s *Server) readBody(r *http.Request, snappyDefault bool) ([]byte, error) {
	return s.readBodyInto(r, snappyDefault, &bodyBuffers{})
}

// readBodyInto is readBody reusing bufs' memory, which it grows as needed.
func (s *Server) readBodyInto(r *http.Request, snappyDefault bool, bufs *bodyBuffers) ([]byte, error) {
	raw, err := readRaw(r, s.opts.MaxBodyBytes, bufs.raw)
	if err != nil {
		return nil, err
	}
	if cap(raw) > cap(bufs.raw) {
		bufs.raw = raw[:0]
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if enc == "" && snappyDefault {
		enc = "snappy"
	}
	switch enc {
	case "", "identity":
		if int64(len(raw)) > s.opts.MaxDecodedBytes {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBodyTooLarge, len(raw), s.opts.MaxDecodedBytes)
		}
		return raw, nil
	case "snappy":
		out, err := decodeSnappyBlock(raw, s.opts.MaxDecodedBytes, bufs.dec)
		if cap(out) > cap(bufs.dec) {
			bufs.dec = out[:0]
		}
		return out, err
	case "gzip", "x-gzip":
		return gunzip(raw, s.opts.MaxDecodedBytes)
	}
	return nil, fmt.Errorf("%w: %q (want gzip, snappy or none)", ErrBadEncoding, enc)
}

// gunzip decompresses b, refusing output past limit.
func gunzip(b []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: gzip: %v", ErrBadEncoding, err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: gzip: %v", ErrBadEncoding, err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("%w: gzip body decodes to more than %d bytes", ErrBodyTooLarge, limit)
	}
	return out, nil
}

// mediaType returns the lowercased media type of the Content-Type header.
func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.ToLower(ct)
	}
	return mt
}
