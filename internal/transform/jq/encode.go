package jq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxPooledBuf bounds the output buffer a pooled encoder keeps: outputs
// are copied out, and a rare large one must not pin its memory.
const maxPooledBuf = 64 << 10

// encoder writes a gojq value as compact JSON, byte for byte as
// gojq.Marshal does (TestEncodeLikeGojq holds it to that): object keys
// sorted, NaN as null, infinities as ±math.MaxFloat64, json.Number as
// its text, '<', '>', '&', U+2028 and U+2029 unescaped, DEL and other
// control characters as \u00XX except \b \f \n \r \t, invalid UTF-8 as
// \ufffd.
//
// Unlike gojq.Marshal it writes into a pooled buffer and stops as soon
// as the output passes the limit: a value sharing subtrees (reduce
// range(60) as $i (0; [., .])) can stand for far more output than the
// memory it holds, and is refused after writing at most about limit
// bytes of it.
type encoder struct {
	buf   []byte
	mems  []member // members of the objects being written, innermost last
	limit int
	tmp   [64]byte
}

// errOver stops an encoding that passed its limit.
var errOver = errors.New("over the limit")

var encoders = sync.Pool{New: func() any { return new(encoder) }}

// encode writes v as compact JSON, refusing output over limit bytes
// without building more than about limit bytes of it.
func encode(v any, limit int) ([]byte, error) {
	e := encoders.Get().(*encoder)
	defer e.release()
	e.limit = limit
	if err := e.value(v); err != nil {
		if err == errOver {
			return nil, fmt.Errorf("%w: output is over %d bytes", ErrTooLarge, limit)
		}
		return nil, err
	}
	if len(e.buf) > limit {
		return nil, fmt.Errorf("%w: output is %d bytes, limit %d", ErrTooLarge, len(e.buf), limit)
	}
	return bytes.Clone(e.buf), nil
}

func (e *encoder) release() {
	e.mems = resetScratch(e.mems)
	if cap(e.buf) > maxPooledBuf {
		e.buf = nil
	}
	e.buf = e.buf[:0]
	encoders.Put(e)
}

func (e *encoder) value(v any) error {
	if len(e.buf) > e.limit {
		return errOver
	}
	switch v := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case bool:
		e.buf = strconv.AppendBool(e.buf, v)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(v), 10)
	case float64:
		e.float(v)
	case *big.Int:
		// Its decimal digits are at least 0.3 per bit; formatting a
		// huge one is slow, so check before.
		if len(e.buf)+v.BitLen()*3/10 > e.limit {
			return errOver
		}
		e.buf = v.Append(e.buf, 10)
	case json.Number:
		e.buf = append(e.buf, v...)
	case string:
		return e.string(v)
	case []any:
		return e.array(v)
	case map[string]any:
		return e.object(v)
	default:
		// gojq yields only the types above.
		return &RunError{Msg: fmt.Sprintf("internal error: invalid type: %T", v)}
	}
	return nil
}

func (e *encoder) array(vs []any) error {
	e.buf = append(e.buf, '[')
	for i, v := range vs {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.value(v); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, ']')
	return nil
}

func (e *encoder) object(m map[string]any) error {
	if len(m) <= smallObject {
		// Most objects: sorted on the stack, where writing the members
		// costs no write barrier and leaves nothing to clear.
		var small [smallObject]member
		return e.members(sortedSmall(&small, m))
	}
	base := len(e.mems)
	for k, v := range m {
		e.mems = append(e.mems, member{k, v})
	}
	// Nested objects append past the end of ms (reallocating e.mems
	// perhaps, which leaves ms intact).
	ms := e.mems[base:]
	slices.SortFunc(ms, func(x, y member) int { return strings.Compare(x.key, y.key) })
	err := e.members(ms)
	clear(ms)
	e.mems = e.mems[:base]
	return err
}

// smallObject is the size up to which object members are sorted on the
// stack: one group of a Go map.
const smallObject = 8

// sortedSmall fills small with the members of m (at most smallObject),
// sorted by key as gojq sorts them (strings.Compare, i.e. by bytes).
func sortedSmall(small *[smallObject]member, m map[string]any) []member {
	n := 0
	for k, v := range m {
		i := n
		for i > 0 && small[i-1].key > k {
			small[i] = small[i-1]
			i--
		}
		small[i] = member{k, v}
		n++
	}
	return small[:n]
}

func (e *encoder) members(ms []member) error {
	e.buf = append(e.buf, '{')
	for i, kv := range ms {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.string(kv.key); err != nil {
			return err
		}
		e.buf = append(e.buf, ':')
		if err := e.value(kv.val); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

// float is gojq's (after encoding/json's floatEncoder): NaN as null,
// infinities clamped, exponent form outside [1e-6, 1e21), e-09 as e-9.
func (e *encoder) float(f float64) {
	if math.IsNaN(f) {
		e.buf = append(e.buf, "null"...)
		return
	}
	f = min(max(f, -math.MaxFloat64), math.MaxFloat64)
	format := byte('f')
	if x := math.Abs(f); x != 0 && x < 1e-6 || x >= 1e21 {
		format = 'e'
	}
	b := strconv.AppendFloat(e.tmp[:0], f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	e.buf = append(e.buf, b...)
}

// string writes s quoted, escaping as gojq does, unless that would pass
// the limit.
func (e *encoder) string(s string) error {
	if len(e.buf)+len(s)+2 > e.limit {
		return errOver
	}
	e.buf = append(e.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if verbatim[b] {
			i++
			continue
		}
		if b < utf8.RuneSelf {
			e.buf = append(e.buf, s[start:i]...)
			e.buf = appendEscape(e.buf, b)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			e.buf = append(e.buf, s[start:i]...)
			e.buf = append(e.buf, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	e.buf = append(e.buf, s[start:]...)
	e.buf = append(e.buf, '"')
	return nil
}

// verbatim marks the bytes gojq writes as they are in a string: printable
// ASCII except '"' and '\\'.
var verbatim = func() (t [256]bool) {
	for c := ' '; c <= '~'; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendEscape escapes an ASCII byte that gojq does not write as is.
func appendEscape(buf []byte, b byte) []byte {
	switch b {
	case '"':
		return append(buf, `\"`...)
	case '\\':
		return append(buf, `\\`...)
	case '\b':
		return append(buf, `\b`...)
	case '\f':
		return append(buf, `\f`...)
	case '\n':
		return append(buf, `\n`...)
	case '\r':
		return append(buf, `\r`...)
	case '\t':
		return append(buf, `\t`...)
	}
	const hex = "0123456789abcdef"
	return append(buf, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
}
