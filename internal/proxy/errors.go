package proxy

import (
	"net/http"
	"strconv"
)

// WriteError answers the client with a JSON error the proxy generated
// itself. reason is safe to show a user; it is also logged with the exchange.
func WriteError(w http.ResponseWriter, x *Exchange, status int, reason string) {
	if x != nil {
		x.Reason = reason
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
