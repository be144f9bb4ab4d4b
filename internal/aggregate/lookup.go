package aggregate

import (
	"bytes"

	"github.com/meshgate/meshgate/internal/transform/jsonx"
)

// A small reader of raw JSON: what a {call.NAME.PATH} reference takes from
// a response, and the members of an object merged into another. It reads
// documents in place (no tree, no allocation but an escaped key's value),
// and never fails on input it cannot read: it reports that it found
// nothing. Documents are validated before (validJSON); on
// anything else these functions only promise not to panic.

// lookup returns the raw JSON value at path in doc: each step is an
// object's key (the last of duplicate keys, as encoding/json reads them),
// or, in an array, a decimal index ("0", "12"; no sign, no leading zero).
// An empty path is the whole document. ok is false when the path is
// missing or runs into a value of another type.
func lookup(doc []byte, path []string) (val []byte, ok bool) {
	i := skipSpace(doc, 0)
	for _, step := range path {
		if i >= len(doc) {
			return nil, false
		}
		switch doc[i] {
		case '{':
			i, ok = member(doc, i, step)
		case '[':
			n, isIndex := arrayIndex(step)
			if !isIndex {
				return nil, false
			}
			i, ok = element(doc, i, n)
		default:
			return nil, false
		}
		if !ok {
			return nil, false
		}
	}
	end, ok := skipValue(doc, i)
	if !ok {
		return nil, false
	}
	return doc[i:end], true
}

// member returns the offset of the value of the last member key of the
// object at doc[i] ('{').
func member(doc []byte, i int, key string) (int, bool) {
	found := -1
	ok := eachMember(doc, i, func(k []byte, escaped bool, v, _ int) bool {
		if keyEqual(k, escaped, key) {
			found = v
		}
		return true
	})
	return found, ok && found >= 0
}

// eachMember calls f with each member of the object at doc[i] ('{'): its
// key as written between the quotes (escaped: it holds escapes or bytes
// that are not UTF-8, so its value differs from its bytes) and the offsets
// of its value; f returns false to stop. ok is false when the object
// cannot be read.
func eachMember(doc []byte, i int, f func(key []byte, escaped bool, start, end int) bool) bool {
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return true
	}
	for i < len(doc) {
		if doc[i] != '"' {
			return false
		}
		end, flags, err := jsonx.ScanString(doc, i, true)
		if err != jsonx.LexOK {
			return false
		}
		key := doc[i+1 : end-1]
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return false
		}
		start := skipSpace(doc, i+1)
		vend, ok := skipValue(doc, start)
		if !ok {
			return false
		}
		if !f(key, flags != 0, start, vend) {
			return true
		}
		i = skipSpace(doc, vend)
		if i >= len(doc) {
			return false
		}
		switch doc[i] {
		case ',':
			i = skipSpace(doc, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
	return false
}

// keyEqual compares a key as written (between its quotes) with want.
func keyEqual(raw []byte, escaped bool, want string) bool {
	if !escaped {
		return string(raw) == want
	}
	var buf [64]byte
	return string(jsonx.AppendUnquoted(buf[:0], raw)) == want
}

// element returns the offset of element n of the array at doc[i] ('[').
func element(doc []byte, i, n int) (int, bool) {
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == ']' {
		return 0, false
	}
	for k := 0; i < len(doc); k++ {
		if k == n {
			return i, true
		}
		end, ok := skipValue(doc, i)
		if !ok {
			return 0, false
		}
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ',' {
			return 0, false
		}
		i = skipSpace(doc, i+1)
	}
	return 0, false
}

// arrayIndex reads a step as an array index: decimal digits, no leading
// zero (but "0"), within an int.
func arrayIndex(step string) (int, bool) {
	if step == "" || len(step) > 9 || len(step) > 1 && step[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(step); i++ {
		c := step[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// skipValue returns the offset just past the value at doc[i]. Containers
// are skipped by counting brackets outside strings, without recursion
// (their contents are not checked).
func skipValue(doc []byte, i int) (int, bool) {
	if i >= len(doc) {
		return 0, false
	}
	switch c := doc[i]; {
	case c == '"':
		end, _, err := jsonx.ScanString(doc, i, true)
		return end, err == jsonx.LexOK
	case c == '-' || c >= '0' && c <= '9':
		end, err := jsonx.ScanNumber(doc, i)
		return end, err == jsonx.LexOK
	case c == 't':
		return literal(doc, i, "true")
	case c == 'f':
		return literal(doc, i, "false")
	case c == 'n':
		return literal(doc, i, "null")
	case c == '{' || c == '[':
		depth := 0
		for i < len(doc) {
			switch doc[i] {
			case '"':
				end, _, err := jsonx.ScanString(doc, i, true)
				if err != jsonx.LexOK {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
	}
	return 0, false
}

func literal(doc []byte, i int, lit string) (int, bool) {
	if len(doc)-i >= len(lit) && string(doc[i:i+len(lit)]) == lit {
		return i + len(lit), true
	}
	return 0, false
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) {
		switch doc[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// Kinds of a scalar value, as a reference renders it.
type valueKind uint8

const (
	kindMissing   valueKind = iota // no such path, or null
	kindScalar                     // a string, number or boolean
	kindComposite                  // an object or an array
)

// scalar is the text a reference renders for a raw JSON value: a string's
// value (unescaped), a number's or a boolean's JSON text. It appends to dst.
func scalar(dst, raw []byte) ([]byte, valueKind) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return dst, kindMissing
	}
	switch raw[0] {
	case '"':
		if len(raw) < 2 {
			return dst, kindMissing
		}
		return jsonx.AppendUnquoted(dst, raw[1:len(raw)-1]), kindScalar
	case '{', '[':
		return dst, kindComposite
	case 'n':
		return dst, kindMissing
	}
	return append(dst, raw...), kindScalar
}

// maxDepth bounds the nesting of a document validJSON accepts (as
// encoding/json's).
const maxDepth = 10000

// validJSON reports whether doc is one JSON value (surrounded by
// whitespace at most), as encoding/json.Valid does but several times
// faster; when it is not, at is the offset of the first byte at fault
// (len(doc) when it ends early). Strings may hold invalid UTF-8, as
// encoding/json accepts (reading them as U+FFFD).
func validJSON(doc []byte) (at int, ok bool) {
	var stackBuf [64]byte
	stack := stackBuf[:0] // the open containers: '{' or '['
	i := skipSpace(doc, 0)
value:
	for {
		if i >= len(doc) {
			return i, false
		}
		switch c := doc[i]; {
		case c == '{' || c == '[':
			if len(stack) >= maxDepth {
				return i, false
			}
			end := byte('}')
			if c == '[' {
				end = ']'
			}
			if i = skipSpace(doc, i+1); i < len(doc) && doc[i] == end {
				i++
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if i, ok = objectKey(doc, i); !ok {
					return i, false
				}
			}
			continue value
		case c == '"':
			end, _, err := jsonx.ScanString(doc, i, true)
			if err != jsonx.LexOK {
				return end, false
			}
			i = end
		case c == '-' || c >= '0' && c <= '9':
			end, err := jsonx.ScanNumber(doc, i)
			if err != jsonx.LexOK {
				return end, false
			}
			i = end
		case c == 't' || c == 'f' || c == 'n':
			lit := "null"
			if c == 't' {
				lit = "true"
			} else if c == 'f' {
				lit = "false"
			}
			end, ok := literal(doc, i, lit)
			if !ok {
				return i, false
			}
			i = end
		default:
			return i, false
		}
		// After a value: close containers, or go on to the next member.
		for {
			i = skipSpace(doc, i)
			if len(stack) == 0 {
				return i, i == len(doc)
			}
			if i >= len(doc) {
				return i, false
			}
			top := stack[len(stack)-1]
			switch c := doc[i]; {
			case c == ',':
				i = skipSpace(doc, i+1)
				if top == '{' {
					if i, ok = objectKey(doc, i); !ok {
						return i, false
					}
				}
				continue value
			case c == '}' && top == '{' || c == ']' && top == '[':
				stack = stack[:len(stack)-1]
				i++
			default:
				return i, false
			}
		}
	}
}

// objectKey reads a member's key and its colon at doc[i], and returns the
// offset of its value.
func objectKey(doc []byte, i int) (int, bool) {
	if i >= len(doc) || doc[i] != '"' {
		return i, false
	}
	end, _, err := jsonx.ScanString(doc, i, true)
	if err != jsonx.LexOK {
		return end, false
	}
	if i = skipSpace(doc, end); i >= len(doc) || doc[i] != ':' {
		return i, false
	}
	return skipSpace(doc, i+1), true
}
