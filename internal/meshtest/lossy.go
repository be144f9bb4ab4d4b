package meshtest

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Link is the quality of a Network's links while it is degraded, as a TCP
// connection over a lossy, jittery network experiences it. meshgate's
// gossip transport carries memberlist's packets on TLS over TCP, so a
// segment the network loses is not lost to memberlist: TCP resends it after
// its retransmission timeout, and everything written after it on that
// connection waits behind it (head-of-line blocking). That is what Link
// models on every packet and stream write: a delay uniform in [0, Jitter],
// plus RTO for a loss (each with probability Loss, the timeout doubling
// for each further loss in a row, as TCP backs off), and delivery in
// order. It stands in for `tc qdisc … netem loss 5% delay 10ms 10ms`
// where the kernel has no netem.
type Link struct {
	Loss   float64       // probability that a write's segment is lost and resent
	Jitter time.Duration // each write's delay is uniform in [0, Jitter]
	RTO    time.Duration // the first retransmission timeout; 0 means 200ms (Linux's floor)
}

// delay is one write's time on the wire, and whether it was lost (and
// resent) on the way.
func (l Link) delay() (d time.Duration, lost bool) {
	if l.Jitter > 0 {
		d = rand.N(l.Jitter + 1)
	}
	rto := l.RTO
	if rto <= 0 {
		rto = 200 * time.Millisecond
	}
	for l.Loss > 0 && rand.Float64() < l.Loss {
		d += rto
		rto *= 2
		lost = true
	}
	return d, lost
}

// Degrade makes every link of the Network l, from the next write on,
// until Heal. Blocked links stay blocked.
func (n *Network) Degrade(l Link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.link = l
}

// degraded returns the links' quality, and whether they are degraded.
func (n *Network) degraded() (Link, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.link, n.link != Link{}
}

// Delayed is the number of writes a degraded Network has held back by a
// loss (at least one RTO), for a measurement to report.
func (n *Network) Delayed() int64 { return n.delayed.Load() }

// queued is one write waiting for its delivery time.
type queued struct {
	due time.Time
	b   []byte
}

// pipe delivers writes in order, each at its time. The writer computes a
// write's time from the previous one's (never earlier: TCP delivers in
// order), so the pipe's goroutine only waits and writes.
type pipe struct {
	mu   sync.Mutex
	last time.Time
	ch   chan queued
}

// pipeLen bounds the writes in flight on one pipe; more are dropped, as a
// full socket buffer would stall them (memberlist's packets are
// best-effort; a stream write that found it full fails).
const pipeLen = 4096

func newPipe() *pipe { return &pipe{ch: make(chan queued, pipeLen)} }

// schedule queues a copy of b behind what is in flight, reporting false
// when the pipe is full.
func (p *pipe) schedule(n *Network, l Link, b []byte) bool {
	d, lost := l.delay()
	if lost {
		n.delayed.Add(1)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	due := time.Now().Add(d)
	if due.Before(p.last) {
		due = p.last
	}
	select {
	case p.ch <- queued{due: due, b: append([]byte(nil), b...)}:
		p.last = due
		return true
	default:
		return false
	}
}

// run writes each queued write at its time until done is closed, write
// fails (it returns the failure), or closing is closed and nothing is left
// to write.
func (p *pipe) run(done, closing <-chan struct{}, write func([]byte) error) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var q queued
		select {
		case q = <-p.ch:
		case <-done:
			return nil
		case <-closing:
			select {
			case q = <-p.ch:
			default:
				return nil
			}
		}
		if wait := time.Until(q.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-done:
				return nil
			}
		}
		if err := write(q.b); err != nil {
			return err
		}
	}
}

// packetPipe returns the pipe of packets to addr, starting its goroutine
// on first use.
func (f *faultTransport) packetPipe(a memberlist.Address) *pipe {
	f.pipesMu.Lock()
	defer f.pipesMu.Unlock()
	if p := f.pipes[a.Addr]; p != nil {
		return p
	}
	if f.pipes == nil {
		f.pipes = map[string]*pipe{}
	}
	p := newPipe()
	f.pipes[a.Addr] = p
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		// A packet the inner transport cannot send is dropped, as
		// memberlist expects of packets; the pipe goes on.
		for p.run(f.done, nil, func(b []byte) error { _, err := f.inner.WriteToAddress(b, a); return err }) != nil {
		}
	}()
	return p
}

// degrade wraps c so that its writes cross the Network's degraded links,
// when they are degraded.
func (f *faultTransport) degrade(c net.Conn) net.Conn {
	if _, ok := f.net.degraded(); !ok {
		return c
	}
	lc := &lossyConn{Conn: c, net: f.net, p: newPipe(), closing: make(chan struct{})}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		lc.pump(f.done)
	}()
	return lc
}

// lossyConn is a stream whose writes arrive as over a degraded link: Write
// queues (as into a socket buffer) and returns; a pump delivers. Close
// delivers what is queued first, then closes, as the kernel lingers.
type lossyConn struct {
	net.Conn
	net *Network
	p   *pipe

	err       atomic.Pointer[error]
	closeOnce sync.Once
	closing   chan struct{} // closed by Close: deliver what is queued, then close
}

func (c *lossyConn) Write(b []byte) (int, error) {
	if err := c.err.Load(); err != nil {
		return 0, *err
	}
	select {
	case <-c.closing:
		return 0, net.ErrClosed
	default:
	}
	l, _ := c.net.degraded() // healed since: no delay, still in order
	if !c.p.schedule(c.net, l, b) {
		return 0, errPipeFull
	}
	return len(b), nil
}

// errPipeFull is a write to a stream with pipeLen writes in flight (a full
// socket buffer would have blocked it).
var errPipeFull = errors.New("meshtest: degraded link: too many writes in flight")

// pump delivers the queued writes; once Close was called it delivers what
// is left, then closes the connection. done (the transport's shutdown)
// stops it at once.
func (c *lossyConn) pump(done <-chan struct{}) {
	err := c.p.run(done, c.closing, func(b []byte) error { _, err := c.Conn.Write(b); return err })
	if err != nil {
		c.err.Store(&err)
	}
	_ = c.Conn.Close()
}

func (c *lossyConn) Close() error {
	c.closeOnce.Do(func() { close(c.closing) })
	return nil
}
