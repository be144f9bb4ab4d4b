package h1server

import (
	"io"
	"net"
	"sync"
	"time"
)

// memConn is an in-memory net.Conn: reads come from next (called under a
// mutex, as net/http reads concurrently), writes are counted and dropped or
// kept.
type memConn struct {
	mu      sync.Mutex
	next    func(p []byte) (int, error)
	written int64
	keep    []byte // written bytes, if keepWrites
	keepW   bool
	closed  chan struct{}
	once    sync.Once
}

func newMemConn(next func(p []byte) (int, error)) *memConn {
	return &memConn{next: next, closed: make(chan struct{})}
}

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.next(p)
}

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written += int64(len(p))
	if c.keepW {
		c.keep = append(c.keep, p...)
	}
	return len(p), nil
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

var memAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}

func (c *memConn) LocalAddr() net.Addr                { return memAddr }
func (c *memConn) RemoteAddr() net.Addr               { return memAddr }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// bytesSource reads b once, then EOF.
func bytesSource(b []byte) func([]byte) (int, error) {
	return func(p []byte) (int, error) {
		if len(b) == 0 {
			return 0, io.EOF
		}
		n := copy(p, b)
		b = b[n:]
		return n, nil
	}
}

// repeatSource delivers req n times back to back (pipelined), then EOF.
func repeatSource(req []byte, n int) func([]byte) (int, error) {
	off := 0
	return func(p []byte) (int, error) {
		total := 0
		for n > 0 && len(p) > 0 {
			m := copy(p, req[off:])
			p, off, total = p[m:], off+m, total+m
			if off == len(req) {
				off = 0
				n--
			}
		}
		if total == 0 {
			return 0, io.EOF
		}
		return total, nil
	}
}

// oneConnListener accepts c once, then blocks until closed.
type oneConnListener struct {
	c    net.Conn
	once sync.Once
	done chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.c })
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return memAddr }
