package replica

import (
	"encoding/hex"
	"reflect"
	"testing"
)

// The golden bytes pin the item format this release writes: nodes of two
// releases gossip together, so it changes only compatibly (see codec.go).
var goldenItems = []struct {
	name string
	it   Item
	hex  string
}{
	{"route", Item{Kind: "route", Name: "orders", Value: []byte(`{"a":1}`), Version: Version{7, "edge-1"}},
		"00" + "07" + "06656467652d31" + "05726f757465" + "066f7264657273" + "077b2261223a317d"},
	{"tombstone", Item{Kind: "limit", Name: "api", Deleted: true, Version: Version{300, "e"}},
		"01" + "ac02" + "0165" + "056c696d6974" + "03617069" + "00"},
}

func TestItemGolden(t *testing.T) {
	for _, g := range goldenItems {
		if h := hex.EncodeToString(encodeItem(nil, &g.it)); h != g.hex {
			t.Errorf("%s: encoded\n%s\nwant\n%s", g.name, h, g.hex)
		}
		b, _ := hex.DecodeString(g.hex)
		it, err := decodeMessage(b)
		if err != nil || !sameItem(it, &g.it) {
			t.Errorf("%s: decoded %+v, %v", g.name, it, err)
		}
	}
}

// A node of the next release sets flags this one does not know and appends
// an extension to an item: this one reads the item and skips the rest, in
// a broadcast and in a state of several items.
func TestItemFromTheNextRelease(t *testing.T) {
	next := func(g Item) []byte {
		b := encodeItem(nil, &g)
		b[0] |= flagExtension | 1<<5
		return append(b, 0x03, 's', 'i', 'g')
	}
	state := []byte{byte(len(goldenItems))}
	for _, g := range goldenItems {
		it, err := decodeMessage(next(g.it))
		if err != nil || !sameItem(it, &g.it) {
			t.Errorf("%s: decoded %+v, %v", g.name, it, err)
		}
		state = append(state, next(g.it)...)
	}
	items, err := decodeState(state, 10)
	if err != nil || len(items) != len(goldenItems) {
		t.Fatalf("state: %d items, %v", len(items), err)
	}
	for i, it := range items {
		if !sameItem(it, &goldenItems[i].it) {
			t.Errorf("state item %d: %+v", i, it)
		}
	}
	// The extension is bounded like any field.
	b := encodeItem(nil, &goldenItems[0].it)
	b[0] |= flagExtension
	b = append(b, 0xff, 0xff, 0x03)
	if _, err := decodeMessage(b); err == nil {
		t.Error("an extension past the bound was accepted")
	}
}

func sameItem(a, b *Item) bool {
	return a.Kind == b.Kind && a.Name == b.Name && a.Deleted == b.Deleted && a.Version == b.Version &&
		(len(a.Value) == 0 && len(b.Value) == 0 || reflect.DeepEqual(a.Value, b.Value))
}
