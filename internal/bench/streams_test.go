package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Streams to the echo stay up and get their lines back; one the server
// ends is counted dropped, with why.
func TestStreamsEcho(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !echoUpgrade(w, r) {
			http.Error(w, "not an upgrade", http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	st, err := openStreams(addr, 3)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * streamEvery) // a few echoes each
	dropped := st.close()
	if len(dropped) != 0 || st.opened != 3 || st.echoes < 3 {
		t.Fatalf("opened %d, echoes %d, dropped %q", st.opened, st.echoes, dropped)
	}

	// A server that ends each stream right after the handshake.
	ender := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			wsAccept(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
		_ = rw.Flush()
		conn.Close()
	}))
	defer ender.Close()
	st, err = openStreams(strings.TrimPrefix(ender.URL, "http://"), 2)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st.mu.Lock()
		n := len(st.dropped)
		st.mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if dropped := st.close(); len(dropped) != 2 {
		t.Fatalf("dropped %q, want both", dropped)
	}
}

// gRPC calls to the echo (h2c, as the backend serves it) get their
// messages back; a server that goes away drops them, with why.
func TestGRPCStreamsEcho(t *testing.T) {
	echo := newGRPCEcho()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isGRPC(r) {
			http.Error(w, "not gRPC", http.StatusBadRequest)
			return
		}
		echo.ServeHTTP(w, r)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	addr := strings.TrimPrefix(srv.URL, "http://")
	st, err := openGRPCStreams(addr, 3)
	if err != nil {
		t.Fatal(err)
	}
	var echoes int
	for deadline := time.Now().Add(5 * time.Second); echoes < 6 && time.Now().Before(deadline); time.Sleep(streamEvery) {
		st.mu.Lock()
		echoes = st.echoes
		st.mu.Unlock()
	}
	if st.opened != 3 || echoes < 6 {
		t.Fatalf("opened %d, echoes %d", st.opened, echoes)
	}
	srv.CloseClientConnections()
	echo.Stop()
	srv.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st.mu.Lock()
		n := len(st.dropped)
		st.mu.Unlock()
		if n == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(streamEvery)
	}
	if dropped := st.close(); len(dropped) != 3 {
		t.Fatalf("after the server went: dropped %q", dropped)
	}
}
