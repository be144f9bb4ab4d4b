package auth

import (
	"net/http"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
)

func (s *stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchange.From(r.Context())
	for _, h := range s.strip {
		delete(r.Header, h) // only the edge says who the consumer is
	}
	id, m, fail := s.authenticate(w, r, x)
	if fail {
		return
	}
	if id == nil { // no credential, and the route lets anonymous callers in
		s.admit(r, x, config.ConsumerAnonymous, config.TierAnonymous, "")
		s.next.ServeHTTP(w, r)
		return
	}
	if !hasScopes(id.scopes, s.cfg.Scopes) {
		w.Header()["Www-Authenticate"] = []string{`Bearer realm="meshgate", error="insufficient_scope", scope="` +
			strings.Join(s.cfg.Scopes, " ") + `"`}
		s.refuse(w, r, x, exchange.InsufficientScope, "insufficient scope: requires "+strings.Join(s.cfg.Scopes, " "), m.name)
		return
	}
	s.admit(r, x, id.consumer, s.tierOf(id.consumer, m), m.name)
	if id.claim != nil {
		x.Claim = id.claim // for transforms' {claim.NAME}
		for claim, header := range s.cfg.ClaimsToHeaders {
			if v, ok := id.claim(claim); ok && validHeaderValue(v) {
				r.Header[http.CanonicalHeaderKey(header)] = []string{v}
			}
		}
	}
	if !s.cfg.ForwardCredential {
		if m.key != nil {
			m.key.Strip(r)
		} else {
			delete(r.Header, "Authorization")
		}
	}
	s.next.ServeHTTP(w, r)
}

// authenticate checks the request's credential with the first method it
// fits. It returns the identity and its method; nil and no failure for an
// anonymous request the route admits; fail when it answered the request.
func (s *stage) authenticate(w http.ResponseWriter, r *http.Request, x *exchange.Exchange) (*identity, *method, bool) {
	if len(r.Header["Authorization"]) > 1 {
		s.malformed(w, r, x, "several Authorization headers")
		return nil, nil, true
	}
	token, hasBearer := bearer(r)
	if hasBearer && token == "" {
		s.malformed(w, r, x, "empty bearer token")
		return nil, nil, true
	}
	for i := range s.methods {
		m := &s.methods[i]
		if m.key != nil {
			key, ok := m.key.Extract(r)
			if !ok {
				continue
			}
			consumer, _, found := s.keys.Lookup(key)
			if !found {
				w.Header()["Www-Authenticate"] = []string{m.challenge + `, error="invalid_token"`}
				s.refuse(w, r, x, exchange.InvalidToken, "invalid token: unknown API key", m.name)
				return nil, nil, true
			}
			return &identity{consumer: consumer}, m, false
		}
		if !hasBearer || (m.jwt && !looksLikeJWT(token) && s.hasOpaqueMethod()) {
			continue
		}
		id, err := m.bearer.check(r.Context(), token)
		switch {
		case err == nil:
			return id, m, false
		case temporary(err):
			w.Header()["Retry-After"] = []string{"1"}
			s.refuse(w, r, x, exchange.AuthUnavailable, exchange.AuthUnavailable.Text, m.name)
			s.log.Warn("auth unavailable", "route", s.route, "auth", m.name, "err", err, "request_id", x.RequestID)
		default:
			s.invalid(w, r, x, reasonOf(err), m.name)
		}
		return nil, nil, true
	}
	if r.Header.Get("Authorization") != "" && !hasBearer && s.bearerRealm {
		s.malformed(w, r, x, "authorization scheme not accepted")
		return nil, nil, true
	}
	if s.cfg.Anonymous {
		return nil, nil, false
	}
	w.Header()["Www-Authenticate"] = []string{s.challenge}
	s.refuse(w, r, x, exchange.Unauthorized, exchange.Unauthorized.Text, "")
	return nil, nil, true
}

func (s *stage) hasOpaqueMethod() bool {
	for i := range s.methods {
		if s.methods[i].bearer != nil && !s.methods[i].jwt {
			return true
		}
	}
	return false
}

// invalid refuses a bearer token that is present but not valid.
func (s *stage) invalid(w http.ResponseWriter, r *http.Request, x *exchange.Exchange, reason, method string) {
	w.Header()["Www-Authenticate"] = []string{`Bearer realm="meshgate", error="invalid_token", error_description="` + reason + `"`}
	s.refuse(w, r, x, exchange.InvalidToken, "invalid token: "+reason, method)
}

// malformed refuses a credential that cannot be read (RFC 6750 §3.1:
// invalid_request, 400).
func (s *stage) malformed(w http.ResponseWriter, r *http.Request, x *exchange.Exchange, reason string) {
	w.Header()["Www-Authenticate"] = []string{`Bearer realm="meshgate", error="invalid_request", error_description="` + reason + `"`}
	s.refuse(w, r, x, exchange.InvalidRequest, "invalid request: "+reason, "")
}

// refuse answers, counts and logs a refusal (its reason, never the
// credential).
func (s *stage) refuse(w http.ResponseWriter, r *http.Request, x *exchange.Exchange, k *exchange.Kind, reason, method string) {
	if s.metrics != nil {
		s.metrics.AuthFailure(s.route, k.Name)
	}
	s.log.Info("auth refused", "route", s.route, "auth", method, "error", k.Name, "reason", reason,
		"request_id", x.RequestID, "client_ip", x.ClientIP)
	exchange.WriteReason(w, x, k, reason)
}

func (s *stage) admit(r *http.Request, x *exchange.Exchange, consumer, tier, method string) {
	x.Consumer, x.Tier, x.AuthMethod = consumer, tier, method
	r.Header[config.HeaderConsumer] = []string{consumer}
	if tier != "" {
		r.Header[config.HeaderTier] = []string{tier}
	}
}

// tierOf is the consumer's tier: its own, else its method's default, else
// the tier named "default" when there is one.
func (s *stage) tierOf(consumer string, m *method) string {
	if t, ok := s.consumerTier[consumer]; ok {
		return t
	}
	if m.defaultTier != "" {
		return m.defaultTier
	}
	if s.hasTier[config.TierDefault] {
		return config.TierDefault
	}
	return ""
}

// bearer returns the token of "Authorization: Bearer <token>" (RFC 6750
// 2.1: the scheme in any case).
func bearer(r *http.Request) (string, bool) {
	v := r.Header["Authorization"]
	if len(v) == 0 {
		return "", false
	}
	const scheme = "bearer "
	if len(v[0]) < len(scheme) || !strings.EqualFold(v[0][:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimSpace(v[0][len(scheme):]), true
}

// looksLikeJWT: three base64url segments (a JWS compact serialization).
func looksLikeJWT(token string) bool {
	return strings.Count(token, ".") == 2
}

func hasScopes(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// validHeaderValue keeps a claim that could split or smuggle a header out
// of the upstream request.
func validHeaderValue(v string) bool {
	if len(v) > 1024 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
