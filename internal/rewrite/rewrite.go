// Package rewrite compiles a route's rewrites, once, when the route table is
// compiled, and applies them per request: the path sent upstream
// (strip_prefix, a path with the template's {name} parameters, or a regex
// substitution), and the request and response header operations (remove,
// then set, then add).
//
// It knows nothing of routes: the route package compiles a Rules for each
// route and the proxy applies it. A nil *Rules is valid and rewrites nothing.
// Rules are immutable after Compile and safe for concurrent use.
package rewrite

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
)

// Params are the template parameters of a matched request, by name
// (*route.Params is one). Get returns "" for a name it does not have.
type Params interface {
	Get(name string) string
}

// Rules are the compiled rewrites of one route.
type Rules struct {
	kind  kind
	strip string // kindStrip: the prefix without trailing "/"
	parts []part // kindPath
	size  int    // literal bytes of parts
	re    *regexp.Regexp
	repl  string // the substitution, groups braced (see bracedGroups)

	req, resp headerOps
}

type kind uint8

const (
	kindNone kind = iota
	kindStrip
	kindPath
	kindRegex
)

// part is a literal, or a parameter when param is set.
type part struct {
	lit   string
	param string
}

var paramRef = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(?:\.\.\.)?\}`)

// Compile compiles a route's path rewrite c (nil: none) and its request and
// response header operations. params are the parameters of the route's path
// template, the only ones a rewritten path may use. Config validation
// reports the same errors with their positions; Compile still returns them
// for anything it cannot compile.
func Compile(c *config.Rewrite, reqOps, respOps config.HeaderOps, params map[string]bool) (*Rules, error) {
	r := &Rules{}
	if err := r.compilePath(c, params); err != nil {
		return nil, err
	}
	r.req = compileHeaderOps(reqOps)
	r.resp = compileHeaderOps(respOps)
	return r, nil
}

func (r *Rules) compilePath(c *config.Rewrite, params map[string]bool) error {
	if c == nil {
		return nil
	}
	set := 0
	if c.StripPrefix != "" {
		set++
		if !strings.HasPrefix(c.StripPrefix, "/") {
			return fmt.Errorf("strip_prefix %q must start with /", c.StripPrefix)
		}
		r.kind, r.strip = kindStrip, strings.TrimRight(c.StripPrefix, "/")
	}
	if c.Path != "" {
		set++
		r.kind = kindPath
		s, at := c.Path, 0
		for _, m := range paramRef.FindAllStringSubmatchIndex(s, -1) {
			name := s[m[2]:m[3]]
			if !params[name] {
				return fmt.Errorf("rewrite uses {%s}, which the route's path template does not define", name)
			}
			r.addLit(s[at:m[0]])
			r.parts = append(r.parts, part{param: name})
			at = m[1]
		}
		r.addLit(s[at:])
	}
	if c.Regex != nil {
		set++
		re, err := regexp.Compile(c.Regex.Pattern)
		if err != nil {
			return fmt.Errorf("rewrite regex: %w", err)
		}
		r.kind, r.re, r.repl = kindRegex, re, bracedGroups(c.Regex.Substitution)
	}
	if set != 1 {
		return fmt.Errorf("rewrite needs exactly one of strip_prefix, path, regex")
	}
	return nil
}

func (r *Rules) addLit(s string) {
	if s != "" {
		r.parts = append(r.parts, part{lit: s})
		r.size += len(s)
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

// Path returns the path to send upstream: with strip_prefix removed (on a
// segment boundary, keeping a leading "/"), replaced whole with {name}
// substituted from p (which may be nil), or with the regex's matches
// replaced ($1 refers to a group, as does ${1}; $$ is a dollar). It returns
// path unchanged when there is no path rewrite or the prefix does not apply.
func (r *Rules) Path(path string, p Params) string {
	if r == nil {
		return path
	}
	switch r.kind {
	case kindStrip:
		if r.strip == "" {
			return path
		}
		if path == r.strip {
			return "/"
		}
		if strings.HasPrefix(path, r.strip) && path[len(r.strip)] == '/' {
			return path[len(r.strip):]
		}
		return path
	case kindPath:
		return r.substitute(p)
	case kindRegex:
		return r.re.ReplaceAllString(path, r.repl)
	}
	return path
}

// substitute builds a rewrite path, sized in one allocation.
func (r *Rules) substitute(p Params) string {
	if len(r.parts) == 1 && r.parts[0].param == "" {
		return r.parts[0].lit
	}
	var b strings.Builder
	n := r.size
	for _, pt := range r.parts {
		if pt.param != "" && p != nil {
			n += len(p.Get(pt.param))
		}
	}
	b.Grow(n)
	for _, pt := range r.parts {
		if pt.param == "" {
			b.WriteString(pt.lit)
		} else if p != nil {
			b.WriteString(p.Get(pt.param))
		}
	}
	return b.String()
}
