package jsonx

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// The tokens of JSON whose grammar is intricate — strings with their
// escapes, and numbers — are scanned here once, for this package and for
// others that read JSON their own way (xmljson). The scanners return a
// code rather than a message, so that each caller words its errors in its
// own style and points at the byte it chooses.

// LexError says why a string or a number is not valid JSON.
type LexError uint8

const (
	LexOK LexError = iota
	// LexEOF: the input ends inside the token.
	LexEOF
	// LexControl: an unescaped control character (below U+0020) in a
	// string.
	LexControl
	// LexEscape: a backslash not followed by one of "\/bfnrtu. The
	// offset is the backslash's.
	LexEscape
	// LexUnicode: \u not followed by four hex digits. The offset is the
	// first byte that is not one (len(input) if the input ends first).
	LexUnicode
	// LexUTF8: invalid UTF-8 in a string (only when it is not allowed).
	LexUTF8
	// LexDigit, LexFraction, LexExponent: a number lacks a digit in its
	// integer part, after its '.', or in its exponent.
	LexDigit
	LexFraction
	LexExponent
)

// StrFlags describe a string ScanString accepted.
type StrFlags uint8

const (
	// StrEscaped: the string holds a backslash escape, so its value
	// differs from its bytes.
	StrEscaped StrFlags = 1 << iota
	// StrBadUTF8: the string holds invalid UTF-8 (allowed by the caller),
	// which decodes to U+FFFD as with encoding/json.
	StrBadUTF8
)

// ScanString scans the JSON string whose opening quote is b[i]. It returns
// the offset just past the closing quote, or, on error, the offset of the
// byte at fault and the error. Invalid UTF-8 is an error (LexUTF8) unless
// allowBadUTF8, when it is reported by StrBadUTF8 only: encoding/json
// accepts such strings, this package's bodies do not.
func ScanString(b []byte, i int, allowBadUTF8 bool) (end int, flags StrFlags, err LexError) {
	i++
	for {
		i = skipPlain(b, i)
		if i >= len(b) {
			return i, flags, LexEOF
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, flags, LexOK
		case c == '\\':
			flags |= StrEscaped
			if i, err = scanEscape(b, i); err != LexOK {
				return i, flags, err
			}
		case c < ' ':
			return i, flags, LexControl
		default: // non-ASCII
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				if !allowBadUTF8 {
					return i, flags, LexUTF8
				}
				flags |= StrBadUTF8
			}
			i += size
		}
	}
}

// strSafe marks the bytes that a JSON string may contain unescaped and that
// need no further check (ASCII, not a control, quote or backslash).
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// skipPlain returns the offset of the first byte from i that ends a run of
// plain string bytes: a quote, a backslash, a control or a non-ASCII byte.
// It tests eight bytes at a time, since most strings are plain ASCII.
func skipPlain(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if m := specialBytes(x); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(b) && strSafe[b[i]] {
		i++
	}
	return i
}

// specialBytes sets the high bit of the lowest byte of x that is a quote,
// a backslash, below 0x20 or above 0x7F. x^'"' and x^'\\' are 0 where x has
// a quote or a backslash, and b-1 has its high bit set at a 0 byte; b-0x20
// has it for b below 0x20, and x itself for b above 0x7F. A subtraction can
// set the bit of a byte that is not special too, by a borrow or for b above
// 0x80 (b-1), but a borrow only comes from a lower special byte and such a
// b is special anyway: the lowest bit set is exact.
func specialBytes(x uint64) uint64 {
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	return ((q - lsb) | (b - lsb) | (x - lsb*0x20) | x) & msb
}

// scanEscape checks the escape whose backslash is b[i] and returns the
// offset after it.
func scanEscape(b []byte, i int) (int, LexError) {
	if i+1 >= len(b) {
		return i + 1, LexEOF
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2, LexOK
	case 'u':
		for j := i + 2; j < i+6; j++ {
			if j >= len(b) || !isHex(b[j]) {
				return j, LexUnicode
			}
		}
		return i + 6, LexOK
	}
	return i, LexEscape
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// ScanNumber scans the JSON number that starts at b[i] (a '-' or a digit)
// and returns the offset after it, or, on error, the offset of the byte
// where a digit was wanted (len(b) at the end of the input). A number ends
// at the first byte that cannot continue it: "01" is the number "0"
// followed by '1', for the caller to refuse.
func ScanNumber(b []byte, i int) (end int, err LexError) {
	if b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if i = digits(b, i); i < 0 {
		return -i - 1, LexDigit
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(b, i+1); i < 0 {
			return -i - 1, LexFraction
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i = digits(b, i); i < 0 {
			return -i - 1, LexExponent
		}
	}
	return i, LexOK
}

// digits skips one or more digits from i; it returns -i-1 if there is none.
func digits(s []byte, i int) int {
	if i >= len(s) || s[i] < '0' || s[i] > '9' {
		return -i - 1
	}
	for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
	}
	return i
}
