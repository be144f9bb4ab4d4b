package tracetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// ErrNotFound is wrapped by the error of Trace when Jaeger has no such
// trace (yet: storage lags behind the export).
var ErrNotFound = errors.New("tracetest: trace not found")

// pollInterval is how often WaitTrace asks Jaeger again.
const pollInterval = 50 * time.Millisecond

// Trace fetches one trace by its hex ID (GET /api/traces/{traceID}).
func (j *Jaeger) Trace(ctx context.Context, traceID string) (*Trace, error) {
	var data []jsonTrace
	if err := j.get(ctx, "/api/traces/"+url.PathEscape(traceID), &data); err != nil {
		return nil, fmt.Errorf("trace %s: %w", traceID, err)
	}
	for _, jt := range data {
		if strings.EqualFold(jt.TraceID, traceID) || len(data) == 1 {
			return convertTrace(jt), nil
		}
	}
	return nil, fmt.Errorf("trace %s: %w", traceID, ErrNotFound)
}

// Traces returns the recent traces with a span of service (GET
// /api/traces?service=…, Jaeger's default lookback and limit).
func (j *Jaeger) Traces(ctx context.Context, service string) ([]*Trace, error) {
	var data []jsonTrace
	if err := j.get(ctx, "/api/traces?service="+url.QueryEscape(service), &data); err != nil {
		return nil, fmt.Errorf("traces of %s: %w", service, err)
	}
	out := make([]*Trace, 0, len(data))
	for _, jt := range data {
		out = append(out, convertTrace(jt))
	}
	return out, nil
}

// Services returns the sorted names of the services Jaeger has spans of
// (GET /api/services).
func (j *Jaeger) Services(ctx context.Context) ([]string, error) {
	var data []string
	if err := j.get(ctx, "/api/services", &data); err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	slices.Sort(data)
	return data, nil
}

// WaitTrace polls Jaeger until the trace exists and want (nil: any) holds
// for it, and returns it. After timeout it fails t with the last trace seen
// or the last error.
func (j *Jaeger) WaitTrace(t testing.TB, traceID string, want func(*Trace) bool, timeout time.Duration) *Trace {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var (
		last    *Trace
		lastErr error
	)
	for {
		tr, err := j.Trace(ctx, traceID)
		switch {
		case err == nil:
			last, lastErr = tr, nil
			if want == nil || want(tr) {
				return tr
			}
		case ctx.Err() == nil:
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				t.Fatalf("tracetest: trace %s did not become as wanted within %v; last seen:\n%s", traceID, timeout, last)
			}
			t.Fatalf("tracetest: trace %s not in Jaeger within %v: %v", traceID, timeout, lastErr)
			return nil
		case <-tick.C:
		}
	}
}

// get fetches path from the query API and decodes the response's data
// into v. A 404 is ErrNotFound.
func (j *Jaeger) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.query+path, nil)
	if err != nil {
		return err
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	var r apiResponse
	if err := unmarshal(body, &r); err != nil {
		return fmt.Errorf("GET %s: %s: decoding %q: %w", path, resp.Status, truncate(body), err)
	}
	if resp.StatusCode != http.StatusOK || len(r.Errors) > 0 {
		msgs := make([]string, len(r.Errors))
		for i, e := range r.Errors {
			msgs[i] = e.String()
		}
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.Join(msgs, "; "))
	}
	if len(r.Data) == 0 || string(r.Data) == "null" {
		return nil
	}
	if err := unmarshal(r.Data, v); err != nil {
		return fmt.Errorf("GET %s: decoding data: %w", path, err)
	}
	return nil
}

func truncate(b []byte) string {
	const limit = 512
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
