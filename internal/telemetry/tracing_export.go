package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// pipeline is the tracer's span processor: a bounded queue between the
// requests that end spans and the one goroutine that exports them.
//
// Ending a span never waits, and nothing waits on the collector but that
// goroutine. With the OTLP exporter, the ended span's encoding is copied
// under a short lock onto the end of the batch being filled (a request in
// OTLP's wire format, see tracing_otlp.go, which the OpenTelemetry client
// sends); the span and its buffer go
// back to their pools at once, still warm in the CPU's cache for the next
// request. A full batch (maxBatch spans, or maxBatchBytes of them) is
// handed to the exporter goroutine, which sends it; a batch that is not
// full is sent every interval. There are queue_size/maxBatch+1 batches:
// while the exporter is slow or stuck on a black-holed collector they fill
// up, and then spans are dropped. A batch's buffer is kept for the next
// one unless it grew beyond keepBatchCap. With any other exporter (tests)
// the spans themselves go through a channel of queue_size entries, in
// batches of maxBatch spans or maxBatchBytes of their encodings.
//
// Dropped spans are counted (meshgate_tracing_spans_dropped_total):
// reason="queue_full" when there was no room, "export_failed" for the
// spans of a failed or timed-out export, "rejected" for those the
// collector refused, "shutdown" for spans ended after Shutdown. Exports go
// one at a time, each bounded by the export timeout (the client's retries
// included: a batch not taken within it is export_failed), and by Shutdown's
// context: when it ends, the export under way is cancelled. Failures are
// logged at most once per errLogEvery, with the count of failures and
// spans lost since the last line.
//
// Why not the SDK's BatchSpanProcessor: it neither counts its drops where
// a metric can read them nor takes this package's spans.
type pipeline struct {
	t        *Tracer
	exp      SpanExporter // nil with enc
	enc      spanEncoder  // the OTLP exporter, which takes encoded spans
	kick     chan struct{}
	flushReq chan chan struct{}
	stop     chan struct{} // closed by shutdown
	done     chan struct{}
	closed   atomic.Bool
	// ctx is the context of every export, cancelled when shutdown's ends.
	ctx      context.Context
	cancel   context.CancelFunc
	maxBatch int
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger

	// With an encoder: the batch being filled, and the others.
	mu   sync.Mutex
	cur  *batch      // nil: none free
	full chan *batch // filled, waiting for the exporter
	free chan *batch // sent, to be filled again

	// Without one: the spans, and the batch the exporter gathers (and
	// the size of their encodings).
	queue      chan *Span
	spans      []*Span
	spansBytes int

	exported        prometheus.Counter
	droppedFull     prometheus.Counter
	droppedFailed   prometheus.Counter
	rejected        prometheus.Counter
	droppedShutdown prometheus.Counter
	exportErrors    prometheus.Counter

	// Owned by the exporter goroutine: the rate limit of its error log.
	lastLog   time.Time
	reported  bool // a failure was logged and no recovery since
	failures  int
	spansLost int
}

// batch is an export request being built from encoded spans.
type batch struct {
	b []byte
	n int // spans in it
}

// add appends the encoding of a span.
func (c *batch) add(span []byte) {
	c.b = append(c.b, span...)
	c.n++
}

// spanEncoder is an exporter whose requests are built from the encodings
// of ended spans: begin starts one in a buffer, to which the spans are
// appended, and send finishes and sends it. send must not keep buf once
// it returns, error or not (the OTLP exporter decodes it into messages of
// their own before the upload), so that it is reused for the next batch.
type spanEncoder interface {
	begin(buf []byte) []byte
	send(ctx context.Context, buf []byte) error
	Shutdown(ctx context.Context) error
}

// maxBatch bounds the spans of one export: OTLP receivers take a few MiB
// per request by default (4 MiB: gRPC's default limit on a message), and
// 512 of the proxy's spans are about 150 KiB. maxBatchBytes bounds it in
// bytes, for spans with long attribute values (up to
// MaxAttributeValueLength each): a batch is closed when its spans reach
// it.
const (
	maxBatch      = 512
	maxBatchBytes = 1 << 20
)

// keepBatchCap is the largest batch buffer kept for the next batch: those
// of ordinary spans are a few hundred KiB; one that grew to the byte
// bound, in a burst of large spans, is left to the GC, so that the memory
// returns when the burst is over.
const keepBatchCap = maxBatchBytes

// kickAt is how many spans queued on the channel path wake the exporter.
const kickAt = 64

// errLogEvery bounds the export error log to one line per period.
const errLogEvery = 30 * time.Second

// newPipeline starts the pipeline of exp, or, when exp is nil, of enc.
func newPipeline(t *Tracer, exp SpanExporter, enc spanEncoder, queue int, interval, timeout time.Duration, m *Metrics, log *slog.Logger) *pipeline {
	p := &pipeline{t: t, exp: exp, kick: make(chan struct{}, 1),
		flushReq: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
		maxBatch: min(maxBatch, queue), interval: interval, timeout: timeout, log: log}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if exp == nil {
		p.enc = enc
		n := queue/p.maxBatch + 1
		p.full, p.free = make(chan *batch, n), make(chan *batch, n)
		for range n {
			p.free <- &batch{}
		}
	} else {
		p.queue = make(chan *Span, queue)
	}
	exported := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshgate_tracing_spans_exported_total", Help: "Spans the trace collector accepted.",
	})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_tracing_spans_dropped_total",
		Help: "Sampled spans not exported, by reason: queue_full (the export queue was full), export_failed (the export failed or timed out), rejected (the collector refused them), shutdown (ended after the tracer was shut down).",
	}, []string{"reason"})
	errs := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshgate_tracing_export_errors_total", Help: "Span exports that failed or timed out.",
	})
	m.Registry.MustRegister(exported, dropped, errs)
	p.exported, p.exportErrors = exported, errs
	p.droppedFull = dropped.WithLabelValues("queue_full")
	p.droppedFailed = dropped.WithLabelValues("export_failed")
	p.rejected = dropped.WithLabelValues("rejected")
	p.droppedShutdown = dropped.WithLabelValues("shutdown")
	go p.run()
	return p
}

// enqueue takes a sampled span that ended. It never blocks (but for the
// copy of the span into its batch, under a lock held for that only).
func (p *pipeline) enqueue(s *Span) {
	if p.closed.Load() {
		p.droppedShutdown.Inc()
		p.t.put(s)
		return
	}
	if p.enc != nil {
		p.add(s.buf)
		p.t.put(s)
		return
	}
	select {
	case p.queue <- s:
		if len(p.queue) >= kickAt {
			p.wake()
		}
	default:
		p.droppedFull.Inc()
		p.t.put(s)
	}
}

// add appends an encoded span to the batch being filled.
func (p *pipeline) add(span []byte) {
	p.mu.Lock()
	if p.closed.Load() {
		// Shut down since enqueue looked: the last export may have taken
		// the batch already (it takes it under mu, after closed is set).
		p.mu.Unlock()
		p.droppedShutdown.Inc()
		return
	}
	c := p.cur
	if c == nil {
		select {
		case c = <-p.free:
			c.b = p.enc.begin(c.b)
			p.cur = c
		default:
			p.mu.Unlock()
			p.droppedFull.Inc()
			return
		}
	}
	c.add(span)
	if c.n < p.maxBatch && len(c.b) < maxBatchBytes {
		p.mu.Unlock()
		return
	}
	p.cur = nil
	p.mu.Unlock()
	p.full <- c // never blocks: there are as many slots as batches
	p.wake()
}

// wake kicks the exporter goroutine, without waiting.
func (p *pipeline) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *pipeline) run() {
	defer close(p.done)
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		select {
		case <-p.kick:
			p.export(p.ctx, false)
		case <-tick.C:
			p.export(p.ctx, true)
		case ch := <-p.flushReq:
			p.export(p.ctx, true)
			close(ch)
		case <-p.stop:
			p.export(p.ctx, true)
			if p.enc == nil {
				// Spans queued after the last export (enqueue raced with
				// shutdown).
				for {
					select {
					case s := <-p.queue:
						p.droppedShutdown.Inc()
						p.t.put(s)
						continue
					default:
					}
					break
				}
			}
			return
		}
	}
}

// export sends what is ready: full batches, and with all, the rest too.
func (p *pipeline) export(ctx context.Context, all bool) {
	if p.enc == nil {
		p.exportSpans(ctx, all)
		return
	}
	for {
		select {
		case c := <-p.full:
			p.sendBatch(ctx, c)
			continue
		default:
		}
		break
	}
	if !all {
		return
	}
	p.mu.Lock()
	c := p.cur
	p.cur = nil
	p.mu.Unlock()
	if c != nil {
		p.sendBatch(ctx, c)
	}
}

func (p *pipeline) sendBatch(parent context.Context, c *batch) {
	ctx, cancel := context.WithTimeout(parent, p.timeout)
	err := p.enc.send(ctx, c.b)
	cancel()
	if cap(c.b) > keepBatchCap {
		c.b = nil // too large to keep
	}
	n := c.n
	c.n = 0
	p.free <- c
	p.result(err, n)
}

// exportSpans takes queued spans into batches and exports them.
func (p *pipeline) exportSpans(ctx context.Context, all bool) {
	for {
		select {
		case s := <-p.queue:
			p.spans = append(p.spans, s)
			p.spansBytes += len(s.buf)
			if len(p.spans) >= p.maxBatch || p.spansBytes >= maxBatchBytes {
				p.sendSpans(ctx)
			}
			continue
		default:
		}
		break
	}
	if all {
		p.sendSpans(ctx)
	}
}

func (p *pipeline) sendSpans(parent context.Context) {
	n := len(p.spans)
	if n == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(parent, p.timeout)
	err := p.exp.ExportSpans(ctx, p.spans)
	cancel()
	for _, s := range p.spans {
		p.t.put(s)
	}
	clear(p.spans)
	p.spans, p.spansBytes = p.spans[:0], 0
	p.result(err, n)
}

// result counts the outcome of an export of n spans.
func (p *pipeline) result(err error, n int) {
	var partial *PartialSuccessError
	switch {
	case err == nil:
		p.exported.Add(float64(n))
		p.recovered()
	case errors.As(err, &partial):
		rejected := min(int(partial.Rejected), n)
		p.exported.Add(float64(n - rejected))
		p.rejected.Add(float64(rejected))
		p.failed(err, rejected)
	default:
		p.exportErrors.Inc()
		p.droppedFailed.Add(float64(n))
		p.failed(err, n)
	}
}

// failed logs an export failure, at most once per errLogEvery.
func (p *pipeline) failed(err error, lost int) {
	p.failures++
	p.spansLost += lost
	if now := time.Now(); p.lastLog.IsZero() || now.Sub(p.lastLog) >= errLogEvery {
		p.log.Warn("tracing: span export failed; spans are dropped until the collector takes them",
			"err", err, "failures", p.failures, "spans_lost", p.spansLost, "next_report_after", errLogEvery.String())
		p.lastLog, p.reported, p.failures, p.spansLost = now, true, 0, 0
	}
}

// recovered logs, once and within the same rate limit, that exports work
// again after a logged failure.
func (p *pipeline) recovered() {
	if !p.reported {
		return
	}
	if now := time.Now(); now.Sub(p.lastLog) >= errLogEvery {
		p.log.Info("tracing: span export recovered", "failures", p.failures, "spans_lost", p.spansLost)
		p.lastLog, p.reported, p.failures, p.spansLost = now, false, 0, 0
	}
}

// flush exports what is queued now, waiting within ctx.
func (p *pipeline) flush(ctx context.Context) error {
	ch := make(chan struct{})
	select {
	case p.flushReq <- ch:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shutdown exports what is queued and closes the exporter, within ctx:
// when ctx ends first, the export under way (and any left) is cancelled,
// its spans are lost, and shutdown returns ctx's error without waiting
// for the exporter goroutine, which ends as soon as its export sees the
// cancellation.
func (p *pipeline) shutdown(ctx context.Context) error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(p.stop)
	var err error
	select {
	case <-p.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.cancel()
	var cerr error
	if p.enc != nil {
		cerr = p.enc.Shutdown(ctx)
	} else {
		cerr = p.exp.Shutdown(ctx)
	}
	if err == nil {
		err = cerr
	}
	return err
}

// PartialSuccessError is an export the collector took only in part.
type PartialSuccessError struct {
	Rejected int64
	Message  string
}

func (e *PartialSuccessError) Error() string {
	msg := "the collector rejected " + strconv.FormatInt(e.Rejected, 10) + " spans"
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}
