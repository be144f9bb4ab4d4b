// Package pkitest is an in-memory SPIFFE certificate authority for tests:
// it mints X.509-SVIDs (valid, expired, not yet valid, short-lived) and
// bundles, plus mutable sources for rotation tests.
//
// It deliberately does not use package pki, so it can serve as an
// independent oracle in pki's own tests and be imported by any test without
// import cycles.
//
//	ca := pkitest.NewCA(t, td)
//	server := ca.SVID(t, spiffeid.RequireFromPath(td, "/sidecar/payments"))
//	client := ca.SVID(t, edgeID, pkitest.TTL(5*time.Second))
//	expired := ca.SVID(t, edgeID, pkitest.Expired())
//	untrusted := pkitest.OtherCA(t, td).SVID(t, edgeID)
//	cfg := pki.ServerTLS(server, ca.Bundle(), authorizer) // SVIDs and bundles are sources
package pkitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// CA is an in-memory certificate authority of one trust domain. It is
// immutable after NewCA and safe for concurrent use.
type CA struct {
	td        spiffeid.TrustDomain
	root      *x509.Certificate
	signer    *x509.Certificate
	signerKey crypto.Signer
	chain     []*x509.Certificate
}

// CAOption configures NewCA.
type CAOption func(*caOptions)

type caOptions struct{ intermediate bool }

// WithIntermediate makes the root sign an intermediate that signs the SVIDs
// (and is sent with them).
func WithIntermediate() CAOption { return func(o *caOptions) { o.intermediate = true } }

// NewCA returns a new CA for td with a fresh root valid for a day.
func NewCA(t testing.TB, td spiffeid.TrustDomain, opts ...CAOption) *CA {
	t.Helper()
	var o caOptions
	for _, opt := range opts {
		opt(&o)
	}
	now := time.Now()
	rootKey := newKey(t)
	rootTmpl := caTemplate(t, td, now.Add(-time.Hour), now.Add(24*time.Hour))
	root := create(t, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	ca := &CA{td: td, root: root, signer: root, signerKey: rootKey}
	if o.intermediate {
		interKey := newKey(t)
		interTmpl := caTemplate(t, td, now.Add(-time.Hour), now.Add(23*time.Hour))
		inter := create(t, interTmpl, root, interKey.Public(), rootKey)
		ca.signer, ca.signerKey, ca.chain = inter, interKey, []*x509.Certificate{inter}
	}
	return ca
}

// OtherCA returns a CA for the same (or any) trust domain with its own root:
// SVIDs it signs carry plausible IDs but are not trusted by another CA's
// bundle. It is NewCA under a name that says why a test wants it.
func OtherCA(t testing.TB, td spiffeid.TrustDomain, opts ...CAOption) *CA {
	t.Helper()
	return NewCA(t, td, opts...)
}

// TrustDomain returns the CA's trust domain.
func (ca *CA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// Root returns the CA's root certificate.
func (ca *CA) Root() *x509.Certificate { return ca.root }

// Bundle returns a new bundle with the CA's root. A *x509bundle.Bundle is
// itself an x509bundle.Source (for its own trust domain).
func (ca *CA) Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.td, []*x509.Certificate{ca.root})
}

// ID returns the SPIFFE ID with path in the CA's trust domain.
func (ca *CA) ID(t testing.TB, path string) spiffeid.ID {
	t.Helper()
	id, err := spiffeid.FromPath(ca.td, path)
	if err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	return id
}

// SVIDOption changes an SVID minted by CA.SVID.
type SVIDOption func(*svidOptions)

type svidOptions struct {
	notBefore, notAfter time.Time
	ttl                 time.Duration
	key                 crypto.Signer
}

// Key makes the SVID certify key instead of a new P-256 key (for example
// to re-sign an existing SVID's key by another CA).
func Key(key crypto.Signer) SVIDOption { return func(o *svidOptions) { o.key = key } }

// TTL makes the SVID valid from now-30s until now+d (default one hour).
func TTL(d time.Duration) SVIDOption { return func(o *svidOptions) { o.ttl = d } }

// Expired makes an SVID that expired a minute ago.
func Expired() SVIDOption {
	return func(o *svidOptions) {
		now := time.Now()
		o.notBefore, o.notAfter = now.Add(-time.Hour), now.Add(-time.Minute)
	}
}

// NotYetValid makes an SVID that becomes valid in an hour.
func NotYetValid() SVIDOption {
	return func(o *svidOptions) {
		now := time.Now()
		o.notBefore, o.notAfter = now.Add(time.Hour), now.Add(2*time.Hour)
	}
}

// Validity sets NotBefore and NotAfter explicitly.
func Validity(notBefore, notAfter time.Time) SVIDOption {
	return func(o *svidOptions) { o.notBefore, o.notAfter = notBefore, notAfter }
}

// SVID mints an X.509-SVID for id (any trust domain: the CA signs what it is
// asked, so tests can make SVIDs that claim a foreign ID) with a new P-256
// key. The chain is the leaf plus the intermediate, if any.
func (ca *CA) SVID(t testing.TB, id spiffeid.ID, opts ...SVIDOption) *x509svid.SVID {
	t.Helper()
	o := svidOptions{ttl: time.Hour}
	for _, opt := range opts {
		opt(&o)
	}
	if o.notAfter.IsZero() {
		now := time.Now()
		o.notBefore, o.notAfter = now.Add(-30*time.Second), now.Add(o.ttl)
	}
	key := o.key
	if key == nil {
		key = newKey(t)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{Organization: []string{"pkitest"}},
		URIs:                  []*url.URL{id.URL()},
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	leaf := create(t, tmpl, ca.signer, key.Public(), ca.signerKey)
	return &x509svid.SVID{
		ID:           id,
		Certificates: append([]*x509.Certificate{leaf}, ca.chain...),
		PrivateKey:   key,
	}
}

// Source is a mutable x509svid.Source and x509bundle.Source for tests that
// rotate identities or trust. Set* take effect on the next lookup.
type Source struct {
	svid    atomic.Pointer[x509svid.SVID]
	bundles atomic.Pointer[x509bundle.Set]
}

var (
	_ x509svid.Source   = (*Source)(nil)
	_ x509bundle.Source = (*Source)(nil)
)

// NewSource returns a Source serving svid (may be nil) and bundles.
func NewSource(svid *x509svid.SVID, bundles ...*x509bundle.Bundle) *Source {
	s := &Source{}
	s.SetSVID(svid)
	s.SetBundles(bundles...)
	return s
}

// SetSVID replaces the SVID.
func (s *Source) SetSVID(svid *x509svid.SVID) { s.svid.Store(svid) }

// SetBundles replaces all bundles.
func (s *Source) SetBundles(bundles ...*x509bundle.Bundle) {
	s.bundles.Store(x509bundle.NewSet(bundles...))
}

// GetX509SVID implements x509svid.Source.
func (s *Source) GetX509SVID() (*x509svid.SVID, error) {
	if v := s.svid.Load(); v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("pkitest: no SVID")
}

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (s *Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.bundles.Load().GetX509BundleForTrustDomain(td)
}

func caTemplate(t testing.TB, td spiffeid.TrustDomain, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{Organization: []string{"pkitest"}, CommonName: "pkitest CA " + td.Name()},
		URIs:                  []*url.URL{td.ID().URL()},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

func create(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatalf("pkitest: create certificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("pkitest: parse certificate: %v", err)
	}
	return c
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("pkitest: key: %v", err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatalf("pkitest: serial: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}
