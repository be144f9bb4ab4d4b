package route

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
)

type valueKind uint8

const (
	valueExact valueKind = iota
	valueRegex
	valuePresent
)

// valueMatcher is a compiled config.ValueMatcher.
type valueMatcher struct {
	name   string // canonical header key, or the query parameter name
	kind   valueKind
	exact  string
	re     *regexp.Regexp // anchored
	invert bool
}

func compileMatchers(what string, ms []config.ValueMatcher, header bool) ([]valueMatcher, error) {
	var out []valueMatcher
	for _, m := range ms {
		if m.Name == "" {
			return nil, fmt.Errorf("%s matcher without a name", what)
		}
		v := valueMatcher{name: m.Name, invert: m.Invert}
		if header {
			v.name = http.CanonicalHeaderKey(m.Name)
		}
		set := 0
		if m.Exact != "" {
			set++
			v.kind, v.exact = valueExact, m.Exact
		}
		if m.Regex != "" {
			set++
			re, err := regexp.Compile(`^(?:` + m.Regex + `)$`)
			if err != nil {
				return nil, fmt.Errorf("%s %q: regex: %w", what, m.Name, err)
			}
			v.kind, v.re = valueRegex, re
		}
		if m.Present {
			set++
			v.kind = valuePresent
		}
		if set != 1 {
			return nil, fmt.Errorf("%s %q needs exactly one of exact, regex, present", what, m.Name)
		}
		out = append(out, v)
	}
	return out, nil
}

func (m *valueMatcher) matchHeader(h http.Header) bool {
	vals := h[m.name]
	ok := false
	switch m.kind {
	case valuePresent:
		ok = len(vals) > 0
	case valueExact:
		for _, v := range vals {
			if v == m.exact {
				ok = true
				break
			}
		}
	case valueRegex:
		for _, v := range vals {
			if m.re.MatchString(v) {
				ok = true
				break
			}
		}
	}
	return ok != m.invert
}

// matchQuery scans the raw query for the parameter without allocating
// (except to unescape a value for a regex when it holds '%' or '+').
func (m *valueMatcher) matchQuery(raw string) bool {
	ok := false
	for raw != "" && !ok {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k == "" || !queryEqual(k, m.name) {
			continue
		}
		switch m.kind {
		case valuePresent:
			ok = true
		case valueExact:
			ok = queryEqual(v, m.exact)
		case valueRegex:
			if strings.ContainsAny(v, "%+") {
				if u, err := url.QueryUnescape(v); err == nil {
					v = u
				}
			}
			ok = m.re.MatchString(v)
		}
	}
	return ok != m.invert
}

// queryEqual reports whether the raw (query-escaped) s decodes to want. An
// invalid escape compares literally.
func queryEqual(s, want string) bool {
	if !strings.ContainsAny(s, "%+") {
		return s == want
	}
	j := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				c = unhex(s[i+1])<<4 | unhex(s[i+2])
				i += 2
			}
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}
