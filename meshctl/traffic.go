package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/meshgate/meshgate/internal/config"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

func trafficCommand() *cli.Command {
	return &cli.Command{
		Name: "traffic", Usage: "shift a route's traffic between the subsets of its service",
		Subcommands: []*cli.Command{
			{
				Name: "show", Usage: "how a route's requests are split", ArgsUsage: "ROUTE", BashComplete: completeNames(resourceNames(config.KindRoute)),
				Action: withSession(func(c *cli.Context, s *session) error {
					if c.NArg() != 1 {
						return fmt.Errorf("usage: meshctl traffic show ROUTE")
					}
					ctx, cancel := s.call(c)
					defer cancel()
					r, err := s.client.GetTraffic(ctx, &adminv1.GetTrafficRequest{Route: c.Args().First()})
					if err != nil {
						return err
					}
					return renderSplit(s.out, r)
				}),
			},
			{
				Name: "shift", ArgsUsage: "ROUTE", BashComplete: completeNames(resourceNames(config.KindRoute)),
				Usage: "send --weight percent of ROUTE to subset --to; with --steps, progressively, rolling back when the subset misbehaves",
				Flags: append(connFlags(),
					&cli.StringFlag{Name: "to", Required: true, Usage: "the `SUBSET` (a sidecar's service.subset)"},
					&cli.IntFlag{Name: "weight", Usage: "percent of the route's requests, 0..100"},
					&cli.BoolFlag{Name: "allow-empty", Usage: "shift even when no live sidecar serves the subset yet (its share gets 503 until one joins)"},
					&cli.StringFlag{Name: "steps", Usage: "progressive shift: weights in turn, e.g. `10,25,50,100`"},
					&cli.DurationFlag{Name: "interval", Value: 30 * time.Second, Usage: "time at each step before the next"},
					&cli.Float64Flag{Name: "max-error-rate", Value: 0.05, Usage: "roll back when the subset's 5xx share exceeds this"},
					&cli.DurationFlag{Name: "max-p99", Value: time.Second, Usage: "roll back when the subset's p99 latency exceeds this"},
					&cli.IntFlag{Name: "min-requests", Value: 20, Usage: "judge a step only on at least this many requests"}),
				Action: withSession(shift),
			},
		},
	}
}

func renderSplit(out string, r *adminv1.TrafficSplit) error {
	return render(out, r, "ROUTE\tSERVICE\tSUBSET\tUPSTREAM\tWEIGHT", func(w io.Writer) {
		for _, t := range r.Targets {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d%%\n", r.Route, dash(r.Service), dash(t.Subset), t.Upstream, t.Weight)
		}
	})
}

func shift(c *cli.Context, s *session) error {
	if c.NArg() != 1 {
		return fmt.Errorf("usage: meshctl traffic shift ROUTE --to SUBSET (--weight N | --steps 10,25,50,100)")
	}
	route, subset := c.Args().First(), c.String("to")
	set := func(w int) (*adminv1.TrafficSplit, error) {
		ctx, cancel := s.call(c)
		defer cancel()
		return s.client.ShiftTraffic(ctx, &adminv1.ShiftTrafficRequest{Route: route, Subset: subset, Weight: int32(w), AllowEmpty: c.Bool("allow-empty")})
	}
	if c.String("steps") == "" {
		if !c.IsSet("weight") {
			return fmt.Errorf("give --weight N (0..100) or --steps")
		}
		r, err := set(c.Int("weight"))
		if err != nil {
			return err
		}
		return renderSplit(s.out, r)
	}
	steps, err := parseSteps(c.String("steps"))
	if err != nil {
		return err
	}
	before, err := func() (*adminv1.TrafficSplit, error) {
		ctx, cancel := s.call(c)
		defer cancel()
		return s.client.GetTraffic(ctx, &adminv1.GetTrafficRequest{Route: route})
	}()
	if err != nil {
		return err
	}
	prev := 0
	for _, t := range before.Targets {
		if t.Subset == subset {
			prev = int(t.Weight)
		}
	}
	for i, w := range steps {
		r, err := set(w)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "step %d/%d: %d%% of %s to %s\n", i+1, len(steps), w, route, subset)
		upstream := ""
		for _, t := range r.Targets {
			if t.Subset == subset {
				upstream = t.Upstream
			}
		}
		if i == len(steps)-1 || upstream == "" {
			break
		}
		if bad, why := watch(c, s, upstream); bad {
			if _, err := set(prev); err != nil {
				return fmt.Errorf("%s; rolling back to %d%% failed too: %w", why, prev, s.explain(err))
			}
			return fmt.Errorf("rolled back %s to %d%% for %s: %s", route, prev, subset, why)
		}
	}
	fmt.Fprintf(stdout, "done: %d%% of %s to %s\n", steps[len(steps)-1], route, subset)
	return nil
}

// watch polls the subset's upstream for --interval and reports whether it
// misbehaved: too many errors or too slow, judged on enough requests. The
// figures are the cluster's, merged by the node asked over every node that
// sent the subset requests (each gossips its own), so a step is judged on
// all the edges' traffic, not the share that passed through one.
func watch(c *cli.Context, s *session, upstream string) (bool, string) {
	deadline := time.Now().Add(c.Duration("interval"))
	var last *adminv1.UpstreamStatsResponse
	for time.Now().Before(deadline) {
		select {
		case <-c.Context.Done():
			return true, "interrupted"
		case <-time.After(min(2*time.Second, time.Until(deadline))):
		}
		ctx, cancel := s.call(c)
		st, err := s.client.UpstreamStats(ctx, &adminv1.UpstreamStatsRequest{Upstream: upstream})
		cancel()
		if err != nil {
			continue // the next poll may reach it; the step's verdict does not rest on one call
		}
		last = st
		if st.Requests < uint64(c.Int("min-requests")) {
			continue
		}
		rate := float64(st.Errors) / float64(st.Requests)
		if rate > c.Float64("max-error-rate") {
			return true, fmt.Sprintf("error rate %.1f%% over %d requests exceeds %.1f%% (%s)", 100*rate, st.Requests, 100*c.Float64("max-error-rate"), mergedFrom(st))
		}
		if p99 := time.Duration(st.P99Ms * float64(time.Millisecond)); p99 > c.Duration("max-p99") {
			return true, fmt.Sprintf("p99 latency %s over %d requests exceeds %s (%s)", p99.Round(time.Millisecond), st.Requests, c.Duration("max-p99"), mergedFrom(st))
		}
	}
	switch {
	case last == nil:
		fmt.Fprintf(stdout, "  no stats of %s reached meshctl during the step: not judged\n", upstream)
	case last.Requests < uint64(c.Int("min-requests")):
		fmt.Fprintf(stdout, "  %d requests to %s (%s), fewer than --min-requests %d: not judged\n", last.Requests, upstream, mergedFrom(last), c.Int("min-requests"))
	default:
		fmt.Fprintf(stdout, "  %d requests to %s, %.1f%% errors, p99 %s (%s)\n", last.Requests, upstream,
			100*float64(last.Errors)/float64(last.Requests), time.Duration(last.P99Ms*float64(time.Millisecond)).Round(time.Millisecond), mergedFrom(last))
	}
	return false, ""
}

// mergedFrom says whose traffic the figures are: "merged from 2 edges",
// or "merged from 1 edge and 1 sidecar".
func mergedFrom(st *adminv1.UpstreamStatsResponse) string {
	counts := map[string]int{}
	for _, n := range st.Nodes {
		counts[n.Role]++
	}
	var parts []string
	for _, role := range []string{"edge", "sidecar"} {
		if n := counts[role]; n > 0 {
			parts = append(parts, plural(n, role))
			delete(counts, role)
		}
	}
	other := 0
	for _, n := range counts {
		other += n
	}
	if other > 0 {
		parts = append(parts, plural(other, "node"))
	}
	if len(parts) == 0 {
		return "no node has sent it requests"
	}
	return "merged from " + strings.Join(parts, " and ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func parseSteps(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		w, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || w < 0 || w > 100 {
			return nil, fmt.Errorf("--steps %q: want percents 0..100 separated by commas, e.g. 10,25,50,100", s)
		}
		if len(out) > 0 && w <= out[len(out)-1] {
			return nil, fmt.Errorf("--steps %q: each step must be larger than the one before", s)
		}
		out = append(out, w)
	}
	return out, nil
}
