package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func newTestPool() *h1Pool {
	return newH1Pool(&net.Dialer{Timeout: time.Second}, 4, time.Minute)
}

func getReq(t *testing.T, addr, path string) *http.Request {
	t.Helper()
	return &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: addr, Opaque: path}, Header: http.Header{"X-A": {"1"}}, Host: "example.com"}
}

// rawServer answers each request on a connection with handle(n), n counting
// requests per connection, and counts connections.
func rawServer(t *testing.T, handle func(conn, n int, req *http.Request) string) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			id := int(conns.Add(1))
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 1; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					out := handle(id, n, req)
					if out == "" {
						return // close without answering
					}
					if _, err := io.WriteString(c, out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), &conns
}

func ok(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return string(b)
}

func TestH1PoolReusesConnections(t *testing.T) {
	addr, conns := rawServer(t, func(_, n int, r *http.Request) string {
		if r.Host != "example.com" || r.Header.Get("X-A") != "1" || r.URL.RequestURI() != "/p?q=1" {
			return ok("bad request head")
		}
		return ok(fmt.Sprint(n))
	})
	p := newTestPool()
	for i := 1; i <= 5; i++ {
		req := getReq(t, addr, "/p")
		req.URL.RawQuery = "q=1"
		resp, err := p.roundTripUntil(req, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, resp); got != fmt.Sprint(i) {
			t.Fatalf("response %d: %q", i, got)
		}
	}
	if conns.Load() != 1 {
		t.Fatalf("%d connections for 5 sequential requests", conns.Load())
	}
}

// A server that closes an idle keep-alive connection: the next request on
// it sees EOF before any byte and is sent again on a new connection.
func TestH1PoolRetriesStaleConnection(t *testing.T) {
	addr, conns := rawServer(t, func(_, n int, _ *http.Request) string {
		if n == 2 {
			return "" // close instead of answering the second request
		}
		return ok("fine")
	})
	p := newTestPool()
	for i := 0; i < 3; i++ {
		resp, err := p.roundTripUntil(getReq(t, addr, "/"), time.Time{})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		readAll(t, resp)
	}
	// Every connection serves one request, then dies when reused.
	if conns.Load() != 3 {
		t.Fatalf("connections = %d, want 3", conns.Load())
	}
}

func TestH1PoolHonoursConnectionClose(t *testing.T) {
	addr, conns := rawServer(t, func(_, n int, _ *http.Request) string {
		return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"
	})
	p := newTestPool()
	for i := 0; i < 3; i++ {
		resp, err := p.roundTripUntil(getReq(t, addr, "/"), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
	}
	if conns.Load() != 3 {
		t.Fatalf("connections = %d, want 3", conns.Load())
	}
}

func TestH1PoolChunkedAndInterim(t *testing.T) {
	addr, _ := rawServer(t, func(_, n int, _ *http.Request) string {
		return "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: done\r\n\r\n"
	})
	p := newTestPool()
	for i := 0; i < 2; i++ {
		resp, err := p.roundTripUntil(getReq(t, addr, "/"), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, resp); got != "hello" || resp.Trailer.Get("X-T") != "done" || resp.StatusCode != 200 {
			t.Fatalf("got %d %q trailer %v", resp.StatusCode, got, resp.Trailer)
		}
	}
}

// A response body closed before its end closes the connection rather than
// pooling it with unread bytes in it.
func TestH1PoolEarlyCloseDoesNotPoolDirtyConn(t *testing.T) {
	addr, conns := rawServer(t, func(_, n int, _ *http.Request) string {
		return ok(strings.Repeat("x", 100000))
	})
	p := newTestPool()
	for i := 0; i < 2; i++ {
		resp, err := p.roundTripUntil(getReq(t, addr, "/"), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		_, _ = resp.Body.Read(buf)
		resp.Body.Close()
	}
	if conns.Load() != 2 {
		t.Fatalf("connections = %d, want 2", conns.Load())
	}
}

func TestH1PoolDeadline(t *testing.T) {
	done := make(chan struct{})
	addr, _ := rawServer(t, func(_, n int, _ *http.Request) string {
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		return ok("late")
	})
	t.Cleanup(func() { close(done) }) // runs first (cleanups are LIFO): the handler ends with the test
	p := newTestPool()
	start := time.Now()
	_, err := p.roundTripUntil(getReq(t, addr, "/"), start.Add(50*time.Millisecond))
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}

func TestH1PoolRejectsHeaderInjection(t *testing.T) {
	addr, _ := rawServer(t, func(_, n int, r *http.Request) string {
		if r.Header.Get("X-Evil") != "" {
			return ok("injected")
		}
		return ok("clean")
	})
	p := newTestPool()
	req := getReq(t, addr, "/")
	req.Header.Set("X-B", "a\r\nX-Evil: 1")
	resp, err := p.roundTripUntil(req, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "clean" {
		t.Fatalf("got %q", got)
	}
}

func TestParseGRPCTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{"1S": time.Second, "200m": 200 * time.Millisecond, "5M": 5 * time.Minute, "99999999n": 99999999} {
		if got, ok := parseGRPCTimeout(in); !ok || got != want {
			t.Errorf("%q → %v %v, want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "S", "1", "1x", "-1S", "123456789S"} {
		if _, ok := parseGRPCTimeout(in); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

// An upstream that sends more than one response for one request (here a
// body after a 204) must not poison the next request on the connection.
func TestH1PoolDropsConnectionWithUnsolicitedBytes(t *testing.T) {
	addr, conns := rawServer(t, func(conn, n int, _ *http.Request) string {
		if conn == 1 && n == 1 {
			return "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
		}
		return ok("good")
	})
	p := newTestPool()
	resp, err := p.roundTripUntil(getReq(t, addr, "/"), time.Time{})
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("first: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = p.roundTripUntil(getReq(t, addr, "/"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "good" {
		t.Fatalf("second request got %q: the connection was reused with stale bytes", got)
	}
	if conns.Load() != 2 {
		t.Fatalf("connections = %d", conns.Load())
	}
}

// A bodiless POST on a reused connection that the server closes is not
// sent again by the pool: only the forwarder's retry policy may do that.
func TestH1PoolDoesNotResendPOST(t *testing.T) {
	var posts atomic.Int64
	addr, _ := rawServer(t, func(conn, n int, r *http.Request) string {
		if r.Method == "POST" {
			posts.Add(1)
			return "" // read it, then die
		}
		return ok("warm")
	})
	p := newTestPool()
	resp, err := p.roundTripUntil(getReq(t, addr, "/"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	post := getReq(t, addr, "/charge")
	post.Method = "POST"
	if _, err := p.roundTripUntil(post, time.Time{}); err == nil {
		t.Fatal("POST on a dying connection succeeded?")
	}
	if posts.Load() != 1 {
		t.Fatalf("upstream saw %d POSTs for one", posts.Load())
	}
}

// Idle connections of an endpoint that is no longer used are closed by the
// periodic sweep, not kept until the cluster closes.
func TestH1PoolSweepsIdleConnections(t *testing.T) {
	addrA, _ := rawServer(t, func(_, n int, _ *http.Request) string { return ok("a") })
	addrB, _ := rawServer(t, func(_, n int, _ *http.Request) string { return ok("b") })
	p := newH1Pool(&net.Dialer{Timeout: time.Second}, 4, 20*time.Millisecond)
	var later time.Duration
	p.now = func() time.Time { return time.Now().Add(later) }
	resp, err := p.roundTripUntil(getReq(t, addrA, "/"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	later = 50 * time.Millisecond // A's connection expires
	resp, err = p.roundTripUntil(getReq(t, addrB, "/"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	p.mu.Lock()
	left := len(p.idle[addrA])
	p.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d expired connections of an unused endpoint kept", left)
	}
}

// A client's watch may interrupt a streamed body after the body handed its
// connection back to the pool (the client leaves between the body's end and
// the handler's return): the interrupt must not reach the pooled
// connection, whose next request would fail at once with a timeout.
func TestH1BodyInterruptAfterReleaseSparesThePool(t *testing.T) {
	addr, conns := rawServer(t, func(_, _ int, _ *http.Request) string { return ok("x") })
	p := newTestPool()
	resp, err := p.roundTripUntil(getReq(t, addr, "/"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	hb := resp.Body.(*h1Body)
	if got := readAll(t, resp); got != "x" {
		t.Fatalf("body %q", got)
	}
	hb.interrupt() // late: the connection is the pool's now
	c, err := p.get(addr, time.Time{})
	if err != nil || !c.reused {
		t.Fatalf("the pooled connection: %v (reused %v)", err, c != nil && c.reused)
	}
	if _, err := c.nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.br.Peek(1); err != nil {
		t.Fatalf("the next request on the pooled connection: %v", err)
	}
	c.nc.Close()
	if conns.Load() != 1 {
		t.Fatalf("connections = %d", conns.Load())
	}
}
