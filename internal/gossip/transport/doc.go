// Package transport is a memberlist.NodeAwareTransport that carries all
// gossip over SPIFFE mutual TLS on a single TCP listener, so that only
// holders of a valid X.509-SVID of the trust domain can join the cluster or
// feed it state. memberlist's own transport sends packets as plaintext UDP
// and its keyring shares one symmetric key among all nodes; here every byte
// travels on a connection whose peer proved an identity the Authorizer
// accepted, and rotation of SVIDs and bundles is picked up per handshake.
//
// # Connections
//
// Every connection is TLS 1.2+ with mutual authentication, configured by
// pki.ServerTLS and pki.ClientTLS with one Authorizer for both directions
// (who may talk to us and whose servers we accept). ALPN is restricted to
// "meshgate-gossip/1" on both sides, so a gossip peer never mistakes an
// HTTP mTLS port for a gossip port or the reverse; a change of the wire
// format below takes a new protocol name.
//
// After the handshake the dialer writes one type byte:
//
//	0x01 packet connection: carries memberlist's best-effort packets
//	0x02 stream connection: one memberlist stream (push/pull, TCP ping, ...)
//
// A stream connection carries memberlist's bytes unchanged after the type
// byte; the accepting side hands the *tls.Conn to StreamCh and memberlist
// owns it from then on.
//
// A packet connection is one-way, dialer to acceptor, and long-lived (one
// per destination address, closed after Options.IdleTimeout unused). It is
// a sequence of frames:
//
//	frame = length:uint32 big-endian, payload:[length]byte, 1 <= length <= MaxFrame
//
// The first frame is the hello: the ASCII advertise address ("ip:port",
// "[ipv6]:port") of the sender, the address memberlist knows it by and
// replies to. Every later frame is one memberlist packet. The acceptor
// never writes on a packet connection; replies travel on the acceptor's
// own packet connection to the sender's advertise address.
//
// # Trust
//
// The advertise address in the hello is a claim, not bound to the SVID: a
// node the Authorizer admits is trusted with membership state anyway (it
// could gossip any alive message). The authenticated SPIFFE ID of a
// packet's sender is on its From (a *PeerAddr); PeerID gives a stream's.
//
// # Failure handling
//
// Handshakes run off the accept loop under Options.HandshakeTimeout, with
// at most Options.MaxPendingHandshakes in flight. A peer that fails the
// handshake, the authorization or the type/hello preamble is closed,
// counted in Stats.Rejected and logged at most once per
// Options.LogInterval. Packets are best-effort as memberlist expects of
// UDP: WriteTo only queues (a bounded queue per destination); a full queue,
// a failed dial or a write that misses Options.WriteTimeout drops packets
// (Stats.PacketsDropped) and the connection, which is redialled on the next
// packet.
package transport
