package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/internal/upstream"
)

// isUpgrade reports an HTTP/1.1 WebSocket upgrade request. Other upgrades
// (h2c above all: it would hand the client a raw HTTP/2 connection to the
// backend, past routing) are forwarded as plain requests, their Upgrade
// header stripped as hop-by-hop.
func isUpgrade(r *http.Request) bool {
	if r.ProtoMajor != 1 || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	for _, v := range r.Header["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// Tunnels tracks upgraded connections. They are hijacked from the HTTP
// server, so its Shutdown does not see them: they survive config reloads by
// design, and are closed only when the process drains.
type Tunnels struct {
	mu    sync.Mutex
	conns map[io.Closer]struct{}
}

// NewTunnels returns an empty set.
func NewTunnels() *Tunnels { return &Tunnels{conns: map[io.Closer]struct{}{}} }

func (t *Tunnels) add(c io.Closer) {
	t.mu.Lock()
	t.conns[c] = struct{}{}
	t.mu.Unlock()
}

func (t *Tunnels) remove(c io.Closer) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// Len is the number of open tunnels.
func (t *Tunnels) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// CloseAll closes every tunnel (end of a drain).
func (t *Tunnels) CloseAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		c.Close()
	}
}

// serveUpgrade forwards an Upgrade request and, on 101, splices the client
// connection to the upstream's for as long as both stay open.
func (f *Forwarder) serveUpgrade(w http.ResponseWriter, r *http.Request, x *exchange.Exchange, parent *telemetry.Span) {
	// A tunnel holds an admission slot for its whole life.
	release, ok := f.cluster.Upstream.TryAcquire()
	if !ok {
		exchange.Write(w, x, exchange.Overloaded)
		return
	}
	defer release()
	ctx := r.Context()
	var cancel context.CancelFunc
	if f.timeout > 0 {
		// The timeout bounds the handshake only, not the tunnel.
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), f.timeout)
	} else {
		ctx, cancel = context.WithCancel(context.WithoutCancel(ctx))
	}
	defer cancel()
	resp, fail := f.handshake(ctx, r, x, parent)
	if fail != nil {
		exchange.Write(w, x, fail)
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		f.copyResponse(w, r, resp, x)
		return
	}
	f.tunnel(w, r, resp, x, cancel)
}

// handshake sends the Upgrade request to an endpoint, under ctx, in one
// attempt: a response of any status, or the failure to answer.
func (f *Forwarder) handshake(ctx context.Context, r *http.Request, x *exchange.Exchange, parent *telemetry.Span) (*http.Response, *exchange.Kind) {
	up := f.cluster.Upstream
	hashKey, _ := up.HashKey(r, x.ClientIP)
	var tried []*upstream.Endpoint
	ep, ticket, err := admit(up, hashKey, &tried)
	if err != nil {
		return nil, pickKind(err)
	}
	x.Attempts, x.Endpoint = 1, ep.Addr
	out := f.outboundHeader(r, x)
	// Upgrade and Connection are hop-by-hop, yet they are the request.
	out["Connection"] = []string{"Upgrade"}
	out["Upgrade"] = r.Header["Upgrade"]
	outreq := (&http.Request{
		Method:     r.Method,
		URL:        &url.URL{Scheme: "http", Host: ep.Addr, Opaque: f.rw.Path(x.Path, &x.Match.Params), RawQuery: r.URL.RawQuery},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1, ProtoMinor: 1,
		Header: out,
		Host:   r.Host,
	}).WithContext(ctx)
	start := time.Now()
	var span *telemetry.Span // the handshake's client span
	if parent != nil {
		span = f.startAttempt(parent, r, x, out, ep, outreq.URL.Opaque, 1, start)
	}
	ep.Begin()
	resp, err := f.cluster.h1.RoundTrip(outreq)
	if span != nil {
		now := time.Now()
		attemptResult(span, resp, err, classify(err, false), now)
		span.End(now)
	}
	if err != nil {
		ep.Done(time.Since(start), classify(err, false))
		upstream.Finish(ticket, classify(err, false))
		f.log.Debug("upstream attempt failed", "route", f.name, "endpoint", x.Endpoint, "err", err)
		return nil, failureKind(classify(err, false))
	}
	ep.Done(time.Since(start), upstream.StatusOutcome(resp.StatusCode))
	upstream.Finish(ticket, upstream.StatusOutcome(resp.StatusCode))
	return resp, nil
}

// tunnel answers 101 with the upstream's resp and splices the hijacked
// client connection to the upstream's. cancel ends the handshake's context.
func (f *Forwarder) tunnel(w http.ResponseWriter, r *http.Request, resp *http.Response, x *exchange.Exchange, cancel context.CancelFunc) {
	backend, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		exchange.Write(w, x, exchange.UpstreamUpgrade)
		return
	}
	defer backend.Close()
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		exchange.Write(w, x, exchange.UpgradeFailed)
		return
	}
	defer client.Close()
	f.tunnels.add(client)
	defer f.tunnels.remove(client)
	f.tunnels.add(backend)
	defer f.tunnels.remove(backend)

	upgradeTo := resp.Header.Get("Upgrade")
	if upgradeTo == "" {
		upgradeTo = r.Header.Get("Upgrade")
	}
	removeHopHeaders(resp.Header) // drops Upgrade too: Connection names it
	resp.Header["Connection"] = []string{"Upgrade"}
	resp.Header["Upgrade"] = []string{upgradeTo}
	resp.Header["X-Request-Id"] = []string{x.RequestID}
	f.rw.Response(resp.Header)
	x.Status = http.StatusSwitchingProtocols
	if err := writeSwitching(brw.Writer, resp); err != nil {
		return
	}
	cancel() // the handshake is done; the tunnel has no deadline
	splice(client, brw.Reader, backend, x)
}

func writeSwitching(w *bufio.Writer, resp *http.Response) error {
	if _, err := w.WriteString("HTTP/1.1 101 Switching Protocols\r\n"); err != nil {
		return err
	}
	if err := resp.Header.Write(w); err != nil {
		return err
	}
	if _, err := w.WriteString("\r\n"); err != nil {
		return err
	}
	return w.Flush()
}

// splice copies both ways until either side closes, then closes both. When
// the client's side ends first, the backend gets a half-close and halfClose
// to finish its side, so a backend that never closes cannot hold the tunnel.
func splice(client net.Conn, clientBuf *bufio.Reader, backend io.ReadWriteCloser, x *exchange.Exchange) {
	done := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(backend, clientBuf) // clientBuf drains into client's conn reads
		if cw, ok := backend.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		done <- n
	}()
	back := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(client, backend)
		back <- n
	}()
	var in, out int64
	select {
	case out = <-back:
		client.Close()
		backend.Close()
		in = <-done
	case in = <-done:
		select {
		case out = <-back:
		case <-time.After(halfClose):
			backend.Close()
			client.Close()
			out = <-back
		}
		client.Close()
		backend.Close()
	}
	x.BytesIn += in
	x.BytesOut += out
}

// halfClose bounds how long a tunnel stays open after the client's side ended.
const halfClose = 5 * time.Second
