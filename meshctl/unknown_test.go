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

// `meshctl routes --help` is the routes command's help, listing its
// subcommands: the help flag stays with the command it follows (moved to
// the front, it asked for the app's help on "routes", which urfave/cli
// prints before the command's subcommands are set up: no COMMANDS).
func TestHelpFlagStaysWithItsCommand(t *testing.T) {
	app := newApp()
	for _, args := range [][]string{
		{"meshctl", "routes", "--help"},
		{"meshctl", "routes", "-h"},
		{"meshctl", "traffic", "shift", "--help"},
	} {
		if got := interspersed(app, args); strings.Join(got, " ") != strings.Join(args, " ") {
			t.Errorf("%v became %v", args, got)
		}
	}
	// Global flags still move to the front.
	if got := interspersed(app, []string{"meshctl", "members", "-o", "json"}); strings.Join(got, " ") != "meshctl -o json members" {
		t.Errorf("global flag: %v", got)
	}
}
