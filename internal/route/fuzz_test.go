package route

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{
		"/", "/a/b", "/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2E%2Fadmin",
		"/a//b", "/a/./b", "/..", "/a/%zz", "%00", "/a\\..\\b", "/%2e%2E/%2f/%5c", "/a%c3%a9/.",
	} {
		f.Add(s)
	}
	forbidden := regexp.MustCompile(`(?i)%2e|%2f|%5c|%00`)
	f.Fuzz(func(t *testing.T, in string) {
		_ = SuspiciousPath(in) // any input, no panic
		out, err := NormalizePath(in)
		if err != nil {
			if out != "" {
				t.Fatalf("%q: error %v with output %q", in, err, out)
			}
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("%q → %q: no leading /", in, out)
		}
		if strings.Contains(out, "//") || strings.Contains(out, "\\") {
			t.Fatalf("%q → %q: // or backslash", in, out)
		}
		for _, seg := range strings.Split(out[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q → %q: dot segment", in, out)
			}
		}
		if forbidden.MatchString(out) {
			t.Fatalf("%q → %q: encoded dot, slash, backslash or NUL left", in, out)
		}
		if strings.ContainsFunc(out, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("%q → %q: control character", in, out)
		}
		again, err := NormalizePath(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q → %q → %q, %v", in, out, again, err)
		}
	})
}

// fuzzRoutes is the fixed table of FuzzMatch: every kind of match, and
// overlaps between them.
func fuzzRoutes() []config.Route {
	env := func(m config.ValueMatcher) func(*config.Route) {
		m.Name = "X-Env"
		return header(m)
	}
	q := func(m config.ValueMatcher) func(*config.Route) {
		m.Name = "v"
		return query(m)
	}
	return []config.Route{
		rt("none"),
		rt("none-hdr", env(config.ValueMatcher{Present: true})),
		rt("root", prefix("/"), methods("GET")),
		rt("api", prefix("/api")),
		rt("api-slash", prefix("/api/"), methods("POST")),
		rt("api-v1", prefix("/api/v1"), env(config.ValueMatcher{Exact: "canary"})),
		rt("api-v1-not", prefix("/api/v1"), env(config.ValueMatcher{Exact: "canary", Invert: true}), methods("DELETE")),
		rt("exact-a", exact("/a")),
		rt("exact-a-get", exact("/a"), methods("GET", "HEAD")),
		rt("exact-a-q", exact("/a"), q(config.ValueMatcher{Regex: "[0-9]+"})),
		rt("exact-a-noq", exact("/a"), q(config.ValueMatcher{Present: true, Invert: true}), methods("PUT")),
		rt("t-id", tmpl("/api/{id}")),
		rt("t-id-x", tmpl("/api/{id}/x"), methods("GET")),
		rt("t-2", tmpl("/{a}/{b}")),
		rt("t-rest", tmpl("/api/{id}/{rest...}")),
		rt("t-root-rest", tmpl("/{all...}"), env(config.ValueMatcher{Regex: "st.*"})),
		rt("re-num", regex(`/[0-9]+(/.*)?`)),
		rt("re-any", regex(`/.*x`), methods("PATCH")),
		rt("re-num-q", regex(`/[0-9]+(/.*)?`), q(config.ValueMatcher{Exact: "a b"})),
		rt("h-exact", prefix("/api"), hosts("api.example.com")),
		rt("h-exact-a", exact("/a"), hosts("api.example.com"), methods("POST")),
		rt("h-wild", tmpl("/{a}"), hosts("*.example.com")),
		rt("h-wild-deep", exact("/a"), hosts("*.eu.example.com", "other.test")),
		rt("h-wild-re", regex(`/a.*`), hosts("*.example.com"), methods("GET")),
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("api.example.com", "GET", "/api/1/x", "canary", "v=1")
	f.Add("x.eu.example.com:80", "POST", "/a", "", "")
	f.Add("WWW.example.com", "PATCH", "/12/x", "staging", "v=a+b")
	f.Add("", "DELETE", "/api/v1/z", "prod", "v")
	f.Add("other.test", "PUT", "/a", "", "w=1")
	f.Add("example.com", "GET", "/", "", "v=%zz")
	routes := fuzzRoutes()
	tab, err := Compile(routes)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host, method, path, env, rawQuery string) {
		var h http.Header
		if env != "" {
			h = http.Header{"X-Env": {env}}
		}
		var res Result
		tab.Match(host, method, path, h, rawQuery, &res)
		if res.Route != nil && res.MethodNotAllowed {
			t.Fatal("route and MethodNotAllowed both set")
		}
		qv, err := url.ParseQuery(rawQuery)
		if err != nil {
			return // the reference cannot judge a query Go rejects
		}
		want, allow := refMatch(routes, host, method, path, h, qv)
		got := ""
		if res.Route != nil {
			got = res.Route.Name
		}
		if got != want || res.Allow != allow || res.MethodNotAllowed != (allow != "") {
			t.Fatalf("Match(%q, %q, %q, %v, %q) = %q 405=%v %q; reference %q %q",
				host, method, path, h, rawQuery, got, res.MethodNotAllowed, res.Allow, want, allow)
		}
	})
}

// refMatch is a slow reference of Match written from the package
// documentation: rank every route, take the first whose conditions hold.
func refMatch(routes []config.Route, host, method, path string, h http.Header, q url.Values) (string, string) {
	host = strings.ToLower(host)
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[:i], ":") {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	type cand struct {
		r        *config.Route
		i        int
		hostRank int
		key      []int
	}
	var cands []cand
	firstRegex := map[string]int{}
	for i := range routes {
		r := &routes[i]
		if p := r.Match.Path; p != nil && p.Regex != "" {
			if _, ok := firstRegex[p.Regex]; !ok {
				firstRegex[p.Regex] = i
			}
		}
	}
	for i := range routes {
		r := &routes[i]
		hr := -1
		if len(r.Match.Hosts) == 0 {
			hr = 1 << 20
		}
		for _, hh := range r.Match.Hosts {
			hh = strings.ToLower(hh)
			switch {
			case hh == host:
				hr = 0
			case strings.HasPrefix(hh, "*.") && strings.HasSuffix(host, hh[1:]) && len(host) > len(hh)-1:
				if rank := 1000 - len(hh); hr < 0 || rank < hr {
					hr = rank
				}
			}
		}
		if hr < 0 {
			continue
		}
		conds := len(r.Match.Headers) + len(r.Match.Query)
		if len(r.Match.Methods) > 0 {
			conds++
		}
		var key []int
		p := r.Match.Path
		switch {
		case p == nil:
			key = []int{4}
		case p.Exact != "":
			key = []int{0}
		case p.Template != "":
			segs := strings.Split(p.Template[1:], "/")
			lits, rest := 0, 0
			for _, s := range segs {
				if !strings.HasPrefix(s, "{") {
					lits++
				}
				if strings.HasSuffix(s, "...}") {
					rest = 1
				}
			}
			key = []int{1, -lits, -(len(segs) - rest), rest}
		case p.Prefix != "":
			key = []int{2, -len(p.Prefix)}
		default:
			key = []int{3, firstRegex[p.Regex]}
		}
		key = append(key, -conds, i)
		cands = append(cands, cand{r, i, hr, append([]int{hr}, key...)})
	}
	slices.SortFunc(cands, func(a, b cand) int { return slices.Compare(a.key, b.key) })
	var allow []string
	for _, c := range cands {
		if !refPath(c.r.Match.Path, path) || !refValues(c.r.Match.Headers, func(n string) ([]string, bool) {
			v := h.Values(n)
			return v, len(v) > 0
		}) || !refValues(c.r.Match.Query, func(n string) ([]string, bool) {
			v, ok := q[n]
			return v, ok
		}) {
			continue
		}
		if len(c.r.Match.Methods) == 0 || slices.Contains(c.r.Match.Methods, method) {
			return c.r.Name, ""
		}
		allow = append(allow, c.r.Match.Methods...)
	}
	slices.Sort(allow)
	return "", strings.Join(slices.Compact(allow), ", ")
}

func refPath(p *config.Path, path string) bool {
	switch {
	case p == nil:
		return true
	case p.Exact != "":
		return path == p.Exact
	case p.Prefix != "":
		if p.Prefix == "/" || strings.HasSuffix(p.Prefix, "/") {
			return strings.HasPrefix(path, p.Prefix)
		}
		return path == p.Prefix || strings.HasPrefix(path, p.Prefix+"/")
	case p.Template != "":
		var b strings.Builder
		b.WriteString("^")
		for _, s := range strings.Split(p.Template[1:], "/") {
			switch {
			case strings.HasSuffix(s, "...}"):
				b.WriteString("(?:/.*)?")
			case strings.HasPrefix(s, "{"):
				b.WriteString("/[^/]+")
			default:
				b.WriteString("/" + regexp.QuoteMeta(s))
			}
		}
		return regexp.MustCompile(b.String() + "$").MatchString(path)
	}
	return regexp.MustCompile("^(?:" + p.Regex + ")$").MatchString(path)
}

func refValues(ms []config.ValueMatcher, get func(string) ([]string, bool)) bool {
	for _, m := range ms {
		vals, present := get(m.Name)
		ok := false
		switch {
		case m.Present:
			ok = present
		case m.Exact != "":
			ok = slices.Contains(vals, m.Exact)
		default:
			re := regexp.MustCompile("^(?:" + m.Regex + ")$")
			ok = slices.ContainsFunc(vals, re.MatchString)
		}
		if ok == m.Invert {
			return false
		}
	}
	return true
}
