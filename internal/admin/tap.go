package admin

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/telemetry"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

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
