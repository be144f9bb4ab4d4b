package transport

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rateLog writes at most one line per interval and folds the lines it
// suppressed into the next one, so a port scanner or a peer stuck on a bad
// certificate cannot flood the log (the counters in Stats stay exact).
type rateLog struct {
	logger *slog.Logger
	every  time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func newRateLog(logger *slog.Logger, every time.Duration) *rateLog {
	return &rateLog{logger: logger, every: every}
}

// Log logs msg with attrs unless a line went out less than the interval
// ago.
func (l *rateLog) Log(level slog.Level, msg string, attrs ...slog.Attr) {
	now := time.Now()
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	l.last = now
	n := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	if n > 0 {
		attrs = append(attrs, slog.Int("suppressed", n))
	}
	l.logger.LogAttrs(context.Background(), level, msg, attrs...)
}
