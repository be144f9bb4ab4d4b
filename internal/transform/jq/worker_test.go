package jq

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

func idleWorkers() []*worker {
	workers.mu.Lock()
	defer workers.mu.Unlock()
	return slices.Clone(workers.idle)
}

// TestWorkersReused: sequential runs share one worker; concurrent runs
// leave at most maxIdleWorkers parked.
func TestWorkersReused(t *testing.T) {
	p := mustCompile(t, `{a: .}`, Options{Timeout: 10 * time.Second})
	run := func() {
		if out, err := p.Run(context.Background(), []byte(`1`), nil); err != nil || string(out) != `{"a":1}` {
			t.Errorf("%s %v", out, err)
		}
	}
	run()
	before := idleWorkers()
	for range 10 {
		run()
	}
	if after := idleWorkers(); !slices.Equal(before, after) {
		t.Errorf("idle workers changed from %d to %d over sequential runs", len(before), len(after))
	}
	var wg sync.WaitGroup
	for range 2 * maxIdleWorkers {
		wg.Go(run)
	}
	wg.Wait()
	if n := len(idleWorkers()); n > maxIdleWorkers || n == 0 {
		t.Errorf("%d idle workers after concurrent runs", n)
	}
}

// TestWorkerRetires: an idle worker leaves the pool after its idle time,
// and one taken before it retires still serves its run.
func TestWorkerRetires(t *testing.T) {
	w := startWorker(20 * time.Millisecond)
	w.park()
	deadline := time.Now().Add(10 * time.Second)
	for slices.Contains(idleWorkers(), w) {
		if time.Now().After(deadline) {
			t.Fatal("the idle worker did not retire")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if w.retire() {
		t.Fatal("retired twice")
	}

	// Taken from the pool (retire fails), it keeps serving.
	w = &worker{jobs: make(chan job, 1), done: make(chan result, 1), kept: make(chan struct{}, 1)}
	go w.loop(time.Millisecond)
	p := mustCompile(t, `.`, Options{})
	<-w.kept // its idle timer fired and it stayed
	w.jobs <- job{context.Background(), p, "x", nil}
	if r := <-w.done; r.err != nil || string(r.out) != `"x"` {
		t.Fatalf("%s %v", r.out, r.err)
	}
	close(w.jobs)
}
