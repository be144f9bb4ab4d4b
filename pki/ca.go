// Package pki is meshgate's trust domain: a small certificate authority that
// signs X.509-SVIDs, PEM files and a reloading file source for them, and the
// one place where TLS configs and SPIFFE authorizers are built.
//
// Everything here speaks go-spiffe types (spiffeid.ID, x509svid.SVID,
// x509bundle.Bundle, tlsconfig.Authorizer), so identities issued by this CA
// and identities fetched from SPIRE through the Workload API are
// interchangeable for the code that consumes them.
//
// # CA directory layout
//
// InitCA writes, into a directory it creates with mode 0700:
//
//	root.pem          self-signed root certificate (PEM "CERTIFICATE")
//	root.key          its ECDSA P-256 key (PEM "PRIVATE KEY", PKCS#8), mode 0600
//	intermediate.pem  optional intermediate signed by the root
//	intermediate.key  its key, mode 0600
//
// Signing certificates carry the trust domain's SPIFFE ID (spiffe://<td>) as
// their only URI SAN, as the X.509-SVID specification describes for signing
// certificates. When an intermediate exists it signs the SVIDs and is sent
// with them; the bundle contains only the root.
//
// # SVID file layout
//
// WriteSVID (and `meshctl pki issue`) writes:
//
//	svid.pem      the SVID chain, leaf first (PEM "CERTIFICATE" blocks)
//	svid_key.pem  the leaf's key (PEM "PRIVATE KEY", PKCS#8), mode 0600
//	bundle.pem    the trust domain's X.509 authorities (PEM "CERTIFICATE")
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Defaults for InitOptions.
const (
	DefaultRootTTL         = 10 * 365 * 24 * time.Hour
	DefaultIntermediateTTL = 365 * 24 * time.Hour
	// ClockSkew is how far before "now" a new certificate's NotBefore is
	// set, so that peers whose clocks lag slightly still accept it.
	ClockSkew = 30 * time.Second
)

// Errors a caller may want to tell apart (test with errors.Is).
var (
	// ErrCAExists is returned by InitCA when the directory already holds
	// (part of) a CA. InitCA never overwrites one.
	ErrCAExists = errors.New("a CA already exists in this directory")
	// ErrNoCA is returned by LoadCA when the directory holds no CA.
	ErrNoCA = errors.New("no CA in this directory")
	// ErrWrongTrustDomain is returned when asked to sign an ID of a trust
	// domain other than the CA's.
	ErrWrongTrustDomain = errors.New("SPIFFE ID is not in the CA's trust domain")
)

// InitOptions configures InitCA and NewCA. The zero value is a root-only CA
// with the default lifetimes.
type InitOptions struct {
	// Intermediate makes the root sign an intermediate CA, which then
	// signs the SVIDs. The root key can then be kept offline.
	Intermediate bool
	// RootTTL is the root certificate's lifetime (default DefaultRootTTL).
	RootTTL time.Duration
	// IntermediateTTL is the intermediate's lifetime (default
	// DefaultIntermediateTTL), capped by the root's.
	IntermediateTTL time.Duration
}

// CA signs X.509-SVIDs for one trust domain. It is immutable after
// construction and safe for concurrent use.
type CA struct {
	td        spiffeid.TrustDomain
	root      *x509.Certificate
	rootKey   crypto.Signer
	signer    *x509.Certificate   // the certificate that signs SVIDs: root or intermediate
	signerKey crypto.Signer       // its key
	chain     []*x509.Certificate // sent after the leaf: nil or [intermediate]
}

// NewCA creates a CA in memory only. InitCA is NewCA plus writing the files.
func NewCA(td spiffeid.TrustDomain, opts InitOptions) (*CA, error) {
	if td.IsZero() {
		return nil, errors.New("pki: empty trust domain")
	}
	rootTTL := opts.RootTTL
	if rootTTL == 0 {
		rootTTL = DefaultRootTTL
	}
	interTTL := opts.IntermediateTTL
	if interTTL == 0 {
		interTTL = DefaultIntermediateTTL
	}
	if rootTTL < 0 || interTTL < 0 {
		return nil, errors.New("pki: CA lifetimes must be positive")
	}

	now := time.Now()
	rootKey, err := newKey()
	if err != nil {
		return nil, err
	}
	rootTmpl, err := signingTemplate(td, "root", now, now.Add(rootTTL))
	if err != nil {
		return nil, err
	}
	root, err := createCert(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("pki: create root: %w", err)
	}
	ca := &CA{td: td, root: root, rootKey: rootKey, signer: root, signerKey: rootKey}
	if !opts.Intermediate {
		return ca, nil
	}

	interKey, err := newKey()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(interTTL)
	if notAfter.After(root.NotAfter) {
		notAfter = root.NotAfter
	}
	interTmpl, err := signingTemplate(td, "intermediate", now, notAfter)
	if err != nil {
		return nil, err
	}
	interTmpl.MaxPathLen = 0
	interTmpl.MaxPathLenZero = true
	inter, err := createCert(interTmpl, root, interKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("pki: create intermediate: %w", err)
	}
	ca.signer, ca.signerKey, ca.chain = inter, interKey, []*x509.Certificate{inter}
	return ca, nil
}

// newCAFromParts assembles a CA from loaded certificates and keys and checks
// that they belong together.
func newCAFromParts(root *x509.Certificate, rootKey crypto.Signer, inter *x509.Certificate, interKey crypto.Signer) (*CA, error) {
	if !root.IsCA || root.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("root certificate is not a signing CA")
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("root certificate is not self-signed: %w", err)
	}
	if !publicKeyEqual(root.PublicKey, rootKey.Public()) {
		return nil, errors.New("root key does not match root certificate")
	}
	id, err := x509svid.IDFromCert(root)
	if err != nil {
		return nil, fmt.Errorf("root certificate has no SPIFFE ID: %w", err)
	}
	ca := &CA{td: id.TrustDomain(), root: root, rootKey: rootKey, signer: root, signerKey: rootKey}
	if inter == nil {
		return ca, nil
	}
	if !inter.IsCA || inter.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("intermediate certificate is not a signing CA")
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("intermediate is not signed by the root: %w", err)
	}
	if !publicKeyEqual(inter.PublicKey, interKey.Public()) {
		return nil, errors.New("intermediate key does not match intermediate certificate")
	}
	interID, err := x509svid.IDFromCert(inter)
	if err != nil {
		return nil, fmt.Errorf("intermediate certificate has no SPIFFE ID: %w", err)
	}
	if interID.TrustDomain() != ca.td {
		return nil, fmt.Errorf("intermediate is for trust domain %q, root for %q", interID.TrustDomain(), ca.td)
	}
	ca.signer, ca.signerKey, ca.chain = inter, interKey, []*x509.Certificate{inter}
	return ca, nil
}

// TrustDomain returns the CA's trust domain.
func (ca *CA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// Bundle returns a new bundle holding the CA's root: what peers must trust
// to verify SVIDs this CA signs. The caller may modify it.
func (ca *CA) Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.td, []*x509.Certificate{ca.root})
}

// Root returns the root certificate.
func (ca *CA) Root() *x509.Certificate { return ca.root }

// Intermediate returns the intermediate certificate, or nil if the root
// signs SVIDs directly.
func (ca *CA) Intermediate() *x509.Certificate {
	if len(ca.chain) == 0 {
		return nil
	}
	return ca.chain[0]
}

// SignX509SVID signs an X.509-SVID for id over pub and returns the chain to
// present: the leaf, then the intermediate if there is one (never the root).
//
// The leaf follows the X.509-SVID specification: exactly one URI SAN (id),
// not a CA, KeyUsage digitalSignature|keyEncipherment|keyAgreement,
// ExtKeyUsage serverAuth and clientAuth, a random 128-bit serial. It is
// valid from now-ClockSkew to now+ttl, but never past the signing
// certificate's NotAfter. id must be a workload ID (non-empty path) in the
// CA's trust domain.
func (ca *CA) SignX509SVID(id spiffeid.ID, pub crypto.PublicKey, ttl time.Duration) ([]*x509.Certificate, error) {
	if err := ca.checkID(id); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("pki: SVID TTL must be positive, got %s", ttl)
	}
	if pub == nil {
		return nil, errors.New("pki: no public key to sign")
	}
	now := time.Now()
	if !now.Before(ca.signer.NotAfter) {
		return nil, fmt.Errorf("pki: signing certificate expired at %s", ca.signer.NotAfter.UTC().Format(time.RFC3339))
	}
	notAfter := now.Add(ttl)
	if notAfter.After(ca.signer.NotAfter) {
		notAfter = ca.signer.NotAfter
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"meshgate"}},
		URIs:                  []*url.URL{id.URL()},
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	leaf, err := createCert(tmpl, ca.signer, pub, ca.signerKey)
	if err != nil {
		return nil, fmt.Errorf("pki: sign SVID for %s: %w", id, err)
	}
	return append([]*x509.Certificate{leaf}, ca.chain...), nil
}

// IssueX509SVID generates an ECDSA P-256 key and signs an SVID for it (see
// SignX509SVID).
func (ca *CA) IssueX509SVID(id spiffeid.ID, ttl time.Duration) (*x509svid.SVID, error) {
	if err := ca.checkID(id); err != nil {
		return nil, err
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	chain, err := ca.SignX509SVID(id, key.Public(), ttl)
	if err != nil {
		return nil, err
	}
	return &x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}, nil
}

func (ca *CA) checkID(id spiffeid.ID) error {
	switch {
	case id.IsZero():
		return errors.New("pki: empty SPIFFE ID")
	case !id.MemberOf(ca.td):
		return fmt.Errorf("pki: %w: %s is not in %s", ErrWrongTrustDomain, id, ca.td)
	case id.Path() == "":
		return fmt.Errorf("pki: SPIFFE ID %s has no path; an SVID needs a workload path", id)
	}
	return nil
}

func signingTemplate(td spiffeid.TrustDomain, role string, now, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"meshgate"},
			CommonName:   "meshgate " + role + " CA " + td.Name(),
		},
		URIs:                  []*url.URL{td.ID().URL()},
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil
}

func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	return key, nil
}

var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

// randomSerial returns a random positive serial of up to 128 bits.
func randomSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, serialLimit)
		if err != nil {
			return nil, fmt.Errorf("pki: serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
