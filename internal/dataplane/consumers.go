package dataplane

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/pki"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Consumers is the compiled consumers section of an mTLS listener: whose
// X-Meshgate-Consumer (and X-Meshgate-Tier) it believes, whether a request
// must carry one, and which consumers may call. The consumer is the one an
// edge authenticated; a peer vouches for it by its SPIFFE ID, so a header
// is believed only from a caller whose verified ID matches Trusted.
type Consumers struct {
	require bool
	// trusted: the patterns without "*", as IDs (compared as strings:
	// no allocation per request), and the others.
	trustedIDs []string
	trusted    []pki.Pattern
	allow      map[string]struct{} // nil: any consumer
}

// NewConsumers compiles a listener's consumers section (nil for none).
func NewConsumers(lc *config.ListenerConsumers) (*Consumers, error) {
	if lc == nil {
		return nil, nil
	}
	c := &Consumers{require: lc.Require}
	for _, s := range lc.Trusted {
		p, err := pki.ParsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("consumers.trusted: %w", err)
		}
		if id := p.String(); !strings.Contains(id, "*") {
			c.trustedIDs = append(c.trustedIDs, id)
		} else {
			c.trusted = append(c.trusted, p)
		}
	}
	if len(lc.Allow) > 0 {
		c.allow = make(map[string]struct{}, len(lc.Allow))
		for _, name := range lc.Allow {
			c.allow[name] = struct{}{}
		}
	}
	return c, nil
}

// trusts tells whether id may vouch for a consumer.
func (c *Consumers) trusts(id spiffeid.ID) bool {
	s := id.String()
	for _, t := range c.trustedIDs {
		if s == t {
			return true
		}
	}
	for _, p := range c.trusted {
		if p.Matches(id) {
			return true
		}
	}
	return false
}

// claim is the consumer headers a request arrived with, before the entry
// removed them: they are put back only when the caller is trusted.
type claim struct {
	consumer, tier []string
}

// admitConsumer applies the listener's consumers policy to a request whose
// caller (id) is verified and allowed: it puts a trusted caller's consumer
// headers back and records the consumer on x, then enforces require and
// allow. False when it answered the request itself (401 or 403).
func (e *Entry) admitConsumer(w http.ResponseWriter, r *http.Request, x *exchange.Exchange, span *telemetry.Span, id spiffeid.ID, cl claim) bool {
	c := e.caller.Consumers
	// Exactly one non-empty value: the edge sets one; anything else is not
	// a consumer anybody vouched for.
	if len(cl.consumer) == 1 && cl.consumer[0] != "" && c.trusts(id) {
		x.Consumer = cl.consumer[0]
		r.Header[config.HeaderConsumer] = cl.consumer
		if len(cl.tier) == 1 && cl.tier[0] != "" {
			x.Tier = cl.tier[0]
			r.Header[config.HeaderTier] = cl.tier
		}
	}
	// An edge's anonymous request (a route with anonymous: true, no
	// credential) has no verified consumer.
	if c.require && (x.Consumer == "" || x.Consumer == config.ConsumerAnonymous) {
		e.refuseConsumer(w, r, x, span, exchange.ConsumerRequired, exchange.ConsumerRequired.Text,
			x.Consumer == "" && len(cl.consumer) > 0)
		return false
	}
	if c.allow != nil && x.Consumer != "" {
		if _, ok := c.allow[x.Consumer]; !ok {
			e.refuseConsumer(w, r, x, span, exchange.ConsumerDenied, "consumer "+x.Consumer+" may not call this service", false)
			return false
		}
	}
	return true
}

// refuseConsumer counts, logs and answers a request refused by the
// consumers policy. untrusted says the request carried a consumer header
// that was not believed (its value is not logged: anybody may write it).
func (e *Entry) refuseConsumer(w http.ResponseWriter, r *http.Request, x *exchange.Exchange, span *telemetry.Span, k *exchange.Kind, reason string, untrusted bool) {
	e.metrics.Denied(e.listener)
	args := []any{"listener", e.listener, "error", k.Name, "caller", x.Caller, "consumer", x.Consumer,
		"method", r.Method, "path", r.URL.Path, "request_id", x.RequestID}
	if untrusted {
		args = append(args, "untrusted_consumer_header", true)
	}
	if span != nil {
		args = append(args, "trace_id", span.TraceIDString())
	}
	e.logger.Warn("consumer refused", args...)
	exchange.WriteReason(w, x, k, reason)
}
