package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// Identity is the node's SPIFFE identity: its current SVID and the trust
// bundles it verifies peers with. Both are fetched at every handshake, so a
// rotated SVID is used from the next connection on.
type Identity interface {
	x509svid.Source
	x509bundle.Source
}

// identityWait bounds the wait for the first SVID from a Workload API.
const identityWait = 30 * time.Second

// openIdentity connects to the configured source. The closer stops it.
func openIdentity(cfg *config.Identity, log *slog.Logger) (Identity, func() error, error) {
	if cfg.Files != nil {
		f := cfg.Files
		src, err := pki.NewFileSource(f.CertFile, f.KeyFile, f.BundleFile, log.With("identity", "files"))
		if err != nil {
			return nil, nil, fmt.Errorf("identity: %w", err)
		}
		return src, src.Close, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), identityWait)
	defer cancel()
	opts := []workloadapi.X509SourceOption{workloadapi.WithClientOptions(workloadapi.WithAddr(cfg.WorkloadAPI))}
	if cfg.SpiffeID != "" {
		want := cfg.SpiffeID
		opts = append(opts, workloadapi.WithDefaultX509SVIDPicker(func(svids []*x509svid.SVID) *x509svid.SVID {
			for _, s := range svids {
				if s.ID.String() == want {
					return s
				}
			}
			log.Error("the Workload API offers no SVID with identity.spiffe_id; using the first", "spiffe_id", want)
			return svids[0]
		}))
	}
	src, err := workloadapi.NewX509Source(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: no SVID from the Workload API at %s: %w", cfg.WorkloadAPI, err)
	}
	return src, src.Close, nil
}
