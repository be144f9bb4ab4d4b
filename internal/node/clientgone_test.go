package node

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// stallingBackend answers /sse with the head of an event stream and one
// event, then nothing; any other request with nothing at all. Each request
// is reported on arrived, and its connection on gone when the edge closes it.
func stallingBackend(t *testing.T) (addr string, arrived chan string, gone chan time.Time) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	gone = make(chan time.Time, 8)
	arrived = make(chan string, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				select {
				case arrived <- req.URL.Path:
				default: // nobody counts them
				}
				if req.URL.Path == "/sse" {
					fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
					fmt.Fprint(c, "d\r\ndata: first\n\n\r\n")
				}
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
				_, _ = br.ReadByte() // until the edge closes the connection (or the test ends)
				gone <- time.Now()
			}()
		}
	}()
	return ln.Addr().String(), arrived, gone
}

// TestClientGoneCancelsUpstream (issue 15): a client that goes away
// cancels its upstream request at once on every path — waiting for the
// response head on the fast HTTP/1.1 pool (a GET), on the standard
// transport (a POST with a body), and while an event stream's body is
// relayed. Before, the fast pool and the body copy ignored the client, so
// the upstream request stayed open, holding its admission slot, until the
// route's timeout (15 s) or the stream's next event.
func TestClientGoneCancelsUpstream(t *testing.T) {
	backend, arrived, gone := stallingBackend(t)
	e := oneRouteEdge(t, "", backend)
	for _, tc := range []struct{ name, req, wait string }{
		{"awaiting headers, fast pool", "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n", ""},
		{"awaiting headers, with a body", "POST /hang HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", ""},
		{"event stream", "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n", "data: first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := dialEdge(t, e)
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprint(conn, tc.req)
			if tc.wait != "" {
				br := bufio.NewReader(conn)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("reading the stream: %v", err)
					}
					if strings.Contains(line, tc.wait) {
						break
					}
				}
			} else {
				<-arrived
				// Past the fast pool's watchAfter: the slow path.
				time.Sleep(100 * time.Millisecond)
			}
			closed := time.Now()
			conn.Close()
			select {
			case at := <-gone:
				d := at.Sub(closed)
				t.Logf("upstream connection closed %v after the client left", d.Round(time.Millisecond))
				if d > time.Second {
					t.Errorf("upstream request outlived its client by %v", d)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("the upstream request still open 3 s after its client left")
			}
		})
	}
}

// TestClientGoneLeavesTheQueue: a request waiting for an admission slot
// leaves the queue when its client goes, instead of waiting out the route's
// timeout in a place another client could take.
func TestClientGoneLeavesTheQueue(t *testing.T) {
	backend, arrived, _ := stallingBackend(t)
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: u}]
upstreams:
  - {name: u, endpoints: [{address: %q}], max_connections: 1, max_pending: 1}
`, backend))
	queued := func() int {
		e.node.mu.Lock()
		defer e.node.mu.Unlock()
		return e.node.clusters["u"].cluster.Upstream.Queued()
	}
	first := dialEdge(t, e)
	defer first.Close()
	fmt.Fprint(first, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n") // holds the one slot
	<-arrived
	second := dialEdge(t, e)
	fmt.Fprint(second, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, 5*time.Second, "the second request queued", func() bool { return queued() == 1 })
	second.Close()
	eventually(t, 2*time.Second, "the queue empty once its client left", func() bool { return queued() == 0 })
}
