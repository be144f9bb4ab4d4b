package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/meshgate/meshgate/internal/config"
)

func newHealthTransport(cfg config.Upstream) *http.Transport {
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: cfg.ConnectTimeout.D()}).DialContext,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     cfg.IdleTimeout.D(),
		DisableCompression:  true,
	}
	if cfg.Protocol == "h2c" {
		// gRPC backends may speak nothing but HTTP/2.
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

// healthLoop runs a round of checks at once, then every Interval (measured
// from the end of the previous round, so rounds never overlap).
func (u *Upstream) healthLoop() {
	interval := u.cfg.HealthCheck.Interval.D()
	u.CheckHealth(u.ctx)
	t := u.clk.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-u.ctx.Done():
			return
		case <-t.C():
		}
		u.CheckHealth(u.ctx)
		t.Reset(interval)
	}
}

// CheckHealth runs one round of active health checks, all endpoints
// concurrently, and returns when every check has finished (each is bounded
// by the health check Timeout). The loop started by New calls it every
// Interval; tests and operators may call it directly. Without a health check
// configured it does nothing.
func (u *Upstream) CheckHealth(ctx context.Context) {
	if u.health == nil {
		return
	}
	var wg sync.WaitGroup
	for _, e := range u.set.Load().eps {
		wg.Go(func() {
			ok := u.probe(ctx, e)
			if ctx.Err() == nil {
				u.recordCheck(e, ok)
			}
		})
	}
	wg.Wait()
}

func (u *Upstream) probe(ctx context.Context, e *Endpoint) bool {
	hc := u.cfg.HealthCheck
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.Addr+hc.Path, nil)
	if err != nil {
		return false
	}
	if e.Host != "" {
		req.Host = e.Host
	}
	req.Header.Set("User-Agent", "meshgate-health-check")
	resp, err := u.health.Do(req)
	if err != nil {
		u.log.Debug("health check failed", "addr", e.Addr, "err", err)
		return false
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // let the connection be reused
	resp.Body.Close()
	ok := resp.StatusCode >= u.statusLo && resp.StatusCode <= u.statusHi
	if !ok {
		u.log.Debug("health check failed", "addr", e.Addr, "status", resp.StatusCode)
	}
	return ok
}

// recordCheck applies one result: HealthyThreshold successes in a row make
// an unhealthy endpoint healthy, UnhealthyThreshold failures in a row make a
// healthy one unhealthy.
func (u *Upstream) recordCheck(e *Endpoint, ok bool) {
	hc := u.cfg.HealthCheck
	e.mu.Lock()
	changed := false
	if ok {
		e.hcOK++
		e.hcFail = 0
		if !e.healthy.Load() && e.hcOK >= hc.HealthyThreshold {
			e.healthy.Store(true)
			changed = true
		}
	} else {
		e.hcFail++
		e.hcOK = 0
		if e.healthy.Load() && e.hcFail >= hc.UnhealthyThreshold {
			e.healthy.Store(false)
			changed = true
		}
	}
	healthy := e.healthy.Load()
	e.mu.Unlock()
	if changed {
		u.log.Info("endpoint health changed", "addr", e.Addr, "healthy", healthy)
		u.obs.EndpointHealth(u.name, e.Addr, healthy)
	}
}
