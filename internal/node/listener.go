package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"sync/atomic"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// listener is one running client listener. It survives reloads that leave
// its address and protocol alone; its certificates are swapped in place.
type listener struct {
	cfg   config.Listener
	ln    net.Listener
	srv   *http.Server
	certs atomic.Pointer[certSet]
	log   *slog.Logger
}

// certSet chooses a certificate by SNI.
type certSet struct {
	certs []tls.Certificate
}

func loadCerts(t *config.TLS) (*certSet, error) {
	cs := &certSet{}
	for _, c := range t.Certificates {
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", c.CertFile, err)
		}
		cs.certs = append(cs.certs, pair)
	}
	return cs, nil
}

func (cs *certSet) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	for i := range cs.certs {
		if hello.SupportsCertificate(&cs.certs[i]) == nil && hello.ServerName != "" {
			if leaf := cs.certs[i].Leaf; leaf != nil && leaf.VerifyHostname(hello.ServerName) == nil {
				return &cs.certs[i], nil
			}
		}
	}
	return &cs.certs[0], nil
}

// sameSocket reports whether a listener can keep running under cfg: the
// socket-level settings did not change (certificates may).
func (l *listener) sameSocket(cfg config.Listener) bool {
	a, b := l.cfg, cfg
	a.TLS, b.TLS = nil, nil
	return reflect.DeepEqual(a, b) && (l.cfg.TLS == nil) == (cfg.TLS == nil)
}

// bind opens the socket of a new listener; serve starts it. The two are
// apart so that a reload binds everything new before it commits.
func bind(cfg config.Listener, srvCfg config.Server, h http.Handler, conns *telemetry.Metrics, log *slog.Logger) (*listener, error) {
	l := &listener{cfg: cfg, log: log.With("listener", cfg.Name)}
	if cfg.TLS != nil {
		cs, err := loadCerts(cfg.TLS)
		if err != nil {
			return nil, err
		}
		l.certs.Store(cs)
	}
	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", cfg.Name, err)
	}
	l.ln = ln
	gauge := conns.Conns(cfg.Name)
	l.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: srvCfg.ReadHeaderTimeout.D(),
		IdleTimeout:       srvCfg.IdleTimeout.D(),
		MaxHeaderBytes:    int(srvCfg.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				gauge.Inc()
			case http.StateClosed, http.StateHijacked:
				gauge.Dec()
			}
		},
	}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	if cfg.TLS != nil {
		protos.SetHTTP2(true)
		min := uint16(tls.VersionTLS12)
		if cfg.TLS.MinVersion == "1.3" {
			min = tls.VersionTLS13
		}
		l.srv.TLSConfig = &tls.Config{
			MinVersion: min,
			NextProtos: []string{"h2", "http/1.1"},
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				return l.certs.Load().get(hello)
			},
		}
	} else if cfg.H2C != nil && *cfg.H2C {
		protos.SetUnencryptedHTTP2(true)
	}
	l.srv.Protocols = protos
	return l, nil
}

func (l *listener) serve() {
	go func() {
		var err error
		if l.cfg.TLS != nil {
			err = l.srv.ServeTLS(l.ln, "", "")
		} else {
			err = l.srv.Serve(l.ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.log.Error("listener stopped", "err", err)
		}
	}()
	l.log.Info("listening", "address", l.ln.Addr().String(), "protocol", l.cfg.Protocol)
}

// updateCerts swaps the certificates of a running TLS listener.
func (l *listener) updateCerts(cfg config.Listener) error {
	if cfg.TLS == nil {
		return nil
	}
	cs, err := loadCerts(cfg.TLS)
	if err != nil {
		return err
	}
	l.certs.Store(cs)
	l.cfg = cfg
	return nil
}

// shutdown stops accepting and waits for requests in flight, up to ctx.
func (l *listener) shutdown(ctx context.Context) {
	if err := l.srv.Shutdown(ctx); err != nil {
		l.log.Warn("listener drain cut short", "err", err)
		l.srv.Close()
	}
}
