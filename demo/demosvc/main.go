// Command demosvc is a small HTTP JSON service for the meshgate demo.
//
//	demosvc --name catalog --version v1 --listen 127.0.0.1:18101
//	demosvc --name orders --version v1 --listen 127.0.0.1:18201 --outbound http://127.0.0.1:18241
//	demosvc --name payments --version v1 --listen 127.0.0.1:18301
//
// GET /healthz answers 200. Every other request is answered with a JSON
// envelope that shows which instance served it and what it received:
//
//	{"service":"catalog","version":"v1","instance":"127.0.0.1:18101",
//	 "method":"GET","path":"/products/42",
//	 "headers":{"X-Meshgate-Caller":"spiffe://demo.meshgate/edge", …}, …}
//
// X-Meshgate-Caller is set by the service's sidecar: the SPIFFE ID of whoever
// called over mTLS. X-Meshgate-Consumer and X-Meshgate-Tier are the consumer
// an edge authenticated and its tier, which the sidecar lets through from
// the edge only (inbound.consumers.trusted).
//
// What each name adds to the envelope:
//
//   - catalog: "product" on GET /products/{id} (v2 adds a stock count);
//     GET /xml/products/{id} answers the same product as XML alone, as an
//     older catalog API would: <product id="42"><name>Product 42</name>
//     <price>42.99</price><tag>demo</tag></product> (no envelope; v2 adds
//     <stock>). The demo's edge serves it to JSON clients as JSON.
//   - orders: orders kept in memory behind GET /orders and POST /orders;
//     GET /orders?product=ID lists only the orders whose "product" is ID.
//     With --outbound (the sidecar's outbound listener), POST /orders charges
//     the order through the mesh first: POST http://payments/charge, sent to
//     the outbound address with Host: payments, carrying on X-Request-Id and
//     the trace context (traceparent, tracestate, baggage). A failed charge
//     is answered 502 and the order is not kept. POST /orders/quote prices
//     an order in today's format without placing it (nothing charged, nothing
//     kept): {"order": {"customer": {"id": 7}, "items": [{"sku": "A1",
//     "qty": 2}]}}, and nothing else (an unknown field, a legacy client's
//     "customer_id" say, is answered 400). Its answer shows the body as
//     received ("received") and a "quote" with an "internal_cost" that the
//     demo's edge hides from the legacy clients it maps to this format.
//   - payments: POST /charge records a payment (and who asked for it: the
//     caller's SPIFFE ID); GET /payments/{id} shows one. GET
//     /payments/options?amount=N says how an amount can be paid:
//     {"options": {"amount": N, "methods": ["card", "paypal"],
//     "installments": [{"months": 3, "monthly": N/3}]}}. It also serves gRPC
//     on the same port (HTTP/2 without TLS, as its sidecar speaks to it):
//     the standard health service grpc.health.v1.Health and server
//     reflection, so `grpcurl -plaintext` works without .proto files.
//
// Any other name answers the envelope alone. SIGTERM or SIGINT stops it
// gracefully.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(os.Args[1:], log); err != nil {
		log.Error("demosvc failed", "err", err)
		os.Exit(1)
	}
}

func run(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("demosvc", flag.ContinueOnError)
	name := fs.String("name", "catalog", "service name: catalog, orders, payments or any other (echo only)")
	version := fs.String("version", "v1", "service version, shown in every answer")
	listen := fs.String("listen", "127.0.0.1:18101", "address to listen on")
	outbound := fs.String("outbound", "", "orders: `URL` of the sidecar's outbound listener, through which POST /orders charges the order with payments (empty: no charge)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *outbound != "" {
		u, err := url.Parse(*outbound)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("--outbound %q: want http://HOST:PORT, the sidecar's outbound listener", *outbound)
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	svc := newService(*name, *version, ln.Addr().String())
	svc.outbound = strings.TrimRight(*outbound, "/")
	log = log.With("service", *name, "version", *version, "instance", svc.instance)
	handler := logRequests(log, svc.handler())
	var stopGRPC func()
	if *name == "payments" {
		handler, stopGRPC = withGRPC(log, handler)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		// HTTP/2 without TLS for gRPC (the sidecar's h2c), HTTP/1.1 for the rest.
		Protocols: new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "outbound", svc.outbound)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("stopping")
	if stopGRPC != nil {
		stopGRPC()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// echoedHeaders are the request headers shown in every answer.
var echoedHeaders = []string{"X-Meshgate-Caller", "X-Meshgate-Consumer", "X-Meshgate-Tier", "X-Request-Id", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Api-Version"}

// propagated are the request headers a call to another service carries on:
// the request id, the W3C trace context and baggage. The sidecar hands the
// app a traceparent naming its span; passing it on is what continues the
// trace through the app (as OpenTelemetry instrumentation would).
var propagated = []string{"X-Request-Id", "Traceparent", "Tracestate", "Baggage"}

// service is one demo service instance.
type service struct {
	name, version, instance string
	// outbound is the sidecar's outbound listener (orders), "" for none.
	outbound string
	client   *http.Client

	mu       sync.Mutex
	orders   []map[string]any
	nextID   int // orders and payments
	payments map[string]map[string]any
}

func newService(name, version, instance string) *service {
	return &service{name: name, version: version, instance: instance,
		payments: map[string]map[string]any{},
		// The sidecar bounds the call to payments too; this is the app's own bound.
		client: &http.Client{Timeout: 3 * time.Second}}
}

// envelope is the part of every answer that says who served what.
type envelope struct {
	Service  string            `json:"service"`
	Version  string            `json:"version"`
	Instance string            `json:"instance"`
	Method   string            `json:"method"`
	Path     string            `json:"path"`
	Headers  map[string]string `json:"headers"`
}

// product is the catalog's answer to GET /products/{id}.
type product struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
	// Stock appears in v2 only: the visible difference between versions.
	Stock *int `json:"stock,omitempty"`
}

// unitPrice is what one item of an order costs.
const unitPrice = 9.99

func (s *service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	switch s.name {
	case "catalog":
		mux.HandleFunc("GET /products/{id}", s.getProduct)
		mux.HandleFunc("GET /xml/products/{id}", s.getProductXML)
	case "orders":
		mux.HandleFunc("GET /orders", s.listOrders)
		mux.HandleFunc("POST /orders", s.createOrder)
		mux.HandleFunc("/orders", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "GET, POST")
			s.reply(w, r, http.StatusMethodNotAllowed, map[string]any{"error": "method not allowed"})
		})
		mux.HandleFunc("POST /orders/quote", s.quote)
		mux.HandleFunc("/orders/quote", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "POST")
			s.reply(w, r, http.StatusMethodNotAllowed, map[string]any{"error": "method not allowed"})
		})
	case "payments":
		mux.HandleFunc("POST /charge", s.charge)
		mux.HandleFunc("GET /payments/{id}", s.getPayment)
		mux.HandleFunc("GET /payments/options", s.paymentOptions)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.reply(w, r, http.StatusOK, nil)
	})
	return mux
}

// reply writes the envelope plus the extra fields.
func (s *service) reply(w http.ResponseWriter, r *http.Request, status int, extra map[string]any) {
	env := envelope{
		Service: s.name, Version: s.version, Instance: s.instance,
		Method: r.Method, Path: r.URL.Path, Headers: map[string]string{},
	}
	for _, h := range echoedHeaders {
		if v := r.Header.Get(h); v != "" {
			env.Headers[h] = v
		}
	}
	// Envelope fields first, then the extra ones; json sorts map keys, so
	// build the object by hand to keep the envelope readable at the top.
	body, _ := json.Marshal(env)
	if len(extra) > 0 {
		more, _ := json.Marshal(extra)
		body = append(body[:len(body)-1], ',')
		body = append(body, more[1:]...)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

func (s *service) product(id string) product {
	p := product{ID: id, Name: "Product " + id, Price: 9.99}
	if n, err := strconv.Atoi(id); err == nil {
		p.Price = float64(n%50) + 0.99
	}
	if s.version != "v1" {
		stock := 12
		p.Stock = &stock
	}
	return p
}

func (s *service) getProduct(w http.ResponseWriter, r *http.Request) {
	s.reply(w, r, http.StatusOK, map[string]any{"product": s.product(r.PathValue("id"))})
}

// xmlProduct is the catalog's product as its XML API writes it.
type xmlProduct struct {
	XMLName xml.Name `xml:"product"`
	ID      string   `xml:"id,attr"`
	Name    string   `xml:"name"`
	Price   string   `xml:"price"`
	Stock   *int     `xml:"stock,omitempty"`
	Tags    []string `xml:"tag"`
}

// getProductXML answers GET /xml/products/{id}: the product alone, as XML.
func (s *service) getProductXML(w http.ResponseWriter, r *http.Request) {
	p := s.product(r.PathValue("id"))
	body, err := xml.Marshal(xmlProduct{ID: p.ID, Name: p.Name, Price: strconv.FormatFloat(p.Price, 'f', 2, 64), Stock: p.Stock, Tags: []string{"demo"}})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Write(append(body, '\n'))
}

// listOrders answers GET /orders: every order, or with ?product=ID those
// whose "product" is ID.
func (s *service) listOrders(w http.ResponseWriter, r *http.Request) {
	product, filtered := r.URL.Query()["product"]
	list := []map[string]any{}
	s.mu.Lock()
	for _, o := range s.orders {
		if !filtered || slices.Contains(product, fmt.Sprint(o["product"])) {
			list = append(list, o)
		}
	}
	s.mu.Unlock()
	s.reply(w, r, http.StatusOK, map[string]any{"orders": list})
}

// maxBodyBytes bounds a posted order or charge.
const maxBodyBytes = 64 << 10

// decodeObject reads a JSON object body, answering 400 when it is not one.
func (s *service) decodeObject(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	var m map[string]any
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(&m); err != nil || m == nil {
		s.reply(w, r, http.StatusBadRequest, map[string]any{"error": "the body must be a JSON object"})
		return nil, false
	}
	return m, true
}

func (s *service) newID(prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return fmt.Sprintf("%s-%d", prefix, s.nextID)
}

func (s *service) createOrder(w http.ResponseWriter, r *http.Request) {
	order, ok := s.decodeObject(w, r)
	if !ok {
		return
	}
	id := s.newID("ord")
	order["id"] = id
	if s.outbound != "" {
		qty, _ := order["qty"].(float64)
		amount := math.Round(max(qty, 1)*unitPrice*100) / 100
		payment, err := s.chargeThroughMesh(r, id, amount)
		if err != nil {
			s.reply(w, r, http.StatusBadGateway, map[string]any{"error": "payments: " + err.Error()})
			return
		}
		order["payment"] = payment
	}
	s.mu.Lock()
	s.orders = append(s.orders, order)
	s.mu.Unlock()
	w.Header().Set("Location", "/orders/"+id)
	s.reply(w, r, http.StatusCreated, map[string]any{"order": order})
}

// chargeThroughMesh asks payments to charge the order: POST
// http://payments/charge, sent to the sidecar's outbound listener, which
// finds payments in the cluster and calls its sidecar over mTLS.
func (s *service) chargeThroughMesh(in *http.Request, order string, amount float64) (map[string]any, error) {
	body, _ := json.Marshal(map[string]any{"order": order, "amount": amount})
	req, err := http.NewRequestWithContext(in.Context(), http.MethodPost, s.outbound+"/charge", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Host = "payments" // the outbound listener routes by Host
	req.Header.Set("Content-Type", "application/json")
	for _, h := range propagated {
		if v := in.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
	}
	var answer struct {
		Payment map[string]any `json:"payment"`
	}
	if err := json.Unmarshal(data, &answer); err != nil || answer.Payment == nil {
		return nil, fmt.Errorf("unexpected answer: %.200s", data)
	}
	return answer.Payment, nil
}

// quoteRequest is the order format of POST /orders/quote: today's.
type quoteRequest struct {
	Order *struct {
		Customer *struct {
			ID json.Number `json:"id"`
		} `json:"customer"`
		Items []struct {
			SKU string      `json:"sku"`
			Qty json.Number `json:"qty"`
		} `json:"items"`
	} `json:"order"`
}

// quoteFormat is what a body of POST /orders/quote must look like.
const quoteFormat = `{"order":{"customer":{"id":N},"items":[{"sku":"…","qty":N}, …]}}`

// unitCost is what one item of an order costs orders: internal.
const unitCost = 6.15

// quote prices an order of today's format without placing it, and shows
// the body as it arrived.
func (s *service) quote(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		s.reply(w, r, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	bad := func(why string) {
		s.reply(w, r, http.StatusBadRequest, map[string]any{"error": "want " + quoteFormat + ": " + why})
	}
	var q quoteRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&q); err != nil {
		bad(err.Error())
		return
	}
	if q.Order == nil || q.Order.Customer == nil || q.Order.Customer.ID == "" {
		bad("no order.customer.id")
		return
	}
	if len(q.Order.Items) == 0 {
		bad("no order.items")
		return
	}
	units := int64(0)
	for _, it := range q.Order.Items {
		n, err := it.Qty.Int64()
		if it.SKU == "" || err != nil || n <= 0 {
			bad("each item needs a sku and a positive whole qty")
			return
		}
		units += n
	}
	var received bytes.Buffer
	if err := json.Compact(&received, raw); err != nil {
		bad("one JSON object, and nothing after it")
		return
	}
	s.reply(w, r, http.StatusOK, map[string]any{
		"received": json.RawMessage(received.Bytes()),
		"quote": map[string]any{
			"customer":      q.Order.Customer.ID,
			"units":         units,
			"total":         math.Round(float64(units)*unitPrice*100) / 100,
			"internal_cost": math.Round(float64(units)*unitCost*100) / 100,
		},
	})
}

// charge records a payment for {"order": ID, "amount": N}.
func (s *service) charge(w http.ResponseWriter, r *http.Request) {
	req, ok := s.decodeObject(w, r)
	if !ok {
		return
	}
	amount, ok := req["amount"].(float64)
	if !ok || amount <= 0 {
		s.reply(w, r, http.StatusBadRequest, map[string]any{"error": `"amount" must be a positive number`})
		return
	}
	p := map[string]any{"id": s.newID("pay"), "order": req["order"], "amount": amount, "status": "captured"}
	// Who asked, as the sidecar authenticated it (mTLS): the chain's proof.
	if caller := r.Header.Get("X-Meshgate-Caller"); caller != "" {
		p["caller"] = caller
	}
	s.mu.Lock()
	s.payments[p["id"].(string)] = p
	s.mu.Unlock()
	w.Header().Set("Location", "/payments/"+p["id"].(string))
	s.reply(w, r, http.StatusCreated, map[string]any{"payment": p})
}

func (s *service) getPayment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	p, ok := s.payments[id]
	s.mu.Unlock()
	if !ok {
		p = map[string]any{"id": id, "status": "unknown"}
	}
	s.reply(w, r, http.StatusOK, map[string]any{"payment": p})
}

// paymentOptions answers GET /payments/options?amount=N: how N can be paid.
func (s *service) paymentOptions(w http.ResponseWriter, r *http.Request) {
	amount, err := strconv.ParseFloat(r.URL.Query().Get("amount"), 64)
	if err != nil || !(amount > 0) || math.IsInf(amount, 0) {
		s.reply(w, r, http.StatusBadRequest, map[string]any{"error": `"amount" must be a positive number`})
		return
	}
	s.reply(w, r, http.StatusOK, map[string]any{"options": map[string]any{
		"amount":       amount,
		"methods":      []string{"card", "paypal"},
		"installments": []map[string]any{{"months": 3, "monthly": math.Round(amount/3*100) / 100}},
	}})
}

// withGRPC serves gRPC (HTTP/2 with Content-Type application/grpc…) on the
// same port as next: the standard health service, reporting SERVING for ""
// and "payments", and server reflection. stop marks the service NOT_SERVING
// and ends open streams.
func withGRPC(log *slog.Logger, next http.Handler) (h http.Handler, stop func()) {
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("payments", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			// grpc-go needs the server's own ResponseWriter (a Flusher with
			// trailers), so gRPC is logged here rather than by logRequests.
			start := time.Now()
			gs.ServeHTTP(w, r)
			log.Info("grpc", "method", r.URL.Path, "request_id", r.Header.Get("X-Request-Id"), "duration", time.Since(start))
			return
		}
		next.ServeHTTP(w, r)
	})
	return h, func() {
		hs.Shutdown()
		gs.Stop()
	}
}

// statusWriter remembers the status code for the log line.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if r.URL.Path == "/healthz" {
			return // health checks every second would drown the log
		}
		log.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"caller", r.Header.Get("X-Meshgate-Caller"), "request_id", r.Header.Get("X-Request-Id"), "duration", time.Since(start))
	})
}
