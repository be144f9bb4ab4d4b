package h1server

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// A handler that hands the body to another goroutine and returns before it
// is read (as a proxy does when the upstream answers early): the response
// goes out, the reader is unblocked without a race, and the connection is
// closed because the rest of the body cannot frame a next request.
func TestBodyStillReadAfterHandlerReturns(t *testing.T) {
	readerDone := make(chan error, 1)
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		go func() {
			_, err := io.ReadAll(r.Body)
			readerDone <- err
		}()
		time.Sleep(20 * time.Millisecond) // the reader is blocked in Read now
		w.WriteHeader(503)
	}))
	rc := ts.dial()
	rc.send("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
	resp, _ := rc.response("PUT")
	if resp.StatusCode != 503 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	select {
	case err := <-readerDone:
		if err == nil {
			t.Fatal("the abandoned reader saw a complete body")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the abandoned reader is still blocked")
	}
	if !rc.closed() {
		t.Fatal("connection kept after an abandoned body")
	}
}
