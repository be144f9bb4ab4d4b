package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/meshgate/meshgate/internal/config"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

func membersCommand() *cli.Command {
	return &cli.Command{
		Name: "members", Usage: "list the cluster's members as the node sees them",
		Action: withSession(func(c *cli.Context, s *session) error {
			ctx, cancel := s.call(c)
			defer cancel()
			r, err := s.client.ListMembers(ctx, &adminv1.ListMembersRequest{})
			if err != nil {
				return err
			}
			// APP HEALTHY is a sidecar's: its local app answers its health
			// check (discovery sends it traffic only then). Other members
			// front no app: "-".
			return render(s.out, r, "NAME\tSTATE\tROLE\tSERVICE\tSUBSET\tINBOUND\tAPP HEALTHY\tSPIFFE ID", func(w io.Writer) {
				for _, m := range r.Members {
					healthy := "-"
					if m.Role == "sidecar" {
						healthy = strconv.FormatBool(m.Healthy)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.State, m.Role, dash(m.Service), dash(m.Subset),
						dash(m.Inbound), healthy, m.SpiffeId)
				}
			})
		}),
	}
}

// shortDuration is 1m rather than 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// resourceCommand is `routes`, `upstreams`, `consumers` or `tiers`: list,
// get, apply, delete.
func resourceCommand(kind, plural string) *cli.Command {
	list := func(c *cli.Context, s *session) error {
		ctx, cancel := s.call(c)
		defer cancel()
		r, err := s.client.ListResources(ctx, &adminv1.ListResourcesRequest{Kind: kind})
		if err != nil {
			return err
		}
		switch kind {
		case config.KindRoute:
			return listRoutes(s, r, c.String("bff"))
		case config.KindConsumer:
			return listConsumers(c, s, r)
		case config.KindTier:
			return render(s.out, r, "NAME\tLIMITS\tON ISOLATION\tORIGIN\tVERSION", func(w io.Writer) {
				for _, x := range r.Resources {
					t, _ := config.DecodeTier(x.Name, []byte(x.Yaml))
					var limits []string
					for _, l := range t.Limits {
						limits = append(limits, fmt.Sprintf("%d/%s", l.Requests, shortDuration(l.Window.D())))
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", x.Name, dash(strings.Join(limits, ",")), dash(t.OnIsolation), x.Origin, dash(x.Version))
				}
			})
		}
		return render(s.out, r, "NAME\tORIGIN\tVERSION", func(w io.Writer) {
			for _, x := range r.Resources {
				fmt.Fprintf(w, "%s\t%s\t%s\n", x.Name, x.Origin, dash(x.Version))
			}
		})
	}
	deleted := "deleted"
	if kind == config.KindConsumer {
		deleted = "deleted, and its API keys revoked"
	}
	return &cli.Command{
		Name: plural, Usage: "list, show, apply and delete " + plural + " (cluster-wide)",
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "the node's " + plural + ", and where each comes from", Flags: listFlags(kind), Action: withSession(list)},
			{Name: "get", Usage: "one " + kind + " as YAML", ArgsUsage: "NAME", BashComplete: completeNames(resourceNames(kind)),
				Action: withSession(func(c *cli.Context, s *session) error {
					if c.NArg() != 1 {
						return fmt.Errorf("usage: meshctl %s get NAME", plural)
					}
					ctx, cancel := s.call(c)
					defer cancel()
					r, err := s.client.GetResource(ctx, &adminv1.GetResourceRequest{Kind: kind, Name: c.Args().First()})
					if err != nil {
						return err
					}
					switch s.out {
					case "table": // the YAML, under a comment saying where it comes from
						where := r.Origin
						if r.Version != "" {
							where += ", version " + r.Version
						}
						fmt.Fprintf(stdout, "# %s %s: %s\n%s", kind, r.Name, where, r.Yaml)
						return nil
					case "yaml": // what apply -f takes back
						fmt.Fprint(stdout, r.Yaml)
						return nil
					}
					return render(s.out, r, "", nil)
				})},
			{Name: "apply", Usage: "apply a " + kind + " from a YAML file (a " + plural + "[] entry) to the whole cluster",
				Flags: append([]cli.Flag{}, &cli.StringFlag{Name: "file", Aliases: []string{"f"}, Required: true, Usage: "`FILE` with one " + kind}),
				Action: withSession(func(c *cli.Context, s *session) error {
					path := c.String("file")
					data, err := os.ReadFile(path)
					if err != nil {
						return err
					}
					// Checked here first, so that a mistake is reported at
					// the file's line; the node then checks what it needs.
					if err := checkFile(kind, path, data); err != nil {
						return err
					}
					ctx, cancel := s.call(c)
					defer cancel()
					r, err := s.client.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: kind, Yaml: string(data)})
					if err != nil {
						return fmt.Errorf("%s: %w", path, s.explain(err))
					}
					fmt.Fprintf(stdout, "%s %s applied (version %s); it reaches every node within a second or two\n", kind, r.Name, r.Version)
					return nil
				})},
			{Name: "delete", Usage: "delete a " + kind + " on every node (also one from the nodes' files)", ArgsUsage: "NAME",
				BashComplete: completeNames(resourceNames(kind)),
				Action: withSession(func(c *cli.Context, s *session) error {
					if c.NArg() != 1 {
						return fmt.Errorf("usage: meshctl %s delete NAME", plural)
					}
					ctx, cancel := s.call(c)
					defer cancel()
					r, err := s.client.DeleteResource(ctx, &adminv1.DeleteResourceRequest{Kind: kind, Name: c.Args().First()})
					if err != nil {
						return err
					}
					if !r.Deleted {
						fmt.Fprintf(stdout, "%s %s was already deleted\n", kind, c.Args().First())
						return nil
					}
					fmt.Fprintf(stdout, "%s %s %s\n", kind, c.Args().First(), deleted)
					return nil
				})},
		},
	}
}

// checkFile decodes a resource file strictly, errors at file:line:col.
func checkFile(kind, path string, data []byte) error {
	var err error
	switch kind {
	case config.KindRoute:
		_, err = config.DecodeRoute(path, data)
	case config.KindUpstream:
		_, err = config.DecodeUpstream(path, data)
	case config.KindTier:
		_, err = config.DecodeTier(path, data)
	case config.KindConsumer:
		_, err = config.DecodeConsumer(path, data)
	}
	return err
}

// listConsumers lists consumers with their tier and how many API keys
// each has (ids: meshctl keys list --consumer NAME).
func listConsumers(c *cli.Context, s *session, r *adminv1.ListResourcesResponse) error {
	if s.out != "table" {
		return render(s.out, r, "", nil)
	}
	ctx, cancel := s.call(c)
	defer cancel()
	keys, err := s.client.ListResources(ctx, &adminv1.ListResourcesRequest{Kind: config.KindAPIKey})
	if err != nil {
		return err
	}
	count := map[string]int{}
	for _, k := range keys.Resources {
		if k.Origin != "cluster-deleted" {
			count[keyConsumer(k)]++
		}
	}
	return render(s.out, r, "NAME\tTIER\tKEYS\tORIGIN\tVERSION", func(w io.Writer) {
		for _, x := range r.Resources {
			cs, _ := config.DecodeConsumer(x.Name, []byte(x.Yaml))
			tier := cs.Tier
			if x.Origin == "cluster-deleted" {
				tier = ""
			} else if tier == "" {
				tier = "(" + config.TierDefault + ")"
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", x.Name, dash(tier), count[x.Name], x.Origin, dash(x.Version))
		}
	})
}

func breakersCommand() *cli.Command {
	return &cli.Command{
		Name: "breakers", Usage: "circuit breakers: list, reset",
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "every endpoint's breaker on the node",
				Action: withSession(func(c *cli.Context, s *session) error {
					ctx, cancel := s.call(c)
					defer cancel()
					r, err := s.client.ListBreakers(ctx, &adminv1.ListBreakersRequest{})
					if err != nil {
						return err
					}
					return render(s.out, r, "ENDPOINT\tSTATE\tLOCAL\tCAUSE\tREPORTERS\tOPEN UNTIL", func(w io.Writer) {
						for _, b := range r.Breakers {
							until := "-"
							if b.OpenUntilUnixMs > 0 {
								until = time.UnixMilli(b.OpenUntilUnixMs).Format(time.TimeOnly)
							}
							fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", b.Endpoint, b.State, b.Local, dash(b.Cause),
								dash(strings.Join(b.Reporters, ",")), until)
						}
					})
				})},
			{Name: "reset", Usage: "close an endpoint's breaker on every node", ArgsUsage: "ENDPOINT",
				BashComplete: completeNames(func(ctx context.Context, s *session) ([]string, error) {
					r, err := s.client.ListBreakers(ctx, &adminv1.ListBreakersRequest{})
					if err != nil {
						return nil, err
					}
					var eps []string
					for _, b := range r.Breakers {
						eps = append(eps, b.Endpoint)
					}
					return eps, nil
				}),
				Action: withSession(func(c *cli.Context, s *session) error {
					if c.NArg() != 1 {
						return fmt.Errorf("usage: meshctl breakers reset HOST:PORT")
					}
					ctx, cancel := s.call(c)
					defer cancel()
					if _, err := s.client.ResetBreaker(ctx, &adminv1.ResetBreakerRequest{Endpoint: c.Args().First()}); err != nil {
						return err
					}
					fmt.Fprintf(stdout, "breaker of %s reset on every node\n", c.Args().First())
					return nil
				})},
		},
	}
}

func limitsCommand() *cli.Command {
	return &cli.Command{
		Name: "limits", Usage: "rate limits: list with the cluster's counts, set, delete",
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "every limited route and key, with the cluster's count as the node estimates it",
				Action: withSession(func(c *cli.Context, s *session) error {
					ctx, cancel := s.call(c)
					defer cancel()
					r, err := s.client.ListLimits(ctx, &adminv1.ListLimitsRequest{})
					if err != nil {
						return err
					}
					return render(s.out, r, "ROUTE\tKEY\tLIMIT\tWINDOW\tCLUSTER ESTIMATE\tTHIS NODE\tREPORTERS", func(w io.Writer) {
						for _, l := range r.Limits {
							fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%.1f\t%d\t%d\n", l.Route, dash(l.Key), l.Limit,
								time.Duration(l.WindowMs)*time.Millisecond, l.Estimate, l.Local, l.Reporters)
						}
					})
				})},
			{Name: "set", Usage: "change a route's limit on every node", ArgsUsage: "ROUTE", BashComplete: completeNames(resourceNames(config.KindRoute)),
				Flags: append(connFlags(),
					&cli.Int64Flag{Name: "requests", Required: true, Usage: "requests per window, cluster-wide"},
					&cli.DurationFlag{Name: "window", Usage: "the window (default: keep)"},
					// Not --key: that is the client's private key file.
					&cli.StringFlag{Name: "by", Usage: "what is counted: `route`, client_ip or header:NAME (default: keep)"}),
				Action: withSession(func(c *cli.Context, s *session) error {
					if c.NArg() != 1 {
						return fmt.Errorf("usage: meshctl limits set ROUTE --requests N [--window 1m] [--by header:X-Tenant]")
					}
					ctx, cancel := s.call(c)
					defer cancel()
					if _, err := s.client.SetLimit(ctx, &adminv1.SetLimitRequest{Route: c.Args().First(), Requests: c.Int64("requests"),
						WindowMs: c.Duration("window").Milliseconds(), Key: c.String("by")}); err != nil {
						return err
					}
					fmt.Fprintf(stdout, "route %s limited to %d requests per window on every node\n", c.Args().First(), c.Int64("requests"))
					return nil
				})},
			{Name: "delete", Usage: "remove a route's limit on every node", ArgsUsage: "ROUTE", Flags: connFlags(),
				BashComplete: completeNames(resourceNames(config.KindRoute)),
				Action: withSession(func(c *cli.Context, s *session) error {
					if c.NArg() != 1 {
						return fmt.Errorf("usage: meshctl limits delete ROUTE")
					}
					ctx, cancel := s.call(c)
					defer cancel()
					if _, err := s.client.DeleteLimit(ctx, &adminv1.DeleteLimitRequest{Route: c.Args().First()}); err != nil {
						return err
					}
					fmt.Fprintf(stdout, "route %s no longer limited on every node\n", c.Args().First())
					return nil
				})},
		},
	}
}

func tapCommand() *cli.Command {
	return &cli.Command{
		Name: "tap", Usage: "stream summaries of live requests through the node (Ctrl-C stops)",
		Flags: append(connFlags(),
			&cli.StringFlag{Name: "route", Usage: "only this route"},
			&cli.StringFlag{Name: "status", Usage: "only these statuses: `500-599`, 404, ..."},
			&cli.StringFlag{Name: "consumer", Usage: "only this consumer"},
			&cli.Float64Flag{Name: "sample", Value: 1, Usage: "share of requests to show, 0 < s ≤ 1"},
			&cli.IntFlag{Name: "count", Aliases: []string{"n"}, Usage: "stop after this many (0: never)"}),
		Action: withSession(func(c *cli.Context, s *session) error {
			req := &adminv1.TapRequest{Route: c.String("route"), Consumer: c.String("consumer"), Sample: c.Float64("sample")}
			if st := c.String("status"); st != "" {
				lo, hi, err := config.ParseStatusRange(st)
				if err != nil {
					return fmt.Errorf("--status %q: %v", st, err)
				}
				req.StatusMin, req.StatusMax = int32(lo), int32(hi)
			}
			stream, err := s.client.Tap(c.Context, req)
			if err != nil {
				return err
			}
			if s.out == "table" {
				fmt.Fprintln(stdout, "TIME          ROUTE        METHOD  STATUS  LATENCY    UPSTREAM      ENDPOINT              TRACE                             PATH")
			}
			for n := 0; c.Int("count") == 0 || n < c.Int("count"); n++ {
				ev, err := stream.Recv()
				if err == io.EOF || c.Context.Err() != nil {
					return nil
				}
				if err != nil {
					return err
				}
				if s.out != "table" {
					if err := render(s.out, ev, "", nil); err != nil {
						return err
					}
					continue
				}
				if ev.Dropped > 0 {
					fmt.Fprintf(stdout, "... %d requests not shown (the tap fell behind)\n", ev.Dropped)
				}
				path := ev.Path
				if ev.Fallback != "" { // answered in the upstream's place
					path += "  (fallback: " + ev.Fallback + ")"
				}
				fmt.Fprintf(stdout, "%-13s %-12s %-7s %-7d %-10s %-13s %-21s %-33s %s\n",
					time.UnixMilli(ev.TimeUnixMs).Format("15:04:05.000"), ev.Route, ev.Method, ev.Status,
					fmt.Sprintf("%.2fms", ev.LatencyMs), dash(ev.Upstream), dash(ev.Endpoint), dash(ev.TraceId), path)
			}
			return nil
		}),
	}
}

// configCommand validates edge and sidecar files without a node.
func configCommand() *cli.Command {
	return &cli.Command{
		Name: "config", Usage: "configuration files",
		Subcommands: []*cli.Command{{
			Name: "validate", Usage: "check an edge or sidecar file: every error at file:line:col", ArgsUsage: "FILE",
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return cli.Exit("usage: meshctl config validate FILE", 2)
				}
				path := c.Args().First()
				data, err := os.ReadFile(path)
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				load, kind := config.Load, "edge"
				if isSidecarFile(data) {
					load, kind = config.LoadSidecar, "sidecar"
				}
				if _, err := load(path); err != nil {
					return cli.Exit(err.Error(), 1)
				}
				fmt.Fprintf(stdout, "%s: ok (%s configuration)\n", path, kind)
				return nil
			},
		}},
	}
}

// isSidecarFile: a sidecar file has the top-level inbound section.
func isSidecarFile(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "inbound:") || strings.HasPrefix(line, "service:") {
			return true
		}
	}
	return false
}
