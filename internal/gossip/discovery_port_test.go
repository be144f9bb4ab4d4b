package gossip

import "testing"

// A sidecar publishes its membership before its inbound listener is bound;
// bound to port 0 (tests, hosts that let the kernel pick), it first offers
// "ip:0" and corrects it once bound. No one can connect to port 0: such an
// entry is not an endpoint (an edge that took it got connection refused,
// ejected the endpoint, and answered the first requests 502/503).
func TestDiscoveryIgnoresAnUnboundInbound(t *testing.T) {
	s := &ServiceSource{service: "pricing"}
	m := Member{Name: "p", State: Alive, Meta: Meta{Role: "sidecar", Healthy: true, Service: "pricing",
		ID: "spiffe://example.org/pricing", Inbound: "127.0.0.1:0"}}
	if s.offers(m) {
		t.Fatal("an inbound on port 0 offered as an endpoint")
	}
	m.Meta.Inbound = "127.0.0.1:15443"
	if !s.offers(m) {
		t.Fatal("a bound inbound not offered")
	}
}
