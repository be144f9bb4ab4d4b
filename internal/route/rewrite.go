package route

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
)

type rewriteKind uint8

const (
	rewriteNone rewriteKind = iota
	rewriteStrip
	rewritePath
	rewriteRegex
)

type rewrite struct {
	kind  rewriteKind
	strip string // the prefix without trailing "/"
	parts []part // rewritePath
	size  int    // literal bytes of parts
	re    *regexp.Regexp
	repl  string
}

// part is a literal, or a parameter when param is set.
type part struct {
	lit   string
	param string
}

var paramRef = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(?:\.\.\.)?\}`)

func (rw *rewrite) compile(c *config.Rewrite, params map[string]bool) error {
	if c == nil {
		return nil
	}
	set := 0
	if c.StripPrefix != "" {
		set++
		if !strings.HasPrefix(c.StripPrefix, "/") {
			return fmt.Errorf("strip_prefix %q must start with /", c.StripPrefix)
		}
		rw.kind, rw.strip = rewriteStrip, strings.TrimRight(c.StripPrefix, "/")
	}
	if c.Path != "" {
		set++
		rw.kind = rewritePath
		s, at := c.Path, 0
		for _, m := range paramRef.FindAllStringSubmatchIndex(s, -1) {
			name := s[m[2]:m[3]]
			if !params[name] {
				return fmt.Errorf("rewrite uses {%s}, which the route's path template does not define", name)
			}
			rw.addLit(s[at:m[0]])
			rw.parts = append(rw.parts, part{param: name})
			at = m[1]
		}
		rw.addLit(s[at:])
	}
	if c.Regex != nil {
		set++
		re, err := regexp.Compile(c.Regex.Pattern)
		if err != nil {
			return fmt.Errorf("rewrite regex: %w", err)
		}
		rw.kind, rw.re, rw.repl = rewriteRegex, re, bracedGroups(c.Regex.Substitution)
	}
	if set != 1 {
		return fmt.Errorf("rewrite needs exactly one of strip_prefix, path, regex")
	}
	return nil
}

func (rw *rewrite) addLit(s string) {
	if s != "" {
		rw.parts = append(rw.parts, part{lit: s})
		rw.size += len(s)
	}
}

// bracedGroups turns "$1" into "${1}" so that "$1x" means group 1 followed
// by "x" (regexp.Expand would read it as a group named "1x").
func bracedGroups(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		if s[i+1] == '$' {
			b.WriteString("$$")
			i++
			continue
		}
		j := i + 1
		for j < len(s) && '0' <= s[j] && s[j] <= '9' {
			j++
		}
		if j == i+1 {
			b.WriteByte('$')
			continue
		}
		b.WriteString("${" + s[i+1:j] + "}")
		i = j - 1
	}
	return b.String()
}

// RewritePath returns the path to send upstream: with strip_prefix removed
// (on a segment boundary, keeping a leading "/"), replaced whole with {name}
// substituted from p, or with the regex's matches replaced ($1 refers to a
// group, as does ${1}; $$ is a dollar). It returns path unchanged when the
// route has no rewrite or the prefix does not apply.
func (r *Route) RewritePath(path string, p *Params) string {
	rw := &r.rw
	switch rw.kind {
	case rewriteStrip:
		if rw.strip == "" {
			return path
		}
		if path == rw.strip {
			return "/"
		}
		if strings.HasPrefix(path, rw.strip) && path[len(rw.strip)] == '/' {
			return path[len(rw.strip):]
		}
		return path
	case rewritePath:
		if len(rw.parts) == 1 && rw.parts[0].param == "" {
			return rw.parts[0].lit
		}
		var b strings.Builder
		n := rw.size
		for _, pt := range rw.parts {
			if pt.param != "" && p != nil {
				n += len(p.Get(pt.param))
			}
		}
		b.Grow(n)
		for _, pt := range rw.parts {
			if pt.param == "" {
				b.WriteString(pt.lit)
			} else if p != nil {
				b.WriteString(p.Get(pt.param))
			}
		}
		return b.String()
	case rewriteRegex:
		return rw.re.ReplaceAllString(path, rw.repl)
	}
	return path
}

type headerOps struct {
	remove []string
	set    []headerKV
	add    []headerKV
}

type headerKV struct{ key, value string }

func compileHeaderOps(c config.HeaderOps) headerOps {
	var o headerOps
	for _, k := range c.Remove {
		o.remove = append(o.remove, http.CanonicalHeaderKey(k))
	}
	o.set = sortedKV(c.Set)
	o.add = sortedKV(c.Add)
	return o
}

func sortedKV(m map[string]string) []headerKV {
	var kv []headerKV
	for k, v := range m {
		kv = append(kv, headerKV{http.CanonicalHeaderKey(k), v})
	}
	slices.SortFunc(kv, func(a, b headerKV) int { return strings.Compare(a.key, b.key) })
	return kv
}

func (o *headerOps) apply(h http.Header) {
	if h == nil {
		return
	}
	for _, k := range o.remove {
		delete(h, k)
	}
	for _, kv := range o.set {
		h[kv.key] = []string{kv.value}
	}
	for _, kv := range o.add {
		h[kv.key] = append(h[kv.key], kv.value)
	}
}

// ApplyRequestHeaders applies the route's request header operations to h:
// remove, then set (replace), then add (append).
func (r *Route) ApplyRequestHeaders(h http.Header) { r.reqOps.apply(h) }

// ApplyResponseHeaders applies the route's response header operations to h:
// remove, then set (replace), then add (append).
func (r *Route) ApplyResponseHeaders(h http.Header) { r.respOps.apply(h) }
