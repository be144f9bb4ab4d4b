package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// A mistyped command is a usage error (exit 2) that names the closest
// command, not "No help topic" (exit 3).
func TestUnknownCommandSuggestsTheClosest(t *testing.T) {
	for typed, want := range map[string]string{"membres": "members", "rotues": "routes", "breakrs": "breakers"} {
		err := run([]string{"meshctl", typed})
		var ec cli.ExitCoder
		if !errors.As(err, &ec) || ec.ExitCode() != 2 {
			t.Errorf("meshctl %s: %v, want a usage error with exit code 2", typed, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, `unknown command "`+typed+`"`) || !strings.Contains(msg, `"`+want+`"`) {
			t.Errorf("meshctl %s: %q, want it to suggest %q", typed, msg, want)
		}
	}
	if err := run([]string{"meshctl"}); err != nil {
		t.Errorf("meshctl alone (help): %v", err)
	}
}
