package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// This file is the one place where meshgate builds TLS configs for its hops.
//
// Both configs are go-spiffe's tlsconfig mTLS configs: the certificate to
// present is fetched from the x509svid.Source and the peer's chain is
// verified against the x509bundle.Source inside handshake callbacks. A
// rotation therefore only needs the sources to return the new SVID or
// bundle: no tls.Config is ever rebuilt, no listener restarted, and open
// connections are untouched (they keep the identity they were made with).
//
// Resumed TLS sessions skip VerifyPeerCertificate (see crypto/tls), so both
// configs add a VerifyConnection that re-verifies the peer's chain against
// the current bundle and re-runs the authorizer on resumption: an expired
// SVID or a removed root cannot ride on an old session ticket.

// nextProtos are offered on every meshgate mTLS listener and client.
var nextProtos = []string{"h2", "http/1.1"}

// ServerTLS returns the config of an mTLS server: it presents the SVID of
// svids, requires a client certificate, verifies it as an X.509-SVID
// against bundles, and lets authorize decide on the caller's SPIFFE ID. A
// nil authorize denies every caller. ALPN offers h2 and http/1.1. The
// caller's ID is then available with PeerID(conn.ConnectionState()).
func ServerTLS(svids x509svid.Source, bundles x509bundle.Source, authorize tlsconfig.Authorizer) *tls.Config {
	authorize = orDenyAll(authorize)
	c := tlsconfig.MTLSServerConfig(svids, bundles, authorize)
	finish(c, bundles, authorize)
	return c
}

// ClientTLS returns the config of an mTLS client: it presents the SVID of
// svids and accepts the server only if its chain verifies against bundles
// and expect accepts its SPIFFE ID (typically AllowIDs(the target's ID)). A
// nil expect rejects every server. Host names are not checked; the SPIFFE
// ID is the server's identity. Clone the result to set ServerName or a
// ClientSessionCache.
func ClientTLS(svids x509svid.Source, bundles x509bundle.Source, expect tlsconfig.Authorizer) *tls.Config {
	expect = orDenyAll(expect)
	c := tlsconfig.MTLSClientConfig(svids, bundles, expect)
	finish(c, bundles, expect)
	return c
}

func finish(c *tls.Config, bundles x509bundle.Source, authorize tlsconfig.Authorizer) {
	c.MinVersion = tls.VersionTLS12
	c.NextProtos = append([]string(nil), nextProtos...)
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if !cs.DidResume {
			return nil // VerifyPeerCertificate already verified and authorized
		}
		if len(cs.PeerCertificates) == 0 {
			return errors.New("pki: resumed session without peer certificate")
		}
		id, chains, err := x509svid.Verify(cs.PeerCertificates, bundles)
		if err != nil {
			return err
		}
		return authorize(id, chains)
	}
}

func orDenyAll(a tlsconfig.Authorizer) tlsconfig.Authorizer {
	if a != nil {
		return a
	}
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		return fmt.Errorf("pki: %w: %s (no authorizer configured)", ErrNotAuthorized, id)
	}
}

// PeerID returns the SPIFFE ID of the peer of a connection made with
// ServerTLS or ClientTLS (which verified it during the handshake): the URI
// SAN of the peer's leaf certificate. It fails if the peer sent no
// certificate or the leaf has no single valid SPIFFE ID.
func PeerID(state tls.ConnectionState) (spiffeid.ID, error) {
	if len(state.PeerCertificates) == 0 {
		return spiffeid.ID{}, errors.New("pki: peer presented no certificate")
	}
	id, err := x509svid.IDFromCert(state.PeerCertificates[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("pki: peer certificate: %w", err)
	}
	return id, nil
}
