// Command sidecar is meshgate's proxy beside each service: an mTLS inbound
// listener in front of the local app, and outbound listeners through which
// the app calls other mesh services. `sidecar --config sidecar.yaml` serves,
// `sidecar validate --config sidecar.yaml` checks a file.
package main

import (
	"fmt"
	"os"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/node"
)

func main() {
	if err := node.App("sidecar", "meshgate sidecar: mTLS inbound to the local app, outbound to the mesh", config.LoadSidecar, node.SidecarRuntime).Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
