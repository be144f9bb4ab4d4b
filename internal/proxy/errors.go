package proxy

import (
	"net/http"
	"net/url"
	"strconv"
)

// WriteError answers the client with a JSON error the proxy generated
// itself. reason is safe to show a user; it is also logged with the exchange.
//
// A gRPC client cannot read a JSON body: for gRPC requests the error is a
// trailers-only response (HTTP 200, grpc-status and grpc-message) with the
// gRPC code of the status, as gRPC's HTTP mapping specifies.
func WriteError(w http.ResponseWriter, x *Exchange, status int, reason string) {
	if x != nil {
		x.Reason = reason
		if x.GRPC {
			writeGRPCError(w, x, status, reason)
			return
		}
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	body := make([]byte, 0, 96+len(reason))
	body = append(body, `{"status":`...)
	body = strconv.AppendInt(body, int64(status), 10)
	body = append(body, `,"error":`...)
	body = strconv.AppendQuote(body, reason)
	if x != nil && x.RequestID != "" {
		body = append(body, `,"request_id":`...)
		body = strconv.AppendQuote(body, x.RequestID)
	}
	body = append(body, "}\n"...)
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// grpcCode maps the proxy's HTTP statuses to gRPC codes (see gRPC's
// "HTTP to gRPC Status Code Mapping", extended for proxy-specific errors).
func grpcCode(status int) int {
	switch status {
	case http.StatusBadRequest:
		return 3 // INVALID_ARGUMENT
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return 12 // UNIMPLEMENTED
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusGatewayTimeout:
		return 4 // DEADLINE_EXCEEDED
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return 14 // UNAVAILABLE
	default:
		return 2 // UNKNOWN
	}
}

func writeGRPCError(w http.ResponseWriter, x *Exchange, status int, reason string) {
	h := w.Header()
	h["Content-Type"] = []string{"application/grpc"}
	h["Grpc-Status"] = []string{strconv.Itoa(grpcCode(status))}
	h["Grpc-Message"] = []string{url.PathEscape(reason)}
	w.WriteHeader(http.StatusOK)
	x.Status = status // logged and counted as what it means, not as 200
}
