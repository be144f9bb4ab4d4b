// Package wire is the small binary encoding of meshgate's gossip messages:
// uvarints and length-prefixed byte strings. The Reader is for a peer's
// bytes, which are outside input: every read is bounds-checked, lengths are
// capped by the caller, and the first error sticks, so a decoder reads all
// its fields and checks Err once.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrShort is reported for a message that ends inside a field.
var ErrShort = errors.New("truncated message")

// AppendUvarint appends v as a uvarint.
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendBytes appends len(s) and s.
func AppendBytes(b []byte, s []byte) []byte {
	return append(AppendUvarint(b, uint64(len(s))), s...)
}

// AppendString appends len(s) and s.
func AppendString(b []byte, s string) []byte {
	return append(AppendUvarint(b, uint64(len(s))), s...)
}

// Reader decodes a message.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err is the first error met, nil if none.
func (r *Reader) Err() error { return r.err }

// Fail records err (when none is recorded yet), for a decoder's own checks.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Len is the number of bytes left.
func (r *Reader) Len() int { return len(r.b) }

// Done reports an error unless the whole message was read.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	return r.err
}

// Uvarint reads a uvarint; 0 after an error.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = ErrShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Byte reads one byte; 0 after an error.
func (r *Reader) Byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = ErrShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// Bytes reads a length-prefixed field of at most max bytes. The result
// aliases the message: copy it to keep it.
func (r *Reader) Bytes(max int, what string) []byte {
	n := r.Uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(max) {
		r.err = fmt.Errorf("%s of %d bytes exceeds %d", what, n, max)
		return nil
	}
	if uint64(len(r.b)) < n {
		r.err = ErrShort
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// String reads a length-prefixed string of at most max bytes.
func (r *Reader) String(max int, what string) string {
	return string(r.Bytes(max, what))
}

// Count reads an element count and checks it against max and against the
// bytes left (each element takes at least minSize bytes), so a forged count
// cannot make the decoder allocate.
func (r *Reader) Count(max, minSize int, what string) int {
	n := r.Uvarint()
	if r.err != nil {
		return 0
	}
	if n > uint64(max) || (minSize > 0 && n > uint64(len(r.b)/minSize)) {
		r.err = fmt.Errorf("%d %s exceed the limit or the message", n, what)
		return 0
	}
	return int(n)
}
