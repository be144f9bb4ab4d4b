package introspect

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"
)

// logGate lets one unavailability warning a second through: when the
// server is down every request fails, and a line for each would flood the
// log. Guarded by Introspector.mu.
type logGate struct {
	last       time.Time
	suppressed int
}

// pass reports whether err is to be logged as a warning, and how many were
// suppressed since the last one.
func (g *logGate) pass(err error, now time.Time) (bool, int) {
	if !errors.Is(err, ErrUnavailable) {
		return false, 0
	}
	if !g.last.IsZero() && now.Sub(g.last) < time.Second {
		g.suppressed++
		return false, 0
	}
	n := g.suppressed
	g.last, g.suppressed = now, 0
	return true, n
}

// log reports a call's outcome. The token is named by the first bytes of
// its SHA-256, which correlate log lines without revealing it.
func (i *Introspector) log(k key, res *Result, err error, until time.Time, warn bool, suppressed int) {
	id := slog.String("token_sha256", hex.EncodeToString(k[:4]))
	if warn {
		i.o.Logger.Warn("introspect: authorization server unavailable", id,
			"endpoint", i.o.Endpoint, "err", err, "suppressed", suppressed)
		return
	}
	if !i.o.Logger.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := []any{id, "outcome", outcome(err)}
	if res != nil {
		attrs = append(attrs, "sub", res.Subject, "client_id", res.ClientID)
	}
	if !until.IsZero() {
		attrs = append(attrs, "cached_until", until)
	}
	i.o.Logger.Debug("introspect: answer", attrs...)
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "active"
	case errors.Is(err, ErrInactive):
		return "inactive"
	case errors.Is(err, ErrAudience):
		return "audience"
	}
	return "unavailable"
}
