package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

// A host that accepts connections but never answers the handshake (a hung
// process: its kernel still completes TCP) is a connect failure within the
// connect timeout, not a wait until the request's deadline.
func TestHandshakeIsBoundedByTheConnectTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accepted, never answered
		}
	}()
	c := NewClientTLS(&tls.Config{InsecureSkipVerify: true}, 200*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = c.dialH1(ctx, "tcp", ln.Addr().String())
	var op *net.OpError
	if err == nil || !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("dial: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the handshake took %s, past the 200ms connect timeout", d)
	}
}
