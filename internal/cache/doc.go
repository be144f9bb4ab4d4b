// Package cache is the policy stage of the edge's shared HTTP cache
// (routes[].cache): it answers GET and HEAD requests from the node's
// response store (internal/cachestore) when RFC 9111 allows it, stores what
// the upstream answers when it may, revalidates stale responses with a
// conditional request (in the background within a response's
// stale-while-revalidate window, answering stale meanwhile), answers from a
// stale response in place of an upstream failure within its
// stale-if-error window (RFC 5861), collapses concurrent misses of one key into one
// upstream request, and invalidates a URI when an unsafe request to it
// succeeds. Every caching rule is internal/httpcache's; this package holds
// the state (the store, the clock, the in-flight misses) and the I/O.
//
// # Keys
//
// An entry's primary key is the route, the method, the host and
// httpcache.RequestTarget of the URL; on a route keyed per consumer
// (vary_consumer) the authenticated consumer is added, so one consumer's
// responses never answer another's requests. Vary selects among the
// variants of one key (httpcache.VaryKey). A stored GET answers HEAD too;
// a stored HEAD answers only HEAD.
//
// # Where it sits
//
// The stage runs after auth and the limits and before transforms
// (policy.Order): a hit is counted against the consumer's limits but saves
// the transform and the upstream, and what is stored is what the client
// gets, the response transform applied. Nothing is buffered ahead of the
// client on a miss: the body goes to the client and to a
// cachestore.BodyWriter as it comes, and whether the response is stored is
// decided from its status line and header, which is also when its
// Cache-Status is written.
package cache
