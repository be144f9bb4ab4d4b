package admin

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/telemetry"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// statsWindow is the span UpstreamStats reports on: long enough to hold a
// few hundred requests at modest traffic, short enough that a rollout step
// sees its own subset's behaviour.
const statsWindow = 30 * time.Second

// Tap implements adminv1.AdminServer: live request summaries until the
// caller hangs up. The node's tap drops events for a subscriber that
// falls behind (counted in Dropped) rather than slow a request.
func (s *Server) Tap(r *adminv1.TapRequest, stream adminv1.Admin_TapServer) error {
	if r.Sample < 0 || r.Sample > 1 {
		return status.Errorf(codes.InvalidArgument, "sample %g: want 0 < sample ≤ 1", r.Sample)
	}
	events, cancel, err := s.b.Tap().Subscribe(telemetry.TapFilter{Route: r.Route, StatusMin: int(r.StatusMin),
		StatusMax: int(r.StatusMax), Consumer: r.Consumer, Sample: r.Sample})
	if err != nil {
		return status.Error(codes.ResourceExhausted, err.Error()+"; try again when one closes")
	}
	defer cancel()
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if err := stream.Send(&adminv1.TapEvent{TimeUnixMs: ev.Time.UnixMilli(), Route: ev.Route, Method: ev.Method,
				Path: ev.Path, Status: int32(ev.Status), LatencyMs: float64(ev.Latency.Microseconds()) / 1000,
				Upstream: ev.Upstream, Endpoint: ev.Endpoint, Consumer: ev.Consumer, TraceId: ev.TraceID,
				Caller: ev.Caller, Dropped: ev.Dropped, Fallback: ev.Fallback}); err != nil {
				return err
			}
		}
	}
}

// UpstreamStats implements adminv1.AdminServer.
func (s *Server) UpstreamStats(_ context.Context, r *adminv1.UpstreamStatsRequest) (*adminv1.UpstreamStatsResponse, error) {
	snap, ok := s.b.UpstreamStats().Snapshot(r.Upstream, statsWindow)
	if !ok {
		var names []string
		if cfg := s.b.Effective(); cfg != nil {
			for _, u := range cfg.Upstreams {
				if u.Name == r.Upstream {
					// Known but idle: no requests in the window.
					return &adminv1.UpstreamStatsResponse{Upstream: r.Upstream}, nil
				}
				names = append(names, u.Name)
			}
		}
		return nil, notFound("upstream", r.Upstream, names)
	}
	return &adminv1.UpstreamStatsResponse{Upstream: r.Upstream, Requests: snap.Requests, Errors: snap.Errors,
		P50Ms: float64(snap.P50.Microseconds()) / 1000, P99Ms: float64(snap.P99.Microseconds()) / 1000}, nil
}
