package xmljson

import (
	"bytes"
	"encoding/xml"
	"unicode/utf8"

	"github.com/meshgate/meshgate/internal/transform/jsonx"
)

// nameChecker decides whether strings are XML names. ASCII names are
// checked directly; a name with other characters is checked by
// encoding/xml itself (its tables are XML 1.0 4th edition's, stricter than
// the 5th edition: "Ș" is refused) so that every name this package writes
// is one Go's parser — and older parsers — read back. The slow answers are
// cached per conversion.
type nameChecker struct {
	cache map[string]bool
}

// qname reports whether s is a qualified name: an NCName, or two NCNames
// joined by one colon (prefix:local).
func (c *nameChecker) qname(s string) bool { return qname(c, s) }

// qnameBytes is qname on bytes, which it copies only when they are not
// ASCII.
func (c *nameChecker) qnameBytes(b []byte) bool { return qname(c, b) }

func qname[T string | []byte](c *nameChecker, s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return ncname(c, s[:i]) && ncname(c, s[i+1:])
		}
	}
	return ncname(c, s)
}

// ncname reports whether s is an XML name without a colon.
func ncname[T string | []byte](c *nameChecker, s T) bool {
	if len(s) == 0 {
		return false
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= utf8.RuneSelf:
			ascii = false
		case b == '_' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z':
		case i > 0 && (b == '-' || b == '.' || '0' <= b && b <= '9'):
		default:
			return false
		}
	}
	if ascii {
		return true
	}
	str := string(s)
	if ok, hit := c.cache[str]; hit {
		return ok
	}
	ok := goXMLName(str)
	if c.cache == nil {
		c.cache = make(map[string]bool)
	}
	c.cache[str] = ok
	return ok
}

// goXMLName asks encoding/xml whether <s/> is an element named s. s holds
// no colon (the caller split it) and none of the ASCII delimiters matter:
// a name that stops early reads back different from s.
func goXMLName(s string) bool {
	var b bytes.Buffer
	b.Grow(len(s) + 3)
	b.WriteByte('<')
	b.WriteString(s)
	b.WriteString("/>")
	t, err := xml.NewDecoder(&b).RawToken()
	if err != nil {
		return false
	}
	se, ok := t.(xml.StartElement)
	return ok && se.Name.Space == "" && se.Name.Local == s && len(se.Attr) == 0
}

// short quotes s for an error message, cut to a few dozen bytes so that a
// hostile body is never echoed back whole.
func short(s string) string {
	const max = 40
	if len(s) <= max {
		return quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return quote(s[:cut]) + "…"
}

func quote(s string) string {
	return string(jsonx.AppendQuotedJS(nil, s))
}

// xmlChar reports whether r may appear in an XML 1.0 document (the Char
// production).
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// isSpace reports whether b is only XML white space.
func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// trimSpan returns span s of b without its white space at either end.
func trimSpan(b []byte, s span) span {
	for s.off < s.end && isSpace(b[s.off:s.off+1]) {
		s.off++
	}
	for s.end > s.off && isSpace(b[s.end-1:s.end]) {
		s.end--
	}
	return s
}
