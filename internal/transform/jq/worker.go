package jq

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Runs evaluate on pooled goroutines: starting one per run, and growing
// its stack to what gojq's VM needs, cost a few microseconds a run, a
// good part of a small expression's. A worker serves one run at a time; whoever
// receives its result parks it again (Run, or the goroutine waiting for
// a straggler). At most maxIdleWorkers wait between runs, and each
// exits after workerIdle without work, so an idle process keeps none.
const (
	maxIdleWorkers = 64
	workerIdle     = 10 * time.Second
)

type worker struct {
	jobs chan job    // one job at a time (buffered: the send never waits)
	done chan result // its result (buffered: the worker never waits)
	// kept, when set (tests), hears of each idle timeout the worker
	// outlived because a run had taken it.
	kept chan struct{}
}

type job struct {
	ctx  context.Context
	p    *Program
	in   any
	vars []any
}

type result struct {
	out []byte
	err error
}

// workers holds the idle workers, the most recently parked last (its
// stack is the likeliest to be grown already).
var workers struct {
	mu   sync.Mutex
	idle []*worker
}

// runOnWorker evaluates on a worker and answers at the deadline of ctx
// at the latest. gojq checks the context between VM steps, but a single
// step (one builtin call) runs to completion: waiting for the worker
// from here lets Run return at the deadline regardless.
func (p *Program) runOnWorker(ctx context.Context, in any, vars []any) ([]byte, error) {
	w := getWorker()
	w.jobs <- job{ctx, p, in, vars}
	select {
	case r := <-w.done:
		w.park()
		return r.out, r.err
	case <-ctx.Done():
		select {
		case r := <-w.done:
			w.park()
			return r.out, r.err
		default:
		}
		stragglers.Add(1)
		go func() { <-w.done; w.park(); stragglers.Add(-1) }()
		return nil, p.ctxError(ctx.Err())
	}
}

// getWorker takes an idle worker or starts one.
func getWorker() *worker {
	workers.mu.Lock()
	if n := len(workers.idle); n > 0 {
		w := workers.idle[n-1]
		workers.idle[n-1] = nil
		workers.idle = workers.idle[:n-1]
		workers.mu.Unlock()
		return w
	}
	workers.mu.Unlock()
	return startWorker(workerIdle)
}

// startWorker starts a worker that exits after idleFor without work.
func startWorker(idleFor time.Duration) *worker {
	w := &worker{jobs: make(chan job, 1), done: make(chan result, 1)}
	go w.loop(idleFor)
	return w
}

// park makes w available again, or stops it if enough are idle.
func (w *worker) park() {
	workers.mu.Lock()
	defer workers.mu.Unlock()
	if len(workers.idle) >= maxIdleWorkers {
		close(w.jobs)
		return
	}
	workers.idle = append(workers.idle, w)
}

// retire takes w out of the idle list, unless a run has taken it (its
// job is then on the way).
func (w *worker) retire() bool {
	workers.mu.Lock()
	defer workers.mu.Unlock()
	i := slices.Index(workers.idle, w)
	if i < 0 {
		return false
	}
	workers.idle = slices.Delete(workers.idle, i, i+1)
	return true
}

func (w *worker) loop(idleFor time.Duration) {
	idle := time.NewTimer(idleFor)
	defer idle.Stop()
	for {
		select {
		case j, ok := <-w.jobs:
			if !ok {
				return
			}
			out, err := j.p.run(j.ctx, j.in, j.vars)
			w.done <- result{out, err}
			idle.Reset(idleFor)
		case <-idle.C:
			if w.retire() {
				return
			}
			select {
			case w.kept <- struct{}{}:
			default:
			}
			idle.Reset(idleFor)
		}
	}
}
