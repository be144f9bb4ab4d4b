package jsonx

import (
	"errors"
	"strconv"
)

// ErrTooLarge is returned (possibly wrapped; test with errors.Is) when the
// input or the output of Apply is larger than Limits.MaxBytes.
var ErrTooLarge = errors.New("jsonx: body too large")

// ErrTooDeep is wrapped by the *BodyError returned when the input nests
// objects and arrays deeper than Limits.MaxDepth; errors.Is(err,
// ErrTooDeep) and errors.As(err, new(*BodyError)) both hold.
var ErrTooDeep = errors.New("jsonx: body nested too deeply")

// BodyError reports a body that is not acceptable JSON. Its message is short,
// names at most one input byte (printable ASCII or hex) and is safe to show
// to a client, e.g. "invalid JSON at offset 17: unexpected '}'".
type BodyError struct {
	Offset int    // byte offset in the body where the problem was found
	Reason string // e.g. "unexpected '}'", "unexpected end of input"
	err    error  // ErrTooDeep, or nil
}

func (e *BodyError) Error() string {
	return "invalid JSON at offset " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

// Unwrap returns ErrTooDeep for depth violations, nil otherwise.
func (e *BodyError) Unwrap() error { return e.err }

// describeByte renders one input byte for an error message without echoing
// anything a client could use to inject text: printable ASCII is quoted,
// everything else is shown in hex.
func describeByte(c byte) string {
	if c > ' ' && c < 0x7f {
		if c == '\'' {
			return `"'"`
		}
		return "'" + string(rune(c)) + "'"
	}
	const hex = "0123456789abcdef"
	return "byte 0x" + string([]byte{hex[c>>4], hex[c&15]})
}
