// Command edge is meshgate's API gateway: `edge --config edge.yaml` serves,
// `edge validate --config edge.yaml` checks a file.
package main

import (
	"fmt"
	"os"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/node"
)

func main() {
	if err := node.App("edge", "meshgate API gateway", config.Load, node.EdgeRuntime).Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
