package main

import (
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/urfave/cli/v2"
)

// maxManifest bounds what inject reads: manifests are KiBs, and the fuzz
// test's inputs stay far below.
const maxManifest = 16 << 20

// injectCommand is `meshctl inject`: the sidecar beside each workload of
// Kubernetes manifests, or (--systemd) beside one service on a VM.
func injectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inject",
		Usage:     "add the meshgate sidecar to Kubernetes workloads (Deployment, StatefulSet, DaemonSet, Pod), or print a VM's sidecar unit (--systemd)",
		ArgsUsage: " ",
		UsageText: "meshctl inject -f app.yaml [--edge HOST:PORT] [--outbound SERVICE[=PORT]]... [--dry-run] > app-injected.yaml\n" +
			"meshctl inject --systemd --service NAME --app-port PORT --address IP --edge HOST:PORT [--out DIR]",
		Description: "Each workload gets a meshgate-sidecar container, its config in a ConfigMap named WORKLOAD-meshgate-sidecar\n" +
			"(written before it), its SPIFFE identity from the SPIFFE CSI driver (or a SPIRE agent's socket on the\n" +
			"node), and, with --outbound, variables that tell the app where the sidecar's outbound listeners are\n" +
			"(MESHGATE_OUTBOUND=127.0.0.1:15001, MESHGATE_OUTBOUND_SERVICE=127.0.0.1:PORT): no traffic is captured.\n" +
			"Other documents are copied as they are; a workload with a meshgate-sidecar container, or annotated\n" +
			"meshgate.io/inject: \"false\", is left alone, so injecting twice is injecting once. Notes and warnings\n" +
			"go to stderr. See docs/sidecar.md, \"Kubernetes: meshctl inject\".",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the manifests (`FILE`, - or none for stdin)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print a unified diff of the change instead of the manifests"},
			&cli.StringFlag{Name: "image", Value: "ghcr.io/meshgate/sidecar", Usage: "the sidecar's image (`REPOSITORY`, its entrypoint the sidecar binary)"},
			&cli.StringFlag{Name: "image-version", Value: defaultImageVersion(), Usage: "the sidecar image's `TAG` (default: this meshctl's version)"},
			&cli.StringFlag{Name: "service", Usage: "the mesh service's `NAME` (default: the pod's app.kubernetes.io/name or app label, else the workload's name)"},
			&cli.StringFlag{Name: "subset", Usage: "the service's subset, `LABEL` (default: the pod's version label)"},
			&cli.IntFlag{Name: "app-port", Usage: "the app's `PORT` (default: the first containerPort of the pod's first container)"},
			&cli.StringFlag{Name: "edge", Value: "meshgate-edge-gossip:7946", Usage: "the cluster to join: an edge's gossip address (`HOST:PORT`)"},
			&cli.StringFlag{Name: "trust-domain", Value: "example.org", Usage: "the mesh's SPIFFE trust domain (`NAME`): who may join the cluster"},
			&cli.StringFlag{Name: "identity", Usage: "where the SVID comes from: csi[=SOCKET] (the SPIFFE CSI driver; the default), spire-agent-socket=PATH " +
				"(the SPIRE agent's socket on the node), files[=DIR] (--systemd's default: /etc/meshgate/identity/SERVICE)"},
			&cli.StringSliceFlag{Name: "allow", Usage: "a SPIFFE ID (`PATTERN`) that may call the service (repeatable; default: any of the trust domain)"},
			&cli.StringSliceFlag{Name: "edge-id", Usage: "an edge's SPIFFE ID (`PATTERN`, repeatable) whose X-Meshgate-Consumer the service believes"},
			&cli.StringSliceFlag{Name: "outbound", Usage: "a mesh service the app calls (`SERVICE[=PORT]`, repeatable): a local port leading to it, from 15002"},
			&cli.BoolFlag{Name: "systemd", Usage: "print a VM's sidecar: a systemd unit and its config, for --service"},
			&cli.StringFlag{Name: "address", Usage: "--systemd: the VM's `IP`, where the sidecar listens for the mesh"},
			&cli.StringFlag{Name: "app-unit", Usage: "--systemd: the app's systemd `UNIT` (default: SERVICE.service)"},
			&cli.IntFlag{Name: "port-offset", Usage: "--systemd: add `N` to each of the sidecar's ports (15443 inbound, 7946 gossip, 15020 admin, 15001 and up outbound), for a second service on the host"},
			&cli.StringFlag{Name: "out", Usage: "--systemd: write the two files into `DIR` instead of printing them"},
		},
		Action: injectAction,
	}
}

func injectAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("meshctl inject: unexpected arguments %q (the manifests come with -f FILE or on stdin)", c.Args().Slice()), 2)
	}
	o, err := injectOptionsOf(c)
	if err != nil {
		return cli.Exit("meshctl inject: "+err.Error(), 2)
	}
	if c.Bool("systemd") {
		return injectSystemd(c, o)
	}
	for _, f := range []string{"address", "app-unit", "out", "port-offset"} {
		if c.IsSet(f) {
			return cli.Exit(fmt.Sprintf("meshctl inject: --%s goes with --systemd", f), 2)
		}
	}
	file := c.String("file")
	if file == "" {
		file = "-"
	}
	data, err := readBounded(file, maxManifest)
	if err != nil {
		return err
	}
	name := file
	if name == "-" {
		name = "stdin"
	}
	r, err := injectManifests(name, data, o)
	if err != nil {
		return err
	}
	for _, n := range r.notes {
		fmt.Fprintln(stderr, "meshctl inject: "+n)
	}
	if c.Bool("dry-run") {
		d := unifiedDiff(name, name+" (injected)", r.pieces)
		if d == "" {
			fmt.Fprintln(stderr, "meshctl inject: nothing to change")
		}
		_, err = fmt.Fprint(stdout, d)
		return err
	}
	_, err = stdout.Write(r.output())
	return err
}

// injectOptionsOf reads and checks the flags.
func injectOptionsOf(c *cli.Context) (*injectOptions, error) {
	o := &injectOptions{image: c.String("image"), version: c.String("image-version"), service: c.String("service"),
		subset: c.String("subset"), appPort: c.Int("app-port"), edge: c.String("edge"),
		allow: c.StringSlice("allow"), edgeIDs: c.StringSlice("edge-id"),
		address: c.String("address"), appUnit: c.String("app-unit")}
	var err error
	if o.trustDomain, err = spiffeid.TrustDomainFromString(c.String("trust-domain")); err != nil {
		return nil, fmt.Errorf("--trust-domain %q: %v", c.String("trust-domain"), err)
	}
	identity := c.String("identity")
	if identity == "" {
		identity = identityCSI
		if c.Bool("systemd") {
			identity = identityFiles
		}
	}
	if o.identity, o.identityPath, err = parseIdentity(identity, c.Bool("systemd")); err != nil {
		return nil, err
	}
	if c.IsSet("port-offset") && !c.Bool("systemd") {
		return nil, fmt.Errorf("--port-offset goes with --systemd: every pod has the same ports")
	}
	if o.portOffset = c.Int("port-offset"); o.portOffset < 0 || o.portOffset > 40000 {
		return nil, fmt.Errorf("--port-offset %d: want 0..40000", o.portOffset)
	}
	if o.outbound, err = parseOutbound(c.StringSlice("outbound"), o.port(firstOutboundPort)); err != nil {
		return nil, err
	}
	if c.IsSet("app-port") && (o.appPort < 1 || o.appPort > 65535) {
		return nil, fmt.Errorf("--app-port %d: want 1..65535", o.appPort)
	}
	if o.image == "" || strings.ContainsAny(o.image, " \t\n@") || strings.Contains(baseName(o.image), ":") {
		return nil, fmt.Errorf("--image %q: the repository alone (the tag is --image-version)", o.image)
	}
	if o.version == "" || strings.ContainsAny(o.version, " \t\n:/@") {
		return nil, fmt.Errorf("--image-version %q: a tag", o.version)
	}
	return o, nil
}
