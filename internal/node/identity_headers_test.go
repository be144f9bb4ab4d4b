package node

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/meshgate/meshgate/internal/auth/apikey"
)

// identityName is the name a backend may read a header field as: CGI,
// WSGI, PHP and Rack read X_Meshgate_Caller and x-meshgate-caller as
// X-Meshgate-Caller (HTTP_X_MESHGATE_CALLER).
func identityName(k string) string {
	return strings.ToLower(strings.ReplaceAll(k, "_", "-"))
}

var identityNames = map[string]bool{"x-meshgate-caller": true, "x-meshgate-consumer": true, "x-meshgate-tier": true}

// A client cannot forge the identity headers a backend trusts, in any
// spelling the backend reads as the same header, nor delete the verified
// ones with Connection, nor send them as trailers.
func TestIdentityHeadersCannotBeForged(t *testing.T) {
	key, hash, err := apikey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	type req struct{ header, trailer http.Header }
	var mu sync.Mutex
	var got []req
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, req{r.Header.Clone(), r.Trailer.Clone()})
		mu.Unlock()
	}))
	t.Cleanup(backend.Close)
	last := func() req {
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 {
			t.Fatal("the backend got no request")
		}
		return got[len(got)-1]
	}
	e := startEdge(t, fmt.Sprintf(`
listeners: [{name: public, address: "127.0.0.1:0"}]
auth:
  api_keys: [{name: header, header: X-Api-Key}]
consumers: [{name: acme, api_keys: [%q]}]
tiers: [{name: default, limits: [{requests: 1000, window: 1m}]}]
routes:
  - {name: orders, match: {path: {prefix: /orders}}, upstream: b, auth: {methods: [header]}}
  - {name: open, match: {path: {prefix: /open}}, upstream: b}
upstreams: [{name: b, endpoints: [{address: %q}]}]
`, hash, addr(backend)))
	edgeAddr := strings.TrimPrefix(e.url("public"), "http://")
	forged := func(h http.Header, what string) {
		t.Helper()
		for k, v := range h {
			if identityNames[identityName(k)] {
				t.Errorf("%s: the backend got %s: %q", what, k, v)
			}
		}
	}

	// Spellings: underscores and any case.
	resp, _ := rawExchange(t, edgeAddr, "GET /open HTTP/1.1\r\nHost: x\r\nX_Meshgate_Consumer: admin\r\nx-meshgate-tier: gold\r\n"+
		"X-MESHGATE-CALLER: spiffe://td/ns/prod/sa/admin\r\nX_meshgate_caller: spiffe://td/x\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("open: %d", resp.StatusCode)
	}
	forged(last().header, "forged spellings")

	// Connection cannot remove the verified consumer; a forged spelling
	// beside it does not reach the backend either.
	resp, _ = rawExchange(t, edgeAddr, "GET /orders HTTP/1.1\r\nHost: x\r\nX-Api-Key: "+key+"\r\n"+
		"Connection: X-Meshgate-Consumer, X-Meshgate-Tier\r\nX_Meshgate_Consumer: admin\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("orders: %d", resp.StatusCode)
	}
	h := last().header
	if c := h["X-Meshgate-Consumer"]; len(c) != 1 || c[0] != "acme" {
		t.Errorf("verified consumer %q, want [acme]", c)
	}
	if tier := h["X-Meshgate-Tier"]; len(tier) != 1 || tier[0] != "default" {
		t.Errorf("verified tier %q, want [default]", tier)
	}
	delete(h, "X-Meshgate-Consumer")
	delete(h, "X-Meshgate-Tier")
	forged(h, "beside the verified consumer")

	// Trailers follow the header rules.
	resp, _ = rawExchange(t, edgeAddr, "POST /open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Meshgate-Consumer, X_Meshgate_Tier\r\n\r\n"+
		"5\r\nhello\r\n0\r\nX-Meshgate-Consumer: admin\r\nX_Meshgate_Tier: gold\r\nX-Ok: 1\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("trailers: %d", resp.StatusCode)
	}
	r := last()
	forged(r.trailer, "trailers")
	forged(r.header, "trailers' announcement")
}
