package h1server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestStrictness(t *testing.T) {
	var served atomic.Int32
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.Copy(io.Discard, r.Body)
	}), func(s *Server) { s.MaxHeaderBytes = 1024 })

	cases := []struct {
		name, req string
		status    int
		reason    string
	}{
		{"bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare LF"},
		{"bare LF header", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400, "bare LF"},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400, "obs-fold"},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "whitespace before colon"},
		{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", 400, "malformed header"},
		{"bad name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", 400, "invalid header name"},
		{"CTL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n", 400, "invalid character"},
		{"CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400, "invalid character"},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: \x00\r\n\r\n", 400, "invalid character"},
		{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "both Content-Length and Transfer-Encoding"},
		{"duplicate identical CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, "multiple Content-Length"},
		{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", 400, "invalid Content-Length"},
		{"CL sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400, "invalid Content-Length"},
		{"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400, "invalid Content-Length"},
		{"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\n", 400, "invalid Content-Length"},
		{"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400, "unsupported Transfer-Encoding"},
		{"TE twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "multiple Transfer-Encoding"},
		{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400, "unsupported Transfer-Encoding"},
		{"TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "HTTP/1.0"},
		{"no Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400, "missing Host"},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "multiple Host"},
		{"bad Host", "GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n", 400, "invalid Host"},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "unsupported HTTP version"},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "unsupported HTTP version"},
		{"garbage version", "GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400, "malformed HTTP version"},
		{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400, "malformed HTTP version"},
		{"double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid request target"},
		{"no version", "GET /\r\nHost: a\r\n\r\n", 400, "malformed request line"},
		{"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid method"},
		{"relative target", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid request target"},
		{"fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid request target"},
		{"asterisk GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "asterisk"},
		{"userinfo", "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request target"},
		{"bad percent", "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400, "percent-encoding"},
		{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, "CONNECT"},
		{"Expect other", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417, "Expect"},
		{"too many empty lines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "empty lines"},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 2000) + "\r\n\r\n", 431, "headers too large"},
		{"bad trailer key", "POST / HTTP/1.1\r\nHost: a\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "Trailer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(ts.rejections())
			servedBefore := served.Load()
			rc := ts.dial()
			rc.send(tc.req)
			resp, body := rc.response("GET")
			if resp.StatusCode != tc.status || !resp.Close {
				t.Fatalf("status %d close %v, want %d and close", resp.StatusCode, resp.Close, tc.status)
			}
			var j struct {
				Status int    `json:"status"`
				Error  string `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &j); err != nil || j.Status != tc.status || !strings.Contains(j.Error, tc.reason) {
				t.Fatalf("body %q: %v", body, err)
			}
			if !rc.closed() {
				t.Fatal("connection left open")
			}
			rj := ts.rejections()
			if len(rj) != before+1 || rj[before].status != tc.status || !strings.Contains(rj[before].reason, tc.reason) {
				t.Fatalf("OnReject calls %v, want one with %d %q", rj[before:], tc.status, tc.reason)
			}
			if served.Load() != servedBefore {
				t.Fatal("handler ran for a rejected request")
			}
		})
	}

	// What must still be accepted.
	for _, req := range []string{
		"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-Tab:\tv\t\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
		"GET / HTTP/1.1\r\nHost:\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n1 ; ext=\"x\"\r\na\r\n0\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
	} {
		rc := ts.dial()
		rc.send(req)
		if resp, _ := rc.response("GET"); resp.StatusCode != 200 {
			t.Errorf("%q: status %d", req, resp.StatusCode)
		}
	}
}

func TestMalformedChunkedBody(t *testing.T) {
	errc := make(chan error, 1)
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		errc <- err
		w.WriteHeader(400)
	}))
	for _, body := range []string{
		"3\r\nabcX\r\n0\r\n\r\n", // no CRLF after data
		"3\nabc\r\n0\r\n\r\n",    // bare LF after size
		"zz\r\n",                 // not hex
		"3 x\r\nabc\r\n",         // junk after size
		"1\r\na\r\n0\r\nX : y\r\n\r\n",
		"1\r\na\r\n0\r\n\r", // truncated
	} {
		rc := ts.dial()
		rc.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
		if body[len(body)-1] == '\r' {
			rc.Conn.(*net.TCPConn).CloseWrite()
		}
		if err := <-errc; err == nil {
			t.Errorf("%q: body read without error", body)
		}
		if resp, _ := rc.response("POST"); !resp.Close || !rc.closed() {
			t.Errorf("%q: connection kept after a malformed body", body)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		func(s *Server) { s.IdleTimeout = 100 * time.Millisecond; s.ReadHeaderTimeout = 5 * time.Second })
	rc := ts.dial()
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	rc.response("GET")
	start := time.Now()
	if !rc.closed() {
		t.Fatal("idle connection not closed")
	}
	if d := time.Since(start); d < 80*time.Millisecond || d > 3*time.Second {
		t.Fatalf("closed after %v, want about 100ms", d)
	}
	if n := len(ts.rejections()); n != 0 {
		t.Fatalf("idle close reported as %d rejections", n)
	}
}

func TestReadHeaderTimeout(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		func(s *Server) { s.IdleTimeout = 5 * time.Second; s.ReadHeaderTimeout = 100 * time.Millisecond })
	rc := ts.dial()
	rc.send("GET / HTTP/1.1\r\nHo")
	start := time.Now()
	if !rc.closed() {
		t.Fatal("slow head not closed")
	}
	if d := time.Since(start); d < 80*time.Millisecond || d > 3*time.Second {
		t.Fatalf("closed after %v, want about 100ms", d)
	}
	if rj := ts.rejections(); len(rj) != 1 || rj[0].status != 408 {
		t.Fatalf("rejections %v", rj)
	}
}

func TestShutdown(t *testing.T) {
	inHandler := make(chan struct{})
	release := make(chan struct{})
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(inHandler)
			<-release
		}
		w.Write([]byte("done"))
	}))
	idle := ts.dial()
	idle.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	idle.response("GET")

	busy := ts.dial()
	busy.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-inHandler

	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(context.Background()) }()

	if !idle.closed() {
		t.Fatal("idle connection not closed by Shutdown")
	}
	if err := <-ts.done; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	if c, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		c.Close()
		t.Fatal("new connection accepted after Shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	close(release)
	resp, body := busy.response("GET")
	if body != "done" || !resp.Close || !busy.closed() {
		t.Fatalf("in-flight request: %q close %v", body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestShutdownContextExpires(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	inHandler := make(chan struct{})
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-release
	}))
	rc := ts.dial()
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-inHandler
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestCloseCancelsContext(t *testing.T) {
	inHandler := make(chan struct{})
	ctxDone := make(chan struct{})
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-r.Context().Done()
		close(ctxDone)
	}))
	rc := ts.dial()
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-inHandler
	ts.srv.Close()
	<-ctxDone
	if !rc.closed() {
		t.Fatal("connection not closed by Close")
	}
}

func TestConnState(t *testing.T) {
	states := make(chan http.ConnState, 16)
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		func(s *Server) { s.ConnState = func(_ net.Conn, st http.ConnState) { states <- st } })
	rc := ts.dial()
	rc.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	rc.response("GET")
	rc.closed()
	want := []http.ConnState{http.StateNew, http.StateActive, http.StateClosed}
	for _, w := range want {
		if got := <-states; got != w {
			t.Fatalf("state %v, want %v", got, w)
		}
	}
}
