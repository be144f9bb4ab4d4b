package ratelimit

import (
	"testing"
	"time"
)

var (
	openPolicy   = PolicyConfig{Name: "open", Limit: 100, Window: time.Minute, Isolation: Open}
	closedPolicy = PolicyConfig{Name: "closed", Limit: 100, Window: time.Minute, Isolation: Closed}
)

// TestIsolation covers the three states a node can be in: clustered
// (peers' counts count), isolated after having had peers (open: own counts
// against the full limit; closed: deny), and back.
func TestIsolation(t *testing.T) {
	s := newSingle(t, Options{}, openPolicy, closedPolicy).estimateOnly()
	w := win(openPolicy, t0)
	s.setPeers(2)
	for _, pc := range []PolicyConfig{openPolicy, closedPolicy} {
		mustMerge(t, s.l, countsMsg("a", pc, "k", map[int64]int64{w: 60}))
	}
	open, closed := s.l.Policy("open"), s.l.Policy("closed")
	if !open.AllowN("k", 10) || !closed.AllowN("k", 10) {
		t.Fatal("clustered: denied under the limit")
	}

	s.setPeers(0) // every peer gone: isolated
	if closed.Allow("k") {
		t.Error("closed: admitted while isolated")
	}
	d := closed.Decide("k", 1)
	if d.Allowed || d.RetryAfter != DefaultInterval {
		t.Errorf("closed decision while isolated: %+v", d)
	}
	// Open ignores the peers' 60 it can no longer follow: 90 more locally.
	if got := admitRun(open, "k"); got != 90 {
		t.Errorf("open: admitted %d while isolated, want 90", got)
	}

	s.setPeers(1) // a peer is back: the cluster's counts apply again
	if got := admitRun(closed, "k"); got != 30 {
		t.Errorf("closed: admitted %d after rejoining, want 30", got)
	}
	if open.Allow("k") {
		t.Error("open: admitted past the cluster's limit after rejoining")
	}
}

// TestStandaloneVersusExpectPeers: a node that has never seen a peer is a
// one-node cluster and admits even for closed policies, unless it is
// configured to expect peers.
func TestStandaloneVersusExpectPeers(t *testing.T) {
	alone := newSingle(t, Options{}, closedPolicy)
	if got := admitRun(alone.l.Policy("closed"), "k"); got != 100 {
		t.Errorf("standalone closed policy admitted %d, want 100", got)
	}
	joining := newSingle(t, Options{ExpectPeers: true}, closedPolicy)
	if joining.l.Policy("closed").Allow("k") {
		t.Error("a node expecting peers admitted under a closed policy before seeing one")
	}
	joining.setPeers(1)
	if !joining.l.Policy("closed").Allow("k") {
		t.Error("denied after the first peer appeared")
	}
}
