package telemetry

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// AccessLog writes one JSON line per request. Lines are buffered and flushed
// at least every flushEvery, so a busy proxy does not make a write system
// call per request.
type AccessLog struct {
	mu     sync.Mutex
	buf    *bufio.Writer
	out    io.Writer
	closer io.Closer
	logger *slog.Logger
	stop   chan struct{}
	done   chan struct{}
}

const flushEvery = 200 * time.Millisecond

// Entry is one access log line.
type Entry struct {
	Time      time.Time
	Listener  string
	Method    string
	Host      string
	Path      string
	Route     string
	Endpoint  string
	Attempts  int
	Status    int
	Duration  time.Duration
	BytesIn   int64
	BytesOut  int64
	RequestID string
	ClientIP  string
	Reason    string
	Caller    string // SPIFFE ID of an mTLS caller
	// Consumer and Tier: who an auth policy identified, and their tier.
	Consumer, Tier string
	// TraceID and SpanID are the request's server span (hex), when the
	// node traces.
	TraceID, SpanID string
	// Fallback and FallbackReason: how a route's fallback answered in the
	// upstream's place, and why (empty when it did not).
	Fallback, FallbackReason string
}

// OpenAccessLog opens dest: "stdout", "stderr", "off" (nil log) or a file
// path (appended to).
func OpenAccessLog(dest string) (*AccessLog, error) {
	var w io.Writer
	var closer io.Closer
	switch dest {
	case "off", "":
		return nil, nil
	case "stdout":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		w, closer = f, f
	}
	return NewAccessLog(w, closer), nil
}

// NewAccessLog writes to w; closer (may be nil) is closed by Close.
func NewAccessLog(w io.Writer, closer io.Closer) *AccessLog {
	a := &AccessLog{out: w, closer: closer, stop: make(chan struct{}), done: make(chan struct{})}
	a.buf = bufio.NewWriterSize(lockedWriter{a}, 64<<10)
	a.logger = slog.New(slog.NewJSONHandler(a.buf, nil))
	go a.flusher()
	return a
}

// lockedWriter lets the bufio.Writer flush to out; the caller holds mu.
type lockedWriter struct{ a *AccessLog }

func (l lockedWriter) Write(p []byte) (int, error) { return l.a.out.Write(p) }

func (a *AccessLog) flusher() {
	defer close(a.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			a.Flush()
		case <-a.stop:
			a.Flush()
			return
		}
	}
}

// Flush writes buffered lines out.
func (a *AccessLog) Flush() {
	a.mu.Lock()
	_ = a.buf.Flush()
	a.mu.Unlock()
}

// Log writes e. Nil-safe: a nil *AccessLog is "off".
func (a *AccessLog) Log(e *Entry) {
	if a == nil {
		return
	}
	// Room for the optional fields too: appending to line does not
	// allocate.
	attrs := [21]slog.Attr{
		slog.String("listener", e.Listener),
		slog.String("method", e.Method),
		slog.String("host", e.Host),
		slog.String("path", e.Path),
		slog.String("route", e.Route),
		slog.String("upstream", e.Endpoint),
		slog.Int("attempts", e.Attempts),
		slog.Int("status", e.Status),
		slog.Float64("duration_ms", float64(e.Duration.Microseconds())/1000),
		slog.Int64("bytes_in", e.BytesIn),
		slog.Int64("bytes_out", e.BytesOut),
		slog.String("request_id", e.RequestID),
		slog.String("client_ip", e.ClientIP),
	}
	line := attrs[:13]
	if e.Reason != "" {
		line = append(line, slog.String("reason", e.Reason))
	}
	if e.Caller != "" {
		line = append(line, slog.String("caller", e.Caller))
	}
	if e.Consumer != "" {
		line = append(line, slog.String("consumer", e.Consumer), slog.String("tier", e.Tier))
	}
	if e.TraceID != "" {
		line = append(line, slog.String("trace_id", e.TraceID), slog.String("span_id", e.SpanID))
	}
	if e.Fallback != "" {
		line = append(line, slog.String("fallback", e.Fallback), slog.String("fallback_reason", e.FallbackReason))
	}
	a.mu.Lock()
	a.logger.LogAttrs(context.Background(), slog.LevelInfo, "request", line...)
	a.mu.Unlock()
}

// Close flushes and closes the destination.
func (a *AccessLog) Close() error {
	if a == nil {
		return nil
	}
	close(a.stop)
	<-a.done
	if a.closer != nil {
		return a.closer.Close()
	}
	return nil
}
