// Package jq runs jq expressions as body transforms, for what the
// declarative JSON mapping cannot say. It uses gojq
// (github.com/itchyny/gojq), a pure-Go jq: an expression is compiled once
// per configuration snapshot (Compile) and run per request (Program.Run,
// safe for concurrent use) on one JSON body, with per-request variables
// such as $consumer, $client_ip, $request_id, $path, $query, $headers and
// $claims (the names are given to Compile, the values to Run).
//
// # Results
//
// The body must be exactly one JSON value (ErrInvalidInput otherwise,
// including an empty body: a caller that builds a body from the
// variables alone passes null).
//
// The expression must yield exactly one value; no value or several are a
// *RunError. Several values are not collected into an array: a transform
// replaces one body with one body, and a generator yielding several (say
// .items[] where .item was meant) would otherwise change the body's shape
// silently with the data; an operator who wants an array writes [...].
// The value is written as compact JSON, byte for byte as gojq's encoder
// writes it: NaN as null,
// ±infinity as ±1.7976931348623157e+308, invalid UTF-8 as U+FFFD, and
// '<', '>', '&', U+2028 and U+2029 unescaped.
//
// Key order: gojq holds objects as Go maps, so every object written —
// even one passed through untouched by "." — has its keys sorted (by
// bytes, i.e. by code point), and a duplicate key keeps its last value.
// The declarative mapping (internal/transform/jsonx) keeps the body's
// member order and copies strings with their original escapes; jq
// re-encodes strings ("\u00e9" is written as "é"). A client that depends
// on either sees a difference.
//
// # Precision
//
// The body is decoded with numbers as json.Number, which gojq accepts as
// is:
//
//   - A number the expression only moves (., .a, {x: .y}, [.[]], sort,
//     tojson, tostring) is written back with its exact text: 2^53+1,
//     12345678901234567890, 0.1, 1.0, 1e2, -0 and 1E400 all survive
//     unchanged (up to the 1000-character limit below).
//   - Arithmetic and math functions parse a number first: an integer
//     becomes an int64, or a *big.Int beyond int64, and integer +, -, *
//     (and / when exact) stay exact at any size (12345678901234567890 + 1
//     is 12345678901234567891); anything else — a literal with a fraction
//     or exponent, or a mix with one — becomes float64: 0.1 + 0.2 is
//     0.30000000000000004, 1.0 + 0 is 1, 0.10000000000000000001 + 0 is
//     0.1, 2^53+1 + 0.5 is 9007199254740992, 1E400 + 0 is
//     1.7976931348623157e+308.
//   - Comparisons are numeric (1.0 == 1; large integers compare exactly).
//
// Variables keep Go integers of any width exact (int64, uint64, *big.Int)
// and accept json.Number.
//
// # Bounds
//
// MaxBytes (default 1 MiB) bounds the input, refused with ErrTooLarge
// before it is decoded, and the encoded output, ErrTooLarge as soon as
// the encoding passes MaxBytes (a value sharing subtrees, such as reduce
// range(60) as $i (0; [., .]), stands for far more output than the
// memory it holds; it is refused after writing MaxBytes of it). A number
// literal over 1000 characters makes the input invalid (ErrInvalidInput):
// parsing one for arithmetic is quadratic in its digits.
//
// Timeout (default 50ms, or the caller's deadline if earlier) bounds a
// run: Run returns ErrTimeout at the deadline. gojq checks the context
// between steps of its VM, so loops (def f: f; f, range(1e9), repeat,
// until, reduce) stop within a step of the deadline: measured 50-58ms
// for a 50ms timeout (up to about 90ms when the last step is a large
// big-integer multiplication, and later on an overloaded host, where the
// scheduler is late too). A single step — one builtin call — cannot be
// interrupted: tojson or == on a huge value, a big-integer
// multiplication, "x" * n. Run evaluates on another goroutine (one of a
// small pool kept between runs) so that it still answers at the
// deadline; the abandoned step finishes in the background, its result
// discarded, and Stragglers counts such steps.
//
// Memory is not bounded inside a run; what a run can allocate is what it
// can build in Timeout, except within one step. Two builtins can allocate
// out of proportion to their input in one step: string repetition
// (s * n, which gojq caps below 2 GiB) and assignment at a large array
// index (.[n] = v, setpath; gojq caps n below 2^29, 8 GiB of array). An
// expression that feeds a number from the body into either must clamp it
// first, e.g. "-" * ([.width, 80] | min).
//
// # Cost
//
// A run's fixed cost is decoding the body into gojq's values (a Go map
// per object), evaluating, and encoding. When the expression only picks
// members by name and iterates ({id, items: [.items[] | {sku}]}, select,
// map, comparisons, string interpolation), the body is decoded only as
// far as the expression can observe it and merely validated elsewhere;
// results, errors and their messages are the same (see project.go).
//
// Reshaping expressions skip gojq altogether: paths (.a.b, .a[0], .a[]),
// objects with constant keys, arrays, constants, variables, pipes from a
// path and commas — {id, name, items: [.items[] | {sku, qty}]} — are
// evaluated straight on the body's bytes after one validating pass, and
// the output is written as it is built (on a 1 KiB order, 3.4 µs a run
// instead of gojq's 17: go test -run XXX -bench Reshape1KiB -benchmem
// ./internal/transform/jq). The result is byte for byte gojq's; wherever gojq
// would raise an error, or the body is invalid, the run starts over on
// gojq, which answers (see fast.go). Such a run needs no goroutine and
// no timer: its work is linear in the body and the expression.
//
// # Refused functions
//
// Compile refuses, with the position of the first use, anything that
// reaches outside the body and the variables: env and $ENV (the process
// environment), input and inputs (further inputs), debug and stderr
// (process output), input_filename, input_line_number, get_search_list,
// get_prog_origin, get_jq_origin, halt and halt_error (process exit),
// import, include and modulemeta (modules: no module loader is set). The
// names are refused even when the expression defines them itself. now,
// mktime and the other time functions are allowed (they read the clock
// and the process's time zone). $__loc__ is allowed by this package but
// not implemented by gojq, so it fails to compile. error/1 is allowed: it
// stops the run with a *RunError carrying the value.
//
// # Errors
//
// Compile returns a *CompileError with a 1-based line and column (in
// characters) when it can locate the problem; it quotes only the
// expression, so it can be shown where configuration is validated (the
// caller adds file:line). Run returns ErrTooLarge, ErrInvalidInput and
// ErrTimeout wrapped (test with errors.Is), *RunError for an error of the
// expression itself (jq's message, at most 1 KiB; it may quote body
// values, so it is for the operator's log, not for clients), and the
// caller's context.Canceled.
package jq
