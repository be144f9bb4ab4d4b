package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// -o json and -o yaml print 64-bit integers as numbers (protojson writes
// them as strings), keep the other types as they are, and print every
// field, set or not.
func TestOutputPrintsIntegersAsNumbers(t *testing.T) {
	msg := &adminv1.ListLimitsResponse{Limits: []*adminv1.Limit{
		{Route: "orders", Key: "42", Limit: 100000, WindowMs: 60000, Estimate: 12.5, Local: 7, Reporters: 3},
		{Route: "big", Limit: 9007199254740993}, // past float64's exact integers
	}}
	var out bytes.Buffer
	stdout = &out
	defer func() { stdout = os.Stdout }()
	if err := render("json", msg, "", nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"limit": 100000`, `"window_ms": 60000`, `"local": 7`, `"reporters": 3`,
		`"estimate": 12.5`, `"key": "42"`, `"limit": 9007199254740993`, `"key": ""`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-o json: no %s in\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := render("yaml", msg, "", nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"limit: 100000\n", "window_ms: 60000\n", `key: "42"`, "limit: 9007199254740993\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-o yaml: no %q in\n%s", want, out.String())
		}
	}
}
