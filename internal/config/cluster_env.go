package config

import (
	"net"
	"net/netip"
	"os"
	"strings"
)

// ClusterAdvertiseEnv fills cluster.advertise when a file leaves it unset.
// A Kubernetes pod learns its IP only when it starts (the downward API's
// status.podIP), after its ConfigMap was written: the variable lets one
// file serve every replica. As with the OpenTelemetry variables, the file
// wins where it says something.
const ClusterAdvertiseEnv = "MESHGATE_CLUSTER_ADVERTISE"

// applyClusterEnv sets cl.Advertise from the environment (nil-safe).
func applyClusterEnv(cl *Cluster) {
	if cl != nil {
		clusterFromEnv(cl, os.Getenv)
	}
}

// clusterFromEnv fills cl.Advertise from ClusterAdvertiseEnv: host:port, or
// a bare IP (what status.podIP gives, IPv6 included) with the port of
// cl.Bind. A value that is neither is left for validation to refuse.
func clusterFromEnv(cl *Cluster, getenv func(string) string) {
	v := strings.TrimSpace(getenv(ClusterAdvertiseEnv))
	if cl.Advertise != "" || v == "" {
		return
	}
	if ip, err := netip.ParseAddr(v); err == nil {
		_, port, err := net.SplitHostPort(cl.Bind)
		if err != nil {
			port = "0" // an invalid bind is reported on its own
		}
		v = net.JoinHostPort(ip.String(), port)
	}
	cl.Advertise = v
}
