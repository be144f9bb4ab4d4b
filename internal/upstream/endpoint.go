package upstream

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/breaker"
	"github.com/meshgate/meshgate/internal/clock"
)

// ewmaTau is the time constant of the latency EWMA used by least_request.
const ewmaTau = 10 * time.Second

// Endpoint is one address of an upstream. Addr and Weight never change; the
// state (in flight, latency EWMA, health, ejection) changes concurrently and
// is read through the accessors. An Endpoint whose address survives a change
// of the endpoint set keeps its identity and state.
type Endpoint struct {
	Addr   string // ip:port
	Weight int
	// Host is the DNS name the address was resolved from ("" for an IP
	// literal); active health checks send it as the Host header.
	Host string

	up       *Upstream
	brk      *breaker.Breaker // nil: no breaker
	healthy  atomic.Bool
	ejected  atomic.Bool
	inflight atomic.Int64
	ewmaNs   atomic.Uint64 // float64 bits: peak EWMA of latency, ns
	ewmaAt   atomic.Int64  // clock time of the last EWMA update, unix ns; 0: never

	mu            sync.Mutex // guards the fields below
	consec5xx     int
	consecConnect int
	hcOK, hcFail  int
	ejections     int       // times ejected, the backoff multiplier
	ejectedUntil  time.Time // zero when not ejected
	returnedAt    time.Time
	ejectTimer    clock.Timer
}

// Healthy reports the active health check's verdict (true until checks say
// otherwise, and always true without a health check).
func (e *Endpoint) Healthy() bool { return e.healthy.Load() }

// Ejected reports whether passive outlier detection has ejected the endpoint.
func (e *Endpoint) Ejected() bool { return e.ejected.Load() }

// full: the endpoint has max_connections attempts in flight. It is passed
// over while another has room, so that a hung endpoint, whose attempts
// pile up, cannot take the other endpoints' share of the upstream's limit.
func (e *Endpoint) full() bool {
	m := e.up.cfg.MaxConnections
	return m > 0 && e.inflight.Load() >= int64(m)
}

// InFlight returns the attempts begun and not yet done.
func (e *Endpoint) InFlight() int64 { return e.inflight.Load() }

// LatencyEWMA returns the current latency estimate used by least_request (0
// before the first completed attempt).
func (e *Endpoint) LatencyEWMA() time.Duration {
	return time.Duration(e.ewmaAt0(e.up.clk.Now().UnixNano()))
}

func (e *Endpoint) available() bool { return e.healthy.Load() && !e.ejected.Load() }

// circuitOpen: the endpoint's breaker refuses requests. Unlike health and
// ejection this holds even in panic mode: an open breaker means "send
// nothing" until it probes.
func (e *Endpoint) circuitOpen() bool { return e.brk != nil && e.brk.State() == breaker.Open }

// Admit asks the endpoint's breaker for one attempt. End the ticket with
// Finish (or Skip it when the attempt never reached the endpoint's verdict,
// e.g. the client went away). Without a breaker it always admits.
func (e *Endpoint) Admit() (breaker.Ticket, error) {
	if e.brk == nil {
		return breaker.Ticket{}, nil
	}
	return e.brk.Allow()
}

// Finish ends an admitted attempt's ticket with its outcome: connect
// errors, resets, timeouts and 5xx are failures; anything the endpoint
// answered below 500 is a success.
func Finish(t breaker.Ticket, o Outcome) { t.Done(o == Success) }

// Outcome is how an attempt ended. Values 500..599 are 5xx response statuses
// (make them with Status5xx or StatusOutcome).
type Outcome uint16

// Outcomes other than a 5xx status.
const (
	// Success: a response below 500 (a 4xx is the client's problem, not the
	// endpoint's).
	Success Outcome = iota
	// ConnectError: the connection could not be established (refused,
	// connect timeout, TLS handshake failure).
	ConnectError
	// Reset: the connection failed after it was established, before a
	// complete response header.
	Reset
	// Timeout: the per-try timeout expired waiting for the response.
	Timeout
)

// Status5xx is the outcome of a response with a 5xx status code.
func Status5xx(code int) Outcome {
	if code < 500 || code > 599 {
		code = 500
	}
	return Outcome(code)
}

// StatusOutcome maps any response status: 5xx → Status5xx, else Success.
func StatusOutcome(code int) Outcome {
	if code >= 500 && code <= 599 {
		return Outcome(code)
	}
	return Success
}

// Is5xx reports whether o is a 5xx response.
func (o Outcome) Is5xx() bool { return o >= 500 && o <= 599 }

func (o Outcome) String() string {
	switch {
	case o == Success:
		return "success"
	case o == ConnectError:
		return "connect_error"
	case o == Reset:
		return "reset"
	case o == Timeout:
		return "timeout"
	case o.Is5xx():
		return "status_" + itoa3(int(o))
	}
	return "unknown"
}

func itoa3(n int) string {
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}

// Begin records the start of an attempt on e. Pair it with exactly one Done.
func (e *Endpoint) Begin() { e.inflight.Add(1) }

// Done records the end of an attempt begun with Begin: it updates the
// latency EWMA and passive outlier detection.
//
// The EWMA is a peak EWMA with time constant 10s: a sample above the
// estimate replaces it at once (slowness is noticed immediately), a sample
// below pulls it down with weight 1-exp(-Δt/10s) (rate-independent decay).
// Only Success and 5xx outcomes carry latency; connect errors, resets and
// timeouts count for ejection only.
//
// Outlier counting: ConnectError counts consecutive connect errors; a 5xx,
// Reset or Timeout counts consecutive 5xx (the client would see 502/503/504)
// and, since a connection was made, resets the connect error count; Success
// resets both.
func (e *Endpoint) Done(latency time.Duration, o Outcome) {
	e.inflight.Add(-1)
	u := e.up
	now := u.clk.Now()
	e.mu.Lock()
	if o == Success || o.Is5xx() {
		e.observeLatency(now.UnixNano(), latency)
	}
	eject := false
	if oc := u.cfg.Outlier; oc != nil {
		switch {
		case o == Success:
			e.consec5xx, e.consecConnect = 0, 0
		case o == ConnectError:
			e.consecConnect++
			eject = e.consecConnect >= oc.ConsecutiveConnectErrors
		default:
			e.consecConnect = 0
			e.consec5xx++
			eject = e.consec5xx >= oc.Consecutive5xx
		}
		eject = eject && !e.ejected.Load()
	}
	e.mu.Unlock()
	if eject {
		u.tryEject(e)
	}
}

// observeLatency updates the peak EWMA; e.mu held.
func (e *Endpoint) observeLatency(now int64, latency time.Duration) {
	l := float64(latency)
	if l <= 0 {
		l = 1
	}
	prev := e.ewmaAt.Load()
	cur := math.Float64frombits(e.ewmaNs.Load())
	switch {
	case prev == 0 || l > cur:
		cur = l
	default:
		dt := float64(now - prev)
		if dt < 0 {
			dt = 0
		}
		w := math.Exp(-dt / float64(ewmaTau))
		cur = cur*w + l*(1-w)
	}
	e.ewmaNs.Store(math.Float64bits(cur))
	e.ewmaAt.Store(now)
}

// ewmaAt0 returns the EWMA decayed towards zero for the time since its last
// update (so an endpoint that was slow and got no traffic since is tried
// again), or 0 when the endpoint has no sample yet.
func (e *Endpoint) ewmaAt0(now int64) float64 {
	at := e.ewmaAt.Load()
	if at == 0 {
		return 0
	}
	v := math.Float64frombits(e.ewmaNs.Load())
	if dt := now - at; dt > 0 {
		v *= math.Exp(-float64(dt) / float64(ewmaTau))
	}
	if v < 1 {
		v = 1 // still "seen"
	}
	return v
}

func (e *Endpoint) stopEjectionTimer() {
	e.mu.Lock()
	if e.ejectTimer != nil {
		e.ejectTimer.Stop()
	}
	e.mu.Unlock()
}
