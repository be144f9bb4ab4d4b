package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meshgate/meshgate/pki"
)

// acceptLoop only accepts: every handshake runs on its own goroutine under
// a deadline, so a slow or silent client cannot hold up the next peer.
func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	var delay time.Duration
	for {
		raw, err := t.ln.Accept()
		if err != nil {
			if t.shuttingDown() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off instead of
			// spinning, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.rejectLog.Log(slog.LevelError, "gossip transport: accept", slog.String("error", err.Error()))
			select {
			case <-time.After(delay):
			case <-t.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		select {
		case t.pending <- struct{}{}:
		default:
			_ = raw.Close()
			t.stats.rejected.Add(1)
			t.logRejected(raw.RemoteAddr(), errors.New("too many pending handshakes"))
			continue
		}
		if !t.track(raw) {
			_ = raw.Close()
			<-t.pending
			return
		}
		t.wg.Add(1)
		go t.serveConn(raw)
	}
}

// serveConn authenticates an inbound connection and then hands it to
// memberlist (a stream) or reads its packets until it ends.
func (t *Transport) serveConn(raw net.Conn) {
	defer t.wg.Done()
	tc, kind, from, err := t.handshake(raw)
	<-t.pending
	if err != nil {
		_ = raw.Close()
		t.untrack(raw)
		if !t.shuttingDown() {
			t.stats.rejected.Add(1)
			t.logRejected(raw.RemoteAddr(), err)
		}
		return
	}
	t.stats.accepted.Add(1)

	if kind == kindStream {
		// memberlist owns the stream from here on; Shutdown no longer
		// closes it.
		t.untrack(raw)
		t.stats.streamsIn.Add(1)
		select {
		case t.streamCh <- tc:
		case <-t.ctx.Done():
			_ = raw.Close()
		}
		return
	}
	t.readPackets(tc, from)
	_ = raw.Close()
	t.untrack(raw)
}

// handshake runs the TLS handshake and reads the preamble, all under
// HandshakeTimeout, and clears the deadline on success.
func (t *Transport) handshake(raw net.Conn) (*tls.Conn, byte, *PeerAddr, error) {
	if err := raw.SetDeadline(time.Now().Add(t.opts.HandshakeTimeout)); err != nil {
		return nil, 0, nil, err
	}
	tc := tls.Server(raw, t.serverTLS)
	if err := tc.HandshakeContext(t.ctx); err != nil {
		return nil, 0, nil, err
	}
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol != alpn {
		return nil, 0, nil, fmt.Errorf("transport: client did not negotiate %s", alpn)
	}
	id, err := pki.PeerID(cs)
	if err != nil {
		return nil, 0, nil, err
	}
	kind, ap, err := readPreamble(tc)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%s: %w", id, err)
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, 0, nil, err
	}
	return tc, kind, &PeerAddr{AddrPort: ap, ID: id}, nil
}

// readPackets delivers the frames of an authenticated packet connection
// until it ends, breaks a rule, idles out or the transport shuts down. A
// slow memberlist backs up into TCP, and the sender's write deadline then
// drops packets at the source, as a full UDP buffer would.
func (t *Transport) readPackets(tc *tls.Conn, from *PeerAddr) {
	for {
		if err := tc.SetReadDeadline(time.Now().Add(t.opts.IdleTimeout)); err != nil {
			return
		}
		buf, err := readFrame(tc, MaxFrame)
		ts := time.Now() // as close to receipt as we get, for memberlist's RTT
		if err != nil {
			if errors.Is(err, errFrameSize) {
				t.stats.malformed.Add(1)
				t.rejectLog.Log(slog.LevelWarn, "gossip transport: dropped peer for a bad frame",
					slog.String("from", from.String()), slog.String("peer", from.ID.String()), slog.String("error", err.Error()))
			}
			return
		}
		t.stats.packetsIn.Add(1)
		select {
		case t.packetCh <- &memberlist.Packet{Buf: buf, From: from, Timestamp: ts}:
		case <-t.ctx.Done():
			return
		}
	}
}
