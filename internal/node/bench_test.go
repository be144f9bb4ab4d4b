package node

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkEdgeProxy measures one proxied GET through a real edge on
// loopback (client and backend in the same process), with allocations.
func BenchmarkEdgeProxy(b *testing.B) {
	body := strings.Repeat("x", 1024)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1024")
		_, _ = io.WriteString(w, body)
	}))
	defer backend.Close()
	t := &testing.T{}
	e := startEdgeB(b, t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - {name: r, match: {path: {prefix: /}}, upstream: u}
upstreams:
  - {name: u, protocol: http1, endpoints: [{address: %q}]}
`, addr(backend)))
	benchGets(b, e)
}

// benchGets measures b.N GETs of /products/42?x=1 on the edge's public
// listener over kept-alive connections, each expected to answer 200.
func benchGets(b *testing.B, e *edge) {
	b.Helper()
	url := e.url("public") + "/products/42?x=1"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkEdgeProxyPost measures one proxied POST of a 1 KiB body (held
// whole before forwarding: proxy.RequestBufferBytes).
func BenchmarkEdgeProxyPost(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", "2")
		_, _ = io.WriteString(w, "ok")
	}))
	defer backend.Close()
	t := &testing.T{}
	e := startEdgeB(b, t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - {name: r, match: {path: {prefix: /}}, upstream: u}
upstreams:
  - {name: u, protocol: http1, endpoints: [{address: %q}]}
`, addr(backend)))
	url := e.url("public") + "/upload"
	body := strings.Repeat("x", 1024)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Post(url, "text/plain", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
