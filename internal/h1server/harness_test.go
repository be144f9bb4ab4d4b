package h1server

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer is a Server on a loopback listener, with its rejections
// recorded.
type testServer struct {
	t    *testing.T
	srv  *Server
	addr string
	url  string

	mu      sync.Mutex
	rejects []rejection
	done    chan error
}

type rejection struct {
	status int
	reason string
}

func newTestServer(t *testing.T, h http.Handler, opts ...func(*Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, addr: ln.Addr().String(), done: make(chan error, 1)}
	ts.url = "http://" + ts.addr
	ts.srv = &Server{
		Handler:  h,
		ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnReject: func(c net.Conn, status int, reason string) {
			ts.mu.Lock()
			ts.rejects = append(ts.rejects, rejection{status, reason})
			ts.mu.Unlock()
		},
	}
	for _, o := range opts {
		o(ts.srv)
	}
	go func() { ts.done <- ts.srv.Serve(ln) }()
	t.Cleanup(func() { ts.srv.Close() })
	return ts
}

func (ts *testServer) rejections() []rejection {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]rejection(nil), ts.rejects...)
}

// client returns an HTTP/1.1-only client with its own transport.
func (ts *testServer) client() *http.Client {
	tr := &http.Transport{ForceAttemptHTTP2: false, MaxIdleConnsPerHost: 4}
	ts.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// dial opens a raw connection with a generous overall deadline.
func (ts *testServer) dial() *rawConn {
	ts.t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		ts.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	ts.t.Cleanup(func() { c.Close() })
	return &rawConn{t: ts.t, Conn: c, br: bufio.NewReader(c)}
}

type rawConn struct {
	t *testing.T
	net.Conn
	br *bufio.Reader
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.Conn, s); err != nil {
		rc.t.Fatal(err)
	}
}

// response reads one response (with its body) for a request of method.
func (rc *rawConn) response(method string) (*http.Response, string) {
	rc.t.Helper()
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		rc.t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

// closed reports whether the server closed the connection (EOF or reset
// with nothing more to read).
func (rc *rawConn) closed() bool {
	rc.t.Helper()
	b, err := rc.br.ReadByte()
	if err == nil {
		rc.t.Errorf("unexpected byte %q after response", b)
		return false
	}
	return err == io.EOF || strings.Contains(err.Error(), "reset")
}
