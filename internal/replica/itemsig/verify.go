package itemsig

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/meshgate/meshgate/internal/replica"
)

// ErrUnsigned is returned for an item without a signature: written by a
// release before signatures, or by a node that does not sign.
var ErrUnsigned = errors.New("itemsig: unsigned item")

// MaxFutureSkew bounds how far past this node's clock a signing time may
// be. Gossip delivers a write within about a second, so this is the clocks'
// disagreement; a signer beyond it might be stretching its SVID's life.
const MaxFutureSkew = time.Minute

// Writers decides whether the SPIFFE ID id may write items of kind; nil
// means yes, an error says why not.
type Writers func(kind string, id spiffeid.ID) error

// VerifierOptions configure NewVerifier.
type VerifierOptions struct {
	// Bundles are the trust bundles a signer's chain is verified with
	// (the node's identity source).
	Bundles x509bundle.Source
	Writers Writers
	Now     func() time.Time // default time.Now
	// ChainTTL is how long a verified chain is remembered (default 5m): a
	// signer's items share its SVID, and a chain check costs about ten times
	// the signature's. The bound is how late a bundle that dropped a CA
	// takes effect for items of chains seen before.
	ChainTTL time.Duration
}

// Verifier checks peers' items: replica.Options.Verify. Safe for
// concurrent use.
type Verifier struct {
	o  VerifierOptions
	mu sync.Mutex
	// chains are the chains verified lately, by the SHA-256 of their DER.
	chains map[[32]byte]verifiedChain
}

type verifiedChain struct {
	id    spiffeid.ID
	leaf  *x509.Certificate
	valid [2]time.Time // when every certificate of the chain is valid
	until time.Time    // forgotten then
}

// maxChains bounds the cache: a cluster has a few dozen writers, each with
// its current SVID and the one before a rotation.
const maxChains = 256

// NewVerifier returns a verifier.
func NewVerifier(o VerifierOptions) *Verifier {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ChainTTL <= 0 {
		o.ChainTTL = 5 * time.Minute
	}
	return &Verifier{o: o, chains: map[[32]byte]verifiedChain{}}
}

// Verify accepts it when its extension holds a valid signature of a writer
// of its kind, made with an SVID the bundle vouched for at the signing time.
// The cheap checks (format, writer, time) come before the costly ones.
func (v *Verifier) Verify(it replica.Item) error {
	if len(it.Ext) == 0 {
		return ErrUnsigned
	}
	e, err := Decode(it.Ext)
	if err != nil {
		return err
	}
	id, err := spiffeid.FromString(e.Signer)
	if err != nil {
		return fmt.Errorf("itemsig: signer: %w", err)
	}
	if v.o.Writers == nil {
		return fmt.Errorf("itemsig: %s may not write %s: no writers", id, it.Kind)
	}
	if err := v.o.Writers(it.Kind, id); err != nil {
		return fmt.Errorf("itemsig: %s may not write %s: %w", id, it.Kind, err)
	}
	now := v.o.Now()
	if e.SignedAt.After(now.Add(MaxFutureSkew)) {
		return fmt.Errorf("itemsig: signed at %s, more than %v past this node's clock", e.SignedAt.UTC().Format(time.RFC3339), MaxFutureSkew)
	}
	c, err := v.chain(e, now)
	if err != nil {
		return err
	}
	if c.id != id {
		return fmt.Errorf("itemsig: signed as %s with the SVID of %s", id, c.id)
	}
	if e.SignedAt.Before(c.valid[0]) || e.SignedAt.After(c.valid[1]) {
		return fmt.Errorf("itemsig: signed at %s, outside the validity of %s's SVID (%s to %s)", e.SignedAt.UTC().Format(time.RFC3339),
			id, c.valid[0].UTC().Format(time.RFC3339), c.valid[1].UTC().Format(time.RFC3339))
	}
	if err := checkSignature(c.leaf, &it, e); err != nil {
		return fmt.Errorf("itemsig: bad signature by %s: %w", id, err)
	}
	return nil
}

// chain verifies e's chain against the bundle at the signing time, or
// finds it verified lately. A chain valid at one instant of its validity
// window is valid at every other (only the dates depend on time), so the
// window is kept and each signing time checked against it.
func (v *Verifier) chain(e Extension, now time.Time) (verifiedChain, error) {
	h := sha256.New()
	for _, c := range e.Chain {
		h.Write(c)
		h.Write([]byte{0}) // no two chains hash alike by shifting a boundary
	}
	var k [32]byte
	h.Sum(k[:0])
	v.mu.Lock()
	c, ok := v.chains[k]
	v.mu.Unlock()
	if ok && now.Before(c.until) {
		return c, nil
	}
	if v.o.Bundles == nil {
		return verifiedChain{}, errors.New("itemsig: no trust bundle")
	}
	id, chains, err := x509svid.ParseAndVerify(e.Chain, v.o.Bundles, x509svid.WithTime(e.SignedAt))
	if err != nil {
		return verifiedChain{}, fmt.Errorf("itemsig: signer's chain: %w", err)
	}
	c = verifiedChain{id: id, leaf: chains[0][0], valid: [2]time.Time{chains[0][0].NotBefore, chains[0][0].NotAfter}, until: now.Add(v.o.ChainTTL)}
	for _, cert := range chains[0][1:] {
		if cert.NotBefore.After(c.valid[0]) {
			c.valid[0] = cert.NotBefore
		}
		if cert.NotAfter.Before(c.valid[1]) {
			c.valid[1] = cert.NotAfter
		}
	}
	v.mu.Lock()
	if len(v.chains) >= maxChains {
		clear(v.chains)
	}
	v.chains[k] = c
	v.mu.Unlock()
	return c, nil
}

// Signer signs the items this node writes with its current SVID:
// replica.Options.Sign. The SVID is fetched for every write, so a rotated
// one is used from the next write on.
func Signer(svids x509svid.Source, now func() time.Time) func(*replica.Item) error {
	if now == nil {
		now = time.Now
	}
	return func(it *replica.Item) error {
		s, err := svids.GetX509SVID()
		if err != nil {
			return fmt.Errorf("itemsig: identity: %w", err)
		}
		return Sign(it, s.PrivateKey, s.ID.String(), s.Certificates, now())
	}
}
