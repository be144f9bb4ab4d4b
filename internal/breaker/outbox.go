package breaker

// The outbox runs sends and callbacks after the Registry's lock is
// released (Send and OnStateChange may be slow or, in tests, call straight
// into another Registry), yet in the order they were made: the gossip queue
// keeps only the latest message per key, so a node's open report sent after
// its newer closed report would replace it and spread the stale state.

// emit queues f. r.mu held.
func (r *Registry) emit(f func()) { r.out = append(r.out, f) }

// flush runs the outbox. One goroutine at a time runs it; another that
// finds it busy leaves its items to that one, which re-checks the outbox
// after letting go, so nothing is stranded. Call it after releasing r.mu.
func (r *Registry) flush() {
	for {
		if !r.sendMu.TryLock() {
			return
		}
		for {
			r.mu.Lock()
			out := r.out
			r.out = nil
			r.mu.Unlock()
			if len(out) == 0 {
				break
			}
			for _, f := range out {
				f()
			}
		}
		r.sendMu.Unlock()
		r.mu.Lock()
		idle := len(r.out) == 0
		r.mu.Unlock()
		if idle {
			return
		}
	}
}
