package itemsig

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshgate/meshgate/internal/replica"
	"github.com/meshgate/meshgate/pki/pkitest"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

// edgesWrite is the test's writers: IDs ending in /edge, every kind but
// "secret".
func edgesWrite(kind string, id spiffeid.ID) error {
	if strings.HasSuffix(id.Path(), "/edge") && kind != "secret" {
		return nil
	}
	return errors.New("not a writer")
}

func route() replica.Item {
	return replica.Item{Kind: "route", Name: "orders", Value: []byte("name: orders\n"), Version: replica.Version{Clock: 7, Node: "edge-1"}}
}

// Every way to get an item past the check without a writer's valid
// signature over exactly that item is refused; the honest item passes,
// also long after the SVID that signed it expired.
func TestVerify(t *testing.T) {
	ca := pkitest.NewCA(t, td, pkitest.WithIntermediate())
	now := time.Now()
	edge := ca.SVID(t, ca.ID(t, "/edge"))
	viewer := ca.SVID(t, ca.ID(t, "/viewer"))
	rogue := pkitest.OtherCA(t, td)
	v := NewVerifier(VerifierOptions{Bundles: pkitest.NewSource(nil, ca.Bundle()), Writers: edgesWrite, Now: func() time.Time { return now }})

	good := route()
	if err := Sign(&good, edge.PrivateKey, edge.ID.String(), edge.Certificates, now); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(good); err != nil {
		t.Fatalf("an edge's item: %v", err)
	}
	if err := v.Verify(good); err != nil { // from the chain cache
		t.Fatalf("again: %v", err)
	}
	if len(v.chains) != 1 {
		t.Errorf("%d chains cached", len(v.chains))
	}

	with := func(it replica.Item, f func(*Extension)) replica.Item {
		e, err := Decode(it.Ext)
		if err != nil {
			t.Fatal(err)
		}
		f(&e)
		it.Ext = Encode(e)
		return it
	}
	tampered := func(f func(*replica.Item)) replica.Item { it := good; f(&it); return it }
	other := route()
	if err := Sign(&other, viewer.PrivateKey, viewer.ID.String(), viewer.Certificates, now); err != nil {
		t.Fatal(err)
	}
	rogueEdge := rogue.SVID(t, ca.ID(t, "/edge"))
	forged := route()
	if err := Sign(&forged, rogueEdge.PrivateKey, rogueEdge.ID.String(), rogueEdge.Certificates, now); err != nil {
		t.Fatal(err)
	}
	expired := ca.SVID(t, ca.ID(t, "/edge"), pkitest.Expired())
	late := route()
	if err := Sign(&late, expired.PrivateKey, expired.ID.String(), expired.Certificates, now); err != nil {
		t.Fatal(err)
	}
	secret := good
	secret.Kind = "secret"
	if err := Sign(&secret, edge.PrivateKey, edge.ID.String(), edge.Certificates, now); err != nil {
		t.Fatal(err)
	}
	future := route()
	if err := Sign(&future, edge.PrivateKey, edge.ID.String(), edge.Certificates, now.Add(2*MaxFutureSkew)); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		it   replica.Item
		want string
	}{
		{"unsigned", route(), "unsigned"},
		{"a viewer's", other, "may not write route"},
		{"a writer of other kinds", secret, "may not write secret"},
		{"claims the edge with the viewer's chain", with(other, func(e *Extension) { e.Signer = edge.ID.String() }), "with the SVID of spiffe://example.org/viewer"},
		{"the edge's chain, the viewer's signature", with(other, func(e *Extension) {
			e.Signer, e.Chain = edge.ID.String(), Decodeless(good).Chain
		}), "bad signature"},
		{"a chain of another CA", forged, "signer's chain"},
		{"signed after the SVID expired", late, "signer's chain"},
		{"signed in the future", future, "past this node's clock"},
		{"signing time moved", with(good, func(e *Extension) { e.SignedAt = e.SignedAt.Add(-time.Second) }), "bad signature"},
		{"value tampered", tampered(func(it *replica.Item) { it.Value = []byte("name: hijack\n") }), "bad signature"},
		{"name tampered", tampered(func(it *replica.Item) { it.Name = "admin" }), "bad signature"},
		{"turned into a tombstone", tampered(func(it *replica.Item) { it.Deleted, it.Value = true, nil }), "bad signature"},
		{"version raised", tampered(func(it *replica.Item) { it.Version.Clock++ }), "bad signature"},
		{"node renamed", tampered(func(it *replica.Item) { it.Version.Node = "edge-2" }), "bad signature"},
		{"signature flipped", with(good, func(e *Extension) { e.Signature = bytes.Clone(e.Signature); e.Signature[10] ^= 1 }), "bad signature"},
		{"garbage", tampered(func(it *replica.Item) { it.Ext = []byte{1, 200} }), "itemsig"},
		{"no chain", with(good, func(e *Extension) { e.Chain = nil }), "no certificate"},
	} {
		err := v.Verify(c.it)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}

	// An item outlives the SVID that signed it: verified a day later,
	// after the SVID expired (the chain is checked at the signing time).
	later := NewVerifier(VerifierOptions{Bundles: pkitest.NewSource(nil, ca.Bundle()), Writers: edgesWrite,
		Now: func() time.Time { return now.Add(23 * time.Hour) }})
	if err := later.Verify(good); err != nil {
		t.Errorf("a day later: %v", err)
	}
	// Without the CA in the bundle nothing verifies.
	untrusting := NewVerifier(VerifierOptions{Bundles: pkitest.NewSource(nil, rogue.Bundle()), Writers: edgesWrite})
	if err := untrusting.Verify(good); err == nil {
		t.Error("verified against another CA's bundle")
	}
}

// Decodeless is Decode for a test that knows the extension is valid.
func Decodeless(it replica.Item) Extension {
	e, err := Decode(it.Ext)
	if err != nil {
		panic(err)
	}
	return e
}

// Signer signs with the source's current SVID, so a rotation takes
// effect on the next write.
func TestSignerUsesTheCurrentSVID(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	first, second := ca.SVID(t, ca.ID(t, "/edge")), ca.SVID(t, ca.ID(t, "/edge"))
	src := pkitest.NewSource(first, ca.Bundle())
	sign := Signer(src, nil)
	v := NewVerifier(VerifierOptions{Bundles: src, Writers: edgesWrite})
	for _, s := range []any{first, second} {
		if s == second {
			src.SetSVID(second)
		}
		it := route()
		if err := sign(&it); err != nil {
			t.Fatal(err)
		}
		cur, _ := src.GetX509SVID()
		if e := Decodeless(it); !bytes.Equal(e.Chain[0], cur.Certificates[0].Raw) {
			t.Error("signed with another SVID than the current one")
		}
		if err := v.Verify(it); err != nil {
			t.Error(err)
		}
	}
}

// A later release's extension (a higher version, fields appended) is read
// for the fields this one knows.
func TestDecodeLaterVersion(t *testing.T) {
	e := Extension{Signer: "spiffe://example.org/edge", SignedAt: time.UnixMilli(1700000000123), Signature: []byte{1, 2}, Chain: [][]byte{{3}}}
	b := Encode(e)
	b[0] = 2
	b = append(b, 0x05, 'l', 'a', 't', 'e', 'r')
	got, err := Decode(b)
	if err != nil || got.Signer != e.Signer || !got.SignedAt.Equal(e.SignedAt) || !bytes.Equal(got.Signature, e.Signature) || len(got.Chain) != 1 {
		t.Fatalf("%+v, %v", got, err)
	}
	b[0] = 0
	if _, err := Decode(b); err == nil {
		t.Error("version 0 accepted")
	}
}

// FuzzDecode: a peer's extension never panics the decoder or the verifier,
// and what it decodes survives a round trip. (Not byte for byte: a uvarint
// may be written overlong; the signature covers the fields, re-encoded.)
func FuzzDecode(f *testing.F) {
	f.Add(Encode(Extension{Signer: "spiffe://example.org/edge", SignedAt: time.UnixMilli(1700000000123), Signature: []byte{1, 2, 3}, Chain: [][]byte{{0x30, 1}, {0x30, 2}}}))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Decode(Encode(e))
		if err != nil || again.Signer != e.Signer || !again.SignedAt.Equal(e.SignedAt) ||
			!bytes.Equal(again.Signature, e.Signature) || len(again.Chain) != len(e.Chain) {
			t.Fatalf("decoded %+v from %x, then %+v, %v", e, b, again, err)
		}
		v := NewVerifier(VerifierOptions{Writers: func(string, spiffeid.ID) error { return nil }})
		_ = v.Verify(replica.Item{Kind: "route", Name: "r", Ext: b})
	})
}
