package demo

import (
	"fmt"
	"testing"
	"time"
)

// pageTrace is the trace of the tour's traced page: the edge's server
// span, and under it a client span per call (catalog, orders, then
// payments), each with the called sidecar's two spans.
func pageTrace() []*Span {
	t0 := time.Now()
	n := 0
	span := func(parent string, ms int, service, node, kind, name, caller string) *Span {
		n++
		s := &Span{TraceID: TourPageTraceID, SpanID: fmt.Sprintf("%016x", n), ParentSpanID: parent, Service: service, Node: node,
			Kind: kind, Name: name, Status: 200, Start: t0.Add(time.Duration(ms) * time.Millisecond), DurationMS: 1}
		if caller != "" {
			s.Attributes = map[string]any{"meshgate.caller": caller}
		}
		return s
	}
	root := span(TourPageParentID, 0, "meshgate-edge", "edge", "server", "GET mobile-product-page", "")
	spans := []*Span{root}
	for i, c := range []struct{ upstream, node string }{{"catalog", "catalog-v1-2"}, {"orders", "orders-v1"}, {"payments", "payments-v1"}} {
		call := span(root.SpanID, 1+i, "meshgate-edge", "edge", "client", "GET "+c.upstream, "")
		in := span(call.SpanID, 1+i, "meshgate-sidecar", c.node, "server", "GET inbound", SpiffeID("edge"))
		app := span(in.SpanID, 1+i, "meshgate-sidecar", c.node, "client", "GET local-app", "")
		spans = append(spans, call, in, app)
	}
	return spans
}

func TestPageTraceCheck(t *testing.T) {
	if err := pageTraceCheck(TraceTree(TourPageTraceID, pageTrace())); err != nil {
		t.Errorf("the tour's page: %v\n%s", err, TraceTree(TourPageTraceID, pageTrace()))
	}
	// Orders may start after payments (only payments waits, for catalog).
	late := pageTrace()
	late[4].Start, late[5].Start, late[6].Start = late[9].Start.Add(time.Millisecond), late[9].Start.Add(time.Millisecond), late[9].Start.Add(time.Millisecond)
	if err := pageTraceCheck(TraceTree(TourPageTraceID, late)); err != nil {
		t.Errorf("orders called last: %v\n%s", err, TraceTree(TourPageTraceID, late))
	}
	for name, spoil := range map[string]func([]*Span) []*Span{
		"a span missing":           func(s []*Span) []*Span { return append(s[:5], s[6:]...) },
		"payments' spans late":     func(s []*Span) []*Span { return s[:8] },
		"payments before catalog":  func(s []*Span) []*Span { s[7].Start = s[0].Start; return s },
		"a call under a call":      func(s []*Span) []*Span { s[4].ParentSpanID = s[1].SpanID; return s },
		"a call twice":             func(s []*Span) []*Span { s[7].Name = "GET catalog"; return s },
		"another caller":           func(s []*Span) []*Span { s[8].Attributes["meshgate.caller"] = SpiffeID("orders"); return s },
		"another client parent":    func(s []*Span) []*Span { s[0].ParentSpanID = "ffffffffffffffff"; return s },
		"another route":            func(s []*Span) []*Span { s[0].Name = "GET web-product-page"; return s },
		"catalog v2":               func(s []*Span) []*Span { s[2].Node, s[3].Node = "catalog-v2", "catalog-v2"; return s },
		"the app on another node":  func(s []*Span) []*Span { s[6].Node = "orders-v2"; return s },
		"a 504":                    func(s []*Span) []*Span { s[7].Status = 504; return s },
		"two pages":                func(s []*Span) []*Span { return append(s, pageTrace()...) },
		"payments' inbound skewed": func(s []*Span) []*Span { s[8].Name = "GET outbound-payments"; return s },
	} {
		if err := pageTraceCheck(TraceTree(TourPageTraceID, spoil(pageTrace()))); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestBFFCheck(t *testing.T) {
	check := bffCheck("mobile", "mobile-product-page", "aggregate product, orders, payment")
	header := "NAME                 SERVED BY                           BFF     ORIGIN  VERSION\n"
	good := header + "mobile-product-page  aggregate product, orders, payment  mobile  file    -\n"
	if err := check(good); err != nil {
		t.Errorf("the mobile group's route: %v", err)
	}
	for name, out := range map[string]string{
		"no route":        header,
		"two routes":      good + "web-product-page  aggregate product, orders, payment  web  file    -\n",
		"another group":   header + "mobile-product-page  aggregate product, orders, payment  web  file    -\n",
		"other calls":     header + "mobile-product-page  aggregate product, orders  mobile  file    -\n",
		"an upstream":     header + "mobile-product-page  catalog  mobile  file    -\n",
		"another name":    header + "product-page  aggregate product, orders, payment  mobile  file    -\n",
		"no header":       "mobile-product-page  aggregate product, orders, payment  mobile  file    -\n",
		"an error, alone": "meshctl: no route of bff group \"mobile\" on this node\n",
	} {
		if err := check(out); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
