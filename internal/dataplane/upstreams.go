package dataplane

import (
	"fmt"
	"net/http"

	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/proxy"
)

// upstreams is the round-trip API a snapshot offers its policy stages: its
// own clusters, through forwarders like the routes'.
type upstreams struct{ d *Deps }

func (u *upstreams) Caller(name string, o policy.CallOptions) (http.RoundTripper, error) {
	cluster := u.d.Clusters[name]
	if cluster == nil {
		return nil, fmt.Errorf("upstream %q has no cluster", name)
	}
	label := o.Name
	if label == "" {
		label = name
	}
	return proxy.NewCaller(label, o.Timeout.D(), o.Retry, u.d.forwarderOptions(cluster)), nil
}
