package node

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// rawExchange writes raw bytes to the edge and returns the first response
// and whether the server closed the connection after it.
func rawExchange(t *testing.T, addr, raw string) (*http.Response, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", raw, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// After an error the server must close: a further read sees EOF.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = br.ReadByte()
	return resp, err == io.EOF
}

func badInputEdge(t *testing.T) *edge {
	a := echoBackend(t, "a")
	return startEdge(t, fmt.Sprintf(`
log: {access: "off"}
server:
  max_header_bytes: 4KiB
  read_header_timeout: 300ms
  idle_timeout: 300ms
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: small
    match: {path: {prefix: /small}}
    upstream: u
    max_body_bytes: 10
  - name: public
    match: {path: {prefix: /public}}
    upstream: u
  - name: admin
    match:
      path: {prefix: /admin}
      headers: [{name: X-Admin-Token, exact: "s3cret"}]
    upstream: u
upstreams: [{name: u, endpoints: [{address: %q}]}]
`, addr(a)))
}

func TestRequestSmugglingRejected(t *testing.T) {
	e := badInputEdge(t)
	hostport := strings.TrimPrefix(e.url("public"), "http://")
	cases := map[string]string{
		"CL and TE":              "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"differing CL":           "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"obs-fold":               "GET /public HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
		"TE not chunked last":    "POST /public HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
		"space in target":        "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
		"bad header name":        "GET /public HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n",
		"no host":                "GET /public HTTP/1.1\r\n\r\n",
		"bad chunk size":         "POST /public HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
		"malformed request line": "GARBAGE\r\n\r\n",
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			resp, closed := rawExchange(t, hostport, raw)
			want := 400
			if strings.HasSuffix(name, "(501)") {
				// RFC 9112 §6.1: a transfer coding the server does not
				// implement is 501, and the connection is closed.
				want = 501
			}
			if resp.StatusCode != want {
				t.Errorf("status %d, want %d", resp.StatusCode, want)
			}
			if !closed {
				t.Errorf("connection left open after a rejected request")
			}
		})
	}
}

func TestHeaderAndBodyLimits(t *testing.T) {
	e := badInputEdge(t)
	base := e.url("public")
	hostport := strings.TrimPrefix(base, "http://")

	big := "GET /public HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n"
	if resp, _ := rawExchange(t, hostport, big); resp.StatusCode != 431 {
		t.Errorf("oversized headers: %d, want 431", resp.StatusCode)
	}

	// Declared length over the limit: refused before the upstream is called.
	resp, err := http.Post(base+"/small", "text/plain", strings.NewReader(strings.Repeat("x", 100)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("large declared body: %d, want 413", resp.StatusCode)
	}
	// Chunked body over the limit: cut while streaming.
	resp, err = http.Post(base+"/small", "text/plain", io.MultiReader(strings.NewReader(strings.Repeat("y", 50)), strings.NewReader(strings.Repeat("z", 50))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("large chunked body: %d, want 413", resp.StatusCode)
	}
	// Within the limit: fine.
	resp, err = http.Post(base+"/small", "text/plain", strings.NewReader("12345"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("small body: %d", resp.StatusCode)
	}
}

// Dot segments and encoded dots or slashes are resolved before matching, so
// a path under /public cannot reach /admin without the admin header.
func TestPathNormalizationBeforeMatching(t *testing.T) {
	e := badInputEdge(t)
	hostport := strings.TrimPrefix(e.url("public"), "http://")
	for _, p := range []string{
		"/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2E%2Fadmin", "/public/..%2fadmin",
		"/public/./../admin", "/public//..//admin", "/public/%2e%2e%5cadmin",
	} {
		resp, _ := rawExchange(t, hostport, "GET "+p+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 404 {
			t.Errorf("%s: status %d, want 404 (it must be matched as /admin, which needs the header)", p, resp.StatusCode)
		}
	}
	resp, _ := rawExchange(t, hostport, "GET /public/%2e%2e/admin HTTP/1.1\r\nHost: x\r\nX-Admin-Token: s3cret\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Errorf("with the header: %d", resp.StatusCode)
	}
	for _, p := range []string{"/public/%zz", "/public/%00x", "/public/%"} {
		resp, _ := rawExchange(t, hostport, "GET "+p+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", p, resp.StatusCode)
		}
	}
}

// A client that sends headers too slowly is cut off by read_header_timeout.
func TestSlowClientBounded(t *testing.T) {
	e := badInputEdge(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url("public"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /public HTTP/1.1\r\nHost: x\r\n")
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(c)
	if err != nil {
		t.Fatalf("want the server to close the connection, got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("slow client held the connection for %v", d)
	}
	// Idle keep-alive connections are closed too.
	c2, err := net.Dial("tcp", strings.TrimPrefix(e.url("public"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	start = time.Now()
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c2); err != nil || time.Since(start) > 3*time.Second {
		t.Errorf("idle connection: err %v after %v", err, time.Since(start))
	}
}

// An HTTP/2 :path may carry bytes an HTTP/1.1 request line cannot; they are
// refused before routing rather than written into the upstream request.
func TestRequestTargetCharactersChecked(t *testing.T) {
	e := badInputEdge(t)
	h := e.node.listeners["public"].Handler()
	for _, target := range []string{"/public HTTP/1.1", "/public\x7f", "/public/é", "/public?q=a b"} {
		req := httptest.NewRequest("GET", "/public", nil)
		req.RequestURI = target
		if i := strings.IndexByte(target, '?'); i >= 0 {
			req.URL.RawQuery = target[i+1:]
		}
		req.ProtoMajor, req.ProtoMinor = 2, 0
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 400 {
			t.Errorf("%q: %d, want 400", target, rec.Code)
		}
	}
}

// Upgrade: h2c would hand the client a raw HTTP/2 connection to the backend,
// past routing; it is forwarded as a plain request without the upgrade.
func TestH2CUpgradeNotTunnelled(t *testing.T) {
	a := echoBackend(t, "a")
	e := startEdge(t, simpleConfig(addr(a), ""))
	status, _, body := get(t, nil, "GET", e.url("public")+"/x", map[string]string{
		"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA",
	})
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	hd := http.Header(decode(t, body).Headers)
	if hd.Get("Upgrade") != "" || hd.Get("Http2-Settings") != "" {
		t.Fatalf("upgrade headers reached the backend: %v", hd)
	}
}
