package transport

import "sync/atomic"

// Stats are the transport's counters since New. They only grow.
type Stats struct {
	// Accepted counts inbound connections that authenticated and sent a
	// valid preamble.
	Accepted uint64
	// Rejected counts inbound connections closed before that: failed
	// handshake or authorization (no certificate, untrusted CA, expired
	// SVID, foreign trust domain, plaintext), wrong ALPN, bad type byte or
	// hello, handshake timeout, or over MaxPendingHandshakes.
	Rejected uint64
	// Malformed counts authenticated packet connections dropped for a bad
	// frame (zero or over MaxFrame).
	Malformed uint64
	// PacketsIn counts packets received (counted before they are handed to
	// PacketCh, so a receiver sees the count include its packet);
	// PacketsOut counts packets written to a peer's connection.
	PacketsIn, PacketsOut uint64
	// PacketsDropped counts outbound packets lost to a full queue, a failed
	// dial or a failed write.
	PacketsDropped uint64
	// StreamsIn counts streams accepted (before the StreamCh handoff);
	// StreamsOut streams dialled.
	StreamsIn, StreamsOut uint64
	// DialFailures counts failed dials (TCP, handshake or preamble) of
	// packet connections and streams.
	DialFailures uint64
}

type counters struct {
	accepted, rejected, malformed         atomic.Uint64
	packetsIn, packetsOut, packetsDropped atomic.Uint64
	streamsIn, streamsOut, dialFailures   atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	c := &t.stats
	return Stats{
		Accepted:       c.accepted.Load(),
		Rejected:       c.rejected.Load(),
		Malformed:      c.malformed.Load(),
		PacketsIn:      c.packetsIn.Load(),
		PacketsOut:     c.packetsOut.Load(),
		PacketsDropped: c.packetsDropped.Load(),
		StreamsIn:      c.streamsIn.Load(),
		StreamsOut:     c.streamsOut.Load(),
		DialFailures:   c.dialFailures.Load(),
	}
}
