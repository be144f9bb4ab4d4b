package node

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An edge refuses a request body over its default limit (10 MiB) unless
// the file says otherwise; `unlimited` lifts it.
func TestEdgeHasADefaultBodyLimit(t *testing.T) {
	backend := echoBackend(t, "b")
	for _, c := range []struct {
		server string
		want   int
	}{
		{"", 413},
		{"server: {max_body_bytes: unlimited}\n", 200},
		{"server: {max_body_bytes: 20MiB}\n", 200},
	} {
		conn := dialEdge(t, oneRouteEdge(t, c.server, addr(backend)))
		const size = 11 << 20
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
		go func() {
			chunk := make([]byte, 64<<10)
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := conn.Write(chunk); err != nil {
					return
				}
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%q: %v", c.server, err)
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != c.want {
			t.Errorf("server %q: %d, want %d", c.server, resp.StatusCode, c.want)
		}
	}
}

// oneRouteEdge starts an edge whose one route sends everything to backend,
// with server (YAML, may be "") at the top of its file.
func oneRouteEdge(t *testing.T, server, backend string) *edge {
	t.Helper()
	return startEdge(t, server+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: b}]
upstreams: [{name: b, endpoints: [{address: %q}]}]
`, backend))
}

// dialEdge opens a raw connection to e's listener public.
func dialEdge(t *testing.T, e *edge) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url("public"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}
