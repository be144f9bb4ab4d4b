// Package wire is the small binary encoding of meshgate's gossip messages:
// a version byte, uvarints and length-prefixed byte strings. The Reader is
// for a peer's bytes, which are outside input: every read is bounds-checked,
// lengths and values are capped by the caller, and the first error sticks,
// so a decoder reads all its fields and checks Err once. UvarintLen and
// StringLen size an encoding before it is written.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

var (
	// ErrShort is reported for a message that ends inside a field.
	ErrShort = errors.New("truncated message")
	// ErrVersion is reported for a message of another version (a newer
	// node in a rolling upgrade): rejected rather than misread.
	ErrVersion = errors.New("unsupported wire version")
)

// AppendUvarint appends v as a uvarint.
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// UvarintLen is the number of bytes AppendUvarint appends for v. (A loop:
// most values are small, and for them it beats bits.Len64 arithmetic.)
func UvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// StringLen is the number of bytes AppendString appends for s.
func StringLen(s string) int { return UvarintLen(uint64(len(s))) + len(s) }

// AppendBytes appends len(s) and s.
func AppendBytes(b []byte, s []byte) []byte {
	return append(AppendUvarint(b, uint64(len(s))), s...)
}

// AppendString appends len(s) and s.
func AppendString(b []byte, s string) []byte {
	return append(AppendUvarint(b, uint64(len(s))), s...)
}

// Reader decodes a message. Once it has an error it holds no bytes, so
// every later read finds none and returns its zero value.
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
		r.err, r.b = err, nil
	}
}

// Len is the number of bytes left.
func (r *Reader) Len() int { return len(r.b) }

// Done reports an error unless the whole message was read.
func (r *Reader) Done() error {
	if len(r.b) != 0 {
		r.Fail(fmt.Errorf("%d trailing bytes", len(r.b)))
	}
	return r.err
}

// Uvarint reads a uvarint; 0 after an error.
func (r *Reader) Uvarint() uint64 { return r.UvarintMax(math.MaxUint64, "") }

// UvarintMax reads a uvarint of at most max; 0 after an error.
func (r *Reader) UvarintMax(max uint64, what string) uint64 {
	var v uint64
	if len(r.b) > 0 && r.b[0] < 0x80 { // most lengths, counts and small values
		v = uint64(r.b[0])
		r.b = r.b[1:]
	} else {
		var n int
		if v, n = binary.Uvarint(r.b); n <= 0 {
			r.Fail(ErrShort)
			return 0
		}
		r.b = r.b[n:]
	}
	if v > max {
		r.Fail(fmt.Errorf("%s %d exceeds %d", what, v, max))
		return 0
	}
	return v
}

// Version reads a version byte and records an error wrapping ErrVersion
// unless it is want.
func (r *Reader) Version(want byte) {
	if v := r.Byte(); v != want && r.err == nil {
		r.Fail(fmt.Errorf("%w %d", ErrVersion, v))
	}
}

// AtLeastVersion reads a version byte and records an error wrapping
// ErrVersion when it is below min; it returns the version. A decoder that
// reads a version newer than its own reads the fields it knows and skips
// what a newer release appended (see Extension and Rest): that is how a
// node of the next release and one of this release share a cluster.
func (r *Reader) AtLeastVersion(min byte) byte {
	v := r.Byte()
	if v < min && r.err == nil {
		r.Fail(fmt.Errorf("%w %d", ErrVersion, v))
	}
	return v
}

// Extension skips a length-prefixed extension of at most max bytes: the
// fields a newer release appended to a record of a list, which this one
// does not know.
func (r *Reader) Extension(max int) {
	r.Bytes(max, "extension")
}

// Rest skips whatever is left of the message: the fields a newer release
// appended to a message of a single record.
func (r *Reader) Rest() {
	if r.err == nil {
		r.b = nil
	}
}

// Byte reads one byte; 0 after an error.
func (r *Reader) Byte() byte {
	if len(r.b) == 0 {
		r.Fail(ErrShort)
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
	if n > uint64(max) {
		r.Fail(fmt.Errorf("%s of %d bytes exceeds %d", what, n, max))
		return nil
	}
	if uint64(len(r.b)) < n {
		r.Fail(ErrShort)
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
	if n > uint64(max) || (minSize > 0 && n > uint64(len(r.b)/minSize)) {
		r.Fail(fmt.Errorf("%d %s exceed the limit or the message", n, what))
		return 0
	}
	return int(n)
}
