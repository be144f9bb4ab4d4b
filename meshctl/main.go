// Command meshctl is the operator CLI of meshgate: it talks to any node's
// admin API (meshgate.admin.v1, SPIFFE mTLS) to inspect members, routes,
// breakers, limits and caches, apply routes, manage consumers, tiers and
// API keys, shift traffic, purge cached responses and tap live requests;
// and it runs the embedded pki.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/meshgate/meshgate/internal/buildinfo"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/urfave/cli/v2"
)

func main() {
	if err := run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code := 1
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		}
		os.Exit(code)
	}
}

// newApp is meshctl. Errors come back from Run (none exits the process
// inside), so that main decides the exit code and tests can run it.
func newApp() *cli.App {
	return &cli.App{
		Name:                 "meshctl",
		Usage:                "inspect and operate a meshgate mesh",
		Version:              buildinfo.Version,
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {},
		// Without a command, help; with an unknown one, a usage error that
		// names the closest command (urfave/cli would say "No help topic").
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.ShowAppHelp(c)
			}
			return unknownCommand(c.App.Commands, c.Args().First())
		},
		// Where and as whom: `meshctl --admin HOST:PORT --cert … members`.
		Flags: connFlags(),
		Commands: []*cli.Command{membersCommand(), resourceCommand(config.KindRoute, "routes"),
			resourceCommand(config.KindUpstream, "upstreams"), resourceCommand(config.KindConsumer, "consumers"),
			resourceCommand(config.KindTier, "tiers"), keysCommand(), trafficCommand(), breakersCommand(), limitsCommand(), cacheCommand(),
			tapCommand(), transformCommand(), configCommand(), injectCommand(), completionCommand(), {
				Name:  "version",
				Usage: "print the version",
				Action: func(c *cli.Context) error {
					fmt.Fprintf(stdout, "meshctl %s (%s)\n", buildinfo.Version, buildinfo.GoVersion())
					return nil
				},
			}, pkiCommand()},
	}
}

// unknownCommand is the usage error (exit 2) of a command name that is not
// one of commands, with urfave/cli's suggestion of the closest.
func unknownCommand(commands []*cli.Command, name string) error {
	msg := fmt.Sprintf("meshctl: unknown command %q", name)
	if cli.SuggestCommand != nil { // nil when built with urfave_cli_no_suggest
		if s := cli.SuggestCommand(commands, name); s != "" {
			msg += "; " + strings.ToLower(s[:1]) + s[1:]
		}
	}
	return cli.Exit(msg+" (meshctl --help lists the commands)", 2)
}
