package replica

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/wire"
)

// net wires stores together: every Send is delivered to the others' Merge
// when the test calls deliver, so the test controls ordering and loss.
type net struct {
	stores  map[string]*Store
	pending []msg
}

type msg struct {
	from string
	b    []byte
}

func newNet(t *testing.T, clk clock.Clock, names ...string) *net {
	n := &net{stores: map[string]*Store{}}
	for _, name := range names {
		name := name
		n.stores[name] = New(Options{Node: name, Clock: clk, TombstoneTTL: time.Hour,
			Send: func(_ string, b []byte) { n.pending = append(n.pending, msg{name, b}) }})
	}
	return n
}

// deliver hands every pending message to every other store, relaying news
// the way the cluster does, until nothing is pending.
func (n *net) deliver(t *testing.T) {
	for len(n.pending) > 0 {
		m := n.pending[0]
		n.pending = n.pending[1:]
		for name, s := range n.stores {
			if name == m.from {
				continue
			}
			relay, err := s.Merge(m.b)
			if err != nil {
				t.Fatalf("%s merge: %v", name, err)
			}
			if relay {
				n.pending = append(n.pending, msg{name, m.b})
			}
		}
	}
}

func value(t *testing.T, s *Store, kind, name string) string {
	t.Helper()
	it, ok := s.Get(kind, name)
	if !ok {
		return "<none>"
	}
	return string(it.Value)
}

func TestLastWriterWinsEverywhere(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	n := newNet(t, clk, "a", "b", "c")
	if _, err := n.stores["a"].Put("route", "orders", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	n.deliver(t)
	// b has seen a's write, so its write is stamped later and wins.
	if _, err := n.stores["b"].Put("route", "orders", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	n.deliver(t)
	for name, s := range n.stores {
		if got := value(t, s, "route", "orders"); got != "v2" {
			t.Errorf("%s: %q, want v2", name, got)
		}
	}
}

func TestConcurrentWritesConvergeOnTiebreak(t *testing.T) {
	n := newNet(t, clock.NewFake(time.Unix(1000, 0)), "a", "b")
	// Both write at Lamport clock 1 without seeing each other: "b" > "a".
	n.stores["a"].Put("route", "r", []byte("from-a"))
	n.stores["b"].Put("route", "r", []byte("from-b"))
	n.deliver(t)
	for name, s := range n.stores {
		if got := value(t, s, "route", "r"); got != "from-b" {
			t.Errorf("%s: %q, want from-b", name, got)
		}
	}
}

func TestTombstoneBeatsOlderWriteAndIsCollected(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	n := newNet(t, clk, "a", "b")
	n.stores["a"].Put("route", "r", []byte("v1"))
	n.deliver(t)
	old := n.stores["b"].LocalState() // b's state with the live item
	if _, ok, err := n.stores["a"].Delete("route", "r"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	n.deliver(t)
	// Anti-entropy from a stale snapshot must not resurrect it.
	if err := n.stores["a"].MergeState(old); err != nil {
		t.Fatal(err)
	}
	if got := value(t, n.stores["a"], "route", "r"); got != "<none>" {
		t.Fatalf("resurrected: %q", got)
	}
	if st := n.stores["b"].Stats(); st.Tombstones != 1 || st.Items != 0 {
		t.Fatalf("b stats %+v", st)
	}
	clk.Advance(2 * time.Hour)
	n.stores["b"].LocalState() // collects
	if st := n.stores["b"].Stats(); st.Tombstones != 0 {
		t.Fatalf("tombstone not collected: %+v", st)
	}
	if _, ok, _ := n.stores["b"].Delete("route", "never-held"); !ok {
		t.Fatal("no tombstone for a name the store never held (it must hide file entries)")
	}
	if _, ok, _ := n.stores["b"].Delete("route", "never-held"); ok {
		t.Fatal("deleted a tombstone again")
	}
}

func TestStaleAndDuplicateMessagesAreNotNews(t *testing.T) {
	var sent [][]byte
	a := New(Options{Node: "a", Send: func(_ string, b []byte) { sent = append(sent, b) }})
	b := New(Options{Node: "b"})
	a.Put("upstream", "u", []byte("1"))
	a.Put("upstream", "u", []byte("2"))
	if relay, err := b.Merge(sent[1]); !relay || err != nil {
		t.Fatalf("newest: relay %v err %v", relay, err)
	}
	for i, m := range [][]byte{sent[1], sent[0]} {
		if relay, err := b.Merge(m); relay || err != nil {
			t.Fatalf("message %d: relay %v err %v", i, relay, err)
		}
	}
	if got := value(t, b, "upstream", "u"); got != "2" {
		t.Fatalf("got %q", got)
	}
	if st := b.Stats(); st.Applied != 1 || st.Stale != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAntiEntropyRepairsAMissedWrite(t *testing.T) {
	changes := 0
	a := New(Options{Node: "a"})
	b := New(Options{Node: "b", OnChange: func() { changes++ }})
	a.Put("route", "x", []byte("x1"))
	a.Put("route", "y", []byte("y1"))
	a.Delete("route", "y")
	if err := b.MergeState(a.LocalState()); err != nil {
		t.Fatal(err)
	}
	if got := value(t, b, "route", "x"); got != "x1" || changes != 1 {
		t.Fatalf("x = %q, changes %d", got, changes)
	}
	// b's next write must order after everything it merged.
	v, _ := b.Put("route", "x", []byte("x2"))
	if v.Clock <= 3 {
		t.Fatalf("clock %d not advanced past merged versions", v.Clock)
	}
	if list := b.List("route"); len(list) != 2 || list[0].Name != "x" || !list[1].Deleted {
		t.Fatalf("list %+v", list)
	}
}

func TestMalformedInputIsRejected(t *testing.T) {
	s := New(Options{Node: "a", MaxItems: 2})
	good := encodeItem(nil, &Item{Kind: "route", Name: "r", Value: []byte("v"), Version: Version{1, "b"}})
	for name, b := range map[string][]byte{
		"empty":                      nil,
		"truncated":                  good[:len(good)-1],
		"trailing":                   append(append([]byte(nil), good...), 0),
		"extension flag without one": append([]byte{flagExtension}, good[1:]...),
		// flags=deleted, clock 1, node "b", kind "k", name "n", value "v"
		"tombstone with value": {1, 1, 1, 'b', 1, 'k', 1, 'n', 1, 'v'},
		"empty name":           encodeItem(nil, &Item{Kind: "k", Name: "", Version: Version{1, "b"}}),
	} {
		if _, err := s.Merge(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := s.MergeState(wire.AppendUvarint(nil, 1<<40)); err == nil {
		t.Error("huge item count accepted")
	}
	if st := s.Stats(); st.Bad != 7 || st.Items != 0 {
		t.Fatalf("stats %+v", st)
	}
	s.Put("k", "1", nil)
	s.Put("k", "2", nil)
	if _, err := s.Put("k", "3", nil); err != ErrFull {
		t.Fatalf("third item: %v", err)
	}
}

func FuzzMerge(f *testing.F) {
	f.Add(encodeItem(nil, &Item{Kind: "route", Name: "r", Value: []byte("v"), Version: Version{1, "b"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := New(Options{Node: "a"})
		if _, err := s.Merge(b); err != nil {
			return
		}
		// Whatever was accepted survives a round trip through our own state.
		if err := New(Options{Node: "c"}).MergeState(s.LocalState()); err != nil {
			t.Fatalf("own state rejected: %v", err)
		}
		it, _ := decodeMessage(b)
		again, err := decodeMessage(encodeItem(nil, it))
		if err != nil || again.Name != it.Name || again.Kind != it.Kind || again.Version != it.Version ||
			again.Deleted != it.Deleted || !bytes.Equal(again.Value, it.Value) {
			t.Fatalf("round trip: %+v → %+v (%v)", it, again, err)
		}
	})
}

func FuzzMergeState(f *testing.F) {
	a := New(Options{Node: "a"})
	a.Put("route", "r", []byte("v"))
	a.Put("upstream", "u", nil)
	a.Delete("upstream", "u")
	f.Add(a.LocalState())
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = New(Options{Node: "z", MaxItems: 100}).MergeState(b)
	})
}

// A peer cannot pin a resource with a version no later write can beat: a
// clock far past what the cluster has seen is refused (from a broadcast or
// a state exchange), the node's own clock does not follow it, and the
// operator's next write wins everywhere.
func TestClockJumpsAreRefused(t *testing.T) {
	n := newNet(t, clock.NewFake(time.Unix(0, 0)), "a", "b")
	a, b := n.stores["a"], n.stores["b"]
	if _, err := a.Put("route", "r", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	n.deliver(t)
	for _, c := range []uint64{^uint64(0), ^uint64(0) - 1, 1 << 63, MaxClockJump + 10} {
		poison := encodeItem(nil, &Item{Kind: "route", Name: "r", Value: []byte("evil"), Version: Version{c, "zzz"}})
		if relay, err := b.Merge(poison); err == nil || relay {
			t.Errorf("clock %d: merged (relay %v, err %v)", c, relay, err)
		}
		if err := b.MergeState(encodeState(map[key]*Item{{"route", "r"}: {Kind: "route", Name: "r", Value: []byte("evil"),
			Version: Version{c, "zzz"}}})); err == nil {
			t.Errorf("clock %d: state merged", c)
		}
	}
	if got := value(t, b, "route", "r"); got != "v1" {
		t.Fatalf("b holds %q", got)
	}
	if st := b.Stats(); st.Bad < 8 {
		t.Errorf("refusals not counted: %+v", st)
	}
	// A jump within the bound is a legitimate write of a busier node.
	ok := encodeItem(nil, &Item{Kind: "route", Name: "r", Value: []byte("v2"), Version: Version{1000, "c"}})
	if relay, err := b.Merge(ok); err != nil || !relay {
		t.Fatalf("clock 1000: relay %v, err %v", relay, err)
	}
	v, err := b.Put("route", "r", []byte("v3"))
	if err != nil || v.Clock != 1001 {
		t.Fatalf("the next write: %v, %v", v, err)
	}
	n.pending = nil
	if _, err := a.Merge(encodeItem(nil, &Item{Kind: "route", Name: "r", Value: []byte("v3"), Version: v})); err != nil {
		t.Fatal(err)
	}
	if value(t, a, "route", "r") != "v3" {
		t.Fatalf("a holds %q", value(t, a, "route", "r"))
	}
}

// The clock never wraps: a store whose clock is exhausted refuses writes
// instead of stamping one that loses to everything.
func TestClockDoesNotWrap(t *testing.T) {
	s := New(Options{Node: "a"})
	s.clock = ^uint64(0)
	if _, err := s.Put("route", "r", []byte("v")); err == nil {
		t.Fatal("a write past the largest clock was stamped")
	}
}

// Sign sets each written item's extension, which reaches the peers as it
// was made (broadcast and push/pull); Verify refuses an item before it is
// stored, relayed or able to move the clock, counts it, and is asked only
// about items the store would apply.
func TestSignAndVerifyHooks(t *testing.T) {
	var verified []string
	hooks := func(name string) Options {
		return Options{Node: name,
			Sign: func(it *Item) error { it.Ext = []byte("by " + name); return nil },
			Verify: func(it Item) error {
				verified = append(verified, it.Name)
				if string(it.Ext) != "by edge" {
					return errors.New("not a writer")
				}
				return nil
			}}
	}
	edge, mallory, peer := New(hooks("edge")), New(hooks("mallory")), New(hooks("peer"))
	if _, err := edge.Put("route", "orders", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.Put("route", "orders", []byte("hijack")); err != nil { // (1, mallory) > (1, edge)
		t.Fatal(err)
	}
	if _, err := mallory.Put("route", "admin", []byte("hijack")); err != nil {
		t.Fatal(err)
	}
	if it, _ := edge.Get("route", "orders"); string(it.Ext) != "by edge" {
		t.Fatalf("written item's Ext: %q", it.Ext)
	}
	// Broadcasts.
	for _, it := range mallory.List("route") {
		relay, err := peer.Merge(encodeItem(nil, &it))
		if relay || !errors.Is(err, ErrRefused) {
			t.Fatalf("mallory's %s: relay %v, %v", it.Name, relay, err)
		}
	}
	if relay, err := peer.Merge(edge.LocalState()[1:]); !relay || err != nil {
		t.Fatalf("edge's item: relay %v, %v", relay, err)
	}
	// Push/pull: mallory's newer orders and its admin are refused, the
	// edge's items (already held) are not verified again.
	verified = nil
	if err := peer.MergeState(mallory.LocalState()); !errors.Is(err, ErrRefused) {
		t.Fatalf("mallory's state: %v", err)
	}
	if err := peer.MergeState(edge.LocalState()); err != nil {
		t.Fatal(err)
	}
	if len(verified) != 2 {
		t.Errorf("verified %v: want only mallory's two items", verified)
	}
	if v := value(t, peer, "route", "orders"); v != "v1" {
		t.Errorf("orders = %q", v)
	}
	if _, ok := peer.Get("route", "admin"); ok {
		t.Error("mallory's admin route was stored")
	}
	if st := peer.Stats(); st.Refused != 4 || st.Applied != 1 || st.Items != 1 {
		t.Errorf("stats %+v", st)
	}
	// A refused item does not advance the clock: the next write is 2.
	if v, err := peer.Put("route", "x", nil); err != nil || v.Clock != 2 {
		t.Errorf("next write %v, %v", v, err)
	}
	// A signing failure fails the write; nothing is stored or sent.
	sent := 0
	failing := New(Options{Node: "n", Send: func(string, []byte) { sent++ },
		Sign: func(*Item) error { return errors.New("no key") }})
	if _, err := failing.Put("route", "r", []byte("v")); err == nil || sent != 0 || failing.Stats().Items != 0 {
		t.Errorf("a write that could not be signed: %v, sent %d", err, sent)
	}
	if v, err := failing.Put("route", "r", []byte("v")); err == nil || v.Clock != 0 {
		t.Error("the clock moved for a failed write")
	}
}
