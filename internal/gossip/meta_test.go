package gossip

import (
	"encoding/hex"
	"testing"
)

// goldenMeta pins the metadata format this release writes: nodes of two
// releases gossip together, so it changes only with a new metaVersion.
var goldenMeta = Meta{Role: "sidecar", Service: "orders", Subset: "v2", Inbound: "10.0.0.7:15006",
	ID: "spiffe://td/orders", Healthy: true}

const goldenMetaHex = "01" + "01" + "0773696465636172" + "066f7264657273" + "027632" +
	"0e31302e302e302e373a3135303036" + "127370696666653a2f2f74642f6f7264657273"

func TestMetaGolden(t *testing.T) {
	b, err := goldenMeta.Marshal()
	if err != nil || hex.EncodeToString(b) != goldenMetaHex {
		t.Fatalf("encoded %x, %v\nwant %s", b, err, goldenMetaHex)
	}
	if m, err := UnmarshalMeta(b); err != nil || m != goldenMeta {
		t.Fatalf("decoded %+v, %v", m, err)
	}
}

// A node of the next release may set flags and append fields this one does
// not know: it still reads the fields it knows, so the two discover each
// other.
func TestMetaFromTheNextRelease(t *testing.T) {
	b, _ := hex.DecodeString(goldenMetaHex)
	b[0] = metaVersion + 1
	b[1] = 1 | 4 | 64 // healthy, and two flags of the next release
	b = append(b, 0x04, 'z', 'o', 'n', 'e', 0x01)
	m, err := UnmarshalMeta(b)
	if err != nil || m != goldenMeta {
		t.Fatalf("decoded %+v, %v", m, err)
	}
	// This release's own version stays strict: unknown flags and trailing
	// bytes in a version-1 message are a malformed peer.
	b, _ = hex.DecodeString(goldenMetaHex)
	b[1] = 4
	if _, err := UnmarshalMeta(b); err == nil {
		t.Error("an unknown flag in this release's version was accepted")
	}
	if _, err := UnmarshalMeta([]byte{0, 0}); err == nil {
		t.Error("version 0 accepted")
	}
}
