package transport

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// peer is the outbound packet path to one address: a bounded queue drained
// by one writer goroutine that owns the connection. memberlist calls
// WriteTo from its probe and gossip loops, so WriteTo only queues; dials,
// handshakes and slow peers are the writer's problem.
type peer struct {
	addr  string
	queue chan []byte
}

// outConn is a packet connection we dialled. gone is set by the watcher
// when the far end closes it or sends anything (it never should).
type outConn struct {
	tls     *tls.Conn
	raw     net.Conn
	gone    atomic.Bool
	closing atomic.Bool
}

// batchBytes is how much the writer coalesces into one write when packets
// queued up behind a dial or a slow write.
const batchBytes = MaxFrame

// WriteTo implements memberlist.Transport.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport. It queues a
// copy of b for a.Addr and returns at once; like UDP it reports no loss
// (see Stats.PacketsDropped). a.Name is not used.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if len(b) == 0 || len(b) > MaxFrame {
		return time.Time{}, fmt.Errorf("transport: packet of %d bytes (1..%d)", len(b), MaxFrame)
	}
	msg := bytes.Clone(b) // the writer sends it later; memberlist may reuse b
	queued, err := t.enqueue(a.Addr, msg)
	if err != nil {
		return time.Time{}, err
	}
	if !queued {
		t.stats.packetsDropped.Add(1)
	}
	return time.Now(), nil
}

// enqueue queues msg for addr, starting the peer's writer if needed. The
// read lock makes the queue send atomic with respect to retirePeer.
func (t *Transport) enqueue(addr string, msg []byte) (bool, error) {
	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		return false, errClosed
	}
	if p := t.peers[addr]; p != nil {
		ok := offer(p.queue, msg)
		t.mu.RUnlock()
		return ok, nil
	}
	t.mu.RUnlock()

	if _, _, err := net.SplitHostPort(addr); err != nil {
		return false, fmt.Errorf("transport: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false, errClosed
	}
	p := t.peers[addr]
	if p == nil {
		p = &peer{addr: addr, queue: make(chan []byte, t.opts.QueueLen)}
		t.peers[addr] = p
		// Under the lock with closed false: this Add happens before
		// Shutdown's Wait.
		t.wg.Add(1)
		go t.runPeer(p)
	}
	return offer(p.queue, msg), nil
}

func offer(q chan []byte, msg []byte) bool {
	select {
	case q <- msg:
		return true
	default:
		return false
	}
}

// retirePeer removes an idle peer unless a packet slipped in; the caller's
// goroutine then exits.
func (t *Transport) retirePeer(p *peer) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p.queue) > 0 {
		return false
	}
	delete(t.peers, p.addr)
	return true
}

// runPeer is the writer goroutine of one destination.
func (t *Transport) runPeer(p *peer) {
	defer t.wg.Done()
	var c *outConn
	defer func() { t.closeOut(c) }()
	idle := time.NewTimer(t.opts.IdleTimeout)
	defer idle.Stop()
	var buf []byte
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-idle.C:
			if t.retirePeer(p) {
				return
			}
			idle.Reset(t.opts.IdleTimeout)
		case msg := <-p.queue:
			c, buf = t.flush(p, c, msg, buf)
			idle.Reset(t.opts.IdleTimeout)
		}
	}
}

// flush sends first and whatever else is queued on c, dialling if c is nil
// or gone. It returns the connection to use next time (nil after a
// failure) and the buffer for reuse.
func (t *Transport) flush(p *peer, c *outConn, first []byte, buf []byte) (*outConn, []byte) {
	if c != nil && c.gone.Load() {
		t.closeOut(c)
		c = nil
	}
	if c == nil {
		var err error
		if c, err = t.dialPacket(p.addr); err != nil {
			// Packets that waited through a failed dial are stale; drop
			// them too rather than dial again for each.
			n := 1 + drain(p.queue)
			t.stats.packetsDropped.Add(uint64(n))
			if !t.shuttingDown() {
				t.stats.dialFailures.Add(1)
				t.dialLog.Log(slog.LevelWarn, "gossip transport: packet dial failed",
					slog.String("addr", p.addr), slog.Int("dropped", n), slog.String("error", err.Error()))
			}
			return nil, buf
		}
	}
	buf = appendFrame(buf[:0], first)
	n := 1
coalesce:
	for len(buf) < batchBytes {
		select {
		case msg := <-p.queue:
			buf = appendFrame(buf, msg)
			n++
		default:
			break coalesce
		}
	}
	_ = c.raw.SetWriteDeadline(time.Now().Add(t.opts.WriteTimeout))
	if _, err := c.tls.Write(buf); err != nil {
		t.stats.packetsDropped.Add(uint64(n))
		if !t.shuttingDown() {
			t.dialLog.Log(slog.LevelWarn, "gossip transport: packet write failed",
				slog.String("addr", p.addr), slog.Int("dropped", n), slog.String("error", err.Error()))
		}
		t.closeOut(c)
		return nil, buf
	}
	t.stats.packetsOut.Add(uint64(n))
	if cap(buf) > 4*batchBytes {
		buf = nil // one burst of huge packets should not pin memory per peer
	}
	return c, buf
}

func drain(q chan []byte) int {
	n := 0
	for {
		select {
		case <-q:
			n++
		default:
			return n
		}
	}
}

// dialPacket opens a packet connection to addr and sends the preamble.
func (t *Transport) dialPacket(addr string) (*outConn, error) {
	adv := t.advertise.Load()
	if adv == nil {
		return nil, errors.New("transport: no advertise address yet (FinalAdvertiseAddr)")
	}
	tc, raw, err := t.dial(addr, t.opts.HandshakeTimeout)
	if err != nil {
		return nil, err
	}
	if !t.track(raw) {
		_ = raw.Close()
		return nil, errClosed
	}
	c := &outConn{tls: tc, raw: raw}
	if err := writeAll(raw, tc, appendPacketPreamble(nil, *adv), time.Now().Add(t.opts.WriteTimeout)); err != nil {
		t.closeOut(c)
		return nil, err
	}
	t.wg.Add(1)
	go t.watch(c)
	return c, nil
}

// watch reads the outbound packet connection, on which the acceptor never
// writes: the read returns only when the far end goes away or rejects us
// (with TLS 1.3 that is where a refused client certificate shows up), and
// flags the connection so the next packet redials instead of being lost.
func (t *Transport) watch(c *outConn) {
	defer t.wg.Done()
	var b [1]byte
	_, err := c.tls.Read(b[:])
	c.gone.Store(true)
	if c.closing.Load() || t.shuttingDown() {
		return
	}
	_ = c.raw.Close()
	if errors.Is(err, io.EOF) {
		return // the acceptor closed an idle connection: routine
	}
	if err == nil {
		err = errors.New("peer wrote on a packet connection")
	}
	t.dialLog.Log(slog.LevelWarn, "gossip transport: packet connection closed by peer",
		slog.String("addr", c.raw.RemoteAddr().String()), slog.String("error", err.Error()))
}

// closeOut closes c without a close_notify (see dial) and forgets it.
func (t *Transport) closeOut(c *outConn) {
	if c == nil {
		return
	}
	c.closing.Store(true)
	_ = c.raw.Close()
	t.untrack(c.raw)
}
