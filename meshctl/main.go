// Command meshctl is the operator CLI of meshgate. Its commands arrive with
// the admin API issue; for now it answers --help and version.
package main

import (
	"fmt"
	"os"

	"github.com/meshgate/meshgate/internal/buildinfo"
	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:    "meshctl",
		Usage:   "inspect and operate a meshgate mesh",
		Version: buildinfo.Version,
		Commands: []*cli.Command{{
			Name:  "version",
			Usage: "print the version",
			Action: func(c *cli.Context) error {
				fmt.Printf("meshctl %s (%s)\n", buildinfo.Version, buildinfo.GoVersion())
				return nil
			},
		}, pkiCommand()},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
