package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// problemLog collects a suite's (or a target's) non-fatal errors: each is
// printed as it happens, the measurement goes on, and the run fails at the
// end with all of them.
type problemLog struct {
	// scope names whose problems these are in the printed line (a suite
	// or a target).
	scope    string
	problems []string
}

func (p *problemLog) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.problems = append(p.problems, msg)
	fmt.Fprintf(os.Stderr, "bench: ERROR: %s: %s\n", p.scope, msg)
}

// failed reports whether there was any problem.
func (p *problemLog) failed() bool { return len(p.problems) > 0 }

// summary is every problem, first lines only, for JSON and errors.
func (p *problemLog) summary() string { return firstLines(strings.Join(p.problems, "; ")) }

// err is the run's error: nil without problems.
func (p *problemLog) err() error {
	if !p.failed() {
		return nil
	}
	return errors.New(p.summary())
}

// report ends a suite: its table, then its JSON fragment (result), printed
// and returned, with the problems as the error.
func (p *problemLog) report(suite string, table func(io.Writer), result any) (json.RawMessage, error) {
	fmt.Println()
	table(os.Stdout)
	frag, err := json.Marshal(result)
	if err != nil {
		return nil, err
	}
	fmt.Printf("%s JSON: %s\n", suite, frag)
	return frag, p.err()
}
