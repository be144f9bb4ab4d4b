package aggregate

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/transform"
)

// respond writes the combined response of a request whose required calls
// all answered.
func (s *stage) respond(w http.ResponseWriter, r *http.Request, x *exchange.Exchange, rn *run) {
	var partial []string
	t := &rn.tree
	t.reset()
	for i, c := range s.calls {
		res := &rn.res[i]
		if res.state != stateOK {
			partial = append(partial, c.name)
			if s.missingNull && c.into != nil {
				t.place(c.into, null)
			}
			continue
		}
		if c.into == nil {
			t.merge(0, res.doc)
		} else {
			t.place(c.into, res.doc)
		}
	}
	out, ok := t.appendTo(rn.out[:0], s.maxBody)
	rn.out = out
	if !ok {
		exchange.WriteReason(w, x, exchange.AggregateTooLarge, s.tooLarge)
		return
	}
	contentType := typeJSON
	if s.transform != nil {
		doc, err := s.transform.Reshape(r.Context(), out, rn.rd.vars)
		var ct string
		if err == nil {
			out, ct, err = s.transform.Write(doc, r.Header["Accept"])
		}
		if err != nil {
			var be *transform.BodyError
			if errors.As(err, &be) && be.TooLarge {
				exchange.WriteReason(w, x, exchange.AggregateTooLarge, s.tooLarge)
				return
			}
			s.log.Warn("aggregate transform failed", "route", s.route, "reason", err.Error(), "request_id", requestID(x))
			exchange.Write(w, x, exchange.TransformFailed)
			return
		}
		contentType = []string{ct}
	}
	h := w.Header()
	var partsBuf [config.MaxAggregateCalls]http.Header
	parts := partsBuf[:0]
	for i, c := range s.calls {
		res := &rn.res[i]
		if res.state != stateOK {
			continue
		}
		parts = append(parts, res.header)
		for _, name := range c.respHdrs {
			if vs := res.header[name]; len(vs) > 0 && !framing(name) {
				h[name] = append(h[name], vs...)
			}
		}
	}
	if len(partial) > 0 {
		h["Meshgate-Partial"] = []string{joinNames(partial)}
		h["Cache-Control"] = noStore
		s.count.Partial(s.route)
	} else if cc := combineCacheControl(parts); cc != "" {
		h["Cache-Control"] = []string{cc}
	}
	if s.varyAccept {
		h["Vary"] = append(h["Vary"], accept...)
	}
	h["Content-Type"] = contentType
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(out)
	}
}

// framing: headers of a call's response that describe that response, not
// the combined one (never copied).
func framing(name string) bool {
	switch name {
	case "Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding", "Connection",
		"Cache-Control", "Etag", "Last-Modified", "Content-Range", "Trailer":
		return true
	}
	return false
}

func joinNames(names []string) string {
	n := 0
	for _, s := range names {
		n += len(s) + 2
	}
	b := make([]byte, 0, n)
	for i, s := range names {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, s...)
	}
	return string(b)
}

// cacheControl is what one response's Cache-Control says.
type cacheControl struct {
	noStore, noCache, private, public, mustRevalidate bool
	maxAge, sMaxAge                                   int64 // -1: absent
}

func parseCacheControl(values []string) cacheControl {
	cc := cacheControl{maxAge: -1, sMaxAge: -1}
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(d), "=")
			arg = strings.Trim(strings.TrimSpace(arg), `"`)
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store":
				cc.noStore = true
			case "no-cache":
				cc.noCache = true
			case "private":
				cc.private = true
			case "public":
				cc.public = true
			case "must-revalidate", "proxy-revalidate":
				cc.mustRevalidate = true
			case "max-age":
				cc.maxAge = seconds(arg, cc.maxAge)
			case "s-maxage":
				cc.sMaxAge = seconds(arg, cc.sMaxAge)
			}
		}
	}
	return cc
}

// seconds reads a delta-seconds argument; a malformed one is 0 (stale),
// and of several the least counts.
func seconds(arg string, prev int64) int64 {
	n, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || n < 0 {
		n = 0
	}
	if prev >= 0 && prev < n {
		return prev
	}
	return n
}

// combineCacheControl is the Cache-Control of a response made of parts
// (their headers): "" unless every part has one; else the most
// restrictive of them. A part without max-age counts as max-age=0 once
// another has one; s-maxage falls back to max-age.
func combineCacheControl(parts []http.Header) string {
	if len(parts) == 0 || len(parts) > config.MaxAggregateCalls {
		return ""
	}
	for _, h := range parts {
		if len(h["Cache-Control"]) == 0 {
			return ""
		}
	}
	all := cacheControl{public: true, maxAge: -1, sMaxAge: -1}
	anyMaxAge, anySMaxAge := false, false
	var ccBuf [config.MaxAggregateCalls]cacheControl
	ccs := ccBuf[:len(parts)]
	for i, h := range parts {
		cc := parseCacheControl(h["Cache-Control"])
		ccs[i] = cc
		all.noStore = all.noStore || cc.noStore
		all.noCache = all.noCache || cc.noCache
		all.private = all.private || cc.private
		all.public = all.public && cc.public
		all.mustRevalidate = all.mustRevalidate || cc.mustRevalidate
		anyMaxAge = anyMaxAge || cc.maxAge >= 0
		anySMaxAge = anySMaxAge || cc.sMaxAge >= 0
	}
	if all.noStore {
		return "no-store"
	}
	for _, cc := range ccs {
		if anyMaxAge {
			all.maxAge = minAge(all.maxAge, max(cc.maxAge, 0))
		}
		if anySMaxAge {
			s := cc.sMaxAge
			if s < 0 {
				s = max(cc.maxAge, 0)
			}
			all.sMaxAge = minAge(all.sMaxAge, s)
		}
	}
	var b []byte
	add := func(d string) {
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, d...)
	}
	switch {
	case all.private:
		add("private")
	case all.public:
		add("public")
	}
	if all.noCache {
		add("no-cache")
	}
	if all.mustRevalidate {
		add("must-revalidate")
	}
	if all.maxAge >= 0 {
		add("max-age=" + strconv.FormatInt(all.maxAge, 10))
	}
	if all.sMaxAge >= 0 && !all.private {
		add("s-maxage=" + strconv.FormatInt(all.sMaxAge, 10))
	}
	return string(b)
}

func minAge(a, b int64) int64 {
	if a < 0 || b < a {
		return b
	}
	return a
}
