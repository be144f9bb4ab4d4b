package h1server

import (
	"bufio"
	"bytes"
	"io"
	"log"
	"net/http"
	"testing"
)

const benchRequest = "GET /api/v1/users/123?fields=name HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36\r\n" +
	"Accept: application/json\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Connection: keep-alive\r\n" +
	"X-Request-Id: 0f8fad5b-d9cb-469f-a165-70867728950e\r\n" +
	"Cookie: session=abc123; theme=dark\r\n" +
	"\r\n"

var (
	benchBody = bytes.Repeat([]byte("x"), 1024)
	benchCL   = []string{"1024"}
	benchCT   = []string{"application/json"}
)

func benchHandler(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = benchCT
	h["Content-Length"] = benchCL
	w.Write(benchBody)
}

// checkResponses verifies that every response arrived (each is over 1 KiB
// and the first parses as a 200 with the body).
func checkResponses(b *testing.B, c *memConn, n int) {
	if c.written < int64(n)*1024 {
		b.Fatalf("wrote %d bytes for %d requests", c.written, n)
	}
	if c.keepW {
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(c.keep)), nil)
		if err != nil || resp.StatusCode != 200 || resp.ContentLength != 1024 {
			b.Fatalf("first response: %v %v", resp, err)
		}
	}
}

func BenchmarkServeKeepAlive(b *testing.B) {
	srv := &Server{Handler: http.HandlerFunc(benchHandler)}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRequest)))
	c := newMemConn(repeatSource([]byte(benchRequest), b.N))
	c.keepW = b.N < 10
	b.ResetTimer()
	srv.ServeConn(c)
	b.StopTimer()
	checkResponses(b, c, b.N)
}

func BenchmarkNetHTTPKeepAlive(b *testing.B) {
	srv := &http.Server{Handler: http.HandlerFunc(benchHandler), ErrorLog: log.New(io.Discard, "", 0)}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRequest)))
	c := newMemConn(repeatSource([]byte(benchRequest), b.N))
	c.keepW = b.N < 10
	ln := &oneConnListener{c: c, done: make(chan struct{})}
	b.ResetTimer()
	go srv.Serve(ln)
	<-c.closed
	b.StopTimer()
	srv.Close()
	checkResponses(b, c, b.N)
}
