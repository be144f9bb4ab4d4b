package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"github.com/urfave/cli/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/pki"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// connFlags are the flags of every command that talks to a node: where,
// and as whom. Each also reads an environment variable.
func connFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "admin", Aliases: []string{"a"}, EnvVars: []string{"MESHCTL_ADMIN"}, Value: "127.0.0.1:9902",
			Usage: "admin API address of any node (`HOST:PORT`, its admin.api.address)"},
		&cli.StringFlag{Name: "workload-api", EnvVars: []string{"MESHCTL_WORKLOAD_API", "SPIFFE_ENDPOINT_SOCKET"},
			Usage: "take meshctl's identity from this SPIFFE Workload API (`unix:///path`)"},
		&cli.StringFlag{Name: "cert", EnvVars: []string{"MESHCTL_CERT"}, Usage: "identity from files: the X.509-SVID (`PEM`)"},
		&cli.StringFlag{Name: "key", EnvVars: []string{"MESHCTL_KEY"}, Usage: "the SVID's private key (`PEM`)"},
		&cli.StringFlag{Name: "bundle", EnvVars: []string{"MESHCTL_BUNDLE"}, Usage: "the trust bundle (`PEM`)"},
		&cli.StringFlag{Name: "server-id", EnvVars: []string{"MESHCTL_SERVER_ID"},
			Usage: "SPIFFE ID (pattern) the node must present; default: any of meshctl's own trust domain"},
		&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "give up on a call after this long"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "output format: table, json or yaml (the admin API's messages, fields by their proto names, keys sorted, integers as numbers)"},
	}
}

// global returns the context in the command's lineage where a global flag
// was given (urfave/cli resolves a name in the nearest command that knows
// it, which is not always the one where it was set), or c.
func global(c *cli.Context, name string) *cli.Context {
	for _, cc := range c.Lineage() {
		if cc != nil && cc.IsSet(name) {
			return cc
		}
	}
	return c
}

func gString(c *cli.Context, name string) string          { return global(c, name).String(name) }
func gDuration(c *cli.Context, name string) time.Duration { return global(c, name).Duration(name) }

// identity is meshctl's SVID source.
type identity interface {
	x509svid.Source
	x509bundle.Source
}

// session is a connection to one node's admin API.
type session struct {
	client adminv1.AdminClient
	addr   string
	me     spiffeid.ID
	out    string
	close  func()
	ctx    context.Context
	cancel context.CancelFunc
}

func openIdentity(c *cli.Context) (identity, func(), error) {
	switch {
	case gString(c, "cert") != "" || gString(c, "key") != "" || gString(c, "bundle") != "":
		if gString(c, "cert") == "" || gString(c, "key") == "" || gString(c, "bundle") == "" {
			return nil, nil, errors.New("identity from files needs --cert, --key and --bundle (or MESHCTL_CERT, MESHCTL_KEY, MESHCTL_BUNDLE)")
		}
		src, err := pki.NewFileSource(gString(c, "cert"), gString(c, "key"), gString(c, "bundle"), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return nil, nil, fmt.Errorf("identity files: %w", err)
		}
		return src, func() { src.Close() }, nil
	case gString(c, "workload-api") != "":
		ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
		defer cancel()
		src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(gString(c, "workload-api"))))
		if err != nil {
			return nil, nil, fmt.Errorf("no SVID from the Workload API at %s: %w", gString(c, "workload-api"), err)
		}
		return src, func() { src.Close() }, nil
	}
	return nil, nil, errors.New("meshctl needs an identity: --workload-api (or SPIFFE_ENDPOINT_SOCKET), or --cert, --key and --bundle (or MESHCTL_CERT, MESHCTL_KEY, MESHCTL_BUNDLE)")
}

// connect opens a session with the node at --admin.
func connect(c *cli.Context) (*session, error) {
	out := gString(c, "output")
	if out != "table" && out != "json" && out != "yaml" {
		return nil, fmt.Errorf("--output %q: want table, json or yaml", out)
	}
	id, closeID, err := openIdentity(c)
	if err != nil {
		return nil, err
	}
	svid, err := id.GetX509SVID()
	if err != nil {
		closeID()
		return nil, err
	}
	var expect tlsconfig.Authorizer = pki.AllowTrustDomain(svid.ID.TrustDomain())
	if p := gString(c, "server-id"); p != "" {
		if expect, err = pki.AllowPatterns(p); err != nil {
			closeID()
			return nil, fmt.Errorf("--server-id: %w", err)
		}
	}
	addr := gString(c, "admin")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientTLS(id, id, expect))))
	if err != nil {
		closeID()
		return nil, fmt.Errorf("admin address %q: %w", addr, err)
	}
	s := &session{client: adminv1.NewAdminClient(conn), addr: addr, me: svid.ID, out: out,
		close: func() { conn.Close(); closeID() }}
	return s, nil
}

// call bounds one unary call by --timeout.
func (s *session) call(c *cli.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context, gDuration(c, "timeout"))
}

// explain turns a gRPC error into one an operator can act on.
func (s *session) explain(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		msg := st.Message()
		hint := "is the node running, and is this its admin.api.address?"
		switch {
		case strings.Contains(msg, "first record does not look like a TLS handshake"):
			hint = "this address does not speak TLS: it is no admin API (an admin.address serves plain HTTP /metrics; meshctl needs the node's admin.api.address)"
		case strings.Contains(msg, "handshake") || strings.Contains(msg, "certificate") || strings.Contains(msg, "x509"):
			hint = "the TLS handshake failed: do meshctl's identity and the node share a trust bundle, and does the node present an ID --server-id allows?"
		}
		return fmt.Errorf("cannot reach the admin API at %s (%s): %s", s.addr, hint, msg)
	case codes.PermissionDenied:
		return fmt.Errorf("permission denied for %s: %s", s.me, st.Message())
	case codes.Unauthenticated:
		return fmt.Errorf("the node did not accept meshctl's identity %s: %s", s.me, st.Message())
	default:
		return errors.New(st.Message())
	}
}

// withSession runs f with a session, closing it after.
func withSession(f func(c *cli.Context, s *session) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		s, err := connect(c)
		if err != nil {
			return cli.Exit(err.Error(), 2)
		}
		defer s.close()
		if err := f(c, s); err != nil {
			return cli.Exit(s.explain(err).Error(), 1)
		}
		return nil
	}
}
