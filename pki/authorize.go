package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// ErrNotAuthorized is wrapped by every error of the authorizers here, so a
// caller can tell a policy denial from a verification failure.
var ErrNotAuthorized = errors.New("SPIFFE ID not authorized")

func denied(id spiffeid.ID, why string) error {
	return fmt.Errorf("pki: %w: %s (%s)", ErrNotAuthorized, id, why)
}

// AllowIDs authorizes exactly the given IDs. With no IDs it denies all.
func AllowIDs(ids ...spiffeid.ID) tlsconfig.Authorizer {
	set := make(map[spiffeid.ID]struct{}, len(ids))
	for _, id := range ids {
		set[id] = struct{}{}
	}
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		if _, ok := set[id]; ok {
			return nil
		}
		return denied(id, "not in the allowed IDs")
	}
}

// AllowTrustDomain authorizes any ID of trust domain td.
func AllowTrustDomain(td spiffeid.TrustDomain) tlsconfig.Authorizer {
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		if id.MemberOf(td) {
			return nil
		}
		return denied(id, "not in trust domain "+td.Name())
	}
}

// AllowPatterns authorizes any ID matched by one of the patterns (see
// ParsePattern). It fails on the first invalid pattern; with no patterns it
// denies all.
func AllowPatterns(patterns ...string) (tlsconfig.Authorizer, error) {
	ps := make([]Pattern, 0, len(patterns))
	for _, s := range patterns {
		p, err := ParsePattern(s)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		for _, p := range ps {
			if p.Matches(id) {
				return nil
			}
		}
		return denied(id, "matches no allowed pattern")
	}, nil
}

// Pattern matches SPIFFE IDs. Written as a SPIFFE ID whose path segments may
// be "*":
//
//	spiffe://example.org/edge               exactly this ID
//	spiffe://example.org/ns/*/sa/orders     "*" in the middle: exactly one segment
//	spiffe://example.org/ns/prod/*          "*" at the end: one or more segments
//	spiffe://example.org/*                  any workload of example.org
//
// The trust domain is always literal, "*" must be a whole segment, and the
// path must not be empty (use AllowTrustDomain for a whole trust domain).
// Literal segments follow the SPIFFE ID rules (letters, digits, '-', '.', '_';
// not "." or ".."). Matching is case-sensitive and exact, as SPIFFE IDs are.
type Pattern struct {
	td       spiffeid.TrustDomain
	segments []string // "*" is a wildcard
}

const wildcard = "*"

// ParsePattern parses a pattern (see Pattern).
func ParsePattern(s string) (Pattern, error) {
	bad := func(why string) (Pattern, error) {
		return Pattern{}, fmt.Errorf("pki: invalid SPIFFE ID pattern %q: %s", s, why)
	}
	const scheme = "spiffe://"
	if !strings.HasPrefix(s, scheme) {
		return bad("must start with " + scheme)
	}
	rest := s[len(scheme):]
	slash := strings.IndexByte(rest, '/')
	if slash < 0 || slash == len(rest)-1 {
		return bad("needs a path (for a whole trust domain use spiffe://<td>/*)")
	}
	tdName, path := rest[:slash], rest[slash+1:]
	if tdName == "" {
		return bad("missing trust domain")
	}
	if strings.Contains(tdName, wildcard) {
		return bad("the trust domain cannot contain *")
	}
	td, err := spiffeid.TrustDomainFromString(tdName)
	if err != nil {
		return bad("trust domain: " + err.Error())
	}
	segs := strings.Split(path, "/")
	for _, seg := range segs {
		if seg == wildcard {
			continue
		}
		if strings.Contains(seg, wildcard) {
			return bad("* must be a whole path segment")
		}
		if err := spiffeid.ValidatePathSegment(seg); err != nil {
			return bad(fmt.Sprintf("path segment %q: %v", seg, err))
		}
	}
	return Pattern{td: td, segments: segs}, nil
}

// MustParsePattern is ParsePattern for constants; it panics on error.
func MustParsePattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// Matches reports whether id matches the pattern.
func (p Pattern) Matches(id spiffeid.ID) bool {
	if p.td.IsZero() || id.TrustDomain() != p.td || id.Path() == "" {
		return false
	}
	segs := strings.Split(id.Path()[1:], "/")
	n := len(p.segments)
	if p.segments[n-1] == wildcard {
		// trailing "*": any suffix of at least one segment
		if len(segs) < n {
			return false
		}
		segs = segs[:n-1]
		n--
	} else if len(segs) != n {
		return false
	}
	for i := range n {
		if p.segments[i] != wildcard && p.segments[i] != segs[i] {
			return false
		}
	}
	return true
}

// String returns the pattern in the form ParsePattern reads.
func (p Pattern) String() string {
	if p.td.IsZero() {
		return ""
	}
	return "spiffe://" + p.td.Name() + "/" + strings.Join(p.segments, "/")
}
