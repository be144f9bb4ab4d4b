package jsonx

import (
	"unicode/utf16"
	"unicode/utf8"
)

// AppendQuoted appends s as a JSON string: the escapes JSON requires, HTML
// characters left as they are, and invalid UTF-8 bytes as \ufffd (as
// encoding/json does) so that the output is always valid JSON.
func AppendQuoted[T string | []byte](dst []byte, s T) []byte {
	return appendQuoted(dst, s, false)
}

// AppendQuotedJS is AppendQuoted that also escapes U+2028 and U+2029,
// which are valid in JSON but end a string literal in older JavaScript,
// for JSON that may be embedded in a script.
func AppendQuotedJS[T string | []byte](dst []byte, s T) []byte {
	return appendQuoted(dst, s, true)
}

const hexDigits = "0123456789abcdef"

func appendQuoted[T string | []byte](dst []byte, s T, js bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if strSafe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			dst = appendEscape(dst, c)
			i++
			start = i
			continue
		}
		// At most utf8.UTFMax bytes: for a []byte the conversion to a
		// string is then a copy on the stack, not an allocation.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case js && (r == '\u2028' || r == '\u2029'):
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendEscape appends the escape of ASCII byte c, a quote, a backslash
// or a control character.
func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
}

// AppendUnquoted appends the value of the JSON string body s, the bytes
// between its quotes, which ScanString accepted: escapes are decoded, and
// lone surrogates and invalid UTF-8 become U+FFFD, as with encoding/json.
func AppendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] != '\\' && s[j] < utf8.RuneSelf {
			j++
		}
		dst = append(dst, s[i:j]...)
		if i = j; i >= len(s) {
			break
		}
		if s[i] >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			dst = utf8.AppendRune(dst, r) // invalid UTF-8 is RuneError
			i += size
			continue
		}
		dst, i = appendUnescape(dst, s, i)
	}
	return dst
}

// appendUnescape appends the value of the escape at s[i] and returns the
// offset after it: a \u escape of a high surrogate takes the low one that
// follows it, if any.
func appendUnescape(dst, s []byte, i int) ([]byte, int) {
	switch s[i+1] {
	case 'b':
		dst = append(dst, '\b')
	case 'f':
		dst = append(dst, '\f')
	case 'n':
		dst = append(dst, '\n')
	case 'r':
		dst = append(dst, '\r')
	case 't':
		dst = append(dst, '\t')
	case 'u':
		r := hex4(s[i+2 : i+6])
		i += 6
		if utf16.IsSurrogate(r) {
			r2 := rune(-1)
			if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
				r2 = hex4(s[i+2 : i+6])
			}
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				r = d
				i += 6
			} else {
				r = utf8.RuneError
			}
		}
		return utf8.AppendRune(dst, r), i
	default: // '"', '\\', '/'
		dst = append(dst, s[i+1])
	}
	return dst, i + 2
}

// hex4 decodes four hex digits, already checked.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
