package ratelimit

import (
	"strings"
	"testing"
	"time"
)

var short = PolicyConfig{Name: "short", Limit: 5, Window: time.Second}

// TestKeyExpiry: a key with no local traffic and no peer report for two
// windows is dropped on the next flush (its counters stay in the policy's
// totals); a key kept alive by a peer's reports is not; a peer's records go
// once their windows are dead.
func TestKeyExpiry(t *testing.T) {
	s := newSingle(t, Options{}, short)
	p := s.l.Policy("short")
	p.Allow("local")
	mustMerge(t, s.l, countsMsg("a", short, "remote", map[int64]int64{win(short, t0): 3}))
	s.clk.Advance(time.Second)
	s.l.Flush()
	if n := p.Stats().Keys; n != 2 {
		t.Fatalf("after one window: %d keys, want 2", n)
	}
	// A window later the peer reports "remote" again, and "local" is used
	// again: both stay; then a third key, seen once, expires alone.
	p.Allow("once")
	s.clk.Advance(time.Second)
	mustMerge(t, s.l, countsMsg("a", short, "remote", map[int64]int64{win(short, s.clk.Now()): 1}))
	p.Allow("local")
	s.clk.Advance(time.Second)
	s.l.Flush()
	if got := keyNames(p); got != "local,remote" {
		t.Fatalf("keys %s, want local,remote", got)
	}
	s.clk.Advance(2 * time.Second)
	s.l.Flush()
	st := p.Stats()
	if st.Keys != 0 || st.Admitted != 3 {
		t.Fatalf("after two idle windows: %+v", st)
	}
	if len(s.l.names.m) != 0 {
		t.Fatalf("node names still interned: %v", s.l.names.m)
	}
}

// TestExpiredEntryNotLost: a caller holding an entry that expires under it
// counts into the key's new entry, not the dead one.
func TestExpiredEntryNotLost(t *testing.T) {
	s := newSingle(t, Options{}, short)
	p := s.l.Policy("short")
	p.Allow("k")
	old := p.keys.get("k")
	s.clk.Advance(3 * time.Second)
	s.l.Flush()
	if !old.dead {
		t.Fatal("entry not expired")
	}
	// Decide with the stale entry, as a request racing the expiry would.
	if d := p.decide(old, "k", s.clk.Now().UnixNano(), 1); !d.Allowed {
		t.Fatal("denied")
	}
	if e := p.keys.get("k"); e == nil || e == old || e.admitted.Load() != 1 || old.admitted.Load() != 1 {
		t.Fatal("the admission did not land in a live entry")
	}
}

// TestKeyCap: beyond MaxKeys, new keys (and keys too long to gossip) share
// the overflow key's budget; peers' new keys are dropped and counted.
func TestKeyCap(t *testing.T) {
	pc := short
	pc.MaxKeys = 3
	s := newSingle(t, Options{}, pc)
	p := s.l.Policy("short")
	for _, k := range []string{"a", "b", "c"} {
		if !p.Allow(k) {
			t.Fatalf("%s denied", k)
		}
	}
	admitted := 0
	for _, k := range []string{"d", "e", strings.Repeat("x", maxKeyLen+1), "f", "g", "h", "i"} {
		if p.Allow(k) {
			admitted++
		}
	}
	if admitted != 5 {
		t.Errorf("overflow keys admitted %d together, want the limit 5", admitted)
	}
	mustMerge(t, s.l, countsMsg("peer", pc, "z", map[int64]int64{win(pc, t0): 1}))
	st := p.Stats()
	if st.Keys != 4 || st.Overflowed != 7 || st.DroppedPeerKeys != 1 {
		t.Fatalf("stats %+v, want 4 keys (3 + overflow), 7 overflowed, 1 dropped", st)
	}
	if got := keyNames(p); got != OverflowKey+",a,b,c" {
		t.Fatalf("keys %q", got)
	}
}

func keyNames(p *Policy) string {
	var names []string
	for _, k := range p.List() {
		names = append(names, k.Key)
	}
	return strings.Join(names, ",")
}
