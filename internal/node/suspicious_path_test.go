package node

import (
	"fmt"
	"strings"
	"testing"
)

// Paths lenient backends read as traversal are refused at the edge, unless
// the route takes them; ordinary ';' parameters pass.
func TestSuspiciousPathsAreRefused(t *testing.T) {
	b := echoBackend(t, "b")
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - {name: public, match: {path: {prefix: /public}}, upstream: b}
  - {name: legacy, match: {path: {prefix: /legacy}}, upstream: b, lenient_paths: true}
upstreams: [{name: b, endpoints: [{address: %q}]}]
`, addr(b)))
	addr := strings.TrimPrefix(e.url("public"), "http://")
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/public/..;/admin", 400},
		{"/public/%2e%2e;x/admin", 400},
		{"/public/.;/x", 400},
		{"/public/%C0%AF%C0%AFadmin", 400},
		{"/public/%E0%80%AE%E0%80%AE/admin", 400},
		{"/public/a;v=1/b", 200},
		{"/public/caf%C3%A9", 200},
		{"/legacy/..;/x", 200},
		{"/legacy/%C0%AF", 200},
	} {
		resp, _ := rawExchange(t, addr, "GET "+c.path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d", c.path, resp.StatusCode, c.status)
		}
	}
}
