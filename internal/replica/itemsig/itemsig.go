// Package itemsig signs and verifies the items of the cluster's replicated
// store (package replica): routes, upstreams, tiers, consumers, API keys,
// cache purges.
//
// Gossip relays every item through every member, so the transport's peer
// authentication says who handed an item on, not who wrote it: without a
// signature any member of the cluster could write any resource, bypassing
// the admin API's operator check. So a node signs each item it writes with
// its X.509-SVID's key, and every node applies a peer's item only when the
// signature verifies and its signer is a writer of the item's kind:
//
//   - what is signed binds every field a receiver acts on — kind, name,
//     value, tombstone, version (clock and node), the signer's SPIFFE ID
//     and the signing time — after a context string, so a signature over
//     an item can be taken for nothing else;
//   - the item's extension (replica.Item.Ext) carries the signer's ID, the
//     signing time, the signature and the SVID chain (leaf first, DER), so
//     an item verifies on its own, on any node, long after it was written:
//     items live as long as the resource, longer than any SVID;
//   - the chain is verified against the node's trust bundle at the signing
//     time, not now (an item written under yesterday's SVID stays valid),
//     and a signing time in the future beyond a small skew is refused, so a
//     signer cannot make its item outlive its certificate's validity.
//
// A stolen writer key can still sign backdated items until the trust bundle
// stops vouching for its chain; the bound is that key's CA, as for the
// mTLS it would also let the thief speak.
package itemsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/meshgate/meshgate/internal/replica"
	"github.com/meshgate/meshgate/internal/wire"
)

// Format of the extension (integers are uvarints, strings and byte strings
// length-prefixed; see package wire):
//
//	version | signer | signed_at | signature | n | cert_1 … cert_n [| later fields]
//
// version is 1; signed_at is Unix milliseconds; cert_1 is the leaf. A later
// release may append fields (and raise the version): this one reads the
// fields it knows and skips the rest, but the signature covers only what
// signedBytes says, so a field a later release appends must be covered by
// its own version of the signature, not trusted here.
const Version = 1

// Limits on a peer's extension (replica bounds the whole at 16 KiB).
const (
	maxSigner    = 2048 // the SPIFFE ID length limit
	maxSignature = 1024 // RSA-4096 is 512 bytes, ECDSA P-521 139
	maxCerts     = 4    // leaf and up to three intermediates
	maxCert      = 4096
)

// context separates these signatures from any other the key makes.
const context = "meshgate replica item signature v1\x00"

// Extension is the decoded content of an item's extension.
type Extension struct {
	Signer    string    // the signer's SPIFFE ID
	SignedAt  time.Time // millisecond precision
	Signature []byte
	Chain     [][]byte // DER certificates, leaf first
}

// Encode returns e's wire form.
func Encode(e Extension) []byte {
	b := []byte{Version}
	b = wire.AppendString(b, e.Signer)
	b = wire.AppendUvarint(b, uint64(e.SignedAt.UnixMilli()))
	b = wire.AppendBytes(b, e.Signature)
	b = wire.AppendUvarint(b, uint64(len(e.Chain)))
	for _, c := range e.Chain {
		b = wire.AppendBytes(b, c)
	}
	return b
}

// Decode reads an extension (a peer's bytes: bounded, never panics). The
// result aliases b.
func Decode(b []byte) (Extension, error) {
	r := wire.NewReader(b)
	r.AtLeastVersion(Version)
	var e Extension
	e.Signer = r.String(maxSigner, "signer")
	ms := r.UvarintMax(1<<62, "signing time")
	e.SignedAt = time.UnixMilli(int64(ms))
	e.Signature = r.Bytes(maxSignature, "signature")
	n := r.Count(maxCerts, 2, "certificates")
	for range n {
		c := r.Bytes(maxCert, "certificate")
		if len(c) == 0 {
			r.Fail(errors.New("empty certificate")) // and Count's size bound holds
		}
		e.Chain = append(e.Chain, c)
	}
	r.Rest() // a later release's fields
	if err := r.Err(); err != nil {
		return Extension{}, fmt.Errorf("itemsig: %w", err)
	}
	switch {
	case e.Signer == "":
		return Extension{}, errors.New("itemsig: no signer")
	case len(e.Signature) == 0:
		return Extension{}, errors.New("itemsig: no signature")
	case n == 0:
		return Extension{}, errors.New("itemsig: no certificate")
	}
	return e, nil
}

// signedBytes is what a signature covers: every field of the item a node
// acts on, the signer and the time, after the context string. (Item.Seen is
// local and Ext is the signature itself.)
func signedBytes(it *replica.Item, signer string, at time.Time) []byte {
	b := make([]byte, 0, len(context)+len(it.Value)+len(it.Kind)+len(it.Name)+len(signer)+64)
	b = append(b, context...)
	b = wire.AppendString(b, it.Kind)
	b = wire.AppendString(b, it.Name)
	var deleted uint64
	if it.Deleted {
		deleted = 1
	}
	b = wire.AppendUvarint(b, deleted)
	b = wire.AppendBytes(b, it.Value)
	b = wire.AppendUvarint(b, it.Version.Clock)
	b = wire.AppendString(b, it.Version.Node)
	b = wire.AppendString(b, signer)
	return wire.AppendUvarint(b, uint64(at.UnixMilli()))
}

// Sign signs it with key, as signer holding chain (leaf first), at time at,
// and sets it.Ext. The key may be ECDSA (signed with SHA-256, ASN.1), RSA
// (PKCS #1 v1.5 with SHA-256) or Ed25519: the key types of X.509-SVIDs.
func Sign(it *replica.Item, key crypto.Signer, signer string, chain []*x509.Certificate, at time.Time) error {
	if len(chain) == 0 {
		return errors.New("itemsig: no certificate to sign with")
	}
	if len(chain) > maxCerts {
		return fmt.Errorf("itemsig: a chain of %d certificates (at most %d)", len(chain), maxCerts)
	}
	at = at.Truncate(time.Millisecond)
	msg := signedBytes(it, signer, at)
	var (
		sig []byte
		err error
	)
	switch key.Public().(type) {
	case ed25519.PublicKey:
		sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	case *ecdsa.PublicKey, *rsa.PublicKey:
		sum := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, sum[:], crypto.SHA256)
	default:
		return fmt.Errorf("itemsig: unsupported key type %T", key.Public())
	}
	if err != nil {
		return fmt.Errorf("itemsig: sign: %w", err)
	}
	e := Extension{Signer: signer, SignedAt: at, Signature: sig}
	for _, c := range chain {
		e.Chain = append(e.Chain, c.Raw)
	}
	it.Ext = Encode(e)
	return nil
}

// checkSignature verifies sig over it's signed bytes with leaf's key.
func checkSignature(leaf *x509.Certificate, it *replica.Item, e Extension) error {
	var alg x509.SignatureAlgorithm
	switch leaf.PublicKey.(type) {
	case ed25519.PublicKey:
		alg = x509.PureEd25519
	case *ecdsa.PublicKey:
		alg = x509.ECDSAWithSHA256
	case *rsa.PublicKey:
		alg = x509.SHA256WithRSA
	default:
		return fmt.Errorf("unsupported key type %T", leaf.PublicKey)
	}
	return leaf.CheckSignature(alg, signedBytes(it, e.Signer, e.SignedAt), e.Signature)
}
