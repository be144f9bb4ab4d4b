package jsonx

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// step is one step of a path: a key of an object, or every element of an
// array ("[]").
type step struct {
	key   string // decoded key (when !arr)
	qkey  []byte // key quoted as JSON, for members that ops create
	qspan span   // qkey in Program.lit (set by Compile where needed)
	qesc  bool   // qkey has an escape
	arr   bool
}

// PathError reports a path that does not parse.
type PathError struct {
	Path   string
	Offset int // byte offset in Path
	Reason string
}

func (e *PathError) Error() string {
	return "path " + strconv.Quote(e.Path) + ": " + e.Reason + " at offset " + strconv.Itoa(e.Offset)
}

// MaxPathSteps bounds the number of steps (keys and "[]") in a path.
const MaxPathSteps = 64

// parsePath parses the path syntax documented in the package comment. The
// root ("" or ".") is a nil slice.
func parsePath(s string) ([]step, error) {
	if s == "" || s == "." {
		return nil, nil
	}
	bad := func(off int, reason string) ([]step, error) {
		return nil, &PathError{Path: s, Offset: off, Reason: reason}
	}
	var steps []step
	i := 0
	if s[0] == '.' {
		i = 1 // optional leading dot, as in jq: ".a.b" == "a.b"
	}
	first := true
	for {
		// One segment: a key (bare or quoted), then any number of "[]".
		if i >= len(s) {
			return bad(i, "missing key")
		}
		switch c := s[i]; {
		case c == '[':
			if !first {
				return bad(i, "missing key before \"[]\" (write a[] rather than a.[])")
			}
		case c == '"':
			end := i + 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return bad(i, "unterminated quoted key")
			}
			q := []byte(s[i : end+1])
			if off, _, e := ScanString(q, 0, false); e != LexOK {
				return bad(i+off, "invalid quoted key: "+stringError(q, off, e))
			}
			key := string(AppendUnquoted(nil, q[1:len(q)-1]))
			if !utf8.ValidString(key) { // cannot happen: unescape yields UTF-8
				return bad(i, "invalid UTF-8 in key")
			}
			steps = append(steps, keyStep(key))
			i = end + 1
		default:
			start := i
			for i < len(s) && s[i] != '.' && s[i] != '[' {
				c := s[i]
				switch {
				case c == '"' || c == ']':
					return bad(i, "unexpected "+strconv.QuoteRune(rune(c))+" in key (quote keys containing . [ ] or \")")
				case c <= ' ' || c == 0x7f:
					return bad(i, "space or control character in key (quote the key)")
				case c >= utf8.RuneSelf:
					r, size := utf8.DecodeRuneInString(s[i:])
					if r == utf8.RuneError && size == 1 {
						return bad(i, "invalid UTF-8 in key")
					}
					i += size
					continue
				}
				i++
			}
			if i == start {
				return bad(i, "empty key")
			}
			steps = append(steps, keyStep(s[start:i]))
		}
		for i < len(s) && s[i] == '[' {
			if i+1 >= len(s) || s[i+1] != ']' {
				return bad(i, "expected \"[]\" (array indexes are not supported)")
			}
			steps = append(steps, step{arr: true})
			i += 2
		}
		if len(steps) > MaxPathSteps {
			return bad(i, "more than "+strconv.Itoa(MaxPathSteps)+" steps")
		}
		if i == len(s) {
			return steps, nil
		}
		if s[i] != '.' {
			return bad(i, "unexpected "+strconv.QuoteRune(rune(s[i]))+", expected '.' or '[]'")
		}
		i++
		if i == len(s) {
			return bad(i, "trailing '.'")
		}
		first = false
	}
}

func keyStep(k string) step {
	q := AppendQuoted(nil, k)
	return step{key: k, qkey: q, qesc: bytes.IndexByte(q, '\\') >= 0}
}

// formatPath renders steps in canonical syntax: bare keys where possible,
// quoted (JSON string syntax) otherwise; the root is ".".
func formatPath(steps []step) string {
	if len(steps) == 0 {
		return "."
	}
	var b strings.Builder
	for i, st := range steps {
		if st.arr {
			b.WriteString("[]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		if bareKey(st.key) {
			b.WriteString(st.key)
		} else {
			b.Write(st.qkey)
		}
	}
	return b.String()
}

func bareKey(k string) bool {
	if k == "" || !utf8.ValidString(k) {
		return false
	}
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case c == '.' || c == '[' || c == ']' || c == '"' || c <= ' ' || c == 0x7f:
			return false
		}
	}
	return true
}

func stepsEqual(a, b []step) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].arr != b[i].arr || a[i].key != b[i].key {
			return false
		}
	}
	return true
}

func hasArr(steps []step) bool {
	for _, st := range steps {
		if st.arr {
			return true
		}
	}
	return false
}

// splitFanout splits steps after the last "[]": the prefix fans out over
// array elements, the rest is a plain key path inside each element.
func splitFanout(steps []step) (prefix, rel []step) {
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].arr {
			return steps[:i+1], steps[i+1:]
		}
	}
	return nil, steps
}

var errNotKey = errors.New("must end in a key")
