package replica

import (
	"strconv"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
)

// Event items (a cache purge) carry their own time; Expired retires them
// on every node alike: collected without a tombstone, and refused when a
// peer that has not collected them yet sends them again. OnApplied sees
// each stored item once, from a write or a merge.
func TestExpiredItemsAreCollectedAndNotTakenBack(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	// The item's value is the Unix second it was made; it lives 60 s.
	expired := func(it Item) bool {
		if it.Kind != "event" {
			return false
		}
		at, _ := strconv.ParseInt(string(it.Value), 10, 64)
		return clk.Now().Sub(time.Unix(at, 0)) > time.Minute
	}
	var seen []string
	a := New(Options{Node: "a", Clock: clk, Expired: expired})
	b := New(Options{Node: "b", Clock: clk, Expired: expired,
		OnApplied: func(items []Item) {
			for _, it := range items {
				seen = append(seen, it.Kind+"/"+it.Name)
			}
		}})
	a.Put("event", "e1", []byte("1000"))
	a.Put("route", "r", []byte("r1"))
	if err := b.MergeState(a.LocalState()); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 {
		t.Fatalf("OnApplied saw %v", seen)
	}
	if err := b.MergeState(a.LocalState()); err != nil || len(seen) != 2 {
		t.Fatalf("a state merged again: OnApplied saw %v (%v)", seen, err)
	}

	clk.Advance(2 * time.Minute)
	a.LocalState() // a collects: its state no longer has e1
	if _, ok := a.Get("event", "e1"); ok {
		t.Fatal("a kept the expired event")
	}
	// b has not collected yet; its state brings e1 back to a, which refuses it.
	if err := a.MergeState(encodeState(b.items)); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Get("event", "e1"); ok {
		t.Fatal("an expired event came back from a peer")
	}
	b.LocalState()
	if st := b.Stats(); st.Items != 1 || st.Tombstones != 0 {
		t.Fatalf("b after collecting: %+v (want the route only, no tombstone)", st)
	}
	if value(t, a, "route", "r") != "r1" {
		t.Fatal("a state item that does not expire was collected")
	}
}
