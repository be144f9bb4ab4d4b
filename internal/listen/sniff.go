package listen

import (
	"bytes"
	"net"
	"time"
)

// h2Preface starts every HTTP/2 connection with prior knowledge (RFC 9113
// §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sniffH2C reads the first bytes of a cleartext connection, just far enough
// to tell the HTTP/2 preface from an HTTP/1.x request line (usually the
// first byte), and returns a conn that replays them.
func sniffH2C(c net.Conn, timeout time.Duration) (net.Conn, bool, error) {
	if timeout > 0 {
		_ = c.SetReadDeadline(time.Now().Add(timeout))
	}
	buf := make([]byte, 0, 4096)
	for {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		k := min(len(buf), len(h2Preface))
		if !bytes.Equal(buf[:k], []byte(h2Preface[:k])) {
			break // HTTP/1.x
		}
		if k == len(h2Preface) {
			_ = c.SetReadDeadline(time.Time{})
			return &prefixConn{Conn: c, prefix: buf}, true, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	return &prefixConn{Conn: c, prefix: buf}, false, nil
}

// prefixConn replays bytes already read from the connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// CloseWrite half-closes, when the connection can.
func (p *prefixConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return p.Conn.Close()
}
