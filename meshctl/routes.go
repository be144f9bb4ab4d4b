package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/meshgate/meshgate/internal/config"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// listFlags are the flags of `KIND list`: routes can be narrowed to one
// Backend-for-Frontend group.
func listFlags(kind string) []cli.Flag {
	if kind != config.KindRoute {
		return nil
	}
	return []cli.Flag{&cli.StringFlag{Name: "bff", Usage: "only the routes of the Backend-for-Frontend group `NAME` (bff[].name)"}}
}

// listRoutes lists the node's routes with what serves each (an upstream, a
// split or a composite's calls) and its BFF group; bff, when set, keeps the
// routes of that group only (in every output format).
func listRoutes(s *session, r *adminv1.ListResourcesResponse, bff string) error {
	routes := make(map[string]config.Route, len(r.Resources))
	kept := r.Resources[:0:0]
	for _, x := range r.Resources {
		rt, _ := config.DecodeRoute(x.Name, []byte(x.Yaml))
		routes[x.Name] = rt
		if bff == "" || rt.BFF == bff {
			kept = append(kept, x)
		}
	}
	if bff != "" && len(kept) == 0 {
		return fmt.Errorf("no route of bff group %q on this node", bff)
	}
	r.Resources = kept
	return render(s.out, r, "NAME\tSERVED BY\tBFF\tORIGIN\tVERSION", func(w io.Writer) {
		for _, x := range r.Resources {
			rt := routes[x.Name]
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", x.Name, dash(servedBy(rt)), dash(rt.BFF), x.Origin, dash(x.Version))
		}
	})
}

// servedBy says what answers a route: "orders", "split orders-v1 90,
// orders-v2 10" or "aggregate item, price, stock".
func servedBy(rt config.Route) string {
	switch {
	case rt.Aggregate != nil:
		names := make([]string, len(rt.Aggregate.Calls))
		for i, c := range rt.Aggregate.Calls {
			names[i] = c.Name
			if names[i] == "" {
				names[i] = c.Use
			}
		}
		return "aggregate " + strings.Join(names, ", ")
	case len(rt.Split) > 0:
		parts := make([]string, len(rt.Split))
		for i, t := range rt.Split {
			parts[i] = fmt.Sprintf("%s %d", t.Upstream, t.WeightOrZero())
		}
		return "split " + strings.Join(parts, ", ")
	}
	return rt.Upstream
}
