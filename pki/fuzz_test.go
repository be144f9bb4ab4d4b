package pki_test

import (
	"strings"
	"testing"

	"github.com/meshgate/meshgate/pki"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// FuzzParsePattern: patterns come from config files. Parsing never panics;
// an accepted pattern prints back to itself, and matching never panics.
func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{
		"spiffe://example.org/edge",
		"spiffe://example.org/ns/*/sa/orders",
		"spiffe://example.org/*",
		"spiffe://example.org/a/*/b/*",
		"spiffe://example.org",
		"spiffe://example.org/a*",
		"spiffe:///x",
	} {
		f.Add(s, "spiffe://example.org/ns/prod/sa/orders")
	}
	f.Fuzz(func(t *testing.T, pattern, idStr string) {
		p, err := pki.ParsePattern(pattern)
		if err != nil {
			if p.String() != "" {
				t.Fatalf("failed parse returned %q", p.String())
			}
			return
		}
		if p.String() != pattern {
			t.Fatalf("String() %q != input %q", p.String(), pattern)
		}
		if id, err := spiffeid.FromString(idStr); err == nil {
			_ = p.Matches(id)
		}
		// A pattern without wildcards is an ID and matches exactly itself.
		if !strings.Contains(pattern, "*") {
			id, err := spiffeid.FromString(pattern)
			if err != nil {
				t.Fatalf("wildcard-free pattern %q is not a SPIFFE ID: %v", pattern, err)
			}
			if !p.Matches(id) {
				t.Fatalf("%q does not match itself", pattern)
			}
		}
		// Replacing each "*" by a segment gives a matching ID.
		concrete := strings.ReplaceAll(pattern, "*", "x")
		if id, err := spiffeid.FromString(concrete); err == nil && !p.Matches(id) {
			t.Fatalf("%q does not match %q", pattern, concrete)
		}
	})
}
