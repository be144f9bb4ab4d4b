package node

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// seenBody is what a recording backend saw of one request.
type seenBody struct {
	body    string
	err     error
	cl      int64
	te      []string
	trailer http.Header
}

// recordingBackend counts the connections made to it and reports each
// request's body as read.
func recordingBackend(t *testing.T) (addr string, conns *atomic.Int32, got chan seenBody) {
	t.Helper()
	conns = new(atomic.Int32)
	got = make(chan seenBody, 4)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		select {
		case got <- seenBody{body: string(b), err: err, cl: r.ContentLength, te: r.TransferEncoding, trailer: r.Trailer}:
		default:
		}
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://"), conns, got
}

// A small chunked body with broken framing is refused with 400 before
// anything — not even the request head — reaches the upstream.
func TestMalformedSmallChunkedBodyNeverReachesUpstream(t *testing.T) {
	backend, conns, _ := recordingBackend(t)
	e := oneRouteEdge(t, "", backend)
	cases := map[string]string{
		"bad chunk size":          "5\r\nhello\r\nzz\r\n",
		"chunk without its CRLF":  "5\r\nhelloXX0\r\n\r\n",
		"bare LF after size":      "5\nhello\r\n0\r\n\r\n",
		"bad trailer":             "5\r\nhello\r\n0\r\nBad Trailer: x\r\n\r\n",
		"size with trailing junk": "5 x\r\nhello\r\n0\r\n\r\n",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			conn := dialEdge(t, e)
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprint(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+body)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 400 || !strings.Contains(string(b), "malformed or truncated request body") {
				t.Errorf("%d %s, want 400 malformed or truncated request body", resp.StatusCode, b)
			}
			if !resp.Close {
				t.Error("connection not closed after a malformed body")
			}
		})
	}
	if n := upstreamConnsBefore(t, e, conns); n != 0 {
		t.Errorf("the upstream got %d connection(s) for malformed bodies, want none", n)
	}
}

// upstreamConnsBefore returns how many connections the upstream of e's
// one route (recordingBackend, counting conns) had accepted before now.
// It judges on an event rather than after a sleep: a good request made
// now is served on a new connection, and the upstream accepts connections
// in the order they came, so any made earlier is counted by then.
func upstreamConnsBefore(t *testing.T, e *edge, conns *atomic.Int32) int32 {
	t.Helper()
	conn := dialEdge(t, e)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a good request: %v %v", resp, err)
	}
	resp.Body.Close()
	return conns.Load() - 1
}

// A small body is held whole and forwarded with a Content-Length, however
// the client framed it; one declaring trailers stays chunked and keeps them.
func TestSmallChunkedBodyForwardedWhole(t *testing.T) {
	backend, _, got := recordingBackend(t)
	e := oneRouteEdge(t, "", backend)
	conn := dialEdge(t, e)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)

	fmt.Fprint(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	s := <-got
	if resp.StatusCode != 200 || s.body != "hello world" || s.err != nil || s.cl != 11 || len(s.te) != 0 {
		t.Errorf("%d; upstream saw %+v, want \"hello world\" with Content-Length 11", resp.StatusCode, s)
	}

	fmt.Fprint(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	s = <-got
	if resp.StatusCode != 200 || s.body != "hello" || s.err != nil || s.trailer.Get("X-Sum") != "42" {
		t.Errorf("%d; upstream saw %+v, want \"hello\" and trailer X-Sum: 42", resp.StatusCode, s)
	}
}

// A body larger than the buffer streams; a framing error past the buffer
// aborts the upstream request (the upstream sees a broken body, never a
// well-formed truncated one) and the client gets 400.
func TestLargeChunkedBodyFramingErrorAbortsUpstream(t *testing.T) {
	backend, conns, got := recordingBackend(t)
	e := oneRouteEdge(t, "", backend)
	conn := dialEdge(t, e)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	big := strings.Repeat("a", 20<<10)
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(big), big)
	// The upstream has the request (the edge writes the head as soon as
	// it has the connection) before the error.
	eventually(t, 5*time.Second, "the upstream connection", func() bool { return conns.Load() == 1 })
	fmt.Fprint(conn, "zz\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "malformed or truncated request body") {
		t.Errorf("%d %s, want 400", resp.StatusCode, b)
	}
	select {
	case s := <-got:
		if s.err == nil {
			t.Errorf("the upstream read a complete body of %d bytes", len(s.body))
		}
	case <-time.After(3 * time.Second):
		t.Error("the upstream request was not aborted")
	}
}

// A small body that stalls gets 408 before the upstream is contacted.
func TestStalledSmallBodyNeverReachesUpstream(t *testing.T) {
	backend, conns, _ := recordingBackend(t)
	e := oneRouteEdge(t, "server: {body_read_timeout: 300ms}\n", backend)
	conn := dialEdge(t, e)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhello")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 408 || !strings.Contains(string(b), "request body timed out") {
		t.Errorf("%d %s, want 408", resp.StatusCode, b)
	}
	if n := upstreamConnsBefore(t, e, conns); n != 0 {
		t.Errorf("the upstream got %d connection(s), want none", n)
	}
}

// Bodies on either side of the buffer's size arrive intact, chunked or not.
func TestBodiesAroundBufferSizeArriveIntact(t *testing.T) {
	backend, _, got := recordingBackend(t)
	e := oneRouteEdge(t, "", backend)
	for _, n := range []int{1, 16<<10 - 1, 16 << 10, 16<<10 + 1, 40 << 10} {
		want := strings.Repeat("0123456789abcdef", n/16+1)[:n]
		for _, chunked := range []bool{false, true} {
			var body io.Reader = strings.NewReader(want)
			if chunked {
				// Unknown length: the client sends chunks.
				body = io.MultiReader(strings.NewReader(want[:n/2]), strings.NewReader(want[n/2:]))
			}
			resp, err := http.Post(e.url("public")+"/upload", "text/plain", body)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			s := <-got
			if resp.StatusCode != 200 || s.err != nil || s.body != want {
				t.Errorf("%d bytes (chunked %v): %d, upstream read %d bytes, err %v", n, chunked, resp.StatusCode, len(s.body), s.err)
			}
		}
	}
}
