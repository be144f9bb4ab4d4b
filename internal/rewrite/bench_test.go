package rewrite

import (
	"net/http"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

// BenchmarkPath: what each kind of path rewrite costs a request. A strip or
// a constant path allocates nothing; a path with parameters allocates the
// result once.
func BenchmarkPath(b *testing.B) {
	p := params{"id": "42", "rest": "a/b"}
	for _, c := range []struct {
		name, path string
		rw         *config.Rewrite
	}{
		{"strip", "/api/users/1", &config.Rewrite{StripPrefix: "/api"}},
		{"path", "/products/42/a/b", &config.Rewrite{Path: "/catalog/{id}/x/{rest}"}},
		{"const", "/old", &config.Rewrite{Path: "/new"}},
		{"regex", "/r/abc/12", &config.Rewrite{Regex: &config.RegexRewrite{Pattern: `^/r/([a-z]+)/(\d+)$`, Substitution: "/$2x/$1/$$"}}},
		{"none", "/plain", nil},
	} {
		r := mustCompile(b, c.rw, "id", "rest")
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = r.Path(c.path, p)
			}
		})
	}
}

func BenchmarkHeaders(b *testing.B) {
	r, err := Compile(nil,
		config.HeaderOps{Remove: []string{"cookie"}, Set: map[string]string{"x-edge": "1"}, Add: map[string]string{"x-add": "a"}},
		config.HeaderOps{Add: map[string]string{"strict-transport-security": "max-age=1"}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	h := http.Header{"Cookie": {"a"}, "Accept": {"x"}}
	for b.Loop() {
		r.Request(h)
		r.Response(h)
		delete(h, "X-Add")
		delete(h, "Strict-Transport-Security")
	}
}
