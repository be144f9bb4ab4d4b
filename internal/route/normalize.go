package route

import "errors"

// Errors of NormalizePath; the caller answers 400.
var (
	ErrPathNotAbsolute = errors.New("path does not start with /")
	ErrPathEscape      = errors.New("path has an invalid percent escape")
	ErrPathNUL         = errors.New("path has a NUL byte")
	ErrPathControl     = errors.New("path has a control character")
)

// NormalizePath canonicalizes an escaped request path (r.URL.EscapedPath())
// before matching, so that no encoding reaches a route it should not:
// %2E/%2e become '.', %2F/%2f, %5C/%5c and '\' become '/', repeated slashes
// merge, "." and ".." segments are resolved (never above the root; a final
// "." or ".." leaves a trailing slash, as in RFC 3986), the hex of any other
// escape is upper-cased, and everything else is kept as is. Invalid escapes,
// NUL (raw or %00), other control characters and a path not starting with
// '/' are errors. A path already canonical is returned as is, without
// allocating.
func NormalizePath(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", ErrPathNotAbsolute
	}
	// Fast path: check whether p is canonical already.
	segStart := 1
	for i := 1; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			if isDotSeg(p[segStart:i]) || i == segStart {
				return normalizeSlow(p)
			}
			segStart = i + 1
		case c == '%':
			if i+2 >= len(p) || !isUpperHex(p[i+1]) || !isUpperHex(p[i+2]) {
				return normalizeSlow(p)
			}
			switch unhex(p[i+1])<<4 | unhex(p[i+2]) {
			case 0, '.', '/', '\\':
				return normalizeSlow(p)
			}
			i += 2
		case c == '\\' || c < 0x20 || c == 0x7f:
			return normalizeSlow(p)
		}
	}
	if isDotSeg(p[segStart:]) {
		return normalizeSlow(p)
	}
	return p, nil
}

func isDotSeg(s string) bool { return s == "." || s == ".." }

func normalizeSlow(p string) (string, error) {
	buf := make([]byte, 1, len(p)+1)
	buf[0] = '/'
	last := 0 // index in buf of the slash before the current segment
	// endSeg resolves the segment buf[last+1:] when it is complete.
	endSeg := func(slash bool) {
		seg := buf[last+1:]
		switch {
		case len(seg) == 1 && seg[0] == '.':
			buf = buf[:last+1]
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			buf = buf[:last]
			last = 0
			for i := len(buf) - 1; i >= 0; i-- {
				if buf[i] == '/' {
					last = i
					break
				}
			}
			buf = buf[:last+1]
		case len(seg) == 0:
			// merge repeated slashes
		default:
			if slash {
				last = len(buf)
				buf = append(buf, '/')
			}
		}
	}
	for i := 1; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", ErrPathEscape
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			switch v {
			case 0:
				return "", ErrPathNUL
			case '.':
				buf = append(buf, '.')
			case '/', '\\':
				endSeg(true)
			default:
				buf = append(buf, '%', upperHex(p[i-1]), upperHex(p[i]))
			}
		case c == '/' || c == '\\':
			endSeg(true)
		case c == 0:
			return "", ErrPathNUL
		case c < 0x20 || c == 0x7f:
			return "", ErrPathControl
		default:
			buf = append(buf, c)
		}
	}
	endSeg(false)
	return string(buf), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func upperHex(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}
