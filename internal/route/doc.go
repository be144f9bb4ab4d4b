// Package route is the route table: an immutable snapshot compiled once from
// []config.Route and matched per request without allocating.
//
// A request is matched on its Host (port stripped, compared case-insensitively),
// its normalized path (see NormalizePath), its method, headers and query
// parameters. Compile builds a Table; Table.Match fills a caller-owned Result.
// A Table is never modified after Compile, so it is safe for concurrent use and
// is swapped whole (for example through an atomic.Pointer) on reload.
//
// # Priority
//
// When several routes could match a request, the first candidate, in the order
// below, whose every condition holds wins:
//
//  1. Host. Routes listing the request's host exactly come first, then routes
//     with a wildcard host ("*.example.com" matches any subdomain, at any
//     depth, but not example.com itself) from the longest suffix to the
//     shortest, then routes with no host. A host group falls through to the
//     next one when none of its routes match.
//  2. Path kind, within a host group: exact > template > prefix > regex > no
//     path. Among templates, more literal segments first, then more segments
//     (not counting a final {rest...}), then a template without {rest...}
//     before one with it. Among prefixes, the longer prefix first. Regexes
//     keep file order (routes sharing the same regex sit together, at the
//     place of the first of them).
//  3. Among routes with equal path specificity (the same exact path, the same
//     template shape, the same prefix length, the same regex, or no path),
//     routes with more conditions first: one per header matcher, one per query
//     matcher, and one for having a methods list.
//  4. File order.
//
// If no route matches fully but some route matched everything except the
// method, Result.MethodNotAllowed is set and Result.Allow lists the methods of
// all such routes, sorted and de-duplicated, joined by ", " (the caller answers
// 405 with that Allow header). Methods are compared exactly: a route listing
// only GET does not match HEAD.
//
// # Match kinds
//
// Exact paths compare byte for byte. A prefix matches on a segment boundary:
// "/api" matches "/api", "/api/" and "/api/x" but not "/apix"; "/" matches
// every path; a prefix ending in "/" ("/api/") needs that slash in the path.
// A template "/products/{id}" matches one non-empty segment per {name}; a final
// "{rest...}" matches the remainder, possibly empty ("/files/{p...}" matches
// "/files", "/files/" and "/files/a/b"). A regex is RE2 matched against the
// whole path (it is anchored at both ends). Header and query matchers compare
// the whole value (exact or anchored regex) of any of the values, or test
// presence; Invert negates the condition (an inverted "present" means absent).
// Query parameters are compared decoded ('+' is a space, %XX unescaped).
//
// Paths given to Match are expected to be the escaped request path
// (r.URL.EscapedPath()) after NormalizePath; the route's exact, prefix and
// template paths are normalized the same way at compile time.
package route
