package clusterstats

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// Kind tags this package's messages in the cluster.
const Kind byte = 's'

const (
	// DefaultWindow is the span a record covers: long enough to hold a few
	// hundred requests at modest traffic, short enough that a rollout step
	// sees its own subset's behaviour.
	DefaultWindow = 30 * time.Second
	// DefaultInterval is how often changed windows are sent: a rollout
	// step polls every two seconds, so the cluster's view lags one poll.
	DefaultInterval = time.Second
	// maxSendsPerFlush bounds one flush's messages (each under
	// gossip.MaxMessage); upstreams left over go at the next flush, the
	// longest unsent first.
	maxSendsPerFlush = 64
	// maxPeers and maxPeerRecords bound what is kept of other nodes.
	maxPeers       = 4096
	maxPeerRecords = maxStateRecords
	sendPrefix     = "stats/"
)

// Options configures New.
type Options struct {
	Node  string                   // this node's cluster name
	Stats *telemetry.UpstreamStats // this node's stats (required)
	// Send broadcasts a message; nil for a node alone.
	Send func(key string, msg []byte)
	// Alive reports whether a node is a live member; nil: all are.
	Alive func(node string) bool
	// Clock: default the stats' clock, which their windows are counted on.
	Clock    clock.Clock
	Window   time.Duration // default DefaultWindow
	Interval time.Duration // default DefaultInterval
}

// Sharer is the gossip owner of the nodes' upstream stats.
type Sharer struct {
	o     Options
	epoch uint64

	mu    sync.Mutex
	seq   uint64
	sent  map[string]sentWindow // this node's upstream → what it last sent
	peers map[string]*peer

	msgsSent, msgsIn, stale, bad, dropped atomic.Uint64
}

type sentWindow struct {
	rec record
	at  time.Time
}

// peer is what one other node said, per upstream.
type peer struct {
	epoch uint64
	ups   map[string]*peerRecord
}

type peerRecord struct {
	seq uint64
	rec record
	at  time.Time // when it arrived, on this node's clock
}

// New returns a Sharer; with a cluster, Register it before the cluster's
// Start and Run it.
func New(o Options) *Sharer {
	if o.Clock == nil {
		o.Clock = o.Stats.Clock()
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Node == "" {
		o.Node = "local"
	}
	return &Sharer{o: o, epoch: uint64(o.Clock.Now().UnixMilli()), sent: map[string]sentWindow{}, peers: map[string]*peer{}}
}

// Kind returns the byte tagging this owner's messages.
func (s *Sharer) Kind() byte { return Kind }

// Window is the span the stats cover.
func (s *Sharer) Window() time.Duration {
	if s == nil {
		return DefaultWindow
	}
	return s.o.Window
}

// Run flushes every Interval until ctx ends.
func (s *Sharer) Run(ctx context.Context) {
	t := s.o.Clock.NewTimer(s.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			s.Flush()
			t.Reset(s.o.Interval)
		}
	}
}

// own is this node's record of upstream now; ok false if it has no ring.
func (s *Sharer) own(upstream string) (record, bool) {
	snap, ok := s.o.Stats.Snapshot(upstream, s.o.Window)
	// Errors and requests are read one after the other while requests
	// go on: keep the invariant the decoder checks.
	return record{upstream: upstream, window: snap.Window, requests: snap.Requests,
		errors: min(snap.Errors, snap.Requests), hist: snap.Hist}, ok
}

// Flush sends this node's changed windows and forgets peers that are gone
// or silent. Run calls it every Interval.
func (s *Sharer) Flush() {
	now := s.o.Clock.Now()
	type change struct {
		rec  record
		last time.Time
	}
	var changes []change
	for _, up := range s.o.Stats.Upstreams() {
		rec, _ := s.own(up)
		s.mu.Lock()
		last, had := s.sent[up]
		s.mu.Unlock()
		if had && last.rec == rec || !had && rec.requests == 0 {
			continue
		}
		changes = append(changes, change{rec, last.at})
	}
	// Upstreams no longer in the stats (idle for a minute) were sent as
	// empty already, or are sent so now.
	s.mu.Lock()
	for up, last := range s.sent {
		if _, ok := s.o.Stats.Snapshot(up, s.o.Window); !ok {
			changes = append(changes, change{record{upstream: up, window: last.rec.window}, last.at})
		}
	}
	s.expireLocked(now)
	s.mu.Unlock()
	if len(changes) == 0 {
		return
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].last.Before(changes[j].last) })
	changes = changes[:min(len(changes), maxSendsPerFlush)]

	s.mu.Lock()
	s.seq++
	h := header{s.o.Node, s.epoch, s.seq}
	for _, c := range changes {
		if c.rec.requests == 0 {
			delete(s.sent, c.rec.upstream) // the empty record says "forget it"
		} else {
			s.sent[c.rec.upstream] = sentWindow{c.rec, now}
		}
	}
	s.mu.Unlock()
	if s.o.Send == nil {
		return
	}
	for _, c := range changes {
		s.o.Send(sendPrefix+c.rec.upstream, encodeMessage(h, &c.rec))
		s.msgsSent.Add(1)
	}
}

// expireLocked drops peers' records older than the window plus a grace
// (their sender's window has slid past everything they counted), and
// peers that are no longer members.
func (s *Sharer) expireLocked(now time.Time) {
	ttl := s.ttl()
	for name, p := range s.peers {
		if s.o.Alive != nil && !s.o.Alive(name) {
			delete(s.peers, name)
			continue
		}
		for up, r := range p.ups {
			if now.Sub(r.at) > ttl {
				delete(p.ups, up)
			}
		}
		if len(p.ups) == 0 {
			delete(s.peers, name)
		}
	}
}

// ttl: a record outlives its window by a few flushes and gossip delays.
func (s *Sharer) ttl() time.Duration { return s.o.Window + 5*s.o.Interval }

// Merge applies one broadcast record; relay when it was news here.
func (s *Sharer) Merge(msg []byte) (bool, error) {
	h, r, err := decodeMessage(msg)
	if err != nil {
		s.bad.Add(1)
		return false, err
	}
	s.msgsIn.Add(1)
	if h.node == s.o.Node {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	newer := s.applyLocked(h, &r, s.o.Clock.Now())
	if !newer {
		s.stale.Add(1)
	}
	return newer, nil
}

// MergeState applies a peer's LocalState: its whole current set, so the
// peer's older records of upstreams it no longer lists are dropped.
func (s *Sharer) MergeState(state []byte) error {
	h, rs, err := decodeState(state)
	if err != nil {
		s.bad.Add(1)
		return err
	}
	if h.node == s.o.Node {
		return nil
	}
	now := s.o.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	listed := make(map[string]bool, len(rs))
	for i := range rs {
		listed[rs[i].upstream] = true
		s.applyLocked(h, &rs[i], now)
	}
	if p := s.peers[h.node]; p != nil && p.epoch == h.epoch {
		for up, r := range p.ups {
			if !listed[up] && r.seq < h.seq {
				delete(p.ups, up)
			}
		}
	}
	return nil
}

// applyLocked keeps r if it is newer than what the node said before.
func (s *Sharer) applyLocked(h header, r *record, now time.Time) bool {
	p := s.peers[h.node]
	switch {
	case p == nil:
		if len(s.peers) >= maxPeers {
			s.dropped.Add(1)
			return false
		}
		p = &peer{epoch: h.epoch, ups: map[string]*peerRecord{}}
		s.peers[h.node] = p
	case h.epoch < p.epoch:
		return false // from before the node restarted
	case h.epoch > p.epoch:
		p.epoch, p.ups = h.epoch, map[string]*peerRecord{} // it restarted
	}
	old := p.ups[r.upstream]
	if old != nil && h.seq <= old.seq {
		return false
	}
	if r.requests == 0 {
		delete(p.ups, r.upstream)
		return old != nil
	}
	if old == nil && len(p.ups) >= maxPeerRecords {
		s.dropped.Add(1)
		return false
	}
	p.ups[r.upstream] = &peerRecord{seq: h.seq, rec: *r, at: now}
	return true
}

// LocalState is this node's own records, with traffic, for a push/pull.
func (s *Sharer) LocalState() []byte {
	var rs []record
	for _, up := range s.o.Stats.Upstreams() {
		if r, ok := s.own(up); ok && r.requests > 0 && len(rs) < maxStateRecords {
			rs = append(rs, r)
		}
	}
	s.mu.Lock()
	s.seq++
	h := header{s.o.Node, s.epoch, s.seq}
	s.mu.Unlock()
	return encodeState(h, rs)
}

// Stats are the owner's counters.
type Stats struct {
	MessagesSent, MessagesIn, Stale, Bad, Dropped uint64
}

// Stats returns the counters.
func (s *Sharer) Stats() Stats {
	return Stats{s.msgsSent.Load(), s.msgsIn.Load(), s.stale.Load(), s.bad.Load(), s.dropped.Load()}
}
