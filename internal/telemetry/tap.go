package telemetry

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// TapBuffer is the capacity of each tap subscriber's channel. A subscriber
// that falls further behind loses events (counted in TapEvent.Dropped).
const TapBuffer = 256

// TapEvent summarizes one finished request for `meshctl tap`.
type TapEvent struct {
	Time     time.Time // when the request arrived
	Route    string    // empty when no route matched
	Method   string
	Path     string
	Status   int
	Latency  time.Duration
	Upstream string // the upstream it was forwarded to (a split's pick); empty when none
	Endpoint string // the endpoint of the last attempt; empty when none was made
	Consumer string // the authenticated consumer, once auth sets it
	TraceID  string // once tracing sets it
	Caller   string // SPIFFE ID of an mTLS caller
	Fallback string // how a fallback answered ("upstream", "response"), if one did
	// RequestID and ClientIP identify the request in the access log.
	RequestID string
	ClientIP  string
	// Dropped is the number of events this subscriber lost, because its
	// channel was full, since the previous event it received.
	Dropped uint64
}

// TapFilter selects the events a subscriber receives. Zero fields select
// everything.
type TapFilter struct {
	Route string // exact route name
	// StatusMin and StatusMax bound the status, inclusive; 0: unbounded.
	StatusMin, StatusMax int
	Consumer             string // exact consumer
	// Sample is the fraction of matching events delivered, 0 < Sample ≤ 1;
	// 0 means 1. Sampling is deterministic: of every n matching events,
	// round(n·Sample) are delivered, evenly spaced, starting with the first.
	Sample float64
}

// Validate reports a filter that Subscribe would have to correct: a sample
// outside [0, 1] or a status range that selects nothing. The admin API
// calls it to answer a bad request instead of tapping something else.
func (f TapFilter) Validate() error {
	if math.IsNaN(f.Sample) || f.Sample < 0 || f.Sample > 1 {
		return errors.New("tap: sample must be in (0, 1]")
	}
	if f.StatusMin < 0 || f.StatusMax < 0 {
		return errors.New("tap: status bounds must not be negative")
	}
	if f.StatusMax != 0 && f.StatusMin > f.StatusMax {
		return errors.New("tap: status min is above status max")
	}
	return nil
}

// Tap fans finished requests out to live subscribers. Publish never blocks
// and takes no lock: the subscribers are an immutable slice behind an atomic
// pointer, replaced (copy on write) by Subscribe and cancel. With no
// subscriber, Publish is one atomic load.
type Tap struct {
	subs atomic.Pointer[[]*tapSub] // nil when nobody listens
	mu   sync.Mutex                // serializes Subscribe and cancel
}

// tapSub is one subscriber. Its filter and step are fixed at Subscribe; the
// counters are shared by all publishing goroutines.
type tapSub struct {
	route     string
	consumer  string
	statusMin int
	statusMax int // 0: unbounded
	// step is the sample rate as a fraction of 2³²; 0 delivers every event.
	step uint32

	ch      chan TapEvent
	seen    atomic.Uint64 // matching events, for sampling
	dropped atomic.Uint64 // lost since the last delivered event
	// inflight counts publishers between their check of closing and the end
	// of their send; cancel closes ch only once it drops to zero after
	// closing is set, so no send ever meets a closed channel.
	inflight atomic.Int64
	closing  atomic.Bool
}

// NewTap returns a tap without subscribers.
func NewTap() *Tap { return &Tap{} }

// Active reports whether anyone listens. A caller can skip building an
// event when it is false. Nil-safe.
func (t *Tap) Active() bool { return t != nil && t.subs.Load() != nil }

// Publish offers ev to every subscriber whose filter it matches. It never
// blocks: a subscriber whose channel is full loses the event, and the next
// event it receives says how many it lost. ev.Dropped is ignored. Safe for
// concurrent use. It inlines to one atomic load while nobody listens; t must
// not be nil (a caller with an optional tap checks Active first).
func (t *Tap) Publish(ev TapEvent) {
	if p := t.subs.Load(); p != nil {
		publish(p, &ev)
	}
}

// publish is the path with subscribers, kept out of Publish so that the
// check for none inlines at the caller.
func publish(subs *[]*tapSub, ev *TapEvent) {
	for _, s := range *subs {
		if !s.match(ev) || !s.sample() {
			continue
		}
		s.inflight.Add(1)
		if !s.closing.Load() {
			s.send(ev)
		}
		s.inflight.Add(-1)
	}
}

func (s *tapSub) match(ev *TapEvent) bool {
	return (s.route == "" || s.route == ev.Route) &&
		ev.Status >= s.statusMin && (s.statusMax == 0 || ev.Status <= s.statusMax) &&
		(s.consumer == "" || s.consumer == ev.Consumer)
}

// sample decides with a per-subscriber counter: the k-th matching event
// (from 0) passes when k·step wraps past a multiple of 2³², that is when
// (k·step mod 2³²) < step. No lock, no random source.
func (s *tapSub) sample() bool {
	if s.step == 0 {
		return true
	}
	k := uint32(s.seen.Add(1) - 1)
	return k*s.step < s.step
}

// send delivers ev without blocking, or counts it as dropped. ev is the
// publisher's own copy: its Dropped field is set per subscriber.
func (s *tapSub) send(ev *TapEvent) {
	if len(s.ch) == cap(s.ch) {
		s.dropped.Add(1) // full: do not copy the event only to fail
		return
	}
	var lost uint64
	if s.dropped.Load() != 0 {
		lost = s.dropped.Swap(0)
	}
	ev.Dropped = lost
	select {
	case s.ch <- *ev:
	default: // filled up since the check: keep the count for the next one
		s.dropped.Add(lost + 1)
	}
}

// MaxTapSubscribers bounds the taps open at once on a node: every request
// is offered to each, so a reader opening thousands would slow them all.
const MaxTapSubscribers = 16

// ErrTapFull is Subscribe's error when MaxTapSubscribers taps are open.
var ErrTapFull = fmt.Errorf("telemetry: %d taps are open on this node, the most it serves at once", MaxTapSubscribers)

// Subscribe starts delivering the events that match f on a channel of
// TapBuffer events. cancel stops the delivery and closes the channel; it may
// be called more than once, from any goroutine. A Sample outside (0, 1] is
// taken as 1 (use f.Validate to refuse it instead). With MaxTapSubscribers
// open already, it returns ErrTapFull.
func (t *Tap) Subscribe(f TapFilter) (events <-chan TapEvent, cancel func(), err error) {
	s := &tapSub{route: f.Route, consumer: f.Consumer, statusMin: f.StatusMin, statusMax: f.StatusMax,
		ch: make(chan TapEvent, TapBuffer)}
	if f.Sample > 0 && f.Sample < 1 {
		if step := max(1, math.Round(f.Sample*(1<<32))); step < 1<<32 {
			s.step = uint32(step)
		}
	}
	t.mu.Lock()
	var next []*tapSub
	if p := t.subs.Load(); p != nil {
		if len(*p) >= MaxTapSubscribers {
			t.mu.Unlock()
			return nil, func() {}, ErrTapFull
		}
		next = append(next, *p...)
	}
	next = append(next, s)
	t.subs.Store(&next)
	t.mu.Unlock()

	var once sync.Once
	return s.ch, func() { once.Do(func() { t.remove(s) }) }, nil
}

// remove unlists s, waits for the publishers still sending to it (each
// send is non-blocking, so the wait is short) and closes its channel.
func (t *Tap) remove(s *tapSub) {
	t.mu.Lock()
	if p := t.subs.Load(); p != nil {
		next := make([]*tapSub, 0, len(*p))
		for _, o := range *p {
			if o != s {
				next = append(next, o)
			}
		}
		if len(next) == 0 {
			t.subs.Store(nil)
		} else {
			t.subs.Store(&next)
		}
	}
	t.mu.Unlock()

	// A publisher that loaded the old slice either incremented inflight
	// before this store (we wait for it) or sees closing and skips.
	s.closing.Store(true)
	for s.inflight.Load() != 0 {
		runtime.Gosched()
	}
	close(s.ch)
}

// Subscribers returns the number of subscribers. Nil-safe.
func (t *Tap) Subscribers() int {
	if t == nil {
		return 0
	}
	if p := t.subs.Load(); p != nil {
		return len(*p)
	}
	return 0
}
