package node

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsBackend is a gorilla WebSocket echo server: each message comes back as
// "<name>:<message>"; the message "bye" makes it close the connection with
// 1000 "bye-<name>". Requests without Upgrade get 403.
type wsBackend struct {
	*httptest.Server
	name string
	// handshakes receives the headers of each upgrade request; closed the
	// error its read loop ended with.
	handshakes chan http.Header
	closed     chan error
}

func startWSBackend(t *testing.T, name string) *wsBackend {
	t.Helper()
	b := &wsBackend{name: name, handshakes: make(chan http.Header, 64), closed: make(chan error, 64)}
	up := websocket.Upgrader{Subprotocols: []string{"chat"}}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			http.Error(w, "websocket only", http.StatusForbidden)
			return
		}
		h := r.Header.Clone()
		h.Set("X-Test-Path", r.URL.Path)
		b.handshakes <- h
		conn, err := up.Upgrade(w, r, http.Header{"X-Backend": {name}})
		if err != nil {
			return // Upgrade answered the client
		}
		defer conn.Close()
		for {
			mt, msg, err := conn.ReadMessage()
			if err != nil {
				b.closed <- err
				return
			}
			if string(msg) == "bye" {
				_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye-"+name), time.Now().Add(time.Second))
				b.closed <- nil
				return
			}
			if err := conn.WriteMessage(mt, append([]byte(name+":"), msg...)); err != nil {
				b.closed <- err
				return
			}
		}
	}))
	t.Cleanup(b.Close)
	return b
}

func wsEdgeConfig(extraRoutes, upstream string, upstreams ...string) string {
	var ups strings.Builder
	for _, u := range upstreams {
		ups.WriteString(u + "\n")
	}
	return fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: ws
    match: {path: {prefix: /ws}}
    rewrite: {strip_prefix: /ws}
    response_headers: {set: {X-Edge: "1"}}
    upstream: %s
%supstreams:
%s`, upstream, extraRoutes, ups.String())
}

func wsUpstream(name string, b *wsBackend) string {
	return fmt.Sprintf("  - {name: %s, endpoints: [{address: %q}]}", name, addr(b.Server))
}

// wsDial opens a WebSocket through the edge; gorilla checks the 101, the
// Upgrade/Connection headers and Sec-WebSocket-Accept.
func wsDial(t *testing.T, e *edge, path string) (*websocket.Conn, *http.Response) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"chat"}}
	u := "ws://" + e.node.Addr("public") + path
	conn, resp, err := d.Dial(u, http.Header{"X-Client": {"ws-test"}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", u, err, status)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, resp
}

// wsEcho sends msg and expects "<backend>:<msg>" back within a deadline.
func wsEcho(t *testing.T, conn *websocket.Conn, backend string, mt int, msg []byte) {
	t.Helper()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := conn.WriteMessage(mt, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	gotType, got, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read echo of %.20q: %v", msg, err)
	}
	want := append([]byte(backend+":"), msg...)
	if gotType != mt || !bytes.Equal(got, want) {
		t.Fatalf("echo: type %d %.40q (%d bytes), want type %d %.40q (%d bytes)", gotType, got, len(got), mt, want, len(want))
	}
}

func TestWebSocketThroughEdge(t *testing.T) {
	a := startWSBackend(t, "a")
	e := startEdge(t, wsEdgeConfig("", "a", wsUpstream("a", a)))

	conn, resp := wsDial(t, e, "/ws/chat?room=1")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if conn.Subprotocol() != "chat" {
		t.Errorf("subprotocol %q, want chat", conn.Subprotocol())
	}
	if resp.Header.Get("X-Backend") != "a" || resp.Header.Get("X-Edge") != "1" {
		t.Errorf("101 headers: %v", resp.Header)
	}
	// Every other answer of the edge carries the request id (the entry sets
	// it); the 101 must too, to correlate a tunnel with the access log.
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("101 Switching Protocols has no X-Request-Id: %v", resp.Header)
	}
	var hs http.Header
	select {
	case hs = <-a.handshakes:
	case <-time.After(time.Second):
		t.Fatal("no handshake at the backend")
	}
	if hs.Get("Sec-Websocket-Key") == "" || hs.Get("Sec-Websocket-Version") != "13" || hs.Get("X-Client") != "ws-test" ||
		hs.Get("X-Forwarded-For") != "127.0.0.1" || hs.Get("X-Test-Path") != "/chat" || !strings.EqualFold(hs.Get("Upgrade"), "websocket") {
		t.Errorf("backend handshake headers: %v", hs)
	}

	wsEcho(t, conn, "a", websocket.TextMessage, []byte("hello"))
	wsEcho(t, conn, "a", websocket.BinaryMessage, []byte{0, 1, 2, 0xff})
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	wsEcho(t, conn, "a", websocket.BinaryMessage, big)
	for i := 0; i < 100; i++ {
		wsEcho(t, conn, "a", websocket.TextMessage, []byte(fmt.Sprintf("m%d", i)))
	}
	// Control frames pass too: a ping is answered by the backend's pong.
	pong := make(chan string, 1)
	conn.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := conn.WriteControl(websocket.PingMessage, []byte("are-you-there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	wsEcho(t, conn, "a", websocket.TextMessage, []byte("after-ping")) // reading runs the pong handler
	select {
	case s := <-pong:
		if s != "are-you-there" {
			t.Errorf("pong %q", s)
		}
	default:
		t.Error("no pong")
	}
	if n := e.node.tunnels.Len(); n != 2 {
		t.Errorf("open tunnel ends = %d, want 2 (client and backend)", n)
	}

	// The backend closes: the client gets its close frame, then the tunnel
	// is gone at the edge.
	if err := conn.WriteMessage(websocket.TextMessage, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure || ce.Text != "bye-a" {
		t.Fatalf("after the backend closed: %v, want close 1000 bye-a", err)
	}
	eventually(t, 2*time.Second, "tunnel closed at the edge", func() bool { return e.node.tunnels.Len() == 0 })

	// The client closes: the backend gets the close frame.
	wsDrain(a.closed)
	conn2, _ := wsDial(t, e, "/ws/again")
	wsEcho(t, conn2, "a", websocket.TextMessage, []byte("x"))
	if err := conn2.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "client-leaving"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-a.closed:
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || ce.Text != "client-leaving" {
			t.Errorf("backend saw %v, want close 1001 client-leaving", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("backend did not see the client's close")
	}
	conn2.Close()
	eventually(t, 2*time.Second, "second tunnel closed at the edge", func() bool { return e.node.tunnels.Len() == 0 })

}

// TestWebSocketRefused: a backend answering the upgrade with a plain
// response sends that response to the client, and nothing stays open.
func TestWebSocketRefused(t *testing.T) {
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no websockets here", http.StatusForbidden)
	}))
	t.Cleanup(refuse.Close)
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: ws, match: {path: {prefix: /}}, upstream: u}]
upstreams: [{name: u, endpoints: [{address: %q}]}]
`, addr(refuse)))
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	_, resp, err := d.Dial("ws://"+e.node.Addr("public")+"/x", nil)
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v, status %d; want a bad handshake with 403", err, status)
	}
	if n := e.node.tunnels.Len(); n != 0 {
		t.Fatalf("%d tunnel ends open after a refused upgrade", n)
	}
}

func TestWebSocketSurvivesReload(t *testing.T) {
	a, b := startWSBackend(t, "a"), startWSBackend(t, "b")
	extraRoute := "  - {name: extra, match: {path: {prefix: /extra}}, upstream: b}\n"
	e := startEdge(t, wsEdgeConfig("", "a", wsUpstream("a", a)))
	addr0 := e.node.Addr("public")
	conn, _ := wsDial(t, e, "/ws/1")
	wsEcho(t, conn, "a", websocket.TextMessage, []byte("before"))

	reloads := []struct {
		cfg     string
		backend string // where new connections go
	}{
		// A route and an upstream are added.
		{wsEdgeConfig(extraRoute, "a", wsUpstream("a", a), wsUpstream("b", b)), "a"},
		// An unrelated server setting changes.
		{strings.Replace(wsEdgeConfig(extraRoute, "a", wsUpstream("a", a), wsUpstream("b", b)), "listeners:", "server: {trusted_proxies: [10.0.0.0/8]}\nlisteners:", 1), "a"},
		// The route moves to b and upstream a is removed (its cluster closes).
		{wsEdgeConfig("", "b", wsUpstream("b", b)), "b"},
		// And once more, unchanged.
		{wsEdgeConfig("", "b", wsUpstream("b", b)), "b"},
	}
	var later []*websocket.Conn
	for i, r := range reloads {
		e.write(r.cfg)
		if err := e.node.Reload(); err != nil {
			t.Fatalf("reload %d: %v\n%s", i+1, err, r.cfg)
		}
		if got := e.node.Addr("public"); got != addr0 {
			t.Fatalf("reload %d moved the listener from %s to %s", i+1, addr0, got)
		}
		// The tunnel opened before stays on its backend.
		wsEcho(t, conn, "a", websocket.TextMessage, []byte(fmt.Sprintf("after-reload-%d", i+1)))
		// A new connection goes where the new config says.
		c, resp := wsDial(t, e, fmt.Sprintf("/ws/new-%d", i+1))
		if got := resp.Header.Get("X-Backend"); got != r.backend {
			t.Fatalf("after reload %d a new connection reached %q, want %q", i+1, got, r.backend)
		}
		wsEcho(t, c, r.backend, websocket.TextMessage, []byte("new"))
		later = append(later, c)
	}
	// Every connection still echoes, each on its own backend.
	wsEcho(t, conn, "a", websocket.BinaryMessage, bytes.Repeat([]byte{7}, 100<<10))
	for i, c := range later {
		wsEcho(t, c, reloads[i].backend, websocket.TextMessage, []byte("again"))
	}
	if n := e.node.tunnels.Len(); n != 2*(1+len(later)) {
		t.Errorf("open tunnel ends = %d, want %d", n, 2*(1+len(later)))
	}
	// The old tunnel still closes cleanly from its backend.
	if err := conn.WriteMessage(websocket.TextMessage, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure || ce.Text != "bye-a" {
		t.Fatalf("old tunnel close: %v", err)
	}
	eventually(t, 2*time.Second, "old tunnel closed", func() bool { return e.node.tunnels.Len() == 2*len(later) })
}

func wsDrain[T any](c chan T) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}
