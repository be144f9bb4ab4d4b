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

// A handler that answers without reading the body, while the client has not
// sent all of it yet (an early 401, or an upstream that answered before the
// upload ended): the answer goes out at once, not after the rest of the
// body; the rest, when it comes, is dropped and the connection serves the
// next request.
func TestEarlyAnswerNotHeldForTheRestOfTheBody(t *testing.T) {
	ts := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	rc := ts.dial()
	rc.send("PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
	rc.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, _ := rc.response("PUT") // fails the test on a timeout
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rc.send("56789")
	rc.send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := rc.response("GET"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("next request: status %d", resp.StatusCode)
	}
}
