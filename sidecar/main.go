// Command sidecar is meshgate's east-west proxy beside each service. Its
// inbound/outbound data plane arrives with the SPIFFE identity issue; for now
// it only answers --help and version.
package main

import (
	"fmt"
	"os"

	"github.com/meshgate/meshgate/internal/buildinfo"
	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:    "sidecar",
		Usage:   "meshgate sidecar proxy (inbound mTLS → local service, outbound local service → mesh)",
		Version: buildinfo.Version,
		Action: func(c *cli.Context) error {
			return cli.Exit("sidecar: the data plane is not built yet (see issue 3)", 2)
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
