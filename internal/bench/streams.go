package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Long-lived streams for the faults suite: WebSocket connections through
// the edge and a sidecar to the backend, which echoes what they send.

// wsGUID is RFC 6455's handshake constant.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// echoUpgrade answers a WebSocket upgrade (the handshake of RFC 6455) and
// then echoes every byte the client sends until it closes; false: r is
// not an upgrade.
func echoUpgrade(w http.ResponseWriter, r *http.Request) bool {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return true
	}
	defer conn.Close()
	_, _ = fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		wsAccept(r.Header.Get("Sec-WebSocket-Key")))
	if rw.Flush() != nil {
		return true
	}
	buf := make([]byte, 4096)
	for {
		n, err := rw.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return true
			}
		}
		if err != nil {
			return true
		}
	}
}

// echoer is one open stream: echo sends msg and waits (at most
// streamWait) for it to come back.
type echoer interface {
	echo(msg string) error
	Close() error
}

// streams are n open streams (WebSocket connections, gRPC calls), each
// sending a message every streamEvery and wanting it back within
// streamWait, until closed.
type streams struct {
	wg      sync.WaitGroup
	stop    chan struct{}
	mu      sync.Mutex
	opened  int
	dropped []string // why each dropped stream ended
	echoes  int
}

const (
	streamEvery = 100 * time.Millisecond
	streamWait  = 3 * time.Second
)

// openStreams opens n WebSocket streams through the edge at addr
// (host:port); it fails when one cannot be opened.
func openStreams(addr string, n int) (*streams, error) {
	return openEchoers(n, func() (echoer, error) { return wsDial(addr) })
}

// openEchoers opens n streams with dial; it fails when one cannot be
// opened.
func openEchoers(n int, dial func() (echoer, error)) (*streams, error) {
	s := &streams{stop: make(chan struct{})}
	for i := range n {
		e, err := dial()
		if err != nil {
			s.close()
			return nil, fmt.Errorf("stream %d: %v", i, err)
		}
		s.opened++
		s.wg.Go(func() { s.run(i, e) })
	}
	return s, nil
}

// wsStream is a WebSocket connection to the echo; lines go as raw bytes
// (the echo does not parse frames).
type wsStream struct {
	net.Conn
	br *bufio.Reader
}

func wsDial(addr string) (*wsStream, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	key := base64.StdEncoding.EncodeToString([]byte("meshgate-faults!"))
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = fmt.Fprintf(c, "GET /stream HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", addr, key)
	br := bufio.NewReader(c)
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(br, nil)
	}
	if err == nil && (resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key)) {
		err = fmt.Errorf("handshake answered %s, Sec-WebSocket-Accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return &wsStream{Conn: c, br: br}, nil
}

func (w *wsStream) echo(msg string) error {
	line := msg + "\n"
	_ = w.SetDeadline(time.Now().Add(streamWait))
	_, err := io.WriteString(w.Conn, line)
	var got string
	if err == nil {
		got, err = w.br.ReadString('\n')
	}
	if err == nil && got != line {
		err = fmt.Errorf("echo %q, sent %q", got, line)
	}
	return err
}

func (s *streams) run(i int, e echoer) {
	defer e.Close()
	for n := 0; ; n++ {
		select {
		case <-s.stop:
			return
		case <-time.After(streamEvery):
		}
		if err := e.echo(fmt.Sprintf("stream %d message %d", i, n)); err != nil {
			select {
			case <-s.stop: // closing
				return
			default:
			}
			s.mu.Lock()
			s.dropped = append(s.dropped, fmt.Sprintf("stream %d after %d messages: %v", i, n, err))
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		s.echoes++
		s.mu.Unlock()
	}
}

// close ends the streams and returns how many dropped before.
func (s *streams) close() []string {
	close(s.stop)
	s.wg.Wait()
	return s.dropped
}
