package introspect

import (
	"slices"
	"time"
)

// Result is the server's answer about an active token. Results are shared
// by the cache and every caller presenting the same token: read, never
// modify them.
type Result struct {
	Active   bool
	Subject  string    // sub
	ClientID string    // client_id: the client the token was issued to
	Username string    // username
	Issuer   string    // iss
	Scopes   []string  // scope (space-separated), or scp
	Audience []string  // aud, a string or an array
	Expiry   time.Time // exp; zero if the server sent none
	Raw      map[string]any
}

// judge turns an answer into what Introspect returns, and says until when
// that may be cached.
func (i *Introspector) judge(r *Result, now time.Time) (*Result, time.Time, error) {
	if !r.Active || (!r.Expiry.IsZero() && !now.Before(r.Expiry)) {
		return nil, now.Add(i.o.InactiveTTL), ErrInactive
	}
	until := now.Add(i.o.CacheMax)
	if !r.Expiry.IsZero() && r.Expiry.Before(until) {
		until = r.Expiry
	}
	if !i.audienceOK(r.Audience) {
		return nil, until, ErrAudience
	}
	return r, until, nil
}

func (i *Introspector) audienceOK(aud []string) bool {
	if len(i.o.Audiences) == 0 {
		return true
	}
	return slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(i.o.Audiences, a) })
}
