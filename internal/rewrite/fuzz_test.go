package rewrite

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzz seed corpora from compileSeeds")

// compileSeed is one input of FuzzCompile: a rewrite as a config file gives
// it (strip_prefix, path, regex pattern and substitution; those left empty
// are unset), a request path, and a header name used by every header
// operation.
type compileSeed struct {
	strip, path, pattern, subst, reqPath, header string
}

// compileSeeds are the shapes the docs and tests use, plus near-misses of
// Compile's checks. They are committed under testdata/fuzz (go test -run
// TestFuzzSeeds -args -update-fuzz-seeds rewrites them) so that plain go
// test replays them.
var compileSeeds = map[string]compileSeed{
	"strip":          {strip: "/api", reqPath: "/api/users/1", header: "x-edge"},
	"strip-slash":    {strip: "/v1/", reqPath: "/v1/a", header: "Cookie"},
	"strip-exact":    {strip: "/ws", reqPath: "/ws"},
	"strip-boundary": {strip: "/api", reqPath: "/apix"},
	"strip-root":     {strip: "/", reqPath: "/"},
	"strip-relative": {strip: "api", reqPath: "/api"},
	"path":           {path: "/catalog/{id}/x/{rest}", reqPath: "/products/42/a/b", header: "x-route"},
	"path-rest":      {path: "/v1/items/{id}/{rest...}", reqPath: "/products/42"},
	"path-const":     {path: "/new", reqPath: "/old"},
	"path-unknown":   {path: "/b/{name}", reqPath: "/a/1"},
	"path-braces":    {path: "/{}/{id/{{id}}", reqPath: "/x/y"},
	"regex":          {pattern: `^/r/([a-z]+)/(\d+)$`, subst: "/$2x/$1/$$", reqPath: "/r/abc/12", header: "via"},
	"regex-named":    {pattern: `^/(?P<svc>[a-z]+)/(.*)$`, subst: "/${svc}/$svc/${2}/$0", reqPath: "/orders/1/2"},
	"regex-dollar":   {pattern: `a`, subst: "$", reqPath: "/aaa"},
	"regex-bad":      {pattern: `(`, subst: "/", reqPath: "/"},
	"regex-literal":  {pattern: `/+`, subst: "/", reqPath: "//a///b"},
	"none":           {reqPath: "/plain"},
	"two":            {strip: "/a", path: "/b", reqPath: "/a/b"},
}

func FuzzCompile(f *testing.F) {
	for _, s := range compileSeeds {
		f.Add(s.strip, s.path, s.pattern, s.subst, s.reqPath, s.header)
	}
	f.Fuzz(func(t *testing.T, strip, path, pattern, subst, reqPath, header string) {
		c := &config.Rewrite{StripPrefix: strip, Path: path}
		if pattern != "" || subst != "" {
			c.Regex = &config.RegexRewrite{Pattern: pattern, Substitution: subst}
		}
		ops := config.HeaderOps{Remove: []string{header}, Set: map[string]string{header: "s"}, Add: map[string]string{header: "a"}}
		r, err := Compile(c, ops, ops, map[string]bool{"id": true, "rest": true})
		if err != nil {
			if r != nil {
				t.Fatalf("error %v with rules", err)
			}
			return
		}
		id, rest, _ := strings.Cut(strings.TrimPrefix(reqPath, "/"), "/")
		p := params{"id": id, "rest": rest}
		got := r.Path(reqPath, p)
		switch {
		case strip != "":
			checkStrip(t, strings.TrimRight(strip, "/"), reqPath, got)
		case path != "":
			want := paramRef.ReplaceAllStringFunc(path, func(ref string) string {
				return p.Get(strings.TrimSuffix(strings.Trim(ref, "{}"), "..."))
			})
			if got != want {
				t.Fatalf("path %q on %q = %q, want %q", path, reqPath, got, want)
			}
		case !strings.Contains(subst, "$"):
			if want := regexp.MustCompile(pattern).ReplaceAllLiteralString(reqPath, subst); got != want {
				t.Fatalf("regex %q → %q on %q = %q, want %q", pattern, subst, reqPath, got, want)
			}
		}
		if b := bracedGroups(subst); bracedGroups(b) != b {
			t.Fatalf("bracedGroups not idempotent on %q", subst)
		}
		k := http.CanonicalHeaderKey(header)
		h := http.Header{k: {"old"}}
		r.Request(h)
		if v := h[k]; len(v) != 2 || v[0] != "s" || v[1] != "a" {
			t.Fatalf("header %q after remove, set, add: %q", header, v)
		}
	})
}

// checkStrip: the path is unchanged, or loses the prefix on a segment
// boundary and keeps a leading "/".
func checkStrip(t *testing.T, prefix, path, got string) {
	switch {
	case got == path:
		if prefix != "" && (path == prefix || strings.HasPrefix(path, prefix+"/")) {
			t.Fatalf("strip %q left %q", prefix, path)
		}
	case path == prefix:
		if got != "/" {
			t.Fatalf("strip %q on itself = %q", prefix, got)
		}
	case path != prefix+got || !strings.HasPrefix(got, "/"):
		t.Fatalf("strip %q on %q = %q", prefix, path, got)
	}
}

// TestFuzzSeeds checks the committed corpus exists (and rewrites it with
// -update-fuzz-seeds).
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzCompile")
	if *updateSeeds {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, s := range compileSeeds {
			var b strings.Builder
			b.WriteString("go test fuzz v1\n")
			for _, v := range []string{s.strip, s.path, s.pattern, s.subst, s.reqPath, s.header} {
				fmt.Fprintf(&b, "string(%q)\n", v)
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := os.ReadDir(dir)
	if err != nil || len(files) < len(compileSeeds) {
		t.Fatalf("%s: %d seed files (%v); run go test -run TestFuzzSeeds -args -update-fuzz-seeds", dir, len(files), err)
	}
	for _, fi := range files {
		b, err := os.ReadFile(filepath.Join(dir, fi.Name()))
		if err != nil || !strings.HasPrefix(string(b), "go test fuzz v1\nstring(") {
			t.Errorf("%s/%s: not a go test fuzz v1 file of strings", dir, fi.Name())
		}
	}
}
