package h1server

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// FuzzParseRequest feeds arbitrary bytes as a connection's input. The server
// must not panic or hang, and every request it hands to the handler must
// satisfy the parser's invariants.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		benchRequest,
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTrailer: X\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nX: 1\r\n\r\n",
		"GET http://h:1/a%20b?q HTTP/1.1\r\nHost: h\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		srv := &Server{
			MaxHeaderBytes: 8 << 10,
			ErrorLog:       quiet,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				checkInvariants(t, r)
				func() {
					defer func() {
						if v := recover(); v != nil {
							t.Fatalf("panic reading body: %v", v)
						}
					}()
					n, err := io.Copy(io.Discard, r.Body)
					if err == nil && r.ContentLength >= 0 && n != r.ContentLength {
						t.Errorf("read %d body bytes, Content-Length %d", n, r.ContentLength)
					}
				}()
				w.Header().Set("Trailer", "X-T")
				w.Write([]byte("ok"))
				w.Header().Set("X-T", "v")
			}),
		}
		c := newMemConn(bytesSource(data))
		srv.ServeConn(c) // returns at EOF
	})
}

func checkInvariants(t *testing.T, r *http.Request) {
	t.Helper()
	if r.Method == "" {
		t.Fatal("empty method")
	}
	for i := 0; i < len(r.Method); i++ {
		if !isToken[r.Method[i]] {
			t.Fatalf("method %q is not a token", r.Method)
		}
	}
	if p := r.URL.Path; !strings.HasPrefix(p, "/") && p != "*" {
		t.Fatalf("path %q", p)
	}
	if r.ProtoMajor != 1 || r.ProtoMinor > 1 {
		t.Fatalf("proto %q", r.Proto)
	}
	switch {
	case r.ContentLength < -1:
		t.Fatalf("ContentLength %d", r.ContentLength)
	case r.ContentLength == -1:
		if len(r.TransferEncoding) != 1 || r.TransferEncoding[0] != "chunked" || r.ProtoMinor != 1 {
			t.Fatalf("unknown length without chunked: %v %s", r.TransferEncoding, r.Proto)
		}
	default:
		if len(r.TransferEncoding) != 0 {
			t.Fatalf("Content-Length %d with Transfer-Encoding %v", r.ContentLength, r.TransferEncoding)
		}
		if r.ContentLength == 0 && r.Body != http.NoBody {
			t.Fatal("empty body is not http.NoBody")
		}
	}
	if len(r.Header["Content-Length"]) > 1 || len(r.Header["Transfer-Encoding"]) != 0 || len(r.Header["Host"]) != 0 {
		t.Fatalf("framing headers %v", r.Header)
	}
	for k, vv := range r.Header {
		if !validFieldName(k) {
			t.Fatalf("header name %q", k)
		}
		for _, v := range vv {
			for i := 0; i < len(v); i++ {
				if !validFieldValueByte(v[i]) {
					t.Fatalf("header %s value %q", k, v)
				}
			}
			if v != strings.TrimSpace(v) && strings.Trim(v, " \t") != v {
				t.Fatalf("header %s value %q not trimmed", k, v)
			}
		}
	}
}
