// Package clusterstats shares each node's per-upstream request stats
// (telemetry.UpstreamStats: requests, errors, a latency histogram over the
// last Window) with the cluster, so that a progressive traffic shift asked
// of one node judges the new subset on every node's traffic rather than on
// the share that happened to pass through the node meshctl talks to.
//
// Every node (edge or sidecar: whichever carries a route to the upstream)
// runs a Sharer, a gossip owner of kind 's'. Each Interval it sends, for
// every upstream whose window changed since it last sent it, one small
// message with the window's counts and histogram; when an upstream's
// window empties it sends a last record of zero requests, which receivers
// take as "forget it". Receivers keep each peer's latest record per
// upstream and drop it Window plus a grace after it arrived (a lost final
// record cannot leave old traffic behind) or when the peer leaves or dies.
// Push/pull carries only the node's own records: a relayed peer record
// would arrive with no reliable age, and every node exchanges states with
// every other in turn anyway.
//
// # Wire format
//
// Uvarints and length-prefixed strings (package wire):
//
//	message: version | header | record
//	state:   version | header | count | record*
//	header:  node | epoch | seq
//	record:  upstream | window s | requests | errors | n | (gap | count)ⁿ
//
// epoch is the sending process's start (Unix ms) and seq a counter it
// raises at every flush and state: a record is newer than another of the
// same node when its (epoch, seq) is greater, and a new epoch (a restart)
// replaces everything the node had said. errors ≤ requests. The histogram
// lists its n non-empty buckets in order, each as the gap since the one
// before (the first: its index) and a non-zero count. A later version
// may append fields to a message (skipped) and an extension after each
// record of a state (see wire.Reader.Extension).
package clusterstats
