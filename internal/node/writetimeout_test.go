package node

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
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
	conn := dialEdge(t, oneRouteEdge(t, "server: {write_timeout: 300ms}\n", addr(backend)))
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
