package httpcache

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

func TestInvalidatesOnUnsafe(t *testing.T) {
	tests := []struct {
		method string
		status int
		want   bool
	}{
		{"POST", 200, true},
		{"PUT", 204, true},
		{"DELETE", 301, true},
		{"PATCH", 399, true},
		{"PURGE", 200, true}, // unknown methods are unsafe
		{"get", 200, true},   // methods are case-sensitive
		{"POST", 199, false},
		{"POST", 400, false},
		{"POST", 500, false},
		{"GET", 200, false},
		{"HEAD", 200, false},
		{"OPTIONS", 200, false},
		{"TRACE", 200, false},
	}
	for _, tt := range tests {
		if got := InvalidatesOnUnsafe(tt.method, tt.status); got != tt.want {
			t.Errorf("InvalidatesOnUnsafe(%q, %d) = %v, want %v", tt.method, tt.status, got, tt.want)
		}
	}
}

func TestInvalidationTargets(t *testing.T) {
	tests := []struct {
		name   string
		target string
		header http.Header
		want   []string
	}{
		{"target only", "https://example.com/a/b?x=1", http.Header{}, []string{"/a/b?x=1"}},
		{"relative Location", "https://example.com/a/b", http.Header{"Location": {"c"}}, []string{"/a/b", "/a/c"}},
		{"absolute same origin, default port", "https://example.com/a", http.Header{"Location": {"https://EXAMPLE.com:443/b"}}, []string{"/a", "/b"}},
		{"other host", "https://example.com/a", http.Header{"Location": {"https://evil.example/b"}}, []string{"/a"}},
		{"other scheme", "https://example.com/a", http.Header{"Location": {"http://example.com/b"}}, []string{"/a"}},
		{"other port", "https://example.com/a", http.Header{"Location": {"https://example.com:8443/b"}}, []string{"/a"}},
		{"network-path reference", "https://example.com/a", http.Header{"Location": {"//evil.example/b"}}, []string{"/a"}},
		{"both fields, deduplicated", "https://example.com/items", http.Header{
			"Location":         {"/items/42"},
			"Content-Location": {"/items/42"},
		}, []string{"/items", "/items/42"}},
		{"content-location with dots and query", "https://example.com/a/b", http.Header{"Content-Location": {"../c/./d?y=%7e"}}, []string{"/a/b", "/c/d?y=~"}},
		{"fragment dropped", "https://example.com/a", http.Header{"Location": {"/b#top"}}, []string{"/a", "/b"}},
		{"unparseable ignored", "https://example.com/a", http.Header{"Location": {"http://[::1"}}, []string{"/a"}},
		{"hostless target keeps relative", "/a/b", http.Header{"Location": {"/c"}}, []string{"/a/b", "/c"}},
		{"hostless target drops absolute", "/a/b", http.Header{"Location": {"https://example.com/c"}}, []string{"/a/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if got := InvalidationTargets(u, tt.header); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("InvalidationTargets = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRequestTarget(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"http://example.com", "/"},
		{"http://example.com/", "/"},
		{"/a/b", "/a/b"},
		{"/a//b/", "/a//b/"},
		{"/a/./b/../c", "/a/c"},
		{"/a/%2e%2E/c", "/c"},
		{"/../a", "/a"},
		{"/%7euser/%41%2f%3a", "/~user/A%2F%3A"},
		{"/a?", "/a?"},
		{"/a?b=%2f&c=%7E", "/a?b=%2F&c=~"},
		{"/a?x#frag", "/a?x"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if got := RequestTarget(u); got != tt.want {
			t.Errorf("RequestTarget(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRemoveDotSegments uses RFC 3986 §5.2.4's and §5.4's examples.
func TestRemoveDotSegments(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/a/b/c/./../../g", "/a/g"},
		{"mid/content=5/../6", "mid/6"},
		{"/b/c/./g", "/b/c/g"},
		{"/b/c/g/.", "/b/c/g/"},
		{"/b/c/..", "/b/"},
		{"/../../../g", "/g"},
		{"/b/c/g..", "/b/c/g.."},
		{"/b/c/..g", "/b/c/..g"},
		{"/b/c/./../g", "/b/g"},
		{"/b/c/g/../h", "/b/c/h"},
		{"", ""},
		{".", ""},
		{"..", ""},
		{"../a", "a"},
	}
	for _, tt := range tests {
		if got := removeDotSegments(tt.in); got != tt.want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
