// Command demosvc is a small HTTP JSON service for the meshgate demo.
//
//	demosvc --name catalog --version v1 --listen 127.0.0.1:18101
//
// GET /healthz answers 200. Every other request is answered with a JSON
// envelope that shows which instance served it and what it received:
//
//	{"service":"catalog","version":"v1","instance":"127.0.0.1:18101",
//	 "method":"GET","path":"/products/42","headers":{"X-Forwarded-For":"127.0.0.1"}, …}
//
// The catalog service adds "product" on GET /products/{id}; the orders
// service keeps orders in memory behind GET /orders and POST /orders. Any
// other name answers the envelope alone. SIGTERM or SIGINT stops it
// gracefully.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
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
	name := fs.String("name", "catalog", "service name: catalog, orders or any other (echo only)")
	version := fs.String("version", "v1", "service version, shown in every answer")
	listen := fs.String("listen", "127.0.0.1:18101", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	svc := newService(*name, *version, ln.Addr().String())
	log = log.With("service", *name, "version", *version, "instance", svc.instance)
	srv := &http.Server{
		Handler:           logRequests(log, svc.handler()),
		ReadHeaderTimeout: 5 * time.Second,
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("stopping")
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
var echoedHeaders = []string{"X-Request-Id", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Api-Version"}

// service is one demo service instance.
type service struct {
	name, version, instance string

	mu     sync.Mutex
	orders []map[string]any
}

func newService(name, version, instance string) *service {
	return &service{name: name, version: version, instance: instance}
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

func (s *service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	switch s.name {
	case "catalog":
		mux.HandleFunc("GET /products/{id}", s.getProduct)
	case "orders":
		mux.HandleFunc("GET /orders", s.listOrders)
		mux.HandleFunc("POST /orders", s.createOrder)
		mux.HandleFunc("/orders", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "GET, POST")
			s.reply(w, r, http.StatusMethodNotAllowed, map[string]any{"error": "method not allowed"})
		})
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

func (s *service) getProduct(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p := product{ID: id, Name: "Product " + id, Price: 9.99}
	if n, err := strconv.Atoi(id); err == nil {
		p.Price = float64(n%50) + 0.99
	}
	if s.version != "v1" {
		stock := 12
		p.Stock = &stock
	}
	s.reply(w, r, http.StatusOK, map[string]any{"product": p})
}

func (s *service) listOrders(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	list := append([]map[string]any{}, s.orders...)
	s.mu.Unlock()
	s.reply(w, r, http.StatusOK, map[string]any{"orders": list})
}

// maxOrderBytes bounds a posted order.
const maxOrderBytes = 64 << 10

func (s *service) createOrder(w http.ResponseWriter, r *http.Request) {
	var order map[string]any
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxOrderBytes))
	if err := dec.Decode(&order); err != nil || order == nil {
		s.reply(w, r, http.StatusBadRequest, map[string]any{"error": "the body must be a JSON object"})
		return
	}
	s.mu.Lock()
	order["id"] = fmt.Sprintf("ord-%d", len(s.orders)+1)
	s.orders = append(s.orders, order)
	s.mu.Unlock()
	w.Header().Set("Location", "/orders/"+order["id"].(string))
	s.reply(w, r, http.StatusCreated, map[string]any{"order": order})
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
			"request_id", r.Header.Get("X-Request-Id"), "duration", time.Since(start))
	})
}
