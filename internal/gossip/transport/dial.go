package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// dial connects to addr and completes the mTLS handshake within timeout;
// Shutdown aborts it. It returns the TLS connection and the raw one under
// it (closing the raw one tears down without a close_notify write that a
// stuck peer could block).
//
// With TLS 1.3 a client's handshake completes before the server has
// checked the client's certificate, so a server that rejects us is only
// noticed on the first read: by memberlist on a stream, by the watcher on
// a packet connection.
func (t *Transport) dial(addr string, timeout time.Duration) (*tls.Conn, net.Conn, error) {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	tc := tls.Client(raw, t.clientTLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, nil, err
	}
	if tc.ConnectionState().NegotiatedProtocol != alpn {
		_ = raw.Close()
		return nil, nil, fmt.Errorf("transport: %s did not negotiate %s", addr, alpn)
	}
	return tc, raw, nil
}

// DialTimeout implements memberlist.Transport.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport: a fresh
// mTLS stream to a.Addr (a.Name is not used). timeout bounds the dial and
// handshake, capped by Options.HandshakeTimeout; the returned *tls.Conn
// has no deadline set and belongs to the caller.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 || timeout > t.opts.HandshakeTimeout {
		timeout = t.opts.HandshakeTimeout
	}
	tc, raw, err := t.dial(a.Addr, timeout)
	if err == nil {
		err = writeAll(raw, tc, []byte{kindStream}, time.Now().Add(timeout))
		if err != nil {
			_ = raw.Close()
		}
	}
	if err != nil {
		if t.shuttingDown() {
			return nil, errClosed
		}
		t.stats.dialFailures.Add(1)
		t.dialLog.Log(slog.LevelWarn, "gossip transport: stream dial failed",
			slog.String("addr", a.Addr), slog.String("error", err.Error()))
		return nil, fmt.Errorf("transport: dial %s: %w", a.Addr, err)
	}
	t.stats.streamsOut.Add(1)
	return tc, nil
}

// writeAll writes b on tc before deadline and clears the deadline again.
func writeAll(raw net.Conn, tc *tls.Conn, b []byte, deadline time.Time) error {
	if err := raw.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if _, err := tc.Write(b); err != nil {
		return err
	}
	return raw.SetWriteDeadline(time.Time{})
}
