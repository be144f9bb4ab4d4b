package rewrite

import (
	"net/http"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

// params is a Params for tests.
type params map[string]string

func (p params) Get(name string) string { return p[name] }

func mustCompile(t testing.TB, c *config.Rewrite, names ...string) *Rules {
	t.Helper()
	defined := map[string]bool{}
	for _, n := range names {
		defined[n] = true
	}
	r, err := Compile(c, config.HeaderOps{}, config.HeaderOps{}, defined)
	if err != nil {
		t.Fatalf("Compile(%+v): %v", c, err)
	}
	return r
}

func TestPath(t *testing.T) {
	regex := &config.RegexRewrite{Pattern: `^/r/([a-z]+)/(\d+)$`, Substitution: "/$2x/$1/$$"}
	cases := []struct {
		name string
		rw   *config.Rewrite
		p    Params
		path string
		want string
	}{
		{"strip", &config.Rewrite{StripPrefix: "/api"}, nil, "/api", "/"},
		{"strip", &config.Rewrite{StripPrefix: "/api"}, nil, "/api/", "/"},
		{"strip", &config.Rewrite{StripPrefix: "/api"}, nil, "/api/users/1", "/users/1"},
		// strip_prefix applies only on a segment boundary.
		{"strip", &config.Rewrite{StripPrefix: "/api"}, nil, "/apix", "/apix"},
		{"strip", &config.Rewrite{StripPrefix: "/api"}, nil, "/other", "/other"},
		{"strip-slash", &config.Rewrite{StripPrefix: "/v1/"}, nil, "/v1/a", "/a"},
		{"strip-root", &config.Rewrite{StripPrefix: "/"}, nil, "/a/b", "/a/b"},
		{"path", &config.Rewrite{Path: "/catalog/{id}/x/{rest}"}, params{"id": "42", "rest": "a/b"}, "/products/42/a/b", "/catalog/42/x/a/b"},
		{"path", &config.Rewrite{Path: "/catalog/{id}/x/{rest}"}, params{"id": "42"}, "/products/42", "/catalog/42/x/"},
		{"path-nil-params", &config.Rewrite{Path: "/catalog/{id}/x/{rest...}"}, nil, "/products/42", "/catalog//x/"},
		{"path-only-param", &config.Rewrite{Path: "{id}"}, params{"id": "/z"}, "/products/42", "/z"},
		{"const", &config.Rewrite{Path: "/new"}, nil, "/old", "/new"},
		{"regex", &config.Rewrite{Regex: regex}, nil, "/r/abc/12", "/12x/abc/$"},
		{"regex-no-match", &config.Rewrite{Regex: regex}, nil, "/r/ABC", "/r/ABC"},
		{"none", nil, nil, "/plain", "/plain"},
	}
	for _, c := range cases {
		r := mustCompile(t, c.rw, "id", "rest")
		if got := r.Path(c.path, c.p); got != c.want {
			t.Errorf("%s: Path(%q) = %q, want %q", c.name, c.path, got, c.want)
		}
	}
	var none *Rules
	if got := none.Path("/x", params{}); got != "/x" {
		t.Errorf("nil Rules: Path = %q", got)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		rw   config.Rewrite
		want string
	}{
		{config.Rewrite{StripPrefix: "api"}, "must start with /"},
		{config.Rewrite{Path: "/b/{name}"}, "rewrite uses {name}, which the route's path template does not define"},
		{config.Rewrite{Regex: &config.RegexRewrite{Pattern: "("}}, "rewrite regex:"},
		{config.Rewrite{}, "exactly one"},
		{config.Rewrite{StripPrefix: "/a", Path: "/b"}, "exactly one"},
	}
	for _, c := range cases {
		_, err := Compile(&c.rw, config.HeaderOps{}, config.HeaderOps{}, map[string]bool{"id": true})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want containing %q", c.rw, err, c.want)
		}
	}
}

func TestBracedGroups(t *testing.T) {
	for in, want := range map[string]string{
		"":        "",
		"/$1x":    "/${1}x",
		"$12$3":   "${12}${3}",
		"$$1":     "$$1",
		"$":       "$",
		"a$":      "a$",
		"$x":      "$x",
		"${1}":    "${1}",
		"$name$0": "$name${0}",
	} {
		if got := bracedGroups(in); got != want {
			t.Errorf("bracedGroups(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHeaders(t *testing.T) {
	r, err := Compile(nil,
		config.HeaderOps{
			Remove: []string{"x-internal", "x-set"},
			Set:    map[string]string{"x-set": "new", "x-route": "h"},
			Add:    map[string]string{"x-add": "two", "x-set": "extra"},
		},
		config.HeaderOps{Remove: []string{"server"}, Add: map[string]string{"via": "meshgate"}},
		nil)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"X-Internal": {"secret"}, "X-Set": {"old1", "old2"}, "X-Add": {"one"}, "Keep": {"k"}}
	r.Request(h)
	want := http.Header{"X-Set": {"new", "extra"}, "X-Route": {"h"}, "X-Add": {"one", "two"}, "Keep": {"k"}}
	if !equalHeader(h, want) {
		t.Errorf("request headers = %v, want %v", h, want)
	}
	h = http.Header{"Server": {"x"}, "Via": {"1.1 a"}}
	r.Response(h)
	want = http.Header{"Via": {"1.1 a", "meshgate"}}
	if !equalHeader(h, want) {
		t.Errorf("response headers = %v, want %v", h, want)
	}
	r.Request(nil) // no headers: nothing to do
	var none *Rules
	h = http.Header{"A": {"1"}}
	none.Request(h)
	none.Response(h)
	if !equalHeader(h, http.Header{"A": {"1"}}) {
		t.Errorf("nil Rules changed headers: %v", h)
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
