package demo

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The product page of demo/edge.yaml, as each BFF group's client gets it:
// the mobile app (X-Client: mobile) a few fields of each part, the web
// site every part, the product's fields at the top.
const (
	PagePath       = "/page/products/42"
	WebPagePath    = "/web" + PagePath
	MobilePage     = `{"product":{"name":"Product 42","price":42.99},"orders":{"count":0},"payment":{"methods":["card","paypal"]}}`
	MobilePagePart = `{"product":{"name":"Product 42","price":42.99},"orders":{"count":0}}` // without payments
	WebPage        = `{"id":"42","name":"Product 42","price":42.99,"orders":[],` +
		`"payment":{"amount":42.99,"installments":[{"monthly":14.33,"months":3}],"methods":["card","paypal"]}}`
)

// The trace context of the tour's traced page: traceparent
// 00-TourPageTraceID-TourPageParentID-01 (the W3C specification's other
// example).
const (
	TourPageTraceID  = "0af7651916cd43dd8448eb211c80319c"
	TourPageParentID = "b7ad6b7169203331"
)

// compositeSection shows a composite route in two BFF shapes: the product
// page of the mobile app and of the web site, each one request answered by
// three calls of the edge (catalog, orders, and payments, optional); the
// mobile group's routes in meshctl; the page while payments is frozen
// (200, Meshgate-Partial: payment), then whole again once it resumes; and,
// with the runner's trace receiver, one page's fan-out as a trace. It
// needs payments: it comes before payments is stopped for good, and
// leaves it running.
func compositeSection(env Env) Section {
	jsonType := map[string][]string{"Content-Type": {"application/json"}}
	mobileHeader := [2]string{"X-Client", "mobile"}
	mobile := Example{Method: "GET", Path: PagePath, Headers: [][2]string{mobileHeader},
		Expect: Expect{Status: 200, Header: jsonType, Body: []string{MobilePage}}}
	pid := shellQuote(env.PaymentsPID)
	steps := []Step{
		httpStep("The mobile app (X-Client: mobile selects the group mobile): one request; the edge calls catalog and orders at once, "+
			"payments once catalog has answered (the call reads the product's price), and answers one small JSON page", env, mobile),
		httpStep("The web site (under /web, the group web): the same three calls, every part in full, the product's fields at the top", env, Example{
			Method: "GET", Path: WebPagePath,
			Expect: Expect{Status: 200, Header: jsonType, Body: []string{WebPage}},
		}),
		shellStep("The mobile group's routes, and what serves each", env.Meshctl+" routes list --bff mobile",
			"mobile-product-page  aggregate product, orders, payment  mobile: the mobile group's route only", 0,
			bffCheck("mobile", "mobile-product-page", "aggregate product, orders, payment")),
		shellStep("Freeze payments (as for the breaker): the page's payment call is optional, and waits 300 ms at most",
			"kill -STOP $(cat "+pid+")", "", 0, nil),
		httpStep("The page without payments: still 200 after 300 ms, without \"payment\"; Meshgate-Partial names the missing part, "+
			"and a partial page is not to be cached", env, Example{
			Method: "GET", Path: PagePath, Headers: [][2]string{mobileHeader},
			Expect: Expect{Status: 200, Body: []string{MobilePagePart}, NoBody: []string{`"payment"`},
				Header: map[string][]string{"Meshgate-Partial": {"payment"}, "Cache-Control": {"no-store"}, "Content-Type": {"application/json"}}},
		}),
		shellStep("Resume payments", "kill -CONT $(cat "+pid+")", "", 0, nil),
		within(httpStep("The page is whole again", env, mobile), 2*time.Second),
	}
	if env.Traces != "" {
		steps = append(steps, pageTraceSteps(env, mobileHeader)...)
	}
	return Section{
		Title: "Composites and BFF: one request, several backend calls made by the edge, one JSON page shaped for each kind of client " +
			"(routes[].aggregate and bff in docs/config.md)",
		Steps: steps,
	}
}

// pageTraceSteps send a mobile page with a trace context and read its
// trace back: the fan-out.
func pageTraceSteps(env Env, mobileHeader [2]string) []Step {
	page := Example{Method: "GET", Path: PagePath,
		Headers: [][2]string{mobileHeader, {"traceparent", "00-" + TourPageTraceID + "-" + TourPageParentID + "-01"}},
		Expect:  Expect{Status: 200, Body: []string{MobilePage}},
	}
	show := traceStep(env, "Its trace: the fan-out", TourPageTraceID,
		"10 spans: the edge's server span GET mobile-product-page (its parent "+TourPageParentID+", the curl's) with three client spans "+
			"under it, GET catalog and GET orders at once and GET payments after catalog's answer; under each, its sidecar's inbound span (caller "+SpiffeID("edge")+
			") and the sidecar's call to its app; all 200",
		pageTraceCheck)
	return []Step{
		httpStep("The same page with a W3C trace context", env, page),
		within(show, 8*time.Second),
	}
}

// bffCheck wants `meshctl routes list --bff group` to list one route,
// name, served by servedBy, in the group.
func bffCheck(group, name, servedBy string) func(string) error {
	return func(out string) error {
		rows := table(out)
		if len(rows) != 2 || strings.Join(rows[0], " ") != "NAME SERVED BY BFF ORIGIN VERSION" {
			return fmt.Errorf("want a header NAME SERVED BY BFF ORIGIN VERSION and one route")
		}
		r := rows[1]
		if len(r) < 5 {
			return fmt.Errorf("route line %q is short", strings.Join(r, " "))
		}
		served := strings.Join(r[1:len(r)-3], " ")
		if r[0] != name || served != servedBy || r[len(r)-3] != group {
			return fmt.Errorf("route %s served by %q in group %s; want %s served by %q in group %s",
				r[0], served, r[len(r)-3], name, servedBy, group)
		}
		return nil
	}
}

// treeLine is one line of a trace tree (TraceTree): its depth and the
// span it shows.
type treeLine struct {
	depth  int
	who    string // SERVICE (NODE)
	kind   string
	name   string
	status string
	rest   []string // caller …, parent …, ERROR …, event …
}

// caller is the line's caller SPIFFE ID ("" for none).
func (l treeLine) caller() string {
	for _, x := range l.rest {
		if c, ok := strings.CutPrefix(x, "caller "); ok {
			return c
		}
	}
	return ""
}

// parseTree reads a trace tree: its first line, then one treeLine a span.
func parseTree(tree string) (header string, lines []treeLine, err error) {
	header, rest, _ := strings.Cut(tree, "\n")
	n := 0
	for row := range strings.Lines(rest) {
		n++
		row = strings.TrimRight(row, "\n")
		body := strings.TrimLeft(row, "│├└─ ")
		f := strings.Split(body, "  ") // SERVICE (NODE)  KIND  NAME  STATUS  DURATION ms  [caller ID]  [parent ID (…)]
		if len(f) < 5 {
			return header, nil, fmt.Errorf("line %d: %q has %d fields, want at least 5", n, body, len(f))
		}
		lines = append(lines, treeLine{depth: len([]rune(row[:len(row)-len(body)])) / 3,
			who: f[0], kind: f[1], name: f[2], status: f[3], rest: f[5:]})
	}
	return header, lines, nil
}

// pageTraceCheck wants the tree of the tour's traced page: the edge's
// server span, whose parent is the client's span, and under it one client
// span per call (payments' after catalog's: it waits for catalog's
// answer), each with the called sidecar's inbound span and its call to
// its app; every span 200.
func pageTraceCheck(tree string) error {
	header, lines, err := parseTree(tree)
	if err != nil {
		return err
	}
	if want := fmt.Sprintf("trace %s: %d spans", TourPageTraceID, 10); header != want {
		return fmt.Errorf("first line %q, want %q", header, want)
	}
	if len(lines) != 10 {
		return fmt.Errorf("%d lines of spans, want 10", len(lines))
	}
	var errs []string
	for i, l := range lines {
		if l.status != "200" {
			errs = append(errs, fmt.Sprintf("line %d: status %s, want 200", i+1, l.status))
		}
	}
	root := lines[0]
	if root.depth != 0 || root.who != "meshgate-edge (edge)" || root.kind != "server" || root.name != "GET mobile-product-page" {
		errs = append(errs, fmt.Sprintf("line 1: %s %s span %q at depth %d, want the edge's server span GET mobile-product-page at the root",
			root.who, root.kind, root.name, root.depth))
	}
	if !slices.Contains(root.rest, "parent "+TourPageParentID+" (not here: the caller's, or not exported yet)") {
		errs = append(errs, "the root's parent is not "+TourPageParentID+", the curl's span")
	}
	// Three calls of three lines each, in the order they started.
	nodes := map[string]string{"catalog": "catalog-v1-*", "orders": "orders-v*", "payments": "payments-v1"}
	var order []string
	for i := 1; i+2 < len(lines); i += 3 {
		call, in, app := lines[i], lines[i+1], lines[i+2]
		upstream, _ := strings.CutPrefix(call.name, "GET ")
		node, ok := nodes[upstream]
		if !ok || call.depth != 1 || call.who != "meshgate-edge (edge)" || call.kind != "client" || slices.Contains(order, upstream) {
			errs = append(errs, fmt.Sprintf("line %d: %s %s span %q at depth %d, want the edge's client span of another call "+
				"(GET catalog, GET orders or GET payments) under the root", i+1, call.who, call.kind, call.name, call.depth))
			continue
		}
		order = append(order, upstream)
		who := "meshgate-sidecar (" + node + ")"
		if in.depth != 2 || !match(who, in.who) || in.kind != "server" || in.name != "GET inbound" || in.caller() != SpiffeID("edge") {
			errs = append(errs, fmt.Sprintf("line %d: %s %s span %q at depth %d, caller %q; want %s's inbound server span GET inbound "+
				"under GET %s, caller %s", i+2, in.who, in.kind, in.name, in.depth, in.caller(), who, upstream, SpiffeID("edge")))
		}
		if app.depth != 3 || app.who != in.who || app.kind != "client" || app.name != "GET local-app" {
			errs = append(errs, fmt.Sprintf("line %d: %s %s span %q at depth %d; want the same sidecar's client span GET local-app under it",
				i+3, app.who, app.kind, app.name, app.depth))
		}
	}
	if c, p := slices.Index(order, "catalog"), slices.Index(order, "payments"); c >= 0 && p >= 0 && p < c {
		errs = append(errs, "payments was called before catalog, whose answer its call reads")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}
