package workload

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// testCA is a minimal Signer: a self-signed ECDSA P-256 root that signs
// leaves with one URI SAN, backdated like a real CA.
type testCA struct {
	td       spiffeid.TrustDomain
	key      *ecdsa.PrivateKey
	root     *x509.Certificate
	backdate time.Duration
	now      func() time.Time
	serial   atomic.Int64
	fail     atomic.Bool
	signed   atomic.Int64
}

func newTestCA(t *testing.T, td string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	trust := spiffeid.RequireTrustDomainFromString(td)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test root " + td},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{trust.ID().URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{td: trust, key: key, root: root, backdate: 30 * time.Second, now: time.Now}
	ca.serial.Store(1)
	return ca
}

func (c *testCA) TrustDomain() spiffeid.TrustDomain { return c.td }

func (c *testCA) Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(c.td, []*x509.Certificate{c.root})
}

func (c *testCA) SignX509SVID(id spiffeid.ID, pub crypto.PublicKey, ttl time.Duration) ([]*x509.Certificate, error) {
	if c.fail.Load() {
		return nil, errors.New("test CA: signing disabled")
	}
	now := c.now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(c.serial.Add(1)),
		NotBefore:             now.Add(-c.backdate),
		NotAfter:              now.Add(ttl),
		URIs:                  []*url.URL{id.URL()},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.root, pub, c.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c.signed.Add(1)
	return []*x509.Certificate{leaf}, nil
}
