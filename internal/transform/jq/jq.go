package jq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/itchyny/gojq"
)

// Defaults applied when an Options field is zero or negative.
//
// DefaultTimeout is wall-clock time, which on a saturated core includes
// the run's wait to be scheduled: it is there to stop runaway expressions
// (range(1e9)), not to judge healthy ones, and 50 ms was reached by a
// 40 µs expression queued behind 50 requests on one loaded core (1 in
// 42,000 requests of the transform bench answered 502).
const (
	DefaultTimeout  = 250 * time.Millisecond
	DefaultMaxBytes = 1 << 20
)

// maxRunErrorLen bounds the message of a RunError (a jq error may quote
// values of the body).
const maxRunErrorLen = 1024

// Options bound a Program.
type Options struct {
	// Timeout bounds one Run (default 50ms).
	Timeout time.Duration
	// MaxBytes bounds the input body and the encoded output (default 1 MiB).
	MaxBytes int
	// Vars are the variables the expression may use, such as "$consumer"
	// or "consumer" (the "$" is optional). Run takes their values in the
	// same order.
	Vars []string
}

var (
	// ErrTimeout is returned (wrapped) when a run exceeds Options.Timeout
	// or the caller's context deadline.
	ErrTimeout = errors.New("jq: run timed out")
	// ErrTooLarge is returned (wrapped) when the input body or the encoded
	// output exceeds Options.MaxBytes.
	ErrTooLarge = errors.New("jq: body too large")
	// ErrInvalidInput is returned (wrapped) when the input body is not
	// exactly one JSON value.
	ErrInvalidInput = errors.New("jq: input is not valid JSON")
)

// RunError is an error raised by the expression itself: error/1, a type
// error, an index out of range, no result or more than one. Msg is jq's
// message (at most 1 KiB; it may quote values of the body), fit for an
// operator's log; a client should get a short status reason instead.
type RunError struct {
	Msg string
}

func (e *RunError) Error() string { return "jq: " + e.Msg }

// CompileError is a parse or compile error. Line and Column (1-based,
// columns in characters) locate it in the expression; they are 0 when
// unknown. The message quotes only the expression, so it is safe to show
// where configuration is validated.
type CompileError struct {
	Line, Column int
	Msg          string
}

func (e *CompileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("jq: line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
	return "jq: " + e.Msg
}

// Program is a compiled expression. It is safe for concurrent use.
type Program struct {
	code     *gojq.Code
	need     *need     // what of the body the expression can observe (nil: all)
	fast     *fastExpr // the expression's fast form (nil: none; see fast.go)
	expr     string
	vars     []string
	timeout  time.Duration
	maxBytes int
}

// Compile parses and compiles expr once. Functions that reach outside the
// body (env, $ENV, input, inputs, debug, stderr, input_filename, halt,
// halt_error, modules) are refused here; see the package documentation.
func Compile(expr string, o Options) (*Program, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	vars, err := varNames(o.Vars)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(expr) == "" {
		return nil, &CompileError{Msg: "empty expression"}
	}
	q, err := gojq.Parse(expr)
	if err != nil {
		var pe *gojq.ParseError
		if errors.As(err, &pe) {
			// Offset is where the offending token ends.
			line, col := lineCol(expr, pe.Offset-len(pe.Token))
			return nil, &CompileError{Line: line, Column: col, Msg: "syntax error: " + pe.Error()}
		}
		return nil, &CompileError{Msg: err.Error()}
	}
	if err := refuse(expr, q); err != nil {
		return nil, err
	}
	// No module loader, no environ loader, no input iterator: gojq's
	// defaults, which keep the expression away from files, the process
	// environment and other inputs.
	code, err := gojq.Compile(q, gojq.WithVariables(vars))
	if err != nil {
		return nil, compileError(expr, err)
	}
	return &Program{code: code, need: projection(q), fast: compileFast(q, vars, o.MaxBytes), expr: expr, vars: vars, timeout: o.Timeout, maxBytes: o.MaxBytes}, nil
}

// String returns the expression.
func (p *Program) String() string { return p.expr }

// Vars returns the variable names (with "$") in the order Run takes them.
func (p *Program) Vars() []string { return append([]string(nil), p.vars...) }

func varNames(names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if !strings.HasPrefix(n, "$") {
			n = "$" + n
		}
		if !validVarName(n) {
			return nil, &CompileError{Msg: fmt.Sprintf("invalid variable name %q", n)}
		}
		if n == "$ENV" || n == "$__loc__" {
			return nil, &CompileError{Msg: fmt.Sprintf("variable name %s is reserved", n)}
		}
		if seen[n] {
			return nil, &CompileError{Msg: fmt.Sprintf("variable %s declared twice", n)}
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

func validVarName(n string) bool {
	if len(n) < 2 || n[0] != '$' {
		return false
	}
	for i := 1; i < len(n); i++ {
		c := n[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 1 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// stragglers counts runs whose caller has been answered ErrTimeout while
// a single gojq step is still executing on the run's goroutine.
var stragglers atomic.Int64

// Stragglers reports how many timed-out runs are still finishing a single
// uninterruptible gojq step (see the package documentation). Export it as
// a gauge: a value that stays above zero means an expression is doing
// too much work per step.
func Stragglers() int64 { return stragglers.Load() }

// Run applies the program to one JSON body. vars are the values of
// Options.Vars, in order; they may be nil, bool, numbers, strings, []any,
// map[string]any, and common Go forms of these ([]string,
// map[string]string, map[string][]string, other integer types...).
//
// Errors: ErrTooLarge (input or output over MaxBytes), ErrInvalidInput,
// ErrTimeout (all wrapped), *RunError, or the caller's context.Canceled.
// Run does not modify body or vars.
func (p *Program) Run(ctx context.Context, body []byte, vars []any) ([]byte, error) {
	if len(body) > p.maxBytes {
		return nil, fmt.Errorf("%w: input is %d bytes, limit %d", ErrTooLarge, len(body), p.maxBytes)
	}
	if len(vars) != len(p.vars) {
		return nil, fmt.Errorf("jq: %d variable values for %d variables %v", len(vars), len(p.vars), p.vars)
	}
	var values []any
	if len(vars) > 0 {
		values = make([]any, len(vars))
		for i, v := range vars {
			var err error
			if values[i], err = normalize(v); err != nil {
				return nil, fmt.Errorf("jq: value of %s: %w", p.vars[i], err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, p.ctxError(err)
	}
	if p.fast != nil {
		if out, ok := runFast(p.fast, body, values, p.maxBytes); ok {
			return out, nil
		}
	}
	in, err := decodeFor(body, p.need)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	return p.runOnWorker(rctx, in, values)
}

func (p *Program) ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (limit %v)", ErrTimeout, p.timeout)
	}
	return fmt.Errorf("jq: %w", err)
}

func (p *Program) run(ctx context.Context, in any, vars []any) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &RunError{Msg: truncate(fmt.Sprintf("internal error: %v", r))}
		}
	}()
	iter := p.code.RunWithContext(ctx, in, vars...)
	v, ok := iter.Next()
	if !ok {
		return nil, &RunError{Msg: "expression produced no value (a transform must yield exactly one)"}
	}
	if err, ok := v.(error); ok {
		return nil, p.iterError(ctx, err)
	}
	switch w, ok := iter.Next(); {
	case !ok:
	case isError(w):
		return nil, p.iterError(ctx, w.(error))
	default:
		return nil, &RunError{Msg: "expression produced more than one value (a transform must yield exactly one; collect them with [...] if an array is meant)"}
	}
	return encode(v, p.maxBytes)
}

func isError(v any) bool { _, ok := v.(error); return ok }

func (p *Program) iterError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		return p.ctxError(cerr)
	}
	// error(v) formats v whole in its message: encode it under a bound
	// instead (v may be as large as anything the run built).
	var ve gojq.ValueError
	if errors.As(err, &ve) {
		switch v := ve.Value().(type) {
		case string:
			return &RunError{Msg: "error: " + truncate(v)}
		default:
			b, eerr := encode(v, maxRunErrorLen)
			if eerr != nil {
				return &RunError{Msg: "error: (a value over 1 KiB)"}
			}
			return &RunError{Msg: "error: " + string(b)}
		}
	}
	return &RunError{Msg: truncate(err.Error())}
}

func truncate(s string) string {
	if len(s) <= maxRunErrorLen {
		return s
	}
	i := maxRunErrorLen
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + " ..."
}
