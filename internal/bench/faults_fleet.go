package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The fleet scenario (issue 16): every node of a five-node cluster — two
// edges and three instances behind sidecars — restarted in turn under
// load, one at a time, each once the cluster has the one before back.
// The mesh's edge and two sidecars get company for it: a second edge
// (both edges join each other, as a fleet's configs list several seeds)
// and a third instance. The client spreads its connections over both
// edges and, when one refuses, dials the other, as clients of a name
// with several addresses do (or a load balancer in front of the edges);
// a request fails when it gets anything but 200, as in every scenario.
// A restart is SIGTERM (the node leaves the cluster and drains) and a
// start; the next node goes once both edges count all three instances
// healthy and the restarted edge answers.

const (
	fleetLoad = 45 * time.Second // room for five restarts after faultsAt
	fleetWait = 20 * time.Second // for a restarted node to be back
)

// fleetNode is one node the scenario restarts.
type fleetNode struct {
	name  string
	stop  func()
	start func() error
}

// fleetExtras are the nodes added for the scenario.
type fleetExtras struct {
	edge, backend, sidecar *Proc
	edgeCfg, scCfg         string
	edgeAdmin, scAdmin     string
	edgePublic             string // host:port
	restarts               int
}

// startFleetExtras starts the second edge and the third instance, has the
// mesh's edge join the second, and waits until both edges serve through
// all three instances.
func (m *faultsMesh) startFleetExtras(ctx context.Context) (*fleetExtras, error) {
	ports, err := freePorts(7)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	x := &fleetExtras{edgeAdmin: "http://" + addr(0), edgePublic: addr(1), scAdmin: "http://" + addr(3)}
	edgeGossip, backendAddr := addr(2), addr(4)
	x.edgeCfg = filepath.Join(m.dir, "edge-1.yaml")
	yaml := faultsEdgeYAML("edge-1", addr(0), x.edgePublic, edgeGossip, []string{m.gossip}, m.ids["edge-1"], 0)
	if err := os.WriteFile(x.edgeCfg, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	x.scCfg = filepath.Join(m.dir, "sidecar-2.yaml")
	yaml = faultsSidecarYAML(2, addr(3), backendAddr, addr(5), addr(6), m.gossip, m.ids["backend-2"])
	if err := os.WriteFile(x.scCfg, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if x.backend, err = m.env.start("faults-backend-2", []string{transformBackendEnv + "=" + backendAddr}, self); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, x.backend, "http://"+backendAddr+"/", readyWait); err != nil {
		x.stop(m)
		return nil, fmt.Errorf("backend 2: %v", err)
	}
	if x.edge, err = m.env.start("faults-edge-1", nil, m.edgeBin, "--config", x.edgeCfg); err != nil {
		x.stop(m)
		return nil, err
	}
	if x.sidecar, err = m.env.start("faults-sidecar-2", nil, m.scBin, "--config", x.scCfg); err != nil {
		x.stop(m)
		return nil, err
	}
	// The first edge joins the second too when it starts again, so that
	// either finds the cluster on a restart (the cluster section is read
	// at start: the file changes, the running edge keeps its own).
	m.edgeJoin = []string{edgeGossip}
	if err := os.WriteFile(m.edgeCfg, []byte(m.edgeYAML(0)), 0o644); err != nil {
		x.stop(m)
		return nil, err
	}
	if err := m.fleetWhole(ctx, x, fleetWait); err != nil {
		x.stop(m)
		return nil, err
	}
	return x, nil
}

// stop ends the extras and leaves the mesh as it was: one edge, two
// instances.
func (x *fleetExtras) stop(m *faultsMesh) {
	for _, p := range []*Proc{x.sidecar, x.edge, x.backend} {
		if p != nil {
			p.Stop()
		}
	}
	m.edgeJoin = nil
	_ = os.WriteFile(m.edgeCfg, []byte(m.edgeYAML(0)), 0o644)
}

// fleetWhole waits until both edges count three healthy instances and
// answer 200.
func (m *faultsMesh) fleetWhole(ctx context.Context, x *fleetExtras, within time.Duration) error {
	edges := []struct {
		admin, public string
		proc          *Proc
	}{{m.admin, m.public, m.edge}, {x.edgeAdmin, "http://" + x.edgePublic + "/", x.edge}}
	return waitUntil(ctx, within, "both edges serving through three instances", func() bool {
		for _, e := range edges {
			if n, err := healthyEndpoints(e.admin, "backend"); err != nil || n != 3 {
				return false
			}
			if _, err := waitOK(e.public); err != nil {
				return false
			}
		}
		return true
	})
}

// fleet runs the scenario at rate.
func (m *faultsMesh) fleet(ctx context.Context, rate int) (*loadOutcome, error) {
	x, err := m.startFleetExtras(ctx)
	if err != nil {
		return nil, fmt.Errorf("fleet: %v", err)
	}
	defer x.stop(m)
	restartProc := func(p **Proc, name string, argv ...string) func() error {
		return func() error {
			x.restarts++
			var err error
			*p, err = m.env.start(fmt.Sprintf("%s-r%d", name, x.restarts), nil, argv...)
			return err
		}
	}
	nodes := []fleetNode{
		{"sidecar-0", func() { m.sidecars[0].Stop() }, func() error { return m.startSidecar(0) }},
		{"sidecar-1", func() { m.sidecars[1].Stop() }, func() error { return m.startSidecar(1) }},
		{"sidecar-2", func() { x.sidecar.Stop() }, restartProc(&x.sidecar, "faults-sidecar-2", m.scBin, "--config", x.scCfg)},
		{"edge-1", func() { x.edge.Stop() }, restartProc(&x.edge, "faults-edge-1", m.edgeBin, "--config", x.edgeCfg)},
		{"edge-0", func() { m.edge.Stop() }, restartProc(&m.edge, "faults-edge", m.edgeBin, "--config", m.edgeCfg)},
	}
	done := make(chan error, 1)
	go func() {
		select {
		case <-time.After(faultsAt):
		case <-ctx.Done():
			done <- ctx.Err()
			return
		}
		t0 := time.Now().Add(-faultsAt)
		for _, n := range nodes {
			logf("  fleet: restarting %s %.1f s into the run", n.name, time.Since(t0).Seconds())
			n.stop()
			if err := n.start(); err != nil {
				done <- fmt.Errorf("%s: %v", n.name, err)
				return
			}
			if err := m.fleetWhole(ctx, x, fleetWait); err != nil {
				done <- fmt.Errorf("after restarting %s: %v", n.name, err)
				return
			}
		}
		done <- nil
	}()
	client := loadClient([]string{m.publicAddr, x.edgePublic})
	out := fixedRateGetsWith(ctx, client, m.public, rate, fleetLoad)
	if err := <-done; err != nil {
		return nil, fmt.Errorf("fleet: %v", err)
	}
	return out, nil
}
