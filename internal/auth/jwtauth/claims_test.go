package jwtauth

import "testing"

func TestClaimsString(t *testing.T) {
	c := &Claims{Raw: map[string]any{
		"s": "x", "n": float64(42), "f": 1.5, "big": 1e21, "b": true, "o": map[string]any{}, "a": []any{"x"}, "null": nil,
	}}
	for name, want := range map[string]string{"s": "x", "n": "42", "f": "1.5", "big": "1000000000000000000000", "b": "true"} {
		if got, ok := c.String(name); !ok || got != want {
			t.Errorf("String(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"o", "a", "null", "missing"} {
		if got, ok := c.String(name); ok {
			t.Errorf("String(%q) = %q, true; want false", name, got)
		}
	}
}

func TestHasScopes(t *testing.T) {
	c := &Claims{Scopes: []string{"read", "write"}}
	for _, tc := range []struct {
		req  []string
		want bool
	}{{nil, true}, {[]string{"read"}, true}, {[]string{"write", "read"}, true}, {[]string{"read", "admin"}, false}, {[]string{"rea"}, false}} {
		if got := c.HasScopes(tc.req); got != tc.want {
			t.Errorf("HasScopes(%q) = %v", tc.req, got)
		}
	}
}
