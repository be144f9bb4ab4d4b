// Package sharedstate wires the policy state a node shares with the
// cluster, its circuit breakers and its rate limiter, to the node's gossip
// cluster: one piece of code for every node and for the benchmarks that
// stand nodes up in one process.
package sharedstate

import (
	"context"
	"log/slog"
	"sync"

	"github.com/meshgate/meshgate/internal/breaker"
	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/gossip"
	"github.com/meshgate/meshgate/internal/ratelimit"
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
}

// State is a node's breakers and limiter, running.
type State struct {
	Breakers *breaker.Registry
	Limits   *ratelimit.Limiter
	cancel   context.CancelFunc
	wg       sync.WaitGroup
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
	var sendB, sendL func(string, []byte)
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

// Stop ends the limiter's flushing and the membership watch.
func (s *State) Stop() {
	s.cancel()
	s.wg.Wait()
}
