package encoding

import "encoding/binary"

// AppendUvarint appends v as an unsigned LEB128 varint.
func AppendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

// AppendVarint appends v zigzag-encoded, so small negative numbers stay short.
func AppendVarint(dst []byte, v int64) []byte { return binary.AppendUvarint(dst, Zigzag(v)) }

// Zigzag maps signed to unsigned so that values near zero have few bits set:
// 0→0, -1→1, 1→2, -2→3, …
func Zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

// Unzigzag inverts Zigzag.
func Unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// Uvarint reads an unsigned varint and returns the rest of src. A truncated
// or over-long varint is an ErrCorrupt error.
func Uvarint(src []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(src)
	if n <= 0 {
		if n == 0 {
			return 0, src, corruptf("truncated varint")
		}
		return 0, src, corruptf("varint overflows 64 bits")
	}
	return v, src[n:], nil
}

// Varint reads a zigzag varint written by AppendVarint.
func Varint(src []byte) (int64, []byte, error) {
	u, rest, err := Uvarint(src)
	return Unzigzag(u), rest, err
}

// Decoder reads a sequence of fields with a sticky first error, so a caller
// can decode a whole record and check Err once at the end. After an error
// every read returns the zero value.
type Decoder struct {
	buf []byte
	err error
}

// NewDecoder returns a Decoder over src. It does not copy src.
func NewDecoder(src []byte) Decoder { return Decoder{buf: src} }

// Reset points d at src and clears its error.
func (d *Decoder) Reset(src []byte) { d.buf, d.err = src, nil }

// Err returns the first error met, or nil.
func (d *Decoder) Err() error { return d.err }

// Len returns how many bytes are left.
func (d *Decoder) Len() int { return len(d.buf) }

// Rest returns the unread bytes.
func (d *Decoder) Rest() []byte { return d.buf }

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, rest, err := Uvarint(d.buf)
	d.buf, d.err = rest, err
	return v
}

// Varint reads a zigzag varint.
func (d *Decoder) Varint() int64 { return Unzigzag(d.Uvarint()) }

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < 1 {
		d.err = corruptf("truncated: want 1 byte, have 0")
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

// Uint64 reads 8 bytes little-endian (used for raw float bits).
func (d *Decoder) Uint64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < 8 {
		d.err = corruptf("truncated: want 8 bytes, have %d", len(d.buf))
		return 0
	}
	v := binary.LittleEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	return v
}

// Bytes reads a uvarint length and that many bytes. The result aliases the
// decoder's input.
func (d *Decoder) Bytes() []byte {
	n := d.Uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.err = corruptf("truncated: length %d exceeds the %d bytes left", n, len(d.buf))
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

// AppendBytesField appends a uvarint length and b, the counterpart of Decoder.Bytes.
func AppendBytesField(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// AppendStringField appends a uvarint length and s.
func AppendStringField(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}
