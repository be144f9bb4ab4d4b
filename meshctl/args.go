package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// run is meshctl on args, with flags allowed anywhere.
func run(args []string) error {
	app := newApp()
	return app.Run(interspersed(app, args))
}

// interspersed moves flags written after a command's arguments (`meshctl
// traffic shift orders --to v2 --weight 10`) before them, where urfave/cli
// v2 parses flags, and the global flags (`meshctl members -o json`) to
// the front.
func interspersed(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	// Shell completion asks with this flag last (completion.go), where
	// urfave/cli looks for it: keep it there.
	if n := len(args); n > 1 && args[n-1] == "--"+cli.BashCompletionFlag.Names()[0] {
		return append(interspersed(app, args[:n-1]), args[n-1])
	}
	global := []string{args[0]}
	var path, local, positional []string
	cmds, flags := app.Commands, app.Flags
	i := 1
	for ; i < len(args); i++ {
		a := args[i]
		if len(path) > 0 && (a == "--help" || a == "-h") {
			// The command's help, not the app's: urfave/cli prints the
			// app's help on a command before setting that command up,
			// without its subcommands.
			local = append(local, a)
			continue
		}
		if isFlag(a) {
			n := 1 + valueCount(app.Flags, a, args, i)
			global = append(global, args[i:min(i+n, len(args))]...)
			i += n - 1
			continue
		}
		c := findCommand(cmds, a)
		if c == nil {
			break
		}
		path = append(path, a)
		cmds, flags = c.Subcommands, c.Flags
		if len(cmds) == 0 {
			i++
			break
		}
	}
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i:]...)
			i = len(args)
		case isFlag(a) && hasFlag(flags, a):
			n := 1 + valueCount(flags, a, args, i)
			local = append(local, args[i:min(i+n, len(args))]...)
			i += n - 1
		case isFlag(a) && hasFlag(app.Flags, a):
			n := 1 + valueCount(app.Flags, a, args, i)
			global = append(global, args[i:min(i+n, len(args))]...)
			i += n - 1
		default:
			positional = append(positional, a)
		}
	}
	out := append(global, path...)
	out = append(out, local...)
	return append(out, positional...)
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

func flagName(a string) string {
	name := strings.TrimLeft(a, "-")
	name, _, _ = strings.Cut(name, "=")
	return name
}

func lookup(flags []cli.Flag, a string) cli.Flag {
	name := flagName(a)
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func hasFlag(flags []cli.Flag, a string) bool { return lookup(flags, a) != nil }

// valueCount is 1 when the flag takes its value from the next argument.
func valueCount(flags []cli.Flag, a string, args []string, i int) int {
	f := lookup(flags, a)
	if f == nil || strings.Contains(a, "=") || i+1 >= len(args) {
		return 0
	}
	if _, ok := f.(*cli.BoolFlag); ok {
		return 0
	}
	return 1
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
