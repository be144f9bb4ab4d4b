package dataplane

import (
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// A section no stage of the node acts on is refused: a route must never
// serve as if its auth or transform were applied when nothing applies it.
func TestUnenforcedSectionsRefused(t *testing.T) {
	cluster := testCluster(t, "b", "127.0.0.1:1", false)
	for _, c := range []struct {
		name  string
		route config.Route
	}{
		{"auth", config.Route{Auth: &config.RouteAuth{Methods: []string{"k"}}}},
		{"transform", config.Route{Transform: &config.Transform{}}},
	} {
		c.route.Name, c.route.Upstream = "r", "b"
		c.route.Match.Path = &config.Path{Prefix: "/"}
		cfg := &config.Config{Listeners: []config.Listener{{Name: "l", Address: "127.0.0.1:0"}}, Routes: []config.Route{c.route}}
		_, err := Build(cfg, Deps{Metrics: telemetry.NewMetrics(), Clusters: map[string]*proxy.Cluster{"b": cluster}})
		if err == nil || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s without its stage: %v", c.name, err)
		}
	}
}
