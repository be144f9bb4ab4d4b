// Package breaker keeps a circuit breaker per upstream endpoint on each
// node, and shares the breakers' state transitions across the cluster, so
// that an endpoint that fails for one node is spared by the others, but an
// endpoint that fails only for one node is not black-holed for all.
//
// # One node
//
// A Registry holds the node's breakers, keyed by endpoint address
// ("ip:port"), which names the same endpoint on every node. A Breaker's
// closed state is a gobreaker TwoStepCircuitBreaker: it counts this node's
// outcomes within Interval and trips on ConsecutiveFailures or on
// FailureRatio over MinRequests. The open and half-open states are this
// package's own, timed by the injected clock, because a node also enters
// them on its peers' word, which gobreaker has no way to take, and because
// gobreaker reads time.Now, which tests cannot advance. Each closed period
// gets a fresh gobreaker. Allow is one atomic load plus gobreaker's
// bookkeeping; transitions take the Registry's lock.
//
// # What is shared, and why not counts
//
// gobreaker's DistributedCircuitBreaker locks a shared store around every
// request: over gossip that is a network round trip per request. Nodes
// share transitions instead. A node reports when its breaker opens on its
// own evidence (its requests tripped it, or its half-open probe failed),
// with the open period's remaining duration, and when it closes again
// after such an open. Reports carry durations relative to their sending,
// not deadlines, so clock skew between nodes does not matter (only
// transit time is added). Each report has a generation, increasing per
// reporter (seeded with the reporter's start time, so a restarted node's
// reports supersede its previous life's); a receiver keeps the latest
// report per (reporter, endpoint) and relays only news, so the epidemic
// dies out. Anti-entropy carries every unexpired report a node holds.
//
// # When a peer's report opens this node's breaker
//
// A peer's open report is a vote. This node opens the endpoint when
//
//   - Quorum (default 2) distinct live peers report it open, or
//   - one does and this node's own requests corroborate it: one failed in
//     the last Interval, and at least half of those counted did.
//
// One node with a local network problem is one vote: peers whose requests
// succeed keep sending, and peers without traffic pay at most one failed
// request each (which is then their evidence) before they follow. A
// ratio, not any single failure, is the evidence because a busy node sees
// occasional failures to any healthy endpoint. Only a node's own verdicts
// are votes: an open adopted from peers is never reported, so one node's
// report cannot snowball into a quorum. An adopted open lasts until its
// support would end (the Quorum-th latest end among the votes, or the
// latest with evidence), capped at this node's OpenTimeout; then the node
// goes half-open and probes the endpoint itself: a success closes it, a
// failure opens it on its own evidence (a vote). A vote is withdrawn by
// the reporter's closed report, by its expiry, or by the reporter leaving
// the cluster (Options.Alive, MembersChanged); an adopted open that loses
// its support goes half-open. Reset closes an endpoint on every node.
//
// # Wire format
//
// Integers are uvarints; names are a length (1 to 255) and UTF-8 bytes.
// A report is
//
//	state (0 closed, 1 open, 2 reset) | generation (≥ 1) | ttl ms | reporter | endpoint
//
// where ttl is the remaining open period of an open report, and how long
// the receiver should remember a closed one (at most 24h). A reset is a
// closed report that also withdraws every other reporter's vote for the
// endpoint; it exists only as a broadcast. A broadcast message is a version
// byte (1) and one report; a state (LocalState) is a version byte (1), a
// count (at most 2048) and that many reports, none a reset. Decoders reject
// anything else whole — except a later version: a later release may append
// fields to a message (read up to this release's fields, the rest
// skipped) and, in a state, a length-prefixed extension after each report
// (skipped), so that a node of the next release and one of this release
// share a cluster. A release writes the lowest version that can say what
// it says (this one: 1); the goldens in testdata pin it.
package breaker
