package replica_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"flag"
	"math/big"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshgate/meshgate/internal/replica"
	"github.com/meshgate/meshgate/internal/replica/itemsig"
)

var update = flag.Bool("update", false, "rewrite testdata/signed-item.hex")

// deterministicSVID is an Ed25519 root and leaf from fixed seeds, serials
// and dates: Ed25519 signatures are deterministic, so the signed item's
// bytes are too (an ECDSA SVID's would change with every signature).
func deterministicSVID(t *testing.T) (ed25519.PrivateKey, []*x509.Certificate, *x509bundle.Bundle) {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString("example.org")
	rootKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	leafKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	from, to := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC)
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"},
		URIs: []*url.URL{td.ID().URL()}, NotBefore: from, NotAfter: to, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	rootDER, err := x509.CreateCertificate(nil, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), URIs: []*url.URL{spiffeid.RequireFromPath(td, "/edge").URL()},
		NotBefore: from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	leafDER, err := x509.CreateCertificate(nil, leafTmpl, root, leafKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	return leafKey, []*x509.Certificate{leaf}, x509bundle.FromX509Authorities(td, []*x509.Certificate{root})
}

// The signed item's bytes are pinned: replica's layout (flags bit 1, the
// extension after the value) and itemsig's (version, signer, time,
// signature, chain). They change only compatibly; a node of the next
// release must verify this item as it is.
func TestSignedItemGolden(t *testing.T) {
	key, chain, bundle := deterministicSVID(t)
	it := replica.Item{Kind: "route", Name: "orders", Value: []byte("name: orders\n"), Version: replica.Version{Clock: 7, Node: "edge-1"}}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := itemsig.Sign(&it, key, "spiffe://example.org/edge", chain, at); err != nil {
		t.Fatal(err)
	}
	got := hex.EncodeToString(replica.EncodeItem(nil, &it))
	const path = "testdata/signed-item.hex"
	if *update {
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != strings.TrimSpace(string(want)) {
		t.Fatalf("signed item encodes to\n%s\nwant\n%s", got, want)
	}
	// The pinned bytes decode and verify (at a time the SVID is valid).
	b, _ := hex.DecodeString(strings.TrimSpace(string(want)))
	dec, err := replica.DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	v := itemsig.NewVerifier(itemsig.VerifierOptions{Bundles: bundle, Now: func() time.Time { return at },
		Writers: func(string, spiffeid.ID) error { return nil }})
	if err := v.Verify(*dec); err != nil {
		t.Fatalf("the golden item does not verify: %v", err)
	}
	// Layout: flags 0x02 (an extension follows), the unsigned fields as in
	// TestItemGolden, then the extension, itemsig version 1 first.
	unsigned := it
	unsigned.Ext = nil
	u := hex.EncodeToString(replica.EncodeItem(nil, &unsigned))
	if !strings.HasPrefix(got, "02"+u[2:]) {
		t.Errorf("the signed item does not start with the unsigned item's fields")
	}
	if e, err := itemsig.Decode(it.Ext); err != nil || e.Signer != "spiffe://example.org/edge" || !e.SignedAt.Equal(at) || len(e.Chain) != 1 {
		t.Errorf("extension %+v, %v", e, err)
	}
}
