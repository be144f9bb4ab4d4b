package breaker

import (
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Settings configure one endpoint's breaker. The zero value is usable: every
// zero field takes its default. Settings are compared by value, so a reload
// that hands Registry.Breaker the same settings changes nothing.
type Settings struct {
	// ConsecutiveFailures trips the breaker after this many failures in a
	// row. Default 5.
	ConsecutiveFailures uint32
	// FailureRatio (0 < r ≤ 1) also trips it when at least this fraction of
	// the requests in the current Interval failed and there were at least
	// MinRequests of them (default 10). 0 turns the ratio off.
	FailureRatio float64
	MinRequests  uint32
	// Interval is the closed state's counting window, and how long a local
	// failure counts as evidence for a peer's open report. Default 10s.
	Interval time.Duration
	// OpenTimeout is how long an open breaker rejects before it probes.
	// Default 30s; at most 24h.
	OpenTimeout time.Duration
	// MaxProbes is how many requests a half-open breaker lets through; all
	// must succeed to close it. Default 1.
	MaxProbes uint32
	// Quorum is how many distinct live peers must report the endpoint open
	// for this node to open it without evidence of its own. Default 2; 1
	// trusts any single peer (and so lets one node's local network problem
	// black-hole the endpoint for the fleet).
	Quorum int
}

const (
	defaultConsecutive = 5
	defaultMinRequests = 10
	defaultInterval    = 10 * time.Second
	defaultOpenTimeout = 30 * time.Second
	defaultQuorum      = 2
	// maxTTL bounds every duration a peer can make this node keep: an open
	// period, how long a report is remembered.
	maxTTL    = 24 * time.Hour
	maxProbes = 1 << 16
)

// Validate reports settings that would be silently replaced by defaults, so
// the config layer can reject them with a file:line of its own.
func (s Settings) Validate() error {
	var errs []error
	if s.FailureRatio < 0 || s.FailureRatio > 1 || s.FailureRatio != s.FailureRatio {
		errs = append(errs, fmt.Errorf("failure ratio %v is not within [0, 1]", s.FailureRatio))
	}
	if s.Interval < 0 {
		errs = append(errs, fmt.Errorf("negative interval %v", s.Interval))
	}
	if s.OpenTimeout < 0 || s.OpenTimeout > maxTTL {
		errs = append(errs, fmt.Errorf("open timeout %v is not within [0, %v]", s.OpenTimeout, maxTTL))
	}
	if s.MaxProbes > maxProbes {
		errs = append(errs, fmt.Errorf("max probes %d exceeds %d", s.MaxProbes, maxProbes))
	}
	if s.Quorum < 0 {
		errs = append(errs, fmt.Errorf("negative quorum %d", s.Quorum))
	}
	return errors.Join(errs...)
}

// normalized fills defaults and replaces invalid values by them, so a
// Breaker always runs on sane settings even when Validate was skipped.
func (s Settings) normalized() Settings {
	if s.ConsecutiveFailures == 0 {
		s.ConsecutiveFailures = defaultConsecutive
	}
	if !(s.FailureRatio > 0 && s.FailureRatio <= 1) {
		s.FailureRatio = 0
	}
	if s.MinRequests == 0 {
		s.MinRequests = defaultMinRequests
	}
	if s.Interval <= 0 {
		s.Interval = defaultInterval
	}
	if s.OpenTimeout <= 0 || s.OpenTimeout > maxTTL {
		s.OpenTimeout = defaultOpenTimeout
	}
	if s.MaxProbes == 0 || s.MaxProbes > maxProbes {
		s.MaxProbes = 1
	}
	if s.Quorum <= 0 {
		s.Quorum = defaultQuorum
	}
	return s
}

// readyToTrip is gobreaker's trip policy for these settings.
func (s *Settings) readyToTrip(c gobreaker.Counts) bool {
	if c.ConsecutiveFailures >= s.ConsecutiveFailures {
		return true
	}
	return s.FailureRatio > 0 && c.Requests >= s.MinRequests &&
		float64(c.TotalFailures) >= s.FailureRatio*float64(c.Requests)
}
