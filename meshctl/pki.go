package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/meshgate/meshgate/pki"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/urfave/cli/v2"
)

// pkiCommand is `meshctl pki`: create a trust domain CA, issue X.509-SVIDs
// from it as PEM files, or serve them over the Workload API (pki_serve.go).
func pkiCommand() *cli.Command {
	return &cli.Command{
		Name:  "pki",
		Usage: "create a trust domain CA, issue X.509-SVIDs, serve them over the Workload API",
		Subcommands: []*cli.Command{
			{
				Name:      "init",
				Usage:     "create a CA (ECDSA P-256 root, optionally an intermediate) in a new directory",
				UsageText: "meshctl pki init --trust-domain example.org --dir ./ca [--intermediate]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "trust-domain", Usage: "trust domain name, e.g. example.org", Required: true},
					&cli.StringFlag{Name: "dir", Usage: "directory for root.pem/root.key (created with mode 0700)", Required: true},
					&cli.BoolFlag{Name: "intermediate", Usage: "sign SVIDs with an intermediate CA signed by the root"},
					&cli.DurationFlag{Name: "root-ttl", Usage: "lifetime of the root", Value: pki.DefaultRootTTL},
					&cli.DurationFlag{Name: "intermediate-ttl", Usage: "lifetime of the intermediate", Value: pki.DefaultIntermediateTTL},
				},
				Action: pkiInit,
			},
			{
				Name:      "issue",
				Usage:     "issue an X.509-SVID: writes svid.pem, svid_key.pem and bundle.pem",
				UsageText: "meshctl pki issue --ca-dir ./ca --spiffe-id spiffe://example.org/edge --ttl 1h --out ./edge",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "ca-dir", Usage: "directory of the CA (from pki init)", Required: true},
					&cli.StringFlag{Name: "spiffe-id", Usage: "SPIFFE ID of the workload, e.g. spiffe://example.org/ns/prod/sa/orders", Required: true},
					&cli.DurationFlag{Name: "ttl", Usage: "lifetime of the SVID (capped by the CA's)", Value: time.Hour},
					&cli.StringFlag{Name: "out", Usage: "output directory (created with mode 0700 if missing)", Required: true},
				},
				Action: pkiIssue,
			},
			pkiServeCommand(),
		},
	}
}

func pkiInit(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("pki init: unexpected arguments %q", c.Args().Slice())
	}
	td, err := spiffeid.TrustDomainFromString(c.String("trust-domain"))
	if err != nil {
		return fmt.Errorf("pki init: invalid trust domain %q: %v", c.String("trust-domain"), err)
	}
	dir := c.String("dir")
	ca, err := pki.InitCA(dir, td, pki.InitOptions{
		Intermediate:    c.Bool("intermediate"),
		RootTTL:         c.Duration("root-ttl"),
		IntermediateTTL: c.Duration("intermediate-ttl"),
	})
	if errors.Is(err, pki.ErrCAExists) {
		return fmt.Errorf("pki init: %s already holds a CA; refusing to overwrite it (%v)", dir, err)
	}
	if err != nil {
		return fmt.Errorf("pki init: %v", err)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "created CA for trust domain %s in %s\n", ca.TrustDomain(), dir)
	fmt.Fprintf(w, "  root:         %s (expires %s)\n", filepath.Join(dir, pki.RootCertFile), ca.Root().NotAfter.UTC().Format(time.RFC3339))
	if inter := ca.Intermediate(); inter != nil {
		fmt.Fprintf(w, "  intermediate: %s (expires %s)\n", filepath.Join(dir, pki.IntermediateCertFile), inter.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

func pkiIssue(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("pki issue: unexpected arguments %q", c.Args().Slice())
	}
	id, err := spiffeid.FromString(c.String("spiffe-id"))
	if err != nil {
		return fmt.Errorf("pki issue: invalid SPIFFE ID %q: %v", c.String("spiffe-id"), err)
	}
	if ttl := c.Duration("ttl"); ttl <= 0 {
		return fmt.Errorf("pki issue: --ttl must be positive, got %s", ttl)
	}
	caDir := c.String("ca-dir")
	ca, err := pki.LoadCA(caDir)
	if errors.Is(err, pki.ErrNoCA) {
		return fmt.Errorf("pki issue: no CA in %s; create one with `meshctl pki init --trust-domain %s --dir %s`",
			caDir, id.TrustDomain(), caDir)
	}
	if err != nil {
		return fmt.Errorf("pki issue: %v", err)
	}
	if !id.MemberOf(ca.TrustDomain()) {
		return fmt.Errorf("pki issue: SPIFFE ID %s is in trust domain %s, but the CA in %s is for %s",
			id, id.TrustDomain(), caDir, ca.TrustDomain())
	}
	svid, err := ca.IssueX509SVID(id, c.Duration("ttl"))
	if err != nil {
		return fmt.Errorf("pki issue: %v", err)
	}
	out := c.String("out")
	if err := pki.WriteSVID(out, svid, ca.Bundle()); err != nil {
		return fmt.Errorf("pki issue: %v", err)
	}
	leaf := svid.Certificates[0]
	fmt.Fprintf(c.App.Writer, "issued %s (serial %s, expires %s)\n  %s\n  %s\n  %s\n",
		id, leaf.SerialNumber.Text(16), leaf.NotAfter.UTC().Format(time.RFC3339),
		filepath.Join(out, pki.SVIDCertFile), filepath.Join(out, pki.SVIDKeyFile), filepath.Join(out, pki.SVIDBundleFile))
	return nil
}
