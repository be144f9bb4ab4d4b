package main

import (
	"bytes"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// FuzzInject feeds inject arbitrary streams (seeds: testdata/fuzz/FuzzInject,
// replayed by every go test). Whatever the input: no panic; and when it is
// injected, the output injects to itself (idempotence), and it keeps the
// documents inject does not rewrite.
func FuzzInject(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, ports: [{containerPort: 80}]}]}\n"))
	o := &injectOptions{image: "sidecar", version: "1", edge: "edge:7946", trustDomain: spiffeid.RequireTrustDomainFromString("example.org"),
		identity: identityCSI, identityPath: "spire-agent.sock", outbound: []outboundService{{"payments", 15002}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		r, err := injectManifests("fuzz", data, o)
		if err != nil {
			return
		}
		out := r.output()
		again, err := injectManifests("fuzz", out, o)
		if err != nil {
			t.Fatalf("the output of an injection is refused: %v\ninput:\n%q\noutput:\n%s", err, data, out)
		}
		if twice := again.output(); !bytes.Equal(twice, out) {
			t.Fatalf("injecting twice differs from once:\ninput:\n%q\nonce:\n%s\ntwice:\n%s", data, out, twice)
		}
		for _, p := range r.pieces {
			if bytes.Equal(p.old, p.new) && !bytes.Contains(out, p.old) {
				t.Fatalf("a document passed through is not in the output: %q", p.old)
			}
		}
	})
}
