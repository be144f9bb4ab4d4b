package idptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// ClientOptions describe an OAuth2 client for the client-credentials grant.
type ClientOptions struct {
	// Scopes the client may request; a token request may ask for a subset.
	Scopes []string
	// Audience the client may request; a token carries only the audiences
	// its request names.
	Audience []string
	// AccessTokenStrategy is "jwt" or "opaque"; empty means the server's
	// default, which StartHydra sets to "jwt".
	AccessTokenStrategy string
	// TokenLifespan is the lifetime of its access tokens; zero means
	// Hydra's default (one hour). Whole seconds only.
	TokenLifespan time.Duration
}

// Client is a registered OAuth2 client and its secret.
type Client struct {
	ID     string
	Secret string
}

// CreateClient registers a confidential client that authenticates with
// HTTP Basic (client_secret_basic) and may use the client-credentials
// grant only. Hydra picks its ID and secret.
func (h *Hydra) CreateClient(t testing.TB, o ClientOptions) Client {
	t.Helper()
	body := map[string]any{
		"grant_types":                []string{"client_credentials"},
		"token_endpoint_auth_method": "client_secret_basic",
		"scope":                      strings.Join(o.Scopes, " "),
		"audience":                   nonNil(o.Audience),
	}
	if o.AccessTokenStrategy != "" {
		body["access_token_strategy"] = o.AccessTokenStrategy
	}
	if o.TokenLifespan != 0 {
		if o.TokenLifespan%time.Second != 0 || o.TokenLifespan < 0 {
			t.Fatalf("idptest: TokenLifespan %v: whole positive seconds only", o.TokenLifespan)
		}
		body["client_credentials_grant_access_token_lifespan"] = fmt.Sprintf("%ds", o.TokenLifespan/time.Second)
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("idptest: %v", err)
	}
	var out struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	h.do(t, "POST", h.admin+"/admin/clients", "application/json", bytes.NewReader(b), nil, http.StatusCreated, &out)
	if out.ID == "" || out.Secret == "" {
		t.Fatalf("idptest: POST /admin/clients: no client_id or client_secret in the answer")
	}
	return Client{ID: out.ID, Secret: out.Secret}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Token gets an access token for c from the token endpoint with the
// client-credentials grant, asking for scopes (sent space-separated) and
// audience (one `audience` form value each). It fails t if Hydra refuses.
func (h *Hydra) Token(t testing.TB, c Client, scopes []string, audience []string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	for _, a := range audience {
		form.Add("audience", a)
	}
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	h.do(t, "POST", h.TokenURL(), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), &c, http.StatusOK, &out)
	if out.AccessToken == "" {
		t.Fatalf("idptest: token endpoint: no access_token in the answer")
	}
	return out.AccessToken
}

// Revoke revokes token (an access token c obtained) at the revocation
// endpoint; introspection reports it inactive from then on. A revoked JWT
// stays a validly signed JWT: only introspection knows.
func (h *Hydra) Revoke(t testing.TB, c Client, token string) {
	t.Helper()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	h.do(t, "POST", h.RevocationURL(), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), &c, http.StatusOK, nil)
}

// Introspect asks the admin introspection endpoint about token and returns
// its answer: "active", and for an active token "scope" (space-separated),
// "client_id", "sub", "aud", "exp", "iss", "token_use", ...
func (h *Hydra) Introspect(t testing.TB, token string) map[string]any {
	t.Helper()
	form := url.Values{"token": {token}}
	var out map[string]any
	h.do(t, "POST", h.IntrospectionURL(), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), nil, http.StatusOK, &out)
	return out
}

// RotateKeys adds a new signing key (RS256, 2048 bits, made by the harness:
// see keys.go) to the access-token key set and returns its kid. Hydra signs
// with the newest key of the set, so tokens issued from now on carry the
// new kid; the old keys stay in the set and in the JWKS, so tokens issued
// before still verify.
func (h *Hydra) RotateKeys(t testing.TB) string {
	t.Helper()
	k, err := newSigningKey()
	if err != nil {
		t.Fatalf("idptest: %v", err)
	}
	body, err := json.Marshal(k)
	if err != nil {
		t.Fatalf("idptest: %v", err)
	}
	set := h.admin + "/admin/keys/" + AccessTokenKeySet
	h.do(t, "PUT", set+"/"+k.Kid, "application/json", bytes.NewReader(body), nil, http.StatusOK, nil)
	// The signer takes the first private key of the set as the store lists
	// it, newest first: check that this is the new one.
	var keys jwks
	h.do(t, "GET", set, "", nil, nil, http.StatusOK, &keys)
	if len(keys.Keys) == 0 || keys.Keys[0].KID != k.Kid {
		t.Fatalf("idptest: after rotation the key set %s does not list the new key %s first: %+v", AccessTokenKeySet, k.Kid, keys.Keys)
	}
	// Relying parties read the public JWKS: return once it serves the new
	// key, so that a test's next token is checkable at once (a relying
	// party refetches an unknown kid only so often).
	deadline := time.Now().Add(10 * time.Second)
	for {
		var pub jwks
		h.do(t, "GET", h.JWKSURL(), "", nil, nil, http.StatusOK, &pub)
		for _, key := range pub.Keys {
			if key.KID == k.Kid {
				return k.Kid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("idptest: the public JWKS does not list the new key %s after 10s", k.Kid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type jwks struct {
	Keys []struct {
		KID string `json:"kid"`
		Alg string `json:"alg"`
		Use string `json:"use"`
	} `json:"keys"`
}

// do sends one request, with c's credentials as HTTP Basic if c is not
// nil, and decodes a JSON answer into out if out is not nil. An error or
// any status but want fails t, quoting the answer.
func (h *Hydra) do(t testing.TB, method, u, contentType string, body io.Reader, c *Client, want int, out any) {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = io.ReadAll(body); err != nil {
			t.Fatalf("idptest: %v", err)
		}
	}
	ans, err := h.send(method, u, contentType, b, c, want)
	if err != nil {
		t.Fatalf("idptest: %v", err)
	}
	if out != nil {
		if err := json.Unmarshal(ans, out); err != nil {
			t.Fatalf("idptest: %s %s: decoding %q: %v", method, u, ans, err)
		}
	}
}

// send sends one request and returns the answer's body if its status is
// want.
func (h *Hydra) send(method, u, contentType string, body []byte, c *Client, want int) ([]byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c != nil {
		// RFC 6749 2.3.1: the ID and secret are form-encoded before Basic.
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %v", method, u, err)
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s (want %d): %s", method, u, resp.Status, want, ans)
	}
	return ans, nil
}
