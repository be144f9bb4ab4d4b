package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The validate command exits non-zero with file:line:col errors, and zero
// with "ok" for a good file. Run as a real process to see the exit code.
func TestValidateCommand(t *testing.T) {
	if os.Getenv("EDGE_MAIN") == "1" {
		os.Args = append([]string{"edge"}, strings.Fields(os.Getenv("EDGE_ARGS"))...)
		main()
		os.Exit(0)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("listeners: [{name: l, address: \"127.0.0.1:0\"}]\n"), 0o644)
	os.WriteFile(bad, []byte("listeners: [{name: l, address: \"127.0.0.1:0\"}]\nroutes:\n  - name: r\n    upstream: missing\n"), 0o644)

	run := func(args string) (string, int) {
		cmd := exec.Command(os.Args[0], "-test.run=TestValidateCommand")
		cmd.Env = append(os.Environ(), "EDGE_MAIN=1", "EDGE_ARGS="+args)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	if out, code := run("validate --config " + good); code != 0 || !strings.Contains(out, "good.yaml: ok") {
		t.Fatalf("good file: exit %d: %s", code, out)
	}
	out, code := run("validate --config " + bad)
	if code == 0 || !strings.Contains(out, "bad.yaml:4:15: route \"r\": unknown upstream \"missing\"") {
		t.Fatalf("bad file: exit %d: %s", code, out)
	}
	if out, code := run("validate --config " + filepath.Join(dir, "none.yaml")); code == 0 || !strings.Contains(out, "no such file") {
		t.Fatalf("missing file: exit %d: %s", code, out)
	}
}
