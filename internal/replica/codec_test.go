package replica

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/meshgate/meshgate/internal/wire"
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
	// A signed item: flags bit 1, then the extension after the value, as
	// the release before signatures skipped it. (What the extension holds
	// is itemsig's format, pinned by its own golden.)
	{"signed", Item{Kind: "route", Name: "orders", Value: []byte(`{"a":1}`), Version: Version{7, "edge-1"}, Ext: []byte("\x01sig")},
		"02" + "07" + "06656467652d31" + "05726f757465" + "066f7264657273" + "077b2261223a317d" + "04017369" + "67"},
	{"signed tombstone", Item{Kind: "limit", Name: "api", Deleted: true, Version: Version{300, "e"}, Ext: []byte{1}},
		"03" + "ac02" + "0165" + "056c696d6974" + "03617069" + "00" + "0101"},
}

func TestItemGolden(t *testing.T) {
	for _, g := range goldenItems {
		if h := hex.EncodeToString(encodeItem(nil, &g.it)); h != g.hex {
			t.Errorf("%s: encoded\n%s\nwant\n%s", g.name, h, g.hex)
		}
		b, _ := hex.DecodeString(g.hex)
		it, err := decodeMessage(b)
		if err != nil || !sameItem(it, &g.it) || !bytes.Equal(it.Ext, g.it.Ext) {
			t.Errorf("%s: decoded %+v, %v", g.name, it, err)
		}
	}
}

// The release before signatures (which skipped the extension) reads a
// signed item as the same item: its decoder was decodeItem without Ext.
func TestSignedItemReadByThePreviousRelease(t *testing.T) {
	it := Item{Kind: "route", Name: "orders", Value: []byte("v"), Version: Version{7, "edge-1"}, Ext: bytes.Repeat([]byte{9}, 300)}
	r := wire.NewReader(encodeItem(nil, &it))
	flags := r.Uvarint()
	r.Uvarint()
	for range 3 {
		r.String(maxName, "")
	}
	r.Bytes(maxValue, "value")
	if flags&flagExtension != 0 {
		r.Extension(maxExtension) // what the previous release did
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
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
	state := []byte{2}
	for _, g := range goldenItems[:2] {
		it, err := decodeMessage(next(g.it))
		if err != nil || !sameItem(it, &g.it) || string(it.Ext) != "sig" {
			t.Errorf("%s: decoded %+v, %v", g.name, it, err)
		}
		state = append(state, next(g.it)...)
	}
	items, err := decodeState(state, 10)
	if err != nil || len(items) != 2 {
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
