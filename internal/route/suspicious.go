package route

// SuspiciousPath returns why an escaped request path is one that RFC 3986
// leaves alone but lenient backends read as traversal ("" when it is not):
//
//   - a dot segment with ';' parameters ("..;", ".;x", "%2e%2e;"): Tomcat
//     and Jetty strip path parameters before resolving dot segments, so
//     "/public/..;/admin" matches a route for /public here and reaches
//     /admin there;
//   - overlong UTF-8 in escapes ("%C0%AF" for '/', "%E0%80%AE" for '.'):
//     never valid UTF-8, some decoders still read the character.
//
// Segments are split as NormalizePath splits them ('/', '\', %2F, %5C);
// %2E counts as '.'. The edge refuses such paths with 400 unless the
// route relaxes it (routes[].lenient_paths).
func SuspiciousPath(p string) string {
	hasSemi, hasEscape := false, false
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case ';':
			hasSemi = true
		case '%':
			hasEscape = true
		}
	}
	if hasSemi && dotParamSegment(p) {
		return "dot segment with ';' parameters"
	}
	if hasEscape && overlongEscape(p) {
		return "overlong UTF-8"
	}
	return ""
}

// dotParamSegment reports a segment whose part before its first ';' is "."
// or "..", with a ';' after it.
func dotParamSegment(p string) bool {
	dots, inParams, sawOther := 0, false, false
	end := func() bool {
		hit := inParams && !sawOther && (dots == 1 || dots == 2)
		dots, inParams, sawOther = 0, false, false
		return hit
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) {
			switch unhex(p[i+1])<<4 | unhex(p[i+2]) {
			case '.':
				c = '.'
				i += 2
			case '/', '\\':
				c = '/'
				i += 2
			}
		}
		switch {
		case c == '/' || c == '\\':
			if end() {
				return true
			}
		case inParams:
		case c == ';':
			inParams = true
		case c == '.':
			dots++
		default:
			sawOther = true
		}
	}
	return end()
}

// overlongEscape reports escapes that form an overlong UTF-8 sequence: a
// lead byte C0 or C1, E0 followed by 80..9F, or F0 followed by 80..8F.
func overlongEscape(p string) bool {
	prev := -1 // the previous escaped byte, if the previous token was an escape
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			prev = -1
			continue
		}
		b := int(unhex(p[i+1])<<4 | unhex(p[i+2]))
		i += 2
		switch {
		case b == 0xC0 || b == 0xC1:
			return true
		case prev == 0xE0 && b >= 0x80 && b <= 0x9F, prev == 0xF0 && b >= 0x80 && b <= 0x8F:
			return true
		}
		prev = b
	}
	return false
}
