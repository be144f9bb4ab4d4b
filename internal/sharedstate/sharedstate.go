// Package sharedstate wires the state a node shares with the cluster, its
// circuit breakers, its rate limiter and its upstream stats, to the node's
// gossip cluster: one piece of code for every node and for the benchmarks
// that stand nodes up in one process.
package sharedstate

import (
	"context"
	"log/slog"
	"sync"

	"github.com/meshgate/meshgate/internal/breaker"
	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/clusterstats"
	"github.com/meshgate/meshgate/internal/gossip"
	"github.com/meshgate/meshgate/internal/ratelimit"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// Options configures Start.
type Options struct {
	// Cluster carries the state; nil: a node on its own (named "local").
	Cluster *gossip.Cluster
	// ExpectPeers: the node has addresses to join, so until it first sees a
	// peer it is isolated rather than a cluster of one (see ratelimit).
	ExpectPeers bool
	Clock       clock.Clock
	Logger      *slog.Logger
	// OnBreakerChange is called on every breaker state change.
	OnBreakerChange func(endpoint string, from, to breaker.State, cause string)
	// UpstreamStats, when set, are shared with the cluster (State.Stats),
	// so that a traffic shift asked of any node sees every node's traffic.
	UpstreamStats *telemetry.UpstreamStats
}

// State is a node's breakers, limiter and shared stats, running.
type State struct {
	Breakers *breaker.Registry
	Limits   *ratelimit.Limiter
	// Stats is nil without Options.UpstreamStats.
	Stats  *clusterstats.Sharer
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start creates the breakers and the limiter and, with a cluster,
// registers them as its owners: call it before the cluster's Start. A
// member that dies or leaves stops counting as a breaker reporter.
func Start(o Options) (*State, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	name := "local"
	var sendB, sendL, sendS func(string, []byte)
	var sendNow func([]byte)
	var members func() []string
	var alive func(string) bool
	peers := func() int { return 0 }
	c := o.Cluster
	if c != nil {
		name, sendB, sendL, alive, peers = c.Name(), c.Sender('b'), c.FrequentSender(ratelimit.Kind), c.Alive, c.Peers
		sendNow = c.DirectSender(ratelimit.Kind)
		members = func() []string {
			var out []string
			for _, m := range c.Members() {
				if m.Name != c.Name() && (m.State == gossip.Alive || m.State == gossip.Suspect) {
					out = append(out, m.Name)
				}
			}
			return out
		}
		if o.UpstreamStats != nil {
			// Frequent: a window is re-sent whenever it changes, so a
			// lost copy is soon superseded.
			sendS = c.FrequentSender(clusterstats.Kind)
		}
	}
	s := &State{}
	var err error
	s.Breakers, err = breaker.New(breaker.Options{Node: name, Send: sendB, Clock: o.Clock, Alive: alive,
		Logger: log.With("component", "breaker"), OnStateChange: o.OnBreakerChange})
	if err != nil {
		return nil, err
	}
	s.Limits, err = ratelimit.New(ratelimit.Options{Node: name, Send: sendL, SendNow: sendNow, Clock: o.Clock, Peers: peers, Members: members,
		ExpectPeers: c != nil && o.ExpectPeers, Logger: log.With("component", "ratelimit")})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.Limits.Run(ctx) }()
	if o.UpstreamStats != nil {
		// On the stats' own clock (not o.Clock): the windows it reads are
		// counted on it.
		s.Stats = clusterstats.New(clusterstats.Options{Node: name, Stats: o.UpstreamStats, Send: sendS, Alive: alive})
		if c != nil {
			c.Register(s.Stats)
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.Stats.Run(ctx) }()
		}
	}
	if c != nil {
		c.Register(s.Breakers)
		c.Register(s.Limits)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-c.Watch():
					s.Breakers.MembersChanged()
				}
			}
		}()
	}
	return s, nil
}

// Stop ends the limiter's and the stats' flushing and the membership watch.
func (s *State) Stop() {
	s.cancel()
	s.wg.Wait()
}
