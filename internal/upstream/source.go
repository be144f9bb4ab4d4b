package upstream

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/config"
)

// Source discovers the endpoints of an upstream.
//
// Contract: Run calls update promptly with the initial set (possibly empty),
// then with the full current set whenever it changes; never concurrently.
// update may block briefly (it builds the balancer's view) and takes
// ownership of the slice. Run returns when ctx is done.
type Source interface {
	Run(ctx context.Context, update func([]Address))
}

// Address is one discovered endpoint.
type Address struct {
	Addr   string // ip:port
	Weight int    // <= 0: 1
	// Host is the DNS name Addr was resolved from, if any (sent as the
	// Host header of active health checks).
	Host string
}

// StaticSource serves the endpoints of the config: IP literals as they are,
// DNS names re-resolved every DNSRefresh, each resolved IP becoming an
// endpoint with the configured weight. When a name fails to resolve (or
// resolves to nothing) its last good addresses are kept and the failure is
// logged. Duplicate addresses keep the first occurrence.
type StaticSource struct {
	endpoints []config.Endpoint
	refresh   time.Duration
	timeout   time.Duration
	resolver  *net.Resolver
	clk       clock.Clock
	log       *slog.Logger

	last map[int][]Address // last good resolution per config endpoint
}

// NewStaticSource returns the source of cfg.Endpoints; it uses
// opts.Resolver, opts.Clock and opts.Logger (nil: defaults).
func NewStaticSource(cfg config.Upstream, opts Options) *StaticSource {
	s := &StaticSource{
		endpoints: cfg.Endpoints,
		refresh:   cfg.DNSRefresh.D(),
		timeout:   cfg.ConnectTimeout.D(),
		resolver:  opts.Resolver,
		clk:       opts.Clock,
		log:       opts.Logger,
		last:      map[int][]Address{},
	}
	if s.refresh <= 0 {
		s.refresh = config.DefaultDNSRefresh
	}
	if s.timeout <= 0 {
		s.timeout = config.DefaultConnectTimeout
	}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	if s.clk == nil {
		s.clk = clock.Real()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Run implements Source.
func (s *StaticSource) Run(ctx context.Context, update func([]Address)) {
	cur, dynamic := s.resolve(ctx)
	update(slices.Clone(cur))
	if !dynamic {
		<-ctx.Done()
		return
	}
	t := s.clk.NewTimer(s.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		next, _ := s.resolve(ctx)
		if ctx.Err() != nil {
			return
		}
		if !slices.Equal(next, cur) {
			cur = next
			update(slices.Clone(cur))
		}
		t.Reset(s.refresh)
	}
}

// resolve returns the current addresses and whether any endpoint is a name.
func (s *StaticSource) resolve(ctx context.Context) (addrs []Address, dynamic bool) {
	seen := map[string]bool{}
	add := func(a Address) {
		if !seen[a.Addr] {
			seen[a.Addr] = true
			addrs = append(addrs, a)
		}
	}
	for i, ep := range s.endpoints {
		w := max(ep.Weight, 1)
		host, port, err := net.SplitHostPort(ep.Address)
		if err != nil {
			s.log.Error("invalid endpoint address", "address", ep.Address, "err", err)
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			add(Address{Addr: net.JoinHostPort(ip.Unmap().String(), port), Weight: w})
			continue
		}
		dynamic = true
		rctx, cancel := context.WithTimeout(ctx, s.timeout)
		ips, err := s.resolver.LookupNetIP(rctx, "ip", host)
		cancel()
		if err == nil && len(ips) == 0 {
			err = &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("endpoint resolution failed; keeping the last good addresses",
					"host", host, "kept", len(s.last[i]), "err", err)
			}
			for _, a := range s.last[i] {
				add(a)
			}
			continue
		}
		res := make([]Address, 0, len(ips))
		for _, ip := range ips {
			res = append(res, Address{Addr: net.JoinHostPort(ip.Unmap().String(), port), Weight: w, Host: host})
		}
		slices.SortFunc(res, func(a, b Address) int { return compareAddr(a.Addr, b.Addr) })
		res = slices.CompactFunc(res, func(a, b Address) bool { return a.Addr == b.Addr })
		s.last[i] = res
		for _, a := range res {
			add(a)
		}
	}
	return addrs, dynamic
}

func compareAddr(a, b string) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}
