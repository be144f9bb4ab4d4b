package ratelimit

import (
	"testing"
	"time"
)

// TestSilentMemberPresumedThenDropped: a member that never announces its
// holdings (a release without them, or a process without the limiter) is a
// candidate owner for warmUp after it is first seen, so that nodes starting
// together agree on owners before any announcement arrives, and not after:
// a key it would own is then owned here.
func TestSilentMemberPresumedThenDropped(t *testing.T) {
	pc := PolicyConfig{Name: "tier-free", Limit: 5, Window: time.Minute}
	var members []string
	s := newSingle(t, Options{Node: "self", Members: func() []string { return members }}, pc)
	members = []string{"ghost"}
	s.setPeers(1)
	p := s.l.Policy(pc.Name)
	key := ""
	for i := range 100 {
		k := string(rune('a'+i%26)) + string(rune('a'+i/26))
		if rendezvous("ghost", pc.Name, k) > rendezvous("self", pc.Name, k) {
			key = k
			break
		}
	}
	if key == "" {
		t.Fatal("no key owned by ghost")
	}
	if p.Allow(key) {
		t.Fatal("admitted while the silent member is presumed the owner")
	}
	s.clk.Advance(time.Duration(s.l.warmUp()) + time.Millisecond)
	if d := p.Decide(key, 1); !d.Allowed || d.Remaining != pc.Limit-1 {
		t.Fatalf("after warm-up: %+v; want admitted, Remaining %d: the silent member holds nothing", d, pc.Limit-1)
	}
}

// TestAnnouncedHoldingsDecideOwners: a peer's announcement decides whether
// it is a candidate, whatever the warm-up: announcing the policy makes it
// the owner of its keys at once, and announcing a list without it hands
// them back.
func TestAnnouncedHoldingsDecideOwners(t *testing.T) {
	pc := PolicyConfig{Name: "tier-free", Limit: 5, Window: time.Minute}
	s := newSingle(t, Options{Node: "self", Members: func() []string { return []string{"peer"} }}, pc)
	s.setPeers(1)
	s.clk.Advance(time.Duration(s.l.warmUp()) * 2) // past the presumption
	p := s.l.Policy(pc.Name)
	key := "k"
	for i := 0; rendezvous("peer", pc.Name, key) < rendezvous("self", pc.Name, key); i++ {
		key = "k" + string(rune('a'+i))
	}
	if !p.ownsKey(key) {
		t.Fatal("peer that never announced still a candidate after warm-up")
	}
	mustMerge(t, s.l, encodeHoldings("peer", []string{holdID(pc.Name, int64(pc.Window))}))
	if p.ownsKey(key) {
		t.Fatal("peer announced the policy, yet this node still owns its key")
	}
	mustMerge(t, s.l, encodeHoldings("peer", []string{holdID(pc.Name, int64(2*pc.Window))}))
	if !p.ownsKey(key) {
		t.Fatal("peer holds the policy with another window only, yet it owns the key")
	}
}

// TestAnnouncements: a node announces its tiny policies when it first sees
// a member (straight to the peers too), when the list changes, and every
// announceEvery flushes; the previous release's decoder reads the message
// and ignores it.
func TestAnnouncements(t *testing.T) {
	pc := PolicyConfig{Name: "tier-free", Limit: 5, Window: time.Minute}
	direct := 0
	members := []string{"peer"}
	s := newSingle(t, Options{Node: "self", Members: func() []string { return members },
		SendNow: func([]byte) { direct++ }}, pc)
	holds := func() (n int) {
		for _, m := range s.sent {
			if m.key == sendPrefix+"holds" {
				n++
				var dm message
				if err := decodeRelease1(m.msg, &dm); err != nil {
					t.Fatalf("previous release rejects the announcement: %v", err)
				}
			}
		}
		s.sent = s.sent[:0]
		return n
	}
	s.setPeers(1)
	if holds() != 1 || direct != 1 {
		t.Fatalf("first flush with a member: want one announcement, sent straight too (direct %d)", direct)
	}
	s.l.Flush()
	if holds() != 0 {
		t.Fatal("announced again with nothing new")
	}
	members = []string{"peer", "peer-2"}
	s.l.Flush()
	if holds() != 1 || direct != 2 {
		t.Fatal("a new member: want an announcement sent straight to the peers")
	}
	if err := s.l.SetPolicies([]PolicyConfig{pc, {Name: "tier-trial", Limit: 2, Window: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	s.l.Flush()
	if holds() != 1 || direct != 3 {
		t.Fatal("the list changed: want an announcement sent straight to the peers")
	}
	for range announceEvery {
		s.l.Flush()
	}
	if holds() != 1 || direct != 3 {
		t.Fatalf("want one periodic broadcast in %d flushes, not sent straight", announceEvery)
	}
}
