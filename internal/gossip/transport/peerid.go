package transport

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshgate/meshgate/pki"
)

// PeerAddr is the From of every packet the transport delivers: the
// sender's advertise address, which memberlist replies to, and the SPIFFE
// ID the sender authenticated with. One value is shared by all packets of
// a connection; treat it as read-only.
type PeerAddr struct {
	AddrPort netip.AddrPort
	ID       spiffeid.ID
}

var _ net.Addr = (*PeerAddr)(nil)

// Network implements net.Addr.
func (a *PeerAddr) Network() string { return "tcp" }

// String implements net.Addr: "ip:port", the form memberlist parses.
func (a *PeerAddr) String() string { return a.AddrPort.String() }

// PacketPeerID returns the authenticated SPIFFE ID of a packet's sender,
// given the packet's From. ok is false for an address this transport did
// not produce.
func PacketPeerID(from net.Addr) (id spiffeid.ID, ok bool) {
	a, ok := from.(*PeerAddr)
	if !ok {
		return spiffeid.ID{}, false
	}
	return a.ID, true
}

// PeerID returns the authenticated SPIFFE ID of the other end of a stream
// from StreamCh or DialAddressTimeout. It fails for a connection that is
// not TLS (or does not expose its TLS state, as a wrapper might not).
func PeerID(conn net.Conn) (spiffeid.ID, error) {
	c, ok := conn.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return spiffeid.ID{}, errors.New("transport: not a TLS connection")
	}
	return pki.PeerID(c.ConnectionState())
}
