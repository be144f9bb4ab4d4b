package node

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A request body that stalls gets 408 once no byte has come for
// server.body_read_timeout, and the upstream request is abandoned.
func TestStalledRequestBodyGets408(t *testing.T) {
	got := make(chan error, 1)
	backend := echoBackendFunc(t, func(r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		got <- err
	})
	conn := dialEdge(t, oneRouteEdge(t, "server: {body_read_timeout: 300ms}\n", backend))
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	// Larger than proxy.RequestBufferBytes: the body streams to the
	// upstream (a smaller one never reaches it: TestStalledSmallBodyNeverReachesUpstream).
	fmt.Fprint(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nhello")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 408 || !strings.Contains(string(body), "request body timed out") || time.Since(start) > 2*time.Second {
		t.Fatalf("%d %s after %s", resp.StatusCode, body, time.Since(start))
	}
	select {
	case err := <-got:
		if err == nil {
			t.Error("the upstream read a whole body")
		}
	case <-time.After(3 * time.Second):
		t.Error("the upstream request was not abandoned")
	}
}

// echoBackendFunc is a backend that runs f on each request and answers 200.
func echoBackendFunc(t *testing.T, f func(*http.Request)) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f(r) }))
	t.Cleanup(s.Close)
	return addr(s)
}
