// Package transform is the "transform" policy of a route (routes[].transform):
// it reshapes requests before they are forwarded and responses before the
// client gets them. It sits between cache and aggregate in policy.Order, so a
// cache hit saves it and the cache stores what the client gets. Everything is
// compiled once per configuration (jsonx programs, jq programs, XML
// converters, templates); the libraries doing the body work are
// internal/transform/jsonx (filter and map), internal/transform/jq and
// internal/transform/xmljson.
//
// # Headers and query parameters
//
// Each side's TemplateOps run in the order remove, rename, set, add. Values
// are templates: {consumer}, {tier}, {client_ip}, {request_id}, {path.NAME} (a
// template route's parameter), {query.NAME} (the first value, decoded),
// {header.NAME} (the values joined by ", ") and {claim.NAME} (a claim of the
// consumer's JWT or introspection answer, from exchange.Exchange.Claim); "{{"
// and "}}" are literal braces. Every template, on both sides, reads the
// request as it reached this stage, before this stage changed it; a variable
// without a value is empty. A rendered value that could not be a header value
// (a claim with a line break) is not set. Host, Content-Length,
// Transfer-Encoding and Connection cannot be changed. Query changes keep the
// order and the encoding of the parameters they do not touch. On the response
// side header operations apply to whatever goes to the client (transformed,
// passed through or streamed), after the route's response_headers, but not to
// the errors this stage or the proxy answer with, which come unchanged from
// the error table. On the request side they apply to streams (gRPC, upgrades)
// too; only bodies are left alone there.
//
// # Bodies
//
// A body is read whole, up to transform.max_body (default 1 MiB), decoded
// (Content-Encoding gzip or deflate), read as From (XML is converted to JSON),
// filtered and mapped (jsonx), run through jq, and written as To, with its
// Content-Type (kept when the format did not change and it was already of
// that format, e.g. application/problem+json), Content-Length, and no
// Content-Encoding: the stage does not compress again. What may be built on
// the way is bounded by 4 × max_body; a body past max_body, once decoded, or
// whose transformation grows past that bound, is "too large" and on_too_large
// applies: on the request side reject (413 body_too_large, the default; the
// stage also takes pass, forwarding it untransformed, which the configuration
// does not allow); on the response side pass (sent untransformed, the
// default) or reject (502 upstream_body_too_large). A request body over the
// route's max_body_bytes is refused (413) before it is read further,
// whatever on_too_large says.
//
// Request bodies are not read for gRPC, upgrade (WebSocket) and CONNECT
// requests, nor when there is none. A body that cannot be read as
// configured is refused with 400 invalid_body and the library's reason, which
// names the problem and its offset but never quotes the body ("invalid
// request body: invalid JSON at offset 17: unexpected '}'").
//
// Response bodies are held with policy.Buffer around the next stage. These
// pass through untouched (the header operations and the status rules without
// if_field still apply): responses to gRPC, upgrade, CONNECT and HEAD requests;
// text/event-stream and application/grpc responses; 204, 206 and 304; a
// Content-Type other than the format read (JSON types, or XML types for
// from: xml; a response without Content-Type is read); a coding other than
// gzip and deflate; the proxy's own error answers; and bodies over max_body
// under on_too_large: pass. Flushes of a held response wait for its end (an
// upstream answering in chunks is flushed chunk by chunk by the forwarder).
// The status map (the first rule whose from, 0 for any, and if_field, a path
// with a value other than null in the JSON body, match) sees the
// upstream's status and body. The format conversion applies to every status;
// allow/deny/map and jq, written against the success shape, only when the
// status (after the map) is 2xx. A response body that cannot be read is
// answered with 502 bad_upstream_body and nothing of the upstream's response
// is sent. A transformed response has its strong ETag weakened ("x" →
// W/"x"), and Content-MD5, Digest, Content-Digest, Repr-Digest and
// Accept-Ranges removed, as they describe the upstream's bytes. jq errors
// (error/1, no or several results, its 50ms time limit) answer 502
// transform_failed on either side, with jq's message in the log only.
//
// So that the upstream sends what can be read whole, a route that reads
// response bodies drops Range and If-Range from the upstream request, and
// removes from Accept-Encoding the codings it cannot decode.
//
// # Content codings: br
//
// The standard library decodes gzip and deflate only (deflate as zlib's
// format, as RFC 9110 says, or raw DEFLATE as some servers send), and no
// Brotli or Zstandard decoder is a dependency. A request body in another
// coding (br, zstd, or several codings) is refused with 415
// unsupported_encoding and "Accept-Encoding: gzip, deflate", rather than
// forwarded in the client's format the backend does not expect. Upstreams
// are not asked for br (Accept-Encoding is filtered as above); one that
// sends it anyway has its response passed through untransformed (counted as
// skipped), since refusing a good answer for its coding helps no one.
//
// # to: accept
//
// On the response side, to: accept writes XML when the client's Accept gives
// application/xml or text/xml a higher quality than application/json (the most
// specific range naming each type decides its quality, RFC 9110 §12.5.1), and
// JSON otherwise: on a tie, without Accept, or with neither acceptable. The
// XML goes out as the preferred of the two XML types, and Vary: Accept is
// added.
//
// # Variables of body transforms
//
// map's set with var reads the same values as templates (consumer,
// path.id, header.X-Foo, claim.email, …). jq expressions may use $consumer,
// $tier, $client_ip, $request_id (strings, "" when unknown), $path (the
// template's parameters), $query (first values), $headers (by lower-case
// name, values joined by ", ") and $claims: an object of the claims the
// expression names as $claims.NAME or $claims["NAME"], since
// exchange.Exchange.Claim looks claims up by name and cannot list them. Only
// the variables an expression uses are computed per request.
//
// # Observability
//
// Each side of each request that has one is counted in
// meshgate_transforms_total{route, side, result}: applied, failed (this
// stage answered an error), or skipped (the body was not transformed, for
// one of the reasons above). Deps.Metrics counts them once it has a
// Transform method (the Counter interface). When the request is traced, the
// server span gets an event meshgate.transform per side with
// meshgate.transform.side, meshgate.transform.result,
// meshgate.transform.duration_ms (the time the body work took) and
// meshgate.reason for failures and skips.
//
// # Cost
//
// A route whose transform only changes headers with constant values (and
// maps statuses without if_field), on either side, allocates nothing per
// request: the response side's hook is a pooled writer. Templates with
// variables allocate their values; a response that is read is held in a
// policy.Buffered, and body work is bounded by max_body as above.
package transform
