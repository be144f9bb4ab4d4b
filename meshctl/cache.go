package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// cacheCommand is `cache purge` and `cache stats`. A purge goes to every
// node through the cluster; stats are the answering node's own (its admin
// API describes itself: point --admin at another node to see that one's),
// since per-node figures are what tells an operator which edge holds what.
func cacheCommand() *cli.Command {
	return &cli.Command{
		Name: "cache", Usage: "the HTTP cache: purge a route's responses on every node, show a node's per-route stats",
		Subcommands: []*cli.Command{
			{Name: "purge", Usage: "remove a route's stored responses on every node (one path, a prefix, or all)", ArgsUsage: "ROUTE",
				BashComplete: completeNames(cachedRoutes),
				Flags: append(connFlags(),
					&cli.StringFlag{Name: "path", Usage: "the responses of this `PATH` (every query of it)"},
					&cli.StringFlag{Name: "prefix", Usage: "the responses whose path starts with `PREFIX`"},
					&cli.BoolFlag{Name: "all", Usage: "every response of the route"}),
				Action: withSession(func(c *cli.Context, s *session) error {
					mode, value, err := purgeMode(c)
					if err != nil {
						return err
					}
					ctx, cancel := s.call(c)
					defer cancel()
					r, err := s.client.PurgeCache(ctx, &adminv1.PurgeCacheRequest{Route: c.Args().First(), Mode: mode, Value: value})
					if err != nil {
						return err
					}
					if s.out != "table" {
						return render(s.out, r, "", nil)
					}
					printPurge(stdout, r)
					return nil
				})},
			{Name: "stats", Usage: "per route on the node: entries, bytes, hits, misses, stale, revalidations, evictions", ArgsUsage: "[ROUTE]",
				BashComplete: completeNames(cachedRoutes),
				Action: withSession(func(c *cli.Context, s *session) error {
					if c.NArg() > 1 {
						return fmt.Errorf("usage: meshctl cache stats [ROUTE]")
					}
					ctx, cancel := s.call(c)
					defer cancel()
					r, err := s.client.CacheStats(ctx, &adminv1.CacheStatsRequest{Route: c.Args().First()})
					if err != nil {
						return err
					}
					if s.out != "table" {
						return render(s.out, r, "", nil)
					}
					fmt.Fprintf(stdout, "# node %s\n", r.Node)
					return render(s.out, r, cacheStatsHeader, func(w io.Writer) { cacheStatsRows(w, r) })
				})},
		},
	}
}

// purgeMode reads ROUTE and exactly one of --path, --prefix and --all.
func purgeMode(c *cli.Context) (mode, value string, err error) {
	const usage = "usage: meshctl cache purge ROUTE (--path PATH | --prefix PREFIX | --all)"
	if c.NArg() != 1 {
		return "", "", fmt.Errorf("%s", usage)
	}
	n := 0
	for _, f := range []string{"path", "prefix", "all"} {
		if c.IsSet(f) {
			n++
		}
	}
	if n != 1 {
		return "", "", fmt.Errorf("%s: give exactly one of --path, --prefix and --all", usage)
	}
	switch {
	case c.IsSet("path"):
		return "path", c.String("path"), nil
	case c.IsSet("prefix"):
		return "prefix", c.String("prefix"), nil
	}
	if !c.Bool("all") {
		return "", "", fmt.Errorf("%s: --all=false purges nothing", usage)
	}
	return "all", "", nil
}

func printPurge(w io.Writer, r *adminv1.PurgeCacheResponse) {
	what := "every response"
	switch r.Mode {
	case "path":
		what = "path " + r.Value
	case "prefix":
		what = "paths under " + r.Value
	}
	entries := "entries"
	if r.PurgedHere == 1 {
		entries = "entry"
	}
	fmt.Fprintf(w, "purge %s of route %s (%s) sent to every node; %d %s removed on %s, the others within a second\n",
		r.Id, r.Route, what, r.PurgedHere, entries, r.Node)
}

const cacheStatsHeader = "ROUTE\tENTRIES\tBYTES\tHITS\tMISSES\tSTALE\tREVALIDATED\tEVICTIONS"

// cacheStatsRows writes one line per route; evictions are the total, then
// the reasons that have any (the -o json output has them all).
func cacheStatsRows(w io.Writer, r *adminv1.CacheStatsResponse) {
	for _, st := range r.Routes {
		var reasons []string
		for reason, n := range st.EvictionsByReason {
			if n > 0 {
				reasons = append(reasons, fmt.Sprintf("%s %d", reason, n))
			}
		}
		sort.Strings(reasons)
		ev := fmt.Sprint(st.Evictions)
		if len(reasons) > 0 {
			ev += " (" + strings.Join(reasons, ", ") + ")"
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", st.Route, st.Entries, st.Bytes, st.Hits, st.Misses, st.Stale,
			st.Revalidations, ev)
	}
}

// cachedRoutes completes ROUTE with the routes the node caches.
func cachedRoutes(ctx context.Context, s *session) ([]string, error) {
	r, err := s.client.CacheStats(ctx, &adminv1.CacheStatsRequest{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, st := range r.Routes {
		names = append(names, st.Route)
	}
	return names, nil
}
