package node

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A client that stops reading its response is dropped after
// server.write_timeout without progress, and the upstream request with it:
// a slow reader cannot hold a connection (and an upstream slot) forever.
func TestClientThatStopsReadingIsDropped(t *testing.T) {
	done := make(chan error, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		var err error
		for i := 0; i < 1024 && err == nil; i++ { // 64 MiB
			_, err = w.Write(chunk)
		}
		done <- err
	}))
	t.Cleanup(backend.Close)
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
server: {write_timeout: 300ms}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: b}]
upstreams: [{name: b, endpoints: [{address: %q}]}]
`, addr(backend)))
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url("public"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096) // the client reads nothing: keep little in flight
	}
	fmt.Fprint(conn, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the backend wrote 64 MiB to a client that reads nothing")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request still runs 5 s after the client stopped reading")
	}
}
