package httpcache

import (
	"encoding/binary"
	"net/http"
	"strings"
)

// PackedHeader is a stored response header in one string, for a cache
// that holds many: where an http.Header is a map, its slot array, an array
// of values and a string for each, which the garbage collector marks one
// by one on every cycle, a PackedHeader is one string it does not look
// into. Names and values are read back as substrings, without copying.
//
// The encoding is uvarint(number of values in all), then for each field
// uvarint(len(name)), name, uvarint(number of values), and for each value
// uvarint(len(value)), value. The zero PackedHeader is the empty header.
type PackedHeader struct{ s string }

// Pack packs h, its fields in no particular order and each field's values
// in order. Fields without values are kept, as http.Header has them.
func Pack(h http.Header) PackedHeader {
	n, values := 0, 0
	for k, v := range h {
		n += binary.MaxVarintLen64 + len(k) + binary.MaxVarintLen64
		for _, s := range v {
			n += binary.MaxVarintLen64 + len(s)
		}
		values += len(v)
	}
	b := make([]byte, 0, binary.MaxVarintLen64+n)
	b = binary.AppendUvarint(b, uint64(values))
	for k, v := range h {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		for _, s := range v {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return PackedHeader{string(b)}
}

// Len is the length of the packed form in bytes.
func (p PackedHeader) Len() int { return len(p.s) }

// Values is the number of values in all fields.
func (p PackedHeader) Values() int {
	n, _ := p.uvarint(0)
	return n
}

// uvarint reads a uvarint at i and returns it and the offset past it.
func (p PackedHeader) uvarint(i int) (int, int) {
	if i >= len(p.s) {
		return 0, len(p.s)
	}
	var x uint64
	var shift uint
	for ; i < len(p.s); i++ {
		c := p.s[i]
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int(x), i + 1
		}
		shift += 7
	}
	return int(x), i
}

// str reads a length-prefixed string at i.
func (p PackedHeader) str(i int) (string, int) {
	n, i := p.uvarint(i)
	return p.s[i : i+n], i + n
}

// AppendFields calls fn for each field with its name and its values, which
// it appends to vals first: fn gets them as the end of vals, capped at
// their own end. It returns vals with every value appended. With cap(vals)
// at least len(vals)+p.Values(), the values of all fields share vals'
// array and cost no allocation.
func (p PackedHeader) AppendFields(vals []string, fn func(name string, values []string)) []string {
	_, i := p.uvarint(0)
	for i < len(p.s) {
		var name string
		var n int
		name, i = p.str(i)
		n, i = p.uvarint(i)
		start := len(vals)
		for range n {
			var v string
			v, i = p.str(i)
			vals = append(vals, v)
		}
		fn(name, vals[start:len(vals):len(vals)])
	}
	return vals
}

// Get is the first value of the field of the canonical name key, as
// http.Header's Get, or "".
func (p PackedHeader) Get(key string) string {
	v, _ := p.First(key)
	return v
}

// First is the first value of the field of the canonical name key and its
// number of values (0, and "": no such field).
func (p PackedHeader) First(key string) (first string, n int) {
	_, i := p.uvarint(0)
	for i < len(p.s) {
		var name string
		name, i = p.str(i)
		n, i = p.uvarint(i)
		if name == key {
			if n > 0 {
				first, _ = p.str(i)
			}
			return first, n
		}
		for range n {
			_, i = p.str(i)
		}
	}
	return "", 0
}

// Header unpacks p into a new http.Header (whose values share p's memory).
func (p PackedHeader) Header() http.Header {
	h := make(http.Header)
	p.AppendFields(make([]string, 0, p.Values()), func(name string, values []string) { h[name] = values })
	return h
}

// String is the packed form, for tests.
func (p PackedHeader) String() string { return strings.Clone(p.s) }
