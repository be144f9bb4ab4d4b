package route

import (
	"net/http"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

// rt builds a config.Route tersely: opts set the match.
func rt(name string, opts ...func(*config.Route)) config.Route {
	r := config.Route{Name: name, Upstream: "up-" + name}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func exact(p string) func(*config.Route) {
	return func(r *config.Route) { r.Match.Path = &config.Path{Exact: p} }
}
func prefix(p string) func(*config.Route) {
	return func(r *config.Route) { r.Match.Path = &config.Path{Prefix: p} }
}
func tmpl(p string) func(*config.Route) {
	return func(r *config.Route) { r.Match.Path = &config.Path{Template: p} }
}
func regex(p string) func(*config.Route) {
	return func(r *config.Route) { r.Match.Path = &config.Path{Regex: p} }
}
func hosts(h ...string) func(*config.Route) {
	return func(r *config.Route) { r.Match.Hosts = h }
}
func methods(m ...string) func(*config.Route) {
	return func(r *config.Route) { r.Match.Methods = m }
}
func header(m config.ValueMatcher) func(*config.Route) {
	return func(r *config.Route) { r.Match.Headers = append(r.Match.Headers, m) }
}
func query(m config.ValueMatcher) func(*config.Route) {
	return func(r *config.Route) { r.Match.Query = append(r.Match.Query, m) }
}

func mustCompile(t testing.TB, routes ...config.Route) *Table {
	t.Helper()
	tab, err := Compile(routes)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tab
}

type req struct {
	host, method, path, query string
	h                         http.Header
}

func (r req) match(t *Table) *Result {
	var res Result
	m := r.method
	if m == "" {
		m = "GET"
	}
	t.Match(r.host, m, r.path, r.h, r.query, &res)
	return &res
}

func name(res *Result) string {
	if res.Route == nil {
		if res.MethodNotAllowed {
			return "405 " + res.Allow
		}
		return ""
	}
	return res.Route.Name
}

type matchCase struct {
	req  req
	want string // route name, "" for none, "405 <Allow>"
}

func runCases(t *testing.T, tab *Table, cases []matchCase) {
	t.Helper()
	for _, c := range cases {
		if got := name(c.req.match(tab)); got != c.want {
			t.Errorf("%+v: got %q, want %q", c.req, got, c.want)
		}
	}
}

func TestMatchPathKinds(t *testing.T) {
	tab := mustCompile(t,
		rt("exact", exact("/health")),
		rt("prefix", prefix("/api")),
		rt("prefix-slash", prefix("/static/")),
		rt("tmpl", tmpl("/products/{id}")),
		rt("tmpl-rest", tmpl("/files/{path...}")),
		rt("tmpl-deep", tmpl("/users/{uid}/orders/{oid}")),
		rt("regex", regex(`/v[0-9]+/items`)),
		rt("regex-anchored", regex(`/x.*`)),
	)
	runCases(t, tab, []matchCase{
		{req{path: "/health"}, "exact"},
		{req{path: "/health/"}, ""},
		{req{path: "/healthz"}, ""},
		{req{path: "/api"}, "prefix"},
		{req{path: "/api/"}, "prefix"},
		{req{path: "/api/x/y"}, "prefix"},
		{req{path: "/apix"}, ""},
		{req{path: "/static"}, ""},
		{req{path: "/static/"}, "prefix-slash"},
		{req{path: "/static/a.css"}, "prefix-slash"},
		{req{path: "/products/42"}, "tmpl"},
		{req{path: "/products/"}, ""},
		{req{path: "/products"}, ""},
		{req{path: "/products/42/x"}, ""},
		{req{path: "/files"}, "tmpl-rest"},
		{req{path: "/files/"}, "tmpl-rest"},
		{req{path: "/files/a/b/c"}, "tmpl-rest"},
		{req{path: "/filesx"}, ""},
		{req{path: "/users/7/orders/9"}, "tmpl-deep"},
		{req{path: "/users/7/orders/"}, ""},
		{req{path: "/users//orders/9"}, ""},
		{req{path: "/v2/items"}, "regex"},
		{req{path: "/v2/items/more"}, ""},
		{req{path: "/a/v2/items"}, ""},
		{req{path: "/xyz"}, "regex-anchored"},
		{req{path: "/ax"}, ""},
	})
}

func TestParams(t *testing.T) {
	tab := mustCompile(t,
		rt("deep", tmpl("/users/{uid}/orders/{oid}")),
		rt("rest", tmpl("/files/{dir}/{path...}")),
		rt("root", tmpl("/{all...}")),
	)
	cases := []struct {
		path string
		want map[string]string
	}{
		{"/users/7/orders/9", map[string]string{"uid": "7", "oid": "9"}},
		{"/files/d/a/b", map[string]string{"dir": "d", "path": "a/b"}},
		{"/files/d/", map[string]string{"dir": "d", "path": ""}},
		{"/files/d", map[string]string{"dir": "d", "path": ""}},
		{"/", map[string]string{"all": ""}},
		{"/q/r", map[string]string{"all": "q/r"}},
	}
	for _, c := range cases {
		res := req{path: c.path}.match(tab)
		if res.Route == nil {
			t.Fatalf("%s: no match", c.path)
		}
		if res.Params.Len() != len(c.want) {
			t.Errorf("%s: %d params, want %d", c.path, res.Params.Len(), len(c.want))
		}
		for k, v := range c.want {
			if got := res.Params.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", c.path, k, got, v)
			}
		}
	}
	if got := (&Params{}).Get("x"); got != "" {
		t.Errorf("empty Params Get = %q", got)
	}
}

func TestMatchHosts(t *testing.T) {
	tab := mustCompile(t,
		rt("any", prefix("/")),
		rt("exact-host", prefix("/"), hosts("API.example.com")),
		rt("wild", prefix("/"), hosts("*.example.com")),
		rt("wild-deep", prefix("/"), hosts("*.eu.example.com")),
		rt("only-admin", exact("/admin"), hosts("shop.example.com")),
		rt("multi", exact("/m"), hosts("a.test", "*.b.test")),
	)
	runCases(t, tab, []matchCase{
		{req{host: "api.example.com", path: "/x"}, "exact-host"},
		{req{host: "API.Example.COM:8443", path: "/x"}, "exact-host"},
		{req{host: "api.example.com.", path: "/x"}, "exact-host"},
		{req{host: "www.example.com", path: "/x"}, "wild"},
		{req{host: "a.b.example.com", path: "/x"}, "wild"},
		{req{host: "x.eu.example.com", path: "/x"}, "wild-deep"},
		{req{host: "eu.example.com", path: "/x"}, "wild"},
		{req{host: "example.com", path: "/x"}, "any"},
		{req{host: ".example.com", path: "/x"}, "any"},
		{req{host: "other.org", path: "/x"}, "any"},
		{req{host: "", path: "/x"}, "any"},
		{req{host: "[::1]:80", path: "/x"}, "any"},
		// The host group falls back to host-less routes.
		{req{host: "shop.example.com", path: "/admin"}, "only-admin"},
		{req{host: "shop.example.com", path: "/other"}, "wild"},
		{req{host: "a.test", path: "/m"}, "multi"},
		{req{host: "c.b.test", path: "/m"}, "multi"},
		{req{host: "b.test", path: "/m"}, "any"},
	})
}

func TestMatchConditions(t *testing.T) {
	v := func(m config.ValueMatcher) config.ValueMatcher { return m }
	tab := mustCompile(t,
		rt("hdr-exact", exact("/a"), header(v(config.ValueMatcher{Name: "x-env", Exact: "canary"}))),
		rt("hdr-regex", exact("/a"), header(v(config.ValueMatcher{Name: "X-Env", Regex: "stag(e|ing)"}))),
		rt("hdr-absent", exact("/a"), header(v(config.ValueMatcher{Name: "X-Env", Present: true, Invert: true}))),
		rt("fallback", exact("/a")),
		rt("q-exact", exact("/q"), query(v(config.ValueMatcher{Name: "v", Exact: "a b"}))),
		rt("q-regex", exact("/q"), query(v(config.ValueMatcher{Name: "id", Regex: "[0-9]+"}))),
		rt("q-present", exact("/q"), query(v(config.ValueMatcher{Name: "debug", Present: true}))),
		rt("q-not", exact("/q"), query(v(config.ValueMatcher{Name: "mode", Exact: "x", Invert: true}))),
	)
	h := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	runCases(t, tab, []matchCase{
		{req{path: "/a", h: h("X-Env", "canary")}, "hdr-exact"},
		{req{path: "/a", h: h("X-Env", "other", "X-Env", "canary")}, "hdr-exact"},
		{req{path: "/a", h: h("X-Env", "staging")}, "hdr-regex"},
		{req{path: "/a", h: h("X-Env", "xstaging")}, "fallback"},
		{req{path: "/a", h: h("X-Env", "stage1")}, "fallback"},
		{req{path: "/a", h: nil}, "hdr-absent"},
		{req{path: "/a", h: h("Other", "1")}, "hdr-absent"},
		{req{path: "/a", h: h("X-Env", "prod")}, "fallback"},
		{req{path: "/q", query: "v=a+b"}, "q-exact"},
		{req{path: "/q", query: "x=1&v=a%20b"}, "q-exact"},
		{req{path: "/q", query: "%76=a b"}, "q-exact"},
		{req{path: "/q", query: "v=a+bc"}, "q-not"},
		{req{path: "/q", query: "id=123"}, "q-regex"},
		{req{path: "/q", query: "id=12a"}, "q-not"},
		{req{path: "/q", query: "id=%31%32"}, "q-regex"},
		{req{path: "/q", query: "debug"}, "q-present"},
		{req{path: "/q", query: "debug="}, "q-present"},
		{req{path: "/q", query: "debugx=1"}, "q-not"},
		{req{path: "/q", query: "mode=x"}, ""},
		{req{path: "/q", query: "mode=x&mode=y"}, ""},
		{req{path: "/q", query: "mode=y"}, "q-not"},
	})
}

func TestPriority(t *testing.T) {
	hdr := header(config.ValueMatcher{Name: "X-A", Present: true})
	tab := mustCompile(t,
		// rule 2: path kind
		rt("none"),
		rt("regex-p", regex(`/p/.*`)),
		rt("prefix-p", prefix("/p")),
		rt("tmpl-p", tmpl("/p/{x}")),
		rt("exact-p", exact("/p/e")),
		// templates: literals, then segments, then no-rest first
		rt("t-1lit", tmpl("/t/{a}/{b}")),
		rt("t-2lit", tmpl("/t/{a}/c")),
		rt("t-rest", tmpl("/t/{a}/{rest...}")),
		rt("t-short", tmpl("/t/{a}")),
		rt("t-rest-short", tmpl("/t/{rest...}")),
		// prefixes: longer first
		rt("pre-short", prefix("/l")),
		rt("pre-long", prefix("/l/m/n")),
		rt("pre-mid", prefix("/l/m")),
		// regexes: file order, conditions among the same regex
		rt("re-1", regex(`/r/[a-z]+`)),
		rt("re-2", regex(`/r/.*`), hdr),
		rt("re-1-cond", regex(`/r/[a-z]+`), hdr),
		// rule 3: more conditions first, rule 4: file order
		rt("c-plain", exact("/c")),
		rt("c-method", exact("/c"), methods("GET")),
		rt("c-hdr-method", exact("/c"), methods("GET"), hdr),
		rt("c-dup-1", exact("/d"), methods("GET")),
		rt("c-dup-2", exact("/d"), methods("POST", "GET")),
	)
	withA := http.Header{"X-A": {"1"}}
	runCases(t, tab, []matchCase{
		{req{path: "/p/e"}, "exact-p"},
		{req{path: "/p/x"}, "tmpl-p"},
		{req{path: "/p/x/y"}, "prefix-p"},
		{req{path: "/p"}, "prefix-p"},
		{req{path: "/zz"}, "none"},
		{req{path: "/t/x/c"}, "t-2lit"},
		{req{path: "/t/x/d"}, "t-1lit"},
		{req{path: "/t/x/d/e"}, "t-rest"},
		{req{path: "/t/x"}, "t-short"},
		{req{path: "/t"}, "t-rest-short"},
		{req{path: "/l/m/n/o"}, "pre-long"},
		{req{path: "/l/m/x"}, "pre-mid"},
		{req{path: "/l/x"}, "pre-short"},
		{req{path: "/r/abc"}, "re-1"},
		{req{path: "/r/abc", h: withA}, "re-1-cond"},
		{req{path: "/r/1", h: withA}, "re-2"},
		{req{path: "/r/1"}, "none"},
		{req{path: "/c", h: withA}, "c-hdr-method"},
		{req{path: "/c"}, "c-method"},
		{req{path: "/c", method: "POST"}, "c-plain"},
		{req{path: "/d"}, "c-dup-1"},
		{req{path: "/d", method: "POST"}, "c-dup-2"},
	})
}

func TestMethodNotAllowed(t *testing.T) {
	hdr := header(config.ValueMatcher{Name: "X-A", Present: true})
	tab := mustCompile(t,
		rt("get", exact("/a"), methods("GET", "HEAD")),
		rt("post", exact("/a"), methods("POST", "GET")),
		rt("put-tmpl", tmpl("/{x}"), methods("PUT")),
		rt("only", exact("/b"), methods("DELETE")),
		rt("hdr", exact("/h"), methods("PATCH"), hdr),
		rt("host", exact("/b"), methods("OPTIONS"), hosts("x.test")),
		rt("anyhost-ok", exact("/c"), methods("GET")),
		rt("host-c", exact("/c"), methods("POST"), hosts("x.test")),
	)
	runCases(t, tab, []matchCase{
		{req{path: "/a", method: "HEAD"}, "get"},
		{req{path: "/a", method: "DELETE"}, "405 GET, HEAD, POST, PUT"},
		{req{path: "/b", method: "GET"}, "405 DELETE, PUT"},
		{req{path: "/b", method: "GET", host: "x.test"}, "405 DELETE, OPTIONS, PUT"},
		{req{path: "/h", method: "GET"}, "405 PUT"}, // hdr's header fails; only the template counts
		{req{path: "/h", method: "GET", h: http.Header{"X-A": {"1"}}}, "405 PATCH, PUT"},
		{req{path: "/c", method: "GET", host: "x.test"}, "anyhost-ok"},
		{req{path: "/nope/x", method: "GET"}, ""},
	})
}

func TestRewritePath(t *testing.T) {
	rw := func(c config.Rewrite) func(*config.Route) {
		return func(r *config.Route) { r.Rewrite = &c }
	}
	tab := mustCompile(t,
		rt("strip", prefix("/api"), rw(config.Rewrite{StripPrefix: "/api"})),
		rt("strip-slash", prefix("/v1/"), rw(config.Rewrite{StripPrefix: "/v1/"})),
		rt("path", tmpl("/products/{id}/{rest...}"), rw(config.Rewrite{Path: "/catalog/{id}/x/{rest}"})),
		rt("const", exact("/old"), rw(config.Rewrite{Path: "/new"})),
		rt("regex", regex(`/r/.*`), rw(config.Rewrite{Regex: &config.RegexRewrite{Pattern: `^/r/([a-z]+)/(\d+)$`, Substitution: "/$2x/$1/$$"}})),
		rt("none", exact("/plain")),
	)
	cases := []struct{ path, want string }{
		{"/api", "/"},
		{"/api/", "/"},
		{"/api/users/1", "/users/1"},
		{"/v1/a", "/a"},
		{"/products/42/a/b", "/catalog/42/x/a/b"},
		{"/products/42", "/catalog/42/x/"},
		{"/old", "/new"},
		{"/r/abc/12", "/12x/abc/$"},
		{"/r/ABC", "/r/ABC"},
		{"/plain", "/plain"},
	}
	for _, c := range cases {
		res := req{path: c.path}.match(tab)
		if res.Route == nil {
			t.Fatalf("%s: no match", c.path)
		}
		if got := res.Route.Rewrite().Path(c.path, &res.Params); got != c.want {
			t.Errorf("%s (%s): got %q, want %q", c.path, res.Route.Name, got, c.want)
		}
	}
	// strip_prefix applies only on a segment boundary.
	r := tab.Routes()[0]
	if got := r.Rewrite().Path("/apix", nil); got != "/apix" {
		t.Errorf("strip on /apix = %q", got)
	}
}

func TestHeaderOps(t *testing.T) {
	c := rt("h", exact("/"))
	c.RequestHeaders = config.HeaderOps{
		Remove: []string{"x-internal", "x-set"},
		Set:    map[string]string{"x-set": "new", "x-route": "h"},
		Add:    map[string]string{"x-add": "two", "x-set": "extra"},
	}
	c.ResponseHeaders = config.HeaderOps{Remove: []string{"server"}, Add: map[string]string{"via": "meshgate"}}
	tab := mustCompile(t, c)
	r := tab.Routes()[0]
	h := http.Header{"X-Internal": {"secret"}, "X-Set": {"old1", "old2"}, "X-Add": {"one"}, "Keep": {"k"}}
	r.Rewrite().Request(h)
	want := http.Header{"X-Set": {"new", "extra"}, "X-Route": {"h"}, "X-Add": {"one", "two"}, "Keep": {"k"}}
	if !equalHeader(h, want) {
		t.Errorf("request headers = %v, want %v", h, want)
	}
	h = http.Header{"Server": {"x"}, "Via": {"1.1 a"}}
	r.Rewrite().Response(h)
	want = http.Header{"Via": {"1.1 a", "meshgate"}}
	if !equalHeader(h, want) {
		t.Errorf("response headers = %v, want %v", h, want)
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\x00") != strings.Join(b[k], "\x00") || len(b[k]) != len(v) {
			return false
		}
	}
	return true
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		r    config.Route
		want string
	}{
		{rt("bad-re", regex(`(`)), `route "bad-re"`},
		{rt("bad-tmpl", tmpl("/a/{x}y")), `route "bad-tmpl"`},
		{rt("rest-mid", tmpl("/a/{x...}/b")), "must be the last"},
		{rt("dup", tmpl("/{x}/{x}")), "twice"},
		{rt("many", tmpl("/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}")), "at most 8"},
		{rt("two", func(r *config.Route) { r.Match.Path = &config.Path{Exact: "/a", Prefix: "/b"} }), "exactly one"},
		{rt("bad-path", exact("/a%zz")), "escape"},
		{rt("hdr", header(config.ValueMatcher{Name: "X", Regex: "("})), `route "hdr"`},
		{rt("rw", tmpl("/{a}"), func(r *config.Route) { r.Rewrite = &config.Rewrite{Path: "/{b}"} }), "{b}"},
	}
	for _, c := range cases {
		_, err := Compile([]config.Route{c.r})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want containing %q", c.r.Name, err, c.want)
		}
	}
}

func TestCompileNormalizesPaths(t *testing.T) {
	tab := mustCompile(t, rt("e", exact("/a//b/./c")), rt("p", prefix("/x/../y/")))
	runCases(t, tab, []matchCase{
		{req{path: "/a/b/c"}, "e"},
		{req{path: "/y/z"}, "p"},
	})
}

// TestNormalizeThenMatch: encodings of ".." must not reach a route they
// should not, nor slip past the route they should reach.
func TestNormalizeThenMatch(t *testing.T) {
	tab := mustCompile(t,
		rt("public", prefix("/public")),
		rt("admin", exact("/admin"), header(config.ValueMatcher{Name: "X-Admin-Token", Exact: "s3cret"})),
	)
	for _, raw := range []string{
		"/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2E%2Fadmin",
		"/public/%2e%2e%2fadmin", "/public\\..\\admin", "/public/%2e%2e%5cadmin", "//admin", "/./admin",
	} {
		p, err := NormalizePath(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if p != "/admin" {
			t.Errorf("%s normalized to %q, want /admin", raw, p)
		}
		if got := name(req{path: p}.match(tab)); got != "" {
			t.Errorf("%s without token matched %q, want none", raw, got)
		}
		if got := name(req{path: p, h: http.Header{"X-Admin-Token": {"s3cret"}}}.match(tab)); got != "admin" {
			t.Errorf("%s with token matched %q, want admin", raw, got)
		}
	}
	p, _ := NormalizePath("/public/x/%2e%2e/y")
	if got := name(req{path: p}.match(tab)); got != "public" {
		t.Errorf("/public/x/%%2e%%2e/y → %q matched %q, want public", p, got)
	}
}

func TestMatchZeroAllocs(t *testing.T) {
	tab, reqs := benchTable(t)
	var res Result
	for _, r := range reqs {
		allocs := testing.AllocsPerRun(100, func() {
			tab.Match(r.host, r.method, r.path, r.h, r.query, &res)
		})
		if allocs != 0 {
			t.Errorf("%+v: %v allocs", r, allocs)
		}
	}
}
