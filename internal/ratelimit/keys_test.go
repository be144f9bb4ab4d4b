package ratelimit

import (
	"strconv"
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

// TestKeyCap: at MaxKeys a new key takes the place of a cold one; keys too
// long to gossip share the overflow key's budget; peers' new keys are
// dropped and counted.
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
	for _, k := range []string{"d", "e", "f", "g", "h", "i"} {
		if d := p.Decide(k, 1); !d.Allowed || d.Remaining != pc.Limit-1 {
			t.Fatalf("new key %s at the cap: %+v, want its own budget", k, d)
		}
	}
	long := strings.Repeat("x", maxKeyLen+1)
	admitted := 0
	for range 7 {
		if p.Allow(long) {
			admitted++
		}
	}
	if admitted != 5 {
		t.Errorf("an over-long key admitted %d, want the overflow key's limit 5", admitted)
	}
	mustMerge(t, s.l, countsMsg("peer", pc, "z", map[int64]int64{win(pc, t0): 1}))
	st := p.Stats()
	if st.Keys != 4 || st.Evicted != 6 || st.Overflowed != 7 || st.DroppedPeerKeys != 1 {
		t.Fatalf("stats %+v, want 4 keys (3 + overflow), 6 evicted, 7 overflowed, 1 dropped", st)
	}
	if got := keyNames(p); !strings.HasPrefix(got, OverflowKey+",") {
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

// TestKeyFloodDoesNotStarveConsumers (issue 15): a flood of distinct keys,
// one request each, past MaxKeys must not take the budget of consumers who
// come after it (all new keys shared the overflow key's one budget: the
// flood used it up and every new consumer got 429), nor the counts of the
// consumers who were there before (a consumer at its limit stays limited).
// The coldest of a sample of keys gives way to a new one.
func TestKeyFloodDoesNotStarveConsumers(t *testing.T) {
	pc := PolicyConfig{Name: "tenant", Limit: 5, Window: time.Minute, MaxKeys: 200}
	s := newSingle(t, Options{}, pc)
	p := s.l.Policy(pc.Name)
	for range pc.Limit {
		if !p.Allow("alice") {
			t.Fatal("alice denied within her limit")
		}
	}
	for i := range 20_000 {
		p.Allow("flood-" + strconv.Itoa(i))
	}
	if p.Allow("alice") {
		t.Error("alice admitted past her limit: the flood evicted her count")
	}
	for i := range 50 {
		if d := p.Decide("late-"+strconv.Itoa(i), 1); !d.Allowed || d.Remaining != pc.Limit-1 {
			t.Fatalf("a consumer arriving after the flood: %+v, want admitted with its own budget", d)
		}
	}
	st := p.Stats()
	if st.Keys > pc.MaxKeys+keyShards || st.Evicted < int64(20_000-pc.MaxKeys) {
		t.Fatalf("stats %+v: want at most %d keys and the flood's keys evicted", st, pc.MaxKeys)
	}
	// Evicted keys' decisions stay in the totals (exported as counters).
	if st.Admitted != 5+20_000+50 || st.Denied != 1 {
		t.Fatalf("totals: %d admitted, %d denied; want %d and 1", st.Admitted, st.Denied, 5+20_000+50)
	}
}
