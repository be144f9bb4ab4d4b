package h1server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// watchServer is a testServer over plain TCP or TLS: the watch must work on
// both (a TLS connection is read through crypto/tls).
type watchServer struct {
	*testServer
	client *tls.Config // nil for plain TCP
}

// forEachTransport runs f against a plain and a TLS server.
func forEachTransport(t *testing.T, f func(t *testing.T, start func(http.Handler, ...func(*Server)) *watchServer)) {
	t.Run("plain", func(t *testing.T) {
		f(t, func(h http.Handler, opts ...func(*Server)) *watchServer {
			return &watchServer{testServer: newTestServer(t, h, opts...)}
		})
	})
	t.Run("tls", func(t *testing.T) {
		f(t, func(h http.Handler, opts ...func(*Server)) *watchServer {
			return newTLSWatchServer(t, h, opts...)
		})
	})
}

func newTLSWatchServer(t *testing.T, h http.Handler, opts ...func(*Server)) *watchServer {
	t.Helper()
	serverConf, clientConf := testTLSConfigs(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, addr: ln.Addr().String(), done: make(chan error, 1)}
	ts.url = "https://" + ts.addr
	ts.srv = &Server{Handler: h, ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(ts.srv)
	}
	go func() { ts.done <- ts.srv.Serve(tls.NewListener(ln, serverConf)) }()
	t.Cleanup(func() { ts.srv.Close() })
	return &watchServer{testServer: ts, client: clientConf}
}

// testTLSConfigs returns a server config with a fresh self-signed
// certificate for 127.0.0.1 and a client config that trusts it.
func testTLSConfigs(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		NextProtos:   []string{"http/1.1"},
	}
	client = &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}}
	return server, client
}

func (ws *watchServer) dial() *rawConn {
	ws.t.Helper()
	if ws.client == nil {
		return ws.testServer.dial()
	}
	c, err := tls.Dial("tcp", ws.addr, ws.client)
	if err != nil {
		ws.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	ws.t.Cleanup(func() { c.Close() })
	return &rawConn{t: ws.t, Conn: c, br: bufio.NewReader(c)}
}

// connStates records a server's connection state changes.
type connStates struct {
	mu     sync.Mutex
	states []http.ConnState
	closed chan struct{} // closed at the first StateClosed
}

func recordStates(cs *connStates) func(*Server) {
	cs.closed = make(chan struct{})
	return func(s *Server) {
		s.ConnState = func(_ net.Conn, st http.ConnState) {
			cs.mu.Lock()
			defer cs.mu.Unlock()
			cs.states = append(cs.states, st)
			if st == http.StateClosed {
				close(cs.closed)
			}
		}
	}
}

func (cs *connStates) get() []http.ConnState {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]http.ConnState(nil), cs.states...)
}

// watchGoroutines counts the background reads still running.
func watchGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "h1server.(*watch).run(")
}

// waitNoWatchGoroutine fails unless every background read has returned.
// A goroutine's exit has nothing to wait on, so this polls.
func waitNoWatchGoroutine(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for watchGoroutines() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d background read goroutines still running", watchGoroutines())
		}
		time.Sleep(time.Millisecond)
	}
}

// A handler waiting on the watched context sees it canceled, with cause
// ErrClientGone, right after the client closes its connection, and the
// connection is then closed rather than kept alive.
func TestWatchClientCanceledWhenClientCloses(t *testing.T) {
	forEachTransport(t, func(t *testing.T, start func(http.Handler, ...func(*Server)) *watchServer) {
		for _, tc := range []struct {
			name string
			// headTimeout also sets ReadHeaderTimeout, and the client stays
			// beyond it: the head's read deadline must not end the watch.
			headTimeout time.Duration
		}{{"no timeouts", 0}, {"past ReadHeaderTimeout", 100 * time.Millisecond}} {
			t.Run(tc.name, func(t *testing.T) {
				type result struct {
					cause error
					at    time.Time
				}
				watching := make(chan struct{})
				done := make(chan result, 1)
				var states connStates
				ws := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ctx, stop := WatchClient(w, r.Context())
					defer stop()
					close(watching)
					select {
					case <-ctx.Done():
						done <- result{context.Cause(ctx), time.Now()}
					case <-time.After(5 * time.Second):
						done <- result{errors.New("not canceled within 5s"), time.Now()}
					}
				}), recordStates(&states), func(s *Server) { s.ReadHeaderTimeout = tc.headTimeout })
				rc := ws.dial()
				rc.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
				<-watching
				if tc.headTimeout > 0 {
					time.Sleep(3 * tc.headTimeout) // let the head's deadline pass
				}
				closedAt := time.Now()
				rc.Close()
				res := <-done
				if !errors.Is(res.cause, ErrClientGone) {
					t.Fatalf("cause %v, want ErrClientGone", res.cause)
				}
				elapsed := res.at.Sub(closedAt)
				t.Logf("canceled %v after the client closed", elapsed)
				if elapsed > 500*time.Millisecond {
					t.Fatalf("canceled %v after the client closed", elapsed)
				}
				select {
				case <-states.closed:
				case <-time.After(5 * time.Second):
					t.Fatal("connection not closed")
				}
				for _, st := range states.get() {
					if st == http.StateIdle {
						t.Fatalf("connection of a client that left was kept alive: %v", states.get())
					}
				}
			})
		}
	})
}

// A handler that watches, stops and then writes: the response arrives, the
// connection stays alive and serves a second request (the read deadline and
// read state are restored after the interrupted background read).
func TestWatchClientStopThenKeepAlive(t *testing.T) {
	forEachTransport(t, func(t *testing.T, start func(http.Handler, ...func(*Server)) *watchServer) {
		for _, tc := range []struct {
			name     string
			timeouts time.Duration
		}{{"no timeouts", 0}, {"with timeouts", 5 * time.Second}} {
			t.Run(tc.name, func(t *testing.T) {
				ws := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ctx, stop := WatchClient(w, r.Context())
					if ctx == r.Context() {
						t.Error("request not watched")
					}
					stop()
					stop() // idempotent
					if ctx.Err() != nil {
						t.Errorf("context canceled by stop: %v", context.Cause(ctx))
					}
					io.WriteString(w, "ok "+r.URL.Path)
				}), func(s *Server) { s.ReadHeaderTimeout, s.IdleTimeout = tc.timeouts, tc.timeouts })
				rc := ws.dial()
				for _, path := range []string{"/one", "/two", "/three"} {
					rc.send("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
					resp, body := rc.response("GET")
					if resp.StatusCode != 200 || body != "ok "+path || resp.Close {
						t.Fatalf("%s: %d %q close=%v", path, resp.StatusCode, body, resp.Close)
					}
				}
				waitNoWatchGoroutine(t)
			})
		}
	})
}

// A pipelined request is not lost to the watch: sent in one write with the
// first, it is buffered and the first request is not watched; sent while the
// first handler watches, its first byte is taken by the background read and
// handed to the next request.
func TestWatchClientPipelined(t *testing.T) {
	forEachTransport(t, func(t *testing.T, start func(http.Handler, ...func(*Server)) *watchServer) {
		t.Run("one write", func(t *testing.T) {
			ws := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, stop := WatchClient(w, r.Context())
				defer stop()
				if r.URL.Path == "/first" && ctx != r.Context() {
					t.Error("watched with a pipelined request buffered")
				}
				io.WriteString(w, r.Method+" "+r.URL.Path)
			}))
			rc := ws.dial()
			rc.send("GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n")
			for _, want := range []string{"GET /first", "GET /second"} {
				if resp, body := rc.response("GET"); resp.StatusCode != 200 || body != want {
					t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
				}
			}
		})
		t.Run("during the watch", func(t *testing.T) {
			watching := make(chan struct{})
			ws := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/first" {
					ctx, stop := WatchClient(w, r.Context())
					wt := responseOf(w).c.watch
					if wt == nil {
						t.Error("request not watched")
						return
					}
					close(watching)
					select {
					case <-wt.done: // the background read took a byte
					case <-time.After(5 * time.Second):
						t.Error("the background read did not return")
					}
					stop()
					if ctx.Err() != nil {
						t.Errorf("a pipelined request canceled the context: %v", context.Cause(ctx))
					}
				}
				io.WriteString(w, r.Method+" "+r.URL.Path)
			}))
			rc := ws.dial()
			rc.send("GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
			<-watching
			rc.send("GET /second HTTP/1.1\r\nHost: a\r\n\r\n")
			for _, want := range []string{"GET /first", "GET /second"} {
				if resp, body := rc.response("GET"); resp.StatusCode != 200 || body != want {
					t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
				}
			}
		})
	})
}

// A handler that hijacks while watching finds a byte the background read
// took buffered in the hijacked reader.
func TestWatchClientHijack(t *testing.T) {
	watching := make(chan struct{})
	got := make(chan string, 1)
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = WatchClient(w, r.Context())
		wt := responseOf(w).c.watch
		close(watching)
		<-wt.done
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		if ctx, _ := WatchClient(w, r.Context()); ctx != r.Context() {
			t.Error("hijacked connection watched")
		}
		// Like many hijackers, take what brw buffered, then read conn.
		pre, _ := brw.Reader.Peek(brw.Reader.Buffered())
		line := string(pre)
		var b [1]byte
		for !strings.HasSuffix(line, "\n") {
			if _, err := conn.Read(b[:]); err != nil {
				break
			}
			line += string(b[:])
		}
		got <- line
	}))
	rc := ts.dial()
	rc.send("GET /ws HTTP/1.1\r\nHost: a\r\n\r\n")
	<-watching
	rc.send("hello\n")
	if line := <-got; line != "hello\n" {
		t.Fatalf("hijacker read %q", line)
	}
	waitNoWatchGoroutine(t)
}

// unwrapWriter is a middleware's writer exposing the one it wraps.
type unwrapWriter struct{ http.ResponseWriter }

func (u unwrapWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// WatchClient watches only when nothing the request still has to read could
// be taken by the background read; otherwise it returns parent.
func TestWatchClientWhenNotWatched(t *testing.T) {
	type check func(w http.ResponseWriter, r *http.Request) (watched bool)
	watch := func(w http.ResponseWriter, r *http.Request) bool {
		ctx, stop := WatchClient(w, r.Context())
		defer stop()
		return ctx != r.Context()
	}
	const post = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
	for _, tc := range []struct {
		name    string
		request string
		later   string // sent once the handler checked
		check   check
		want    bool
	}{
		{"GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "", watch, true},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", "", watch, true},
		{"body buffered", post + "hello", "", watch, false},
		{"body not yet sent", post, "hello", watch, false},
		{"chunked body not yet sent", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
			"5\r\nhello\r\n0\r\n\r\n", watch, false},
		{"body partly read", post + "he", "llo",
			func(w http.ResponseWriter, r *http.Request) bool {
				var b [2]byte
				io.ReadFull(r.Body, b[:])
				return watch(w, r)
			}, false},
		{"body read to its end", post + "hello", "",
			func(w http.ResponseWriter, r *http.Request) bool {
				io.ReadAll(r.Body)
				return watch(w, r)
			}, true},
		{"wrapped writer", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "",
			func(w http.ResponseWriter, r *http.Request) bool { return watch(unwrapWriter{unwrapWriter{w}}, r) }, true},
		{"other writer", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "",
			func(w http.ResponseWriter, r *http.Request) bool { return watch(httptest.NewRecorder(), r) }, false},
		{"after stop", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "",
			func(w http.ResponseWriter, r *http.Request) bool {
				_, stop := WatchClient(w, r.Context())
				stop()
				return watch(w, r)
			}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			watched := make(chan bool, 1)
			ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				watched <- tc.check(w, r)
				b, _ := io.ReadAll(r.Body)
				io.WriteString(w, "done "+string(b))
			}))
			rc := ts.dial()
			rc.send(tc.request)
			if got := <-watched; got != tc.want {
				t.Errorf("watched = %v, want %v", got, tc.want)
			}
			if tc.later != "" {
				rc.send(tc.later)
			}
			resp, body := rc.response("GET")
			if resp.StatusCode != 200 || !strings.HasPrefix(body, "done") {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
			// What the handler left of a body reaches it intact.
			want := map[string]string{"body partly read": "done llo", "body read to its end": "done "}[tc.name]
			if want == "" && strings.HasPrefix(tc.request, "POST") {
				want = "done hello"
			}
			if want != "" && body != want {
				t.Fatalf("body %q, want %q", body, want)
			}
		})
	}
}

// A second WatchClient while the first watches shares its background read:
// both contexts are canceled when the client goes.
func TestWatchClientNested(t *testing.T) {
	done := make(chan [2]error, 1)
	watching := make(chan struct{})
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		outer, stop := WatchClient(w, r.Context())
		defer stop()
		// inner's parent is not canceled with outer's: only the shared
		// watch cancels it.
		inner, _ := WatchClient(unwrapWriter{w}, context.WithoutCancel(r.Context()))
		wt := responseOf(w).c.watch
		wt.mu.Lock()
		if n := len(wt.cancels); n != 2 {
			t.Errorf("%d contexts on the watch, want 2", n)
		}
		wt.mu.Unlock()
		close(watching)
		<-outer.Done()
		select {
		case <-inner.Done():
		case <-time.After(5 * time.Second):
		}
		done <- [2]error{context.Cause(outer), context.Cause(inner)}
	}))
	rc := ts.dial()
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-watching
	rc.Close()
	for i, err := range <-done {
		if !errors.Is(err, ErrClientGone) {
			t.Errorf("context %d: cause %v", i, err)
		}
	}
}

// A handler that returns (or panics) without calling stop leaks no
// goroutine; its context is canceled once it returned, not by the client;
// calling stop afterwards is a no-op.
func TestWatchClientNoLeak(t *testing.T) {
	type kept struct {
		ctx  context.Context
		stop func()
	}
	handlers := map[string]func(w http.ResponseWriter, r *http.Request) kept{
		"returns without stop": func(w http.ResponseWriter, r *http.Request) kept {
			ctx, stop := WatchClient(w, r.Context())
			io.WriteString(w, "done")
			return kept{ctx, stop}
		},
		"writes while watching": func(w http.ResponseWriter, r *http.Request) kept {
			ctx, stop := WatchClient(w, r.Context())
			w.Header().Set("Content-Length", "4")
			io.WriteString(w, "done")
			http.NewResponseController(w).Flush()
			return kept{ctx, stop}
		},
		"stops twice": func(w http.ResponseWriter, r *http.Request) kept {
			ctx, stop := WatchClient(w, r.Context())
			stop()
			stop()
			io.WriteString(w, "done")
			return kept{ctx, stop}
		},
	}
	for name, h := range handlers {
		t.Run(name, func(t *testing.T) {
			keptc := make(chan kept, 2)
			ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				keptc <- h(w, r)
			}))
			rc := ts.dial()
			for i := 0; i < 2; i++ {
				rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
				resp, body := rc.response("GET")
				if resp.StatusCode != 200 || body != "done" || resp.Close {
					t.Fatalf("%d %q close=%v", resp.StatusCode, body, resp.Close)
				}
				k := <-keptc
				// The handler has returned: its watch is finished and
				// the context canceled (a flushed response may arrive
				// just before).
				select {
				case <-k.ctx.Done():
				case <-time.After(5 * time.Second):
				}
				if err := context.Cause(k.ctx); err != context.Canceled {
					t.Fatalf("context after the handler returned: cause %v, want context.Canceled", err)
				}
				k.stop() // after the handler: no-op
			}
			waitNoWatchGoroutine(t)
		})
	}
	t.Run("panics", func(t *testing.T) {
		ctxc := make(chan context.Context, 1)
		ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A parent the connection does not cancel: only the watch does.
			ctx, _ := WatchClient(w, context.WithoutCancel(r.Context()))
			ctxc <- ctx
			panic("boom")
		}))
		rc := ts.dial()
		rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, _ := rc.response("GET"); resp.StatusCode != 500 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		ctx := <-ctxc
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
		// Ended with the handler, not by the server closing the connection
		// under a still running read.
		if err := context.Cause(ctx); err != context.Canceled {
			t.Fatalf("cause %v, want context.Canceled", err)
		}
		waitNoWatchGoroutine(t)
	})
}

// BenchmarkLoopback serves keep-alive requests one at a time over loopback
// TCP: "plain" is the handler that does not watch (compare with a build
// without WatchClient), "watch" adds WatchClient and stop to it.
func BenchmarkLoopback(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchLoopback(b, http.HandlerFunc(benchHandler)) })
	b.Run("watch", func(b *testing.B) {
		benchLoopback(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, stop := WatchClient(w, r.Context())
			stop()
			benchHandler(w, r)
		}))
	})
}

func benchLoopback(b *testing.B, h http.Handler) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &Server{Handler: h}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	req := &http.Request{Method: "GET"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := io.WriteString(c, benchRequest); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 200 {
			b.Fatal(resp.StatusCode, err)
		}
		resp.Body.Close()
	}
}
