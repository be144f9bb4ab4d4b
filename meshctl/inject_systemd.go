package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

// A VM runs its service and the service's sidecar as systemd units, as the
// Vagrant demo's hosts do (demo/hosts/systemd): the unit below is their
// meshgate-sidecar@.service made concrete for one service, with its config
// in /etc/meshgate and its SVID files (meshctl pki issue) in
// /etc/meshgate/identity/SERVICE.

const (
	vmConfigDir   = "/etc/meshgate"
	vmUnitDir     = "/etc/systemd/system"
	vmIdentityDir = "/etc/meshgate/identity"
)

func injectSystemd(c *cli.Context, o *injectOptions) error {
	if c.IsSet("file") || c.Bool("dry-run") {
		return cli.Exit("meshctl inject --systemd: -f and --dry-run are for Kubernetes manifests", 2)
	}
	var missing []string
	for _, f := range []string{"service", "app-port", "address"} {
		if !c.IsSet(f) {
			missing = append(missing, "--"+f)
		}
	}
	if len(missing) > 0 {
		return cli.Exit("meshctl inject --systemd: "+strings.Join(missing, ", ")+" required (the service, its app's port, and the VM's IP the mesh reaches)", 2)
	}
	ip, err := netip.ParseAddr(o.address)
	if err != nil || ip.IsUnspecified() {
		return cli.Exit(fmt.Sprintf("meshctl inject --systemd: --address %q: the VM's IP, which other nodes reach", o.address), 2)
	}
	unit, cfg, err := systemdFiles(o)
	if err != nil {
		return cli.Exit("meshctl inject --systemd: "+err.Error(), 1)
	}
	unitName, cfgName := "meshgate-sidecar-"+o.service+".service", "sidecar-"+o.service+".yaml"
	if dir := c.String("out"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		err := errors.Join(os.WriteFile(filepath.Join(dir, unitName), unit, 0o644),
			os.WriteFile(filepath.Join(dir, cfgName), cfg, 0o644))
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "meshctl inject: wrote %s and %s into %s\n", unitName, cfgName, dir)
	} else {
		fmt.Fprintf(stdout, "### %s/%s\n%s\n### %s/%s\n%s", vmUnitDir, unitName, unit, vmConfigDir, cfgName, cfg)
	}
	for _, kv := range o.outboundEnv() {
		fmt.Fprintf(stderr, "meshctl inject: tell the app (in %s): Environment=%s=%s\n", o.appUnitName(), kv[0], kv[1])
	}
	fmt.Fprintf(stderr, "meshctl inject: install the unit in %s and the config in %s, then: systemctl daemon-reload && systemctl enable --now %s\n",
		vmUnitDir, vmConfigDir, unitName)
	return nil
}

// systemdFiles are the unit and the config of o.service's sidecar.
func systemdFiles(o *injectOptions) (unit, cfg []byte, err error) {
	sp := sidecarSpec{name: o.service, subset: o.subset, appPort: o.appPort, host: o.address, adminHost: "127.0.0.1",
		header: fmt.Sprintf("# The sidecar of service %s on %s, written by meshctl inject --systemd; fields: docs/sidecar.md.\n", o.service, o.address)}
	switch o.identity {
	case identitySpire:
		sp.workloadAPI = "unix://" + o.identityPath
	default: // files, the default on a VM
		dir := o.identityPath
		if dir == "" {
			dir = vmIdentityDir + "/" + o.service
		}
		sp.files = &filesConfig{CertFile: dir + "/svid.pem", KeyFile: dir + "/svid_key.pem", BundleFile: dir + "/bundle.pem"}
	}
	if cfg, err = sidecarConfig(o, sp); err != nil {
		return nil, nil, err
	}
	app := o.appUnitName()
	config := vmConfigDir + "/sidecar-" + o.service + ".yaml"
	return []byte(fmt.Sprintf(systemdUnit, o.service, o.service, app, app, config, config)), cfg, nil
}

// systemdUnit is demo/hosts/systemd/meshgate-sidecar@.service for one
// service: %s service ×2, the app's unit ×2, the config ×2.
const systemdUnit = `# The meshgate sidecar of %s, written by meshctl inject --systemd.
[Unit]
Description=meshgate sidecar of %s
Documentation=https://github.com/meshgate/meshgate/blob/main/docs/sidecar.md
Wants=network-online.target %s
After=network-online.target %s

[Service]
Type=simple
User=meshgate
Group=meshgate
ExecStartPre=/usr/local/bin/sidecar validate --config %s
ExecStart=/usr/local/bin/sidecar --config %s
# SIGHUP reloads the file (so does saving it); SIGTERM drains.
ExecReload=/bin/kill -HUP $MAINPID
TimeoutStopSec=40
Restart=on-failure
RestartSec=2
LimitNOFILE=65536
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX

[Install]
WantedBy=multi-user.target
`

// appUnitName is --app-unit, else SERVICE.service.
func (o *injectOptions) appUnitName() string {
	if o.appUnit != "" {
		return o.appUnit
	}
	return o.service + ".service"
}
