// Command backend is the upstream of the benchmark harness: it answers every
// request, on any path and method, with the same body over keep-alive
// HTTP/1.1 — 1 KiB of filler text by default, or with -json a JSON object
// of the same size naming the server:
//
//	{"server":"127.0.0.1:PORT","pad":"xxx…"}
//
// With -delay it waits that long before answering each request (the work of
// a slower service; requests wait concurrently). With -cache-control it
// sends that Cache-Control field (the cache suite's max-age=3600). The harness starts it pinned
// to the proxy's core with GOMAXPROCS=1.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	size := flag.Int("size", 1024, "response body size in bytes")
	asJSON := flag.Bool("json", false, "answer a JSON object of -size bytes naming the server (application/json)")
	delay := flag.Duration("delay", 0, "wait this long before answering each request")
	cacheControl := flag.String("cache-control", "", "send this Cache-Control field (e.g. max-age=3600)")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("backend: %v", err)
	}
	body, ctype := bytes.Repeat([]byte("x"), *size), "text/plain"
	if *asJSON {
		if body, err = jsonBody(ln.Addr().String(), *size); err != nil {
			log.Fatalf("backend: %v", err)
		}
		ctype = "application/json"
	}
	length := strconv.Itoa(len(body))
	var cc []string
	if *cacheControl != "" {
		cc = []string{*cacheControl}
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Drain any request body so the connection stays reusable.
		_, _ = io.Copy(io.Discard, r.Body)
		if *delay > 0 {
			time.Sleep(*delay)
		}
		hdr := w.Header()
		hdr["Content-Type"] = []string{ctype}
		hdr["Content-Length"] = []string{length}
		if cc != nil {
			hdr["Cache-Control"] = cc
		}
		_, _ = w.Write(body)
	})

	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	fmt.Printf("backend listening on %s (%d bytes of %s, delay %v, Cache-Control %q)\n", ln.Addr(), len(body), ctype, *delay, *cacheControl)

	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatalf("backend: %v", err)
	}
}

// jsonBody is {"server":server,"pad":"xxx…"}, padded to exactly size bytes.
func jsonBody(server string, size int) ([]byte, error) {
	name, err := json.Marshal(server)
	if err != nil {
		return nil, err
	}
	head := `{"server":` + string(name) + `,"pad":"`
	const tail = `"}`
	pad := size - len(head) - len(tail)
	if pad < 0 {
		return nil, fmt.Errorf("-size %d: a JSON body needs at least %d bytes", size, len(head)+len(tail))
	}
	return []byte(head + string(bytes.Repeat([]byte("x"), pad)) + tail), nil
}
