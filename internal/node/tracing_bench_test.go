package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/tracetest"
)

// BenchmarkEdgeProxyTraced is BenchmarkEdgeProxy with tracing on: every
// request sampled and exported over OTLP/gRPC to a collector that discards
// (sampled), or none sampled (ratio 0: the context is still propagated).
func BenchmarkEdgeProxyTraced(b *testing.B) {
	for _, mode := range []struct {
		name  string
		ratio string
	}{{"sampled", "1"}, {"unsampled", "0"}} {
		b.Run(mode.name, func(b *testing.B) {
			col, err := tracetest.StartDiscardCollector()
			if err != nil {
				b.Fatal(err)
			}
			defer col.Stop()
			body := strings.Repeat("x", 1024)
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1024")
				_, _ = io.WriteString(w, body)
			}))
			defer backend.Close()
			t := &testing.T{}
			e := startNode(b, t, fmt.Sprintf(`
tracing: {endpoint: %q, insecure: true, sampling: {ratio: %s}}
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - {name: r, match: {path: {prefix: /}}, upstream: u}
upstreams:
  - {name: u, protocol: http1, endpoints: [{address: %q}]}
`, col.Addr(), mode.ratio, addr(backend)), Options{})
			benchGets(b, e)
			b.StopTimer()
			if mode.ratio == "1" {
				_ = e.node.Tracer().ForceFlush(context.Background())
				if col.Bytes() == 0 {
					b.Fatal("nothing exported")
				}
			}
		})
	}
}
