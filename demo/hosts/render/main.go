// Command render writes the several-host demo's files for the Vagrant VMs:
// one directory per host, as package demo/hosts renders them (profile
// Vagrant), plus the trust domain's name for prepare.sh.
//
//	go run ./demo/hosts/render -out demo/hosts/out
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/meshgate/meshgate/demo/hosts"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	out := fs.String("out", "", "output directory: OUT/HOST/... for every host, OUT/trust-domain")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("usage: render -out DIR")
	}
	p := hosts.Vagrant()
	for _, h := range hosts.Topology() {
		files, err := hosts.Render(p, h.Name)
		if err != nil {
			return err
		}
		dir := filepath.Join(*out, h.Name)
		// A file a former topology rendered must not linger and be installed.
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := hosts.Write(dir, files); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(*out, "trust-domain"), []byte(hosts.TrustDomain+"\n"), 0o644)
}
