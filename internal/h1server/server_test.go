package h1server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
	"time"
)

func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Path", r.URL.Path)
		w.Header().Set("X-Escaped", r.URL.EscapedPath())
		w.Header().Set("X-Query", r.URL.RawQuery)
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("X-CL", strconv.FormatInt(r.ContentLength, 10))
		w.Header().Set("X-TE", strings.Join(r.TransferEncoding, ","))
		w.Header().Set("X-Proto", r.Proto)
		w.Write(b)
	})
}

func TestGetPostBodies(t *testing.T) {
	ts := newTestServer(t, echoHandler())
	c := ts.client()

	resp, err := c.Get(ts.url + "/hello?x=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Method") != "GET" || resp.Header.Get("X-Path") != "/hello" ||
		resp.Header.Get("X-Query") != "x=1" || resp.Header.Get("X-CL") != "0" || len(body) != 0 {
		t.Fatalf("GET: %d %v %q", resp.StatusCode, resp.Header, body)
	}

	resp, err = c.Post(ts.url+"/post", "text/plain", strings.NewReader("content-length body"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "content-length body" || resp.Header.Get("X-CL") != "19" || resp.ContentLength != 19 {
		t.Fatalf("POST CL: %q %v", body, resp.Header)
	}

	// A reader of unknown length makes the client send chunked.
	big := strings.Repeat("chunked-data.", 5000)
	resp, err = c.Post(ts.url+"/post", "text/plain", io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != big || resp.Header.Get("X-CL") != "-1" || resp.Header.Get("X-TE") != "chunked" {
		t.Fatalf("POST chunked: len %d %q %v", len(body), body[:min(len(body), 100)], resp.Header)
	}
	if resp.TransferEncoding == nil || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("large response should be chunked, got TE %v CL %d", resp.TransferEncoding, resp.ContentLength)
	}
}

func TestKeepAliveReuse(t *testing.T) {
	ts := newTestServer(t, echoHandler())
	c := ts.client()
	reused := 0
	for i := range 100 {
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			if info.Reused {
				reused++
			}
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", ts.url+"/"+strconv.Itoa(i), strings.NewReader("x"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if reused != 99 {
		t.Fatalf("reused %d of 100 requests' connections, want 99", reused)
	}
}

func TestPipelined(t *testing.T) {
	ts := newTestServer(t, echoHandler())
	rc := ts.dial()
	rc.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
		"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n" +
		"GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	for i, want := range []string{"", "abc", "de", ""} {
		method := "GET"
		if want != "" {
			method = "POST"
		}
		resp, body := rc.response(method)
		if p := resp.Header.Get("X-Path"); p != "/"+strconv.Itoa(i+1) || body != want {
			t.Fatalf("response %d: path %q body %q", i, p, body)
		}
	}
	if !rc.closed() {
		t.Fatal("connection not closed after Connection: close")
	}
}

func TestHeadAndNoBodyStatuses(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
			if _, err := w.Write([]byte("x")); err != http.ErrBodyNotAllowed {
				t.Errorf("write on 204: %v", err)
			}
		case "/304":
			w.Header().Set("Etag", `"v1"`)
			w.WriteHeader(304)
		default:
			w.Write([]byte("hello"))
		}
	}))
	rc := ts.dial()
	rc.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /204 HTTP/1.1\r\nHost: a\r\n\r\nGET /304 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := rc.response("HEAD")
	if resp.ContentLength != 5 || body != "" {
		t.Fatalf("HEAD: CL %d body %q", resp.ContentLength, body)
	}
	resp, body = rc.response("GET")
	if resp.StatusCode != 204 || body != "" || resp.Header.Get("Content-Length") != "" || len(resp.TransferEncoding) != 0 {
		t.Fatalf("204: %v %q", resp.Header, body)
	}
	resp, body = rc.response("GET")
	if resp.StatusCode != 304 || body != "" || resp.Header.Get("Etag") != `"v1"` {
		t.Fatalf("304: %v %q", resp.Header, body)
	}
	// The fourth response parses only if the earlier ones carried no body.
	resp, body = rc.response("GET")
	if resp.StatusCode != 200 || body != "hello" || resp.ContentLength != 5 {
		t.Fatalf("GET after: %d %q", resp.StatusCode, body)
	}
}

func TestFlushStreams(t *testing.T) {
	release := make(chan struct{})
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first"))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte(strings.Repeat("z", 100000)))
	}))
	resp, err := ts.client().Get(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first" {
		t.Fatalf("first chunk %q %v", first, err)
	}
	close(release) // the handler was still running when the client read
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != 100000 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("rest %d %v %v", len(rest), err, resp.TransferEncoding)
	}
}

func TestResponseTrailers(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.Write([]byte("body"))
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}))
	resp, err := ts.client().Get(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "body" || resp.Trailer.Get("X-Checksum") != "abc" || resp.Trailer.Get("X-Late") != "late" {
		t.Fatalf("body %q trailer %v header %v", b, resp.Trailer, resp.Header)
	}
	if resp.Header.Get("X-Checksum") != "" {
		t.Fatal("trailer sent as header")
	}
}

func TestRequestTrailers(t *testing.T) {
	got := make(chan http.Header, 1)
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Trailer["X-Sum"]; !ok {
			t.Errorf("trailer key not pre-declared: %v", r.Trailer)
		}
		io.Copy(io.Discard, r.Body)
		got <- r.Trailer.Clone()
	}))
	body := &trailerAtEOF{r: strings.NewReader("data")}
	req, _ := http.NewRequest("POST", ts.url, body)
	req.Trailer = http.Header{"X-Sum": nil}
	body.trailer = req.Trailer
	resp, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if tr := <-got; tr.Get("X-Sum") != "42" {
		t.Fatalf("request trailer %v", tr)
	}
}

func TestRequestTrailersRaw(t *testing.T) {
	got := make(chan http.Header, 1)
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got <- r.Trailer
	}))
	rc := ts.dial()
	rc.send("POST / HTTP/1.1\r\nHost: a\r\nTrailer: x-sum\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\ndata\r\n0\r\nX-Sum: 42\r\nX-Other: 1\r\n\r\n")
	rc.response("POST")
	tr := <-got
	if tr.Get("X-Sum") != "42" || tr.Get("X-Other") != "1" {
		t.Fatalf("trailer %v", tr)
	}
}

func TestExpectContinue(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
			return
		}
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	}))
	rc := ts.dial()
	rc.send("POST /read HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	line, _ := rc.br.ReadString('\n')
	if line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q, want 100 Continue", line)
	}
	if l, _ := rc.br.ReadString('\n'); l != "\r\n" {
		t.Fatalf("got %q after 100", l)
	}
	rc.send("ping")
	if _, body := rc.response("POST"); body != "ping" {
		t.Fatalf("body %q", body)
	}

	// The handler does not read: no 100, and the connection is closed since
	// the client may or may not send the body.
	rc.send("POST /reject HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	resp, _ := rc.response("POST")
	if resp.StatusCode != 413 || !resp.Close {
		t.Fatalf("status %d close %v", resp.StatusCode, resp.Close)
	}

	// Through net/http's client.
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", ts.url+"/read", strings.NewReader("hello"))
	req.Header.Set("Expect", "100-continue")
	start := time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" || time.Since(start) > 4*time.Second {
		t.Fatalf("body %q after %v", b, time.Since(start))
	}
}

func TestHTTP10(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.Write([]byte("a"))
			w.(http.Flusher).Flush()
			w.Write([]byte("b"))
			return
		}
		fmt.Fprintf(w, "%s %v", r.Proto, r.Close)
	}))
	rc := ts.dial()
	rc.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, body := rc.response("GET")
	if body != "HTTP/1.0 false" || resp.Header.Get("Connection") != "keep-alive" || resp.ProtoMinor != 0 {
		t.Fatalf("keep-alive 1.0: %q %v", body, resp.Header)
	}
	rc.send("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, body = rc.response("GET")
	if body != "ab" || resp.ContentLength != -1 || !rc.closed() {
		t.Fatalf("streamed 1.0: %q CL %d", body, resp.ContentLength)
	}

	rc = ts.dial()
	rc.send("GET / HTTP/1.0\r\n\r\n")
	resp, body = rc.response("GET")
	if body != "HTTP/1.0 true" || resp.ContentLength != 13 || !rc.closed() {
		t.Fatalf("1.0: %q", body)
	}
}

func TestConnectionClose(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/server-close" {
			w.Header().Set("Connection", "close")
		}
		w.Write([]byte("ok"))
	}))
	for _, tc := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"GET /server-close HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		rc := ts.dial()
		rc.send(tc)
		resp, body := rc.response("GET")
		if body != "ok" || !resp.Close || !rc.closed() {
			t.Fatalf("%q: body %q close %v", tc, body, resp.Close)
		}
	}
}

func TestHijack(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, err := brw.ReadString('\n')
		if err != nil {
			t.Error(err)
			return
		}
		brw.WriteString("echo: " + line)
		brw.Flush()
	}))
	rc := ts.dial()
	// The client's first raw bytes arrive together with the head: they must
	// be readable through the hijacked bufio.Reader.
	rc.send("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhello\n")
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	line, err := rc.br.ReadString('\n')
	if line != "echo: hello\n" {
		t.Fatalf("got %q %v", line, err)
	}
}

func TestTargetsAndPaths(t *testing.T) {
	ts := newTestServer(t, echoHandler())
	rc := ts.dial()
	rc.send("GET http://example.com:8080/abs/path?q=1 HTTP/1.1\r\nHost: ignored\r\n\r\n")
	resp, _ := rc.response("GET")
	if h := resp.Header; h.Get("X-Host") != "example.com:8080" || h.Get("X-Path") != "/abs/path" || h.Get("X-Query") != "q=1" {
		t.Fatalf("absolute-form: %v", h)
	}

	for _, tc := range []struct{ raw, path string }{
		{"/a%20b/c%2Fd", "/a b/c/d"},
		{"/plain/path", "/plain/path"},
		{"/x!y(z)", "/x!y(z)"},
		{"/%E2%82%AC", "/€"},
	} {
		rc.send("GET " + tc.raw + "?k=v%20w HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, _ := rc.response("GET")
		h := resp.Header
		if h.Get("X-Path") != tc.path || h.Get("X-Escaped") != tc.raw || h.Get("X-Query") != "k=v%20w" {
			t.Errorf("%s: path %q escaped %q query %q", tc.raw, h.Get("X-Path"), h.Get("X-Escaped"), h.Get("X-Query"))
		}
	}

	rc.send("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := rc.response("OPTIONS"); resp.Header.Get("X-Path") != "*" {
		t.Fatalf("OPTIONS *: %v", resp.Header)
	}
}

func TestComputedContentLength(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		for range n {
			io.WriteString(w, "0123456789")
		}
	}))
	c := ts.client()
	for _, tc := range []struct {
		n       int
		chunked bool
	}{{0, false}, {1, false}, {400, false}, {500, true}} {
		resp, err := c.Get(ts.url + "/?n=" + strconv.Itoa(tc.n))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		isChunked := len(resp.TransferEncoding) > 0
		if len(b) != tc.n*10 || isChunked != tc.chunked || !isChunked && resp.ContentLength != int64(tc.n*10) {
			t.Errorf("n=%d: len %d chunked %v CL %d", tc.n, len(b), isChunked, resp.ContentLength)
		}
		if tc.n > 0 && resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("sniffed Content-Type %q", resp.Header.Get("Content-Type"))
		}
	}
}

func TestExplicitContentLength(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4")
		w.Write([]byte("abcd"))
		if _, err := w.Write([]byte("e")); err != http.ErrContentLength {
			t.Errorf("overlong write: %v", err)
		}
	}))
	rc := ts.dial()
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for range 2 {
		if resp, body := rc.response("GET"); body != "abcd" || resp.ContentLength != 4 {
			t.Fatalf("%q %d", body, resp.ContentLength)
		}
	}
}

func TestUnreadBody(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ignored your body"))
	}))
	rc := ts.dial()
	// Small unread body: discarded, connection kept.
	rc.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for range 2 {
		if resp, _ := rc.response("POST"); resp.Close {
			t.Fatal("connection closed for a small unread body")
		}
	}
	// Huge unread body: connection closed after the response.
	rc.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\nxx")
	if resp, _ := rc.response("POST"); !resp.Close {
		t.Fatal("want Connection: close for a huge unread body")
	}
}

func TestHandlerPanic(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort":
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		default:
			panic("boom")
		}
	}))
	rc := ts.dial()
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := rc.response("GET"); resp.StatusCode != 500 || !rc.closed() {
		t.Fatalf("panic: status %d", resp.StatusCode)
	}
	rc = ts.dial()
	rc.send("GET /abort HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("aborted chunked response read without error")
	}
}

func TestInterimResponse(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Write([]byte("final"))
	}))
	rc := ts.dial()
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil || resp.StatusCode != 103 || resp.Header.Get("Link") == "" {
		t.Fatalf("%v %v", resp, err)
	}
	if resp, body := rc.response("GET"); resp.StatusCode != 200 || body != "final" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestRequestFields(t *testing.T) {
	type seen struct {
		ctxErr  error
		remote  string
		header  http.Header
		host    string
		uri     string
		noBody  bool
		started bool
	}
	ch := make(chan seen, 1)
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- seen{r.Context().Err(), r.RemoteAddr, r.Header, r.Host, r.RequestURI, r.Body == http.NoBody, true}
	}))
	rc := ts.dial()
	rc.send("GET /p?q HTTP/1.1\r\nhost: h.example\r\nuser-agent: ua\r\nx-custom-thing: 1\r\nAccept: a\r\naccept: b\r\n\r\n")
	rc.response("GET")
	s := <-ch
	if s.ctxErr != nil || s.remote != rc.LocalAddr().String() || s.host != "h.example" || s.uri != "/p?q" || !s.noBody {
		t.Fatalf("%+v", s)
	}
	if s.header.Get("User-Agent") != "ua" || s.header.Get("X-Custom-Thing") != "1" ||
		strings.Join(s.header["Accept"], ",") != "a,b" || s.header["Host"] != nil {
		t.Fatalf("headers %v", s.header)
	}
}

// trailerAtEOF sets the request trailer when the body is exhausted, as the
// transport reads trailers only after the body.
type trailerAtEOF struct {
	r       io.Reader
	trailer http.Header
}

func (b *trailerAtEOF) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.trailer.Set("X-Sum", "42")
	}
	return n, err
}

// A handler that hijacks and returns, leaving another goroutine to write
// (as a WebSocket tunnel does): the server writes nothing more of its own
// on the connection it gave away.
func TestHijackedAndReturnedWritesNothing(t *testing.T) {
	hijacked := make(chan net.Conn, 1)
	srv := &Server{
		ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			hijacked <- conn
		}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		srv.ServeConn(c) // returns when the server is done with c
	}()
	go func() {
		conn := <-hijacked
		<-served // the handler returned, and the server with it
		io.WriteString(conn, "later")
		conn.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\n\r\n")
	got, err := io.ReadAll(c)
	if string(got) != "later" {
		t.Fatalf("client read %q (%v), want only the hijacker's %q", got, err, "later")
	}
}
