package route

import (
	"cmp"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/rewrite"
)

// MaxParams is the most template parameters a route may define; Params holds
// them in a fixed array so that matching does not allocate.
const MaxParams = 8

// maxHost bounds the Host names the table looks up by host; a longer Host is
// not a DNS name and only matches routes without hosts.
const maxHost = 255

// Table is a compiled, immutable route table. It is safe for concurrent use.
type Table struct {
	routes []*Route
	exact  map[string]*group // by lower-case host
	wild   map[string]*group // by suffix with its leading dot: ".example.com"
	any    *group            // routes without hosts
}

// Route is one compiled route.
type Route struct {
	Name string
	// Index is the route's position in the slice given to Compile; callers
	// index per-route handlers by it.
	Index    int
	Upstream string
	// Config is the source of the route; read-only.
	Config *config.Route

	methods []string // sorted, de-duplicated; empty: any
	allow   string   // methods joined by ", "
	headers []valueMatcher
	query   []valueMatcher
	conds   int // number of conditions, for priority

	kind     pathKind
	path     string // normalized exact path or prefix
	tmpl     []tmplSeg
	literals int // literal segments of a template
	re       *regexp.Regexp
	reLit    string // literal prefix every regex match starts with

	rw *rewrite.Rules // never nil
}

type pathKind uint8

const (
	kindNone pathKind = iota
	kindExact
	kindTemplate
	kindPrefix
	kindRegex
)

type tmplSeg struct {
	lit   string
	param string // non-empty for {name} and {name...}
	rest  bool   // {name...}
}

// group holds the routes of one host (or of no host), indexed by path kind.
type group struct {
	exact map[string][]*Route // sorted by priority
	trie  *node               // templates and prefixes
	regex []*Route            // sorted by priority
	none  []*Route            // sorted by priority
}

// node is a segment trie node. Templates ending at this node are in ends,
// templates whose last segment is {rest...} after this node in rests, and
// prefixes whose last segment is this node in prefixes.
type node struct {
	children map[string]*node
	param    *node
	ends     []*entry
	rests    []*entry
	prefixes []*entry
}

type entry struct {
	r    *Route
	rank int    // priority within the group's templates and prefixes; lower first
	need string // for a prefix ending in "/": the path must start with it
}

// Params holds the template parameters of a match without allocating. A
// *Params is what a route's rewrite takes: rewrite.Params.
type Params struct {
	n      int
	names  [MaxParams]string
	values [MaxParams]string
}

// Get returns the value of the named parameter, or "" if there is none.
func (p *Params) Get(name string) string {
	for i := range p.n {
		if p.names[i] == name {
			return p.values[i]
		}
	}
	return ""
}

var _ rewrite.Params = (*Params)(nil)

// Len is the number of parameters.
func (p *Params) Len() int { return p.n }

// At returns the i-th parameter, in template order.
func (p *Params) At(i int) (name, value string) { return p.names[i], p.values[i] }

func (p *Params) add(name, value string) {
	if p.n < MaxParams {
		p.names[p.n], p.values[p.n] = name, value
		p.n++
	}
}

// Result is filled by Match. Callers keep one per request (on the stack or
// in a sync.Pool) so that matching allocates nothing.
type Result struct {
	// Route is the matched route, nil when nothing matched.
	Route  *Route
	Params Params
	// MethodNotAllowed is set, with Route nil, when some route matched
	// everything but the method. Allow is then the sorted, de-duplicated,
	// ", "-joined list of the methods of those routes.
	MethodNotAllowed bool
	Allow            string
}

// Routes returns the compiled routes in the order given to Compile. The slice
// must not be modified.
func (t *Table) Routes() []*Route { return t.routes }

// Rewrite returns the route's compiled path rewrite and header operations
// (never nil), applied by the proxy: its Path takes the match's Params.
func (r *Route) Rewrite() *rewrite.Rules { return r.rw }

// Compile builds a table from routes, which config has validated. It still
// returns an error, naming the route, for anything it cannot compile.
func Compile(routes []config.Route) (*Table, error) {
	t := &Table{routes: make([]*Route, len(routes))}
	builders := map[string]*groupBuilder{}
	var order []string
	groupFor := func(key string) *groupBuilder {
		b := builders[key]
		if b == nil {
			b = &groupBuilder{exact: map[string][]*Route{}}
			builders[key] = b
			order = append(order, key)
		}
		return b
	}
	for i := range routes {
		r, err := compileRoute(i, &routes[i])
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", routes[i].Name, err)
		}
		t.routes[i] = r
		hosts := map[string]bool{}
		for _, h := range routes[i].Match.Hosts {
			h = strings.TrimSuffix(strings.ToLower(h), ".")
			if h == "" || h == "*." || strings.Contains(h[min(2, len(h)):], "*") {
				return nil, fmt.Errorf("route %q: invalid host %q", routes[i].Name, h)
			}
			if hosts[h] {
				continue
			}
			hosts[h] = true
			if strings.HasPrefix(h, "*.") {
				groupFor("w" + h[1:]).add(r)
			} else {
				groupFor("e" + h).add(r)
			}
		}
		if len(hosts) == 0 {
			groupFor("a").add(r)
		}
	}
	for _, key := range order {
		g := builders[key].build()
		switch key[0] {
		case 'e':
			if t.exact == nil {
				t.exact = map[string]*group{}
			}
			t.exact[key[1:]] = g
		case 'w':
			if t.wild == nil {
				t.wild = map[string]*group{}
			}
			t.wild[key[1:]] = g
		default:
			t.any = g
		}
	}
	return t, nil
}

func compileRoute(i int, c *config.Route) (*Route, error) {
	r := &Route{Name: c.Name, Index: i, Upstream: c.Upstream, Config: c}
	m := &c.Match
	if len(m.Methods) > 0 {
		r.methods = slices.Clone(m.Methods)
		slices.Sort(r.methods)
		r.methods = slices.Compact(r.methods)
		r.allow = strings.Join(r.methods, ", ")
		r.conds++
	}
	var err error
	if r.headers, err = compileMatchers("header", m.Headers, true); err != nil {
		return nil, err
	}
	if r.query, err = compileMatchers("query", m.Query, false); err != nil {
		return nil, err
	}
	r.conds += len(r.headers) + len(r.query)
	params := map[string]bool{}
	if p := m.Path; p != nil {
		set := 0
		for _, s := range []string{p.Exact, p.Prefix, p.Template, p.Regex} {
			if s != "" {
				set++
			}
		}
		if set != 1 {
			return nil, fmt.Errorf("path needs exactly one of exact, prefix, template, regex")
		}
		switch {
		case p.Exact != "":
			r.kind = kindExact
			if r.path, err = compilePath(p.Exact); err != nil {
				return nil, err
			}
		case p.Prefix != "":
			r.kind = kindPrefix
			if r.path, err = compilePath(p.Prefix); err != nil {
				return nil, err
			}
		case p.Template != "":
			r.kind = kindTemplate
			if err = r.compileTemplate(p.Template, params); err != nil {
				return nil, err
			}
		default:
			r.kind = kindRegex
			if r.re, err = regexp.Compile(`^(?:` + p.Regex + `)$`); err != nil {
				return nil, fmt.Errorf("path regex: %w", err)
			}
			r.reLit, _ = r.re.LiteralPrefix()
		}
	}
	if r.rw, err = rewrite.Compile(c.Rewrite, c.RequestHeaders, c.ResponseHeaders, params); err != nil {
		return nil, err
	}
	return r, nil
}

func compilePath(p string) (string, error) {
	n, err := NormalizePath(p)
	if err != nil {
		return "", fmt.Errorf("path %q: %w", p, err)
	}
	return n, nil
}

func (r *Route) compileTemplate(t string, params map[string]bool) error {
	n, err := compilePath(t)
	if err != nil {
		return err
	}
	r.path = n
	segs := strings.Split(n[1:], "/")
	for i, s := range segs {
		if !strings.ContainsAny(s, "{}") {
			r.tmpl = append(r.tmpl, tmplSeg{lit: s})
			r.literals++
			continue
		}
		name, rest := s, false
		if len(s) < 3 || s[0] != '{' || s[len(s)-1] != '}' {
			return fmt.Errorf("template %q: segment %q: a parameter must be a whole segment, {name} or {name...}", t, s)
		}
		name = s[1 : len(s)-1]
		if base, ok := strings.CutSuffix(name, "..."); ok {
			name, rest = base, true
			if i != len(segs)-1 {
				return fmt.Errorf("template %q: {%s...} must be the last segment", t, name)
			}
		}
		if name == "" || strings.ContainsAny(name, "{}./") {
			return fmt.Errorf("template %q: invalid parameter %q", t, s)
		}
		if params[name] {
			return fmt.Errorf("template %q: parameter %q appears twice", t, name)
		}
		params[name] = true
		r.tmpl = append(r.tmpl, tmplSeg{param: name, rest: rest})
	}
	if len(params) > MaxParams {
		return fmt.Errorf("template %q: %d parameters, at most %d", t, len(params), MaxParams)
	}
	return nil
}

// fixedSegs is the number of template segments other than a final {rest...}.
func (r *Route) fixedSegs() int {
	if r.tmplRest() {
		return len(r.tmpl) - 1
	}
	return len(r.tmpl)
}

func (r *Route) tmplRest() bool { return len(r.tmpl) > 0 && r.tmpl[len(r.tmpl)-1].rest }

type groupBuilder struct {
	exact map[string][]*Route
	tmpl  []*Route
	pfx   []*Route
	regex []*Route
	none  []*Route
}

func (b *groupBuilder) add(r *Route) {
	switch r.kind {
	case kindExact:
		b.exact[r.path] = append(b.exact[r.path], r)
	case kindTemplate:
		b.tmpl = append(b.tmpl, r)
	case kindPrefix:
		b.pfx = append(b.pfx, r)
	case kindRegex:
		b.regex = append(b.regex, r)
	default:
		b.none = append(b.none, r)
	}
}

// byConds orders routes of equal path specificity: more conditions, then file order.
func byConds(a, b *Route) int {
	return cmp.Or(cmp.Compare(b.conds, a.conds), cmp.Compare(a.Index, b.Index))
}

func (b *groupBuilder) build() *group {
	g := &group{}
	if len(b.exact) > 0 {
		g.exact = b.exact
		for _, rs := range b.exact {
			slices.SortStableFunc(rs, byConds)
		}
	}
	slices.SortStableFunc(b.tmpl, func(x, y *Route) int {
		return cmp.Or(
			cmp.Compare(y.literals, x.literals),
			cmp.Compare(y.fixedSegs(), x.fixedSegs()),
			cmpBool(x.tmplRest(), y.tmplRest()),
			byConds(x, y))
	})
	slices.SortStableFunc(b.pfx, func(x, y *Route) int {
		return cmp.Or(cmp.Compare(len(y.path), len(x.path)), byConds(x, y))
	})
	if len(b.tmpl)+len(b.pfx) > 0 {
		g.trie = &node{}
		for i, r := range b.tmpl {
			n := g.trie
			for _, s := range r.tmpl {
				if s.rest {
					n.rests = append(n.rests, &entry{r: r, rank: i})
					n = nil
					break
				}
				if s.param != "" {
					n = n.paramChild()
				} else {
					n = n.child(s.lit)
				}
			}
			if n != nil {
				n.ends = append(n.ends, &entry{r: r, rank: i})
			}
		}
		for i, r := range b.pfx {
			e := &entry{r: r, rank: len(b.tmpl) + i}
			n := g.trie
			if p := strings.TrimRight(r.path, "/"); p != "" {
				if p != r.path {
					e.need = r.path
				}
				for _, s := range strings.Split(p[1:], "/") {
					n = n.child(s)
				}
			}
			n.prefixes = append(n.prefixes, e)
		}
	}
	// Routes with the same regex sit together, at the place of the first.
	first := map[string]int{}
	for _, r := range b.regex {
		if _, ok := first[r.re.String()]; !ok {
			first[r.re.String()] = r.Index
		}
	}
	slices.SortStableFunc(b.regex, func(x, y *Route) int {
		return cmp.Or(cmp.Compare(first[x.re.String()], first[y.re.String()]), byConds(x, y))
	})
	g.regex = b.regex
	slices.SortStableFunc(b.none, byConds)
	g.none = b.none
	return g
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func (n *node) child(seg string) *node {
	if n.children == nil {
		n.children = map[string]*node{}
	}
	c := n.children[seg]
	if c == nil {
		c = &node{}
		n.children[seg] = c
	}
	return c
}

func (n *node) paramChild() *node {
	if n.param == nil {
		n.param = &node{}
	}
	return n.param
}

// nextSeg splits the first segment off rem (a path without its leading "/").
// done reports that seg was the last segment.
func nextSeg(rem string) (seg, rest string, done bool) {
	if i := strings.IndexByte(rem, '/'); i >= 0 {
		return rem[:i], rem[i+1:], false
	}
	return rem, "", true
}

// collect appends to list the entries whose template or prefix matches the
// path whose unconsumed part is rem (done: nothing is left).
func (n *node) collect(list []*entry, path, rem string, done bool) []*entry {
	for _, e := range n.prefixes {
		if e.need == "" || strings.HasPrefix(path, e.need) {
			list = append(list, e)
		}
	}
	list = append(list, n.rests...)
	if done {
		return append(list, n.ends...)
	}
	seg, rem, done := nextSeg(rem)
	if c := n.children[seg]; c != nil {
		list = c.collect(list, path, rem, done)
	}
	if n.param != nil && seg != "" {
		list = n.param.collect(list, path, rem, done)
	}
	return list
}

// fillParams sets p from a path matched by the template segs.
func fillParams(segs []tmplSeg, path string, p *Params) {
	rem, done := path[1:], false
	var seg string
	for _, s := range segs {
		if s.rest {
			if done {
				rem = ""
			}
			p.add(s.param, rem)
			return
		}
		seg, rem, done = nextSeg(rem)
		if s.param != "" {
			p.add(s.param, seg)
		}
	}
}

// matcher is the state of one Match call.
type matcher struct {
	method, path, rawQuery string
	h                      http.Header
	res                    *Result

	misses  int    // routes that matched all but the method
	allow   string // their Allow when all agree
	mixed   bool   // their Allow strings differ
	collect bool   // second pass: gather the methods of the misses
	methods []string
}

// Match finds the most specific route for the request (see the package
// documentation for the order). host is the Host header, possibly with a
// port; path the normalized escaped path; rawQuery the raw query string; h
// may be nil. Match overwrites *res and does not allocate, except to build
// Allow when routes with different methods lists matched all but the method.
func (t *Table) Match(host, method, path string, h http.Header, rawQuery string, res *Result) {
	*res = Result{}
	q := matcher{method: method, path: path, rawQuery: rawQuery, h: h, res: res}
	if t.run(&q, host) {
		return
	}
	if q.misses == 0 {
		return
	}
	res.MethodNotAllowed = true
	if !q.mixed {
		res.Allow = q.allow
		return
	}
	q.collect = true
	t.run(&q, host)
	slices.Sort(q.methods)
	res.Allow = strings.Join(slices.Compact(q.methods), ", ")
}

func (t *Table) run(q *matcher, host string) bool {
	if t.exact != nil || t.wild != nil {
		var buf [maxHost]byte
		if n := canonHost(host, &buf); n > 0 {
			hb := buf[:n]
			if g := t.exact[string(hb)]; g != nil && q.group(g) {
				return true
			}
			if t.wild != nil {
				for i := 1; i < n-1; i++ {
					if hb[i] == '.' {
						if g := t.wild[string(hb[i:])]; g != nil && q.group(g) {
							return true
						}
					}
				}
			}
		}
	}
	return t.any != nil && q.group(t.any)
}

// canonHost writes host without port and trailing dot, lower-cased, to buf
// and returns its length, or 0 if it does not fit.
func canonHost(host string, buf *[maxHost]byte) int {
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		if strings.HasPrefix(host, "[") {
			if j := strings.IndexByte(host, ']'); j >= 0 {
				host = host[:j+1]
			}
		} else if strings.IndexByte(host[:i], ':') < 0 {
			host = host[:i]
		}
	}
	host = strings.TrimSuffix(host, ".")
	if len(host) > maxHost {
		return 0
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return len(host)
}

// group tries the routes of one host group in priority order.
func (q *matcher) group(g *group) bool {
	if g.exact != nil {
		for _, r := range g.exact[q.path] {
			if q.accept(r) {
				return true
			}
		}
	}
	if g.trie != nil && len(q.path) > 0 && q.path[0] == '/' {
		var arr [32]*entry
		list := g.trie.collect(arr[:0], q.path, q.path[1:], false)
		// Insertion sort by rank: lists are short.
		for i := 1; i < len(list); i++ {
			for j := i; j > 0 && list[j].rank < list[j-1].rank; j-- {
				list[j], list[j-1] = list[j-1], list[j]
			}
		}
		for _, e := range list {
			if q.accept(e.r) {
				if e.r.kind == kindTemplate {
					fillParams(e.r.tmpl, q.path, &q.res.Params)
				}
				return true
			}
		}
	}
	for _, r := range g.regex {
		if strings.HasPrefix(q.path, r.reLit) && q.conds(r) && r.re.MatchString(q.path) && q.methodOK(r) {
			q.res.Route = r
			return true
		}
	}
	for _, r := range g.none {
		if q.accept(r) {
			return true
		}
	}
	return false
}

// accept checks the conditions of r, whose path matched.
func (q *matcher) accept(r *Route) bool {
	if q.conds(r) && q.methodOK(r) {
		q.res.Route = r
		return true
	}
	return false
}

// methodOK reports whether the method matches, recording a miss if not.
func (q *matcher) methodOK(r *Route) bool {
	if q.collect {
		q.methods = append(q.methods, r.methods...)
		return false
	}
	if len(r.methods) == 0 {
		return true
	}
	for _, m := range r.methods {
		if m == q.method {
			return true
		}
	}
	if q.misses == 0 {
		q.allow = r.allow
	} else if q.allow != r.allow {
		q.mixed = true
	}
	q.misses++
	return false
}

func (q *matcher) conds(r *Route) bool {
	for i := range r.headers {
		if !r.headers[i].matchHeader(q.h) {
			return false
		}
	}
	for i := range r.query {
		if !r.query[i].matchQuery(q.rawQuery) {
			return false
		}
	}
	return true
}
