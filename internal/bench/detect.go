package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meshgate/meshgate/internal/gossip"
	"github.com/meshgate/meshgate/internal/meshtest"
)

// Failure detection of a silent host, and false deaths over lossy links
// (issue 16), measured on a cluster of detectNodes nodes in this process,
// each on the real mTLS gossip transport and the node's default cluster
// timings, with meshtest.Network between them:
//
//   - detection: one node's link goes silent (Isolate: nothing in or out,
//     no reset, as when a host's cable is pulled or it loses power); the
//     time until every other node holds it dead, which is when an edge or
//     a sidecar drops its endpoints from discovery. detectTrials times,
//     a fresh node replacing the silent one after each.
//   - false deaths: every link degraded as TCP sees 5 % loss and 20 ms of
//     jitter (meshtest.Link; the kernel here has no netem) for
//     BENCH_FAULTS_LOSSY (2 minutes in make bench; make soak runs it for
//     its whole duration); any node declared dead by any other counts.
//
// The network namespaces test (TestHostsInNetns in demo/hosts) measures
// detection end to end with real processes and a veth taken down.

const (
	detectNodes  = 5
	detectTrials = 16
)

// lossyLink is every link's quality in the false-death run; its loss is
// BENCH_FAULTS_LOSS when set (lossyLinkFrom).
var lossyLink = meshtest.Link{Loss: 0.05, Jitter: 20 * time.Millisecond}

// lossyLinkFrom is lossyLink with BENCH_FAULTS_LOSS's loss (0.2: 20 %).
func lossyLinkFrom(getenv func(string) string) (meshtest.Link, error) {
	l := lossyLink
	if v := getenv("BENCH_FAULTS_LOSS"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f >= 1 {
			return l, fmt.Errorf("BENCH_FAULTS_LOSS=%q: want a fraction, 0 to below 1", v)
		}
		l.Loss = f
	}
	return l, nil
}

// detectTimings tunes the nodes' failure detection for a measurement
// (BENCH_DETECT_PROBE, BENCH_DETECT_SUSPICION_MULT, and
// BENCH_DETECT_AWARENESS for memberlist's AwarenessMaxMultiplier), to try
// other settings than the defaults; unset, the defaults are measured.
func detectTimings(getenv func(string) string) (func(*gossip.Config), error) {
	var probe time.Duration
	if v := getenv("BENCH_DETECT_PROBE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("BENCH_DETECT_PROBE=%q: want a positive duration", v)
		}
		probe = d
	}
	ints := map[string]int{"BENCH_DETECT_SUSPICION_MULT": 0, "BENCH_DETECT_AWARENESS": 0}
	for name := range ints {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%s=%q: want a positive integer", name, v)
			}
			ints[name] = n
		}
	}
	return func(c *gossip.Config) {
		if probe > 0 {
			c.ProbeInterval = probe
		}
		if n := ints["BENCH_DETECT_SUSPICION_MULT"]; n > 0 {
			c.SuspicionMult = n
		}
		if n := ints["BENCH_DETECT_AWARENESS"]; n > 0 {
			c.AwarenessMaxMult = n
		}
	}, nil
}

// lossyDuration reads BENCH_FAULTS_LOSSY (2m).
func lossyDuration(getenv func(string) string) (time.Duration, error) {
	v := getenv("BENCH_FAULTS_LOSSY")
	if v == "" {
		return 2 * time.Minute, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("BENCH_FAULTS_LOSSY=%q: want a positive duration", v)
	}
	return d, nil
}

// newFaultCluster starts detectNodes nodes joined through the first, each
// transport wrapped by nw, and waits until they all see each other.
func newFaultCluster(ctx context.Context, nw *meshtest.Network, tune func(*gossip.Config), verbose io.Writer) (*gcluster, error) {
	g, err := newGCluster(verbose)
	if err != nil {
		return nil, err
	}
	g.wrap = func(addr string, t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		return nw.Wrap(addr, t)
	}
	g.tune = tune
	if err := g.start(ctx, "d", detectNodes, 30*time.Second); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// measureDetection isolates silent nodes (one, or two at once: a host
// carrying two members) at a time and times until every other live node
// holds them dead.
func measureDetection(ctx context.Context, trials, silent int, tune func(*gossip.Config), verbose io.Writer) ([]time.Duration, error) {
	nw := meshtest.NewNetwork()
	g, err := newFaultCluster(ctx, nw, tune, verbose)
	if err != nil {
		return nil, err
	}
	defer g.close()
	seed := g.nodes[0]
	var took []time.Duration
	for i := range trials {
		live := g.live()
		var victims, others []*gnode
		for j := range silent { // never the seed: replacements join through it
			victims = append(victims, live[1+(i+j)%(len(live)-1)])
		}
		for _, n := range live {
			if !slices.Contains(victims, n) {
				others = append(others, n)
			}
		}
		// Let a round of probes and gossip pass since the last change, as
		// a host fails at any moment of a steady cluster.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
		down := time.Now()
		for _, v := range victims {
			nw.Isolate(v.c.Addr())
		}
		err := waitUntil(ctx, 60*time.Second, "every node to hold the silent ones dead", func() bool {
			for _, n := range others {
				for _, v := range victims {
					if n.c.Alive(v.name) {
						return false
					}
				}
			}
			return true
		})
		if err != nil {
			return nil, err
		}
		took = append(took, time.Since(down))
		logf("faults: detection %d of %d, %d silent (%s): %.2f s", i+1, trials, silent, victimNames(victims), took[i].Seconds())
		for _, v := range victims {
			v.kill()
		}
		nw.Heal()
		for j := range victims {
			if _, err := g.add(fmt.Sprintf("d-%d-%d", i, j), seed.c.Addr()); err != nil {
				return nil, err
			}
		}
		err = waitUntil(ctx, 30*time.Second, "the replacement to join", func() bool {
			for _, n := range g.live() {
				if n.c.Peers() != detectNodes-1 {
					return false
				}
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return took, nil
}

// lossyRun is a cluster on degraded links and the deaths it has seen.
type lossyRun struct {
	nw   *meshtest.Network
	g    *gcluster
	stop chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	dead  map[string]time.Time // "observer→member" → since, deaths seen
	since time.Time
}

// startLossy starts a cluster, degrades its links and watches every node's
// view of every other until stopLossy.
func startLossy(ctx context.Context, link meshtest.Link, tune func(*gossip.Config), verbose io.Writer) (*lossyRun, error) {
	nw := meshtest.NewNetwork()
	g, err := newFaultCluster(ctx, nw, tune, verbose)
	if err != nil {
		return nil, err
	}
	r := &lossyRun{nw: nw, g: g, stop: make(chan struct{}), dead: map[string]time.Time{}, since: time.Now()}
	nw.Degrade(link)
	r.wg.Add(1)
	go r.watch()
	return r, nil
}

// watch records every member any node holds dead (or gone), each death
// once: a member declared dead, back alive and dead again counts twice.
func (r *lossyRun) watch() {
	defer r.wg.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		for _, n := range r.g.nodes {
			for _, m := range n.c.Members() {
				if m.State == gossip.Alive || m.State == gossip.Suspect {
					continue
				}
				key := n.name + "→" + m.Name + "@" + m.Since.Format(time.RFC3339Nano)
				r.mu.Lock()
				if _, seen := r.dead[key]; !seen {
					r.dead[key] = m.Since
					logf("faults: lossy links: %s holds %s %s (%.0f s in)", n.name, m.Name, m.State, m.Since.Sub(r.since).Seconds())
				}
				r.mu.Unlock()
			}
		}
	}
}

// stopLossy ends the run: how long it ran, the deaths seen and the writes
// the loss held back.
func (r *lossyRun) stopLossy() (time.Duration, int, int64) {
	close(r.stop)
	r.wg.Wait()
	took := time.Since(r.since)
	r.g.close()
	r.mu.Lock()
	defer r.mu.Unlock()
	return took, len(r.dead), r.nw.Delayed()
}

// detectRun is what the detection and lossy-link measurements found.
type detectRun struct {
	detect    []time.Duration // one silent node
	detect2   []time.Duration // two at once
	link      meshtest.Link
	lossy     time.Duration
	falseDead int
	delayed   int64
}

// seconds of ds, for percentile.
func seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// measureDetectAndLoss runs both measurements, one after the other (their
// clusters would share the cores).
func measureDetectAndLoss(ctx context.Context, lossy time.Duration) (*detectRun, error) {
	tune, err := detectTimings(os.Getenv)
	if err != nil {
		return nil, err
	}
	d := &detectRun{}
	if d.link, err = lossyLinkFrom(os.Getenv); err != nil {
		return nil, err
	}
	if d.detect, err = measureDetection(ctx, detectTrials, 1, tune, nil); err != nil {
		return nil, fmt.Errorf("detection: %w", err)
	}
	if d.detect2, err = measureDetection(ctx, detectTrials, 2, tune, nil); err != nil {
		return nil, fmt.Errorf("detection of two at once: %w", err)
	}
	r, err := startLossy(ctx, d.link, tune, nil)
	if err != nil {
		return nil, fmt.Errorf("lossy links: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(lossy):
	}
	d.lossy, d.falseDead, d.delayed = r.stopLossy()
	return d, ctx.Err()
}

// victimNames are the names of vs, for a log line.
func victimNames(vs []*gnode) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.name
	}
	return strings.Join(names, ", ")
}
