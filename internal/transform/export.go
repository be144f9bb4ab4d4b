package transform

import (
	"context"
	"net/http"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
)

// What other policies (aggregation) share of the transform stage: the
// request variables its templates read, and its compiled body transforms,
// so that a composite's calls are templated and reshaped exactly as a
// route's transform would.

// Vars are a request's values as templates and map ops read them.
type Vars struct{ v vars }

// RequestVars are r's values: its exchange (consumer, claims, path
// parameters …), headers and query as they are now.
func RequestVars(r *http.Request) *Vars {
	return &Vars{vars{x: exchange.From(r.Context()), h: r.Header, q: r.URL.RawQuery}}
}

// Lookup is the value of a template variable (consumer, path.id …); false
// when it has none or the name is not a variable.
func (v *Vars) Lookup(name string) (string, bool) { return v.v.Lookup(name) }

// CheckVar reports whether name is a request variable, and why not.
func CheckVar(name string) error {
	_, err := parseVar(name)
	return err
}

// Body is a compiled body transform (config.BodyTransform).
type Body struct{ p *bodyProg }

// BodyError is a body transform's failure: Invalid when the input is not
// what it reads (its reason is safe to show), TooLarge past the work
// limit, else the transform itself failed (jq: error, timeout).
type BodyError struct {
	Invalid, TooLarge bool
	Reason            string
}

func (e *BodyError) Error() string { return e.Reason }

func bodyErr(e *bodyError) *BodyError {
	return &BodyError{Invalid: e.outcome == bodyInvalid, TooLarge: e.outcome == bodyTooLarge, Reason: e.reason}
}

// CompileBody compiles c for bodies up to maxBody bytes; response allows
// to: accept. what names it in errors.
func CompileBody(what string, c *config.BodyTransform, maxBody int, response bool) (*Body, error) {
	p, err := compileBody(what, c, maxBody, response)
	if err != nil {
		return nil, err
	}
	return &Body{p}, nil
}

// Reshape reads in (JSON, or XML with from: xml) and returns it filtered,
// mapped and run through jq: a JSON document.
func (b *Body) Reshape(ctx context.Context, in []byte, v *Vars) ([]byte, error) {
	doc, e := b.p.toJSON(in)
	if e == nil {
		doc, e = b.p.reshape(ctx, doc, &v.v)
	}
	if e != nil {
		return nil, bodyErr(e)
	}
	return doc, nil
}

// Write returns the JSON document doc in the transform's output format for
// a client whose Accept is accept, and its Content-Type.
func (b *Body) Write(doc []byte, accept []string) ([]byte, string, error) {
	toXML, xmlType := b.p.to == formatXML, typeXML
	if b.p.to == formatAccept {
		toXML, xmlType = prefersXML(accept)
	}
	out, e := b.p.fromJSON(doc, toXML)
	if e != nil {
		return nil, "", bodyErr(e)
	}
	if toXML {
		return out, xmlType, nil
	}
	return out, typeJSON, nil
}
