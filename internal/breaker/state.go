package breaker

import (
	"errors"
	"fmt"
)

// State is a breaker's state as requests see it.
type State uint8

const (
	Closed   State = iota // requests pass; outcomes are counted
	HalfOpen              // up to MaxProbes requests pass as probes
	Open                  // requests are rejected
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Causes of a transition, as passed to OnStateChange and counted in Stats.
const (
	CauseLocal   = "local"   // this node's own requests tripped its breaker
	CauseProbe   = "probe"   // a half-open probe succeeded or failed
	CauseRemote  = "remote"  // peers' reports opened it, or their support ended
	CauseTimeout = "timeout" // the open period ended
	CauseReset   = "reset"   // an operator's Reset, here or on a peer
)

var causes = [...]string{CauseLocal, CauseProbe, CauseRemote, CauseTimeout, CauseReset}

func causeIndex(c string) int {
	for i, x := range causes {
		if x == c {
			return i
		}
	}
	panic("breaker: unknown cause " + c)
}

// Errors returned by Allow. The proxy should try another endpoint.
var (
	ErrOpen          = errors.New("breaker: circuit open")
	ErrTooManyProbes = errors.New("breaker: circuit half-open, probes in flight")
)
