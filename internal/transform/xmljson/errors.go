package xmljson

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind sorts a BodyError by what the gateway should answer.
type Kind int

const (
	// KindSyntax: the body is not well-formed XML or valid JSON (400).
	KindSyntax Kind = iota + 1
	// KindLimit: the body is over a limit — bytes, nesting depth,
	// element count, or the size of what it converts to (413 on a request,
	// 502 on a response).
	KindLimit
	// KindUnsupported: well-formed, but refused by this converter: a
	// DOCTYPE, a charset other than UTF-8, a JSON key that is not an XML
	// name, a character XML cannot carry (400).
	KindUnsupported
)

func (k Kind) String() string {
	switch k {
	case KindSyntax:
		return "syntax"
	case KindLimit:
		return "limit"
	case KindUnsupported:
		return "unsupported"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// BodyError is what is wrong with a body: its Error text is short, names
// where (line, column, byte offset) and never quotes more than a few dozen
// bytes of the body, so it is safe to show the client that sent it.
type BodyError struct {
	// Format is the format being read: "xml" or "json".
	Format string
	Kind   Kind
	// Line and Column are 1-based; 0 when unknown.
	Line, Column int
	// Offset is the byte offset in the body where the problem was seen.
	Offset int64
	// Reason says what was wrong, e.g. "DOCTYPE is not allowed".
	Reason string
}

func (e *BodyError) Error() string {
	var b strings.Builder
	b.WriteString(e.Format)
	b.WriteString(" body")
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ", column %d", e.Column)
		}
	} else if e.Offset > 0 {
		fmt.Fprintf(&b, ": offset %d", e.Offset)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}
