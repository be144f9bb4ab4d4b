package listen

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Socket is a bound address that outlives the listener configs using it.
// One goroutine accepts and hands each connection to the current queue; a
// reload that changes a listener's settings (or its name) builds a new server
// on a new queue and points the socket at it. The socket is never closed
// and rebound for that, so no connection waiting in its backlog is reset —
// the failure that closing and rebinding (or SO_REUSEPORT) has.
type Socket struct {
	ln     net.Listener
	target atomic.Pointer[connQueue]
}

// Open binds address and starts accepting on it.
func Open(address string) (*Socket, error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, err
	}
	s := &Socket{ln: ln}
	go s.accept()
	return s, nil
}

func (s *Socket) accept() {
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, as
			// net/http does, rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		for {
			q := s.target.Load()
			if q == nil {
				c.Close()
				break
			}
			if q.deliver(c) {
				break
			}
			if s.target.Load() == q {
				c.Close() // draining: no successor will take it
				break
			}
			// q was replaced while we delivered: try its successor.
		}
	}
}

// handoff points the socket at q; connections not yet taken from the
// previous queue move to q.
func (s *Socket) handoff(q *connQueue) {
	if old := s.target.Swap(q); old != nil && old != q {
		old.closeInto(q)
	}
}

// close stops accepting; queued connections are closed.
// Close stops accepting and unbinds the address.
func (s *Socket) Close() {
	s.ln.Close()
	if q := s.target.Swap(nil); q != nil {
		q.closeInto(nil)
	}
}

// connQueue is the net.Listener an http.Server serves: connections handed
// over by a socket.
type connQueue struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	drained bool
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn, 64), done: make(chan struct{})}
}

// deliver queues c; false when the queue is closed.
func (q *connQueue) deliver(c net.Conn) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.drained {
		return false
	}
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

// closeInto closes q and moves what it still holds to next (or closes it).
func (q *connQueue) closeInto(next *connQueue) {
	q.Close()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.drained = true
	for {
		select {
		case c := <-q.ch:
			if next == nil || !next.deliver(c) {
				c.Close()
			}
		default:
			return
		}
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept fail; the socket keeps running.
func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// Addr is the bound address.
func (s *Socket) Addr() net.Addr { return s.ln.Addr() }
