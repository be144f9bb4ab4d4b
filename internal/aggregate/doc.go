// Package aggregate is the "aggregate" policy of a composite route
// (routes[].aggregate): it answers one client request with several backend
// calls, made in parallel where they do not depend on each other, and one
// JSON document combining their responses. It is the innermost stage of its
// route (policy.Order): it never calls the next handler.
//
// # Calls
//
// Everything is compiled once per snapshot: each call's definition (use:)
// filled in, its templates (path, query, headers, the strings of its JSON
// body), its dependencies ({call.NAME.PATH} references and depends_on,
// checked to be a DAG), its response transform, and a client of its
// upstream's cluster (policy.Upstreams: balancing, breakers, retries, mTLS
// and a client span per attempt, as a forwarded request).
//
// Per request, a call starts in its own goroutine as soon as every call it
// depends on has answered; the calls without dependencies start at once.
// The composite's deadline (aggregate.timeout) and the client's request
// context bound them all: a client that goes away cancels every call, and
// a required call's failure cancels the others. ServeHTTP returns only
// after every call it started has returned: no goroutine outlives the
// request. A route serves at most max_concurrency composites at once on a
// node; the next one is refused at once (503 aggregate_overloaded,
// Retry-After: 1), so a node holds at most len(calls) × max_concurrency
// calls of a route.
//
// Templates read the client's request (transform.RequestVars: {path.id},
// {query.q}, {consumer}, {claim.sub} …) and the responses of other calls.
// In the path each variable's value is one segment: every byte but
// letters, digits and -._~ is percent-encoded ("/" is %2F, "%" is %25), and
// a value of dots only ("." or "..") is written %2E, so no value steps out
// of its segment. A route's path parameter ({path.NAME}) is percent-encoded
// already, as the request's path has it: its escapes are kept as they are
// (%20 is not encoded twice, %2F stays %2F). Query values are percent-encoded; a header value with a
// control character (CR, LF, NUL …) fails the call, never sent. In the JSON
// body a string is a template whose value is JSON-escaped, and a string
// that is exactly one {call.NAME.PATH} takes that JSON value as it is. A
// {call.NAME.PATH} elsewhere must be a string (its value), a number or a
// boolean (its JSON text); a missing path, null, an object or an array
// fails the call that reads it. The client's own body is never sent.
//
// A call succeeds with a 2xx response whose body (at most its max_body) is
// JSON, or XML when its transform reads from: xml; its transform then
// reshapes it. A call whose dependency failed fails too ("depends on failed
// call X") without being made.
//
// # The response
//
// The combined document is a JSON object built in configuration order:
// each call's document at its into path (default: its name; a dotted path
// creates the objects on the way), or, with into: ".", an object's members
// merged at the root; a later call's value replaces an earlier one at the
// same key. It is bounded by aggregate.max_body, then reshaped by the
// aggregate's transform (JSON or, by to: xml or the client's Accept, XML).
//
// A required call's failure answers 502 aggregate_call_failed with a reason
// naming the call and what went wrong (never a response body), 502
// aggregate_too_large for a body over its bound, 504 aggregate_timeout when
// the composite's deadline expired first; a client that went away gets
// nothing (logged as 499). An optional call's failure leaves its key out
// (missing: omit) or null (missing: null), names it in Meshgate-Partial
// (configuration order), and the response is still 200.
//
// Headers: a call's response_headers are copied from its response;
// Cache-Control is set only when every part has one, as the most
// restrictive combination (no-store if any; else private if any; no-cache
// and must-revalidate if any; the least max-age and s-maxage), and is
// no-store for a partial response.
//
// # Metrics
//
// Counter counts every call of every composite by result: ok, failed,
// timeout, too_large, or skipped (not made because a dependency failed or
// the composite had already failed, or cancelled with it); and the partial
// responses. telemetry.Metrics implements it:
// meshgate_aggregate_calls_total{route,call,result} and
// meshgate_aggregate_partial_total{route}.
package aggregate
