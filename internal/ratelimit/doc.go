// Package ratelimit enforces cluster-wide rate limits with decisions taken
// locally: each node counts what it admits per key and window, gossips its
// counts, and decides every request on its own estimate of the cluster's
// total, without waiting on the network.
//
//	l, _ := ratelimit.New(ratelimit.Options{Node: name, Send: g.Send, Peers: g.NumPeers})
//	l.SetPolicies([]ratelimit.PolicyConfig{{Name: "per-consumer", Limit: 1000, Window: time.Minute}})
//	go l.Run(ctx)                       // flushes counts every Interval
//	p := l.Policy("per-consumer")       // once per config snapshot
//	d := p.Decide(consumerID, 1)        // per request: ~150 ns, no allocation
//
// A Limiter satisfies the gossip package's Owner interface (Kind, Merge,
// LocalState, MergeState) without importing it.
//
// # Algorithm
//
// Windows are fixed, aligned to the Unix epoch (window w covers
// [w·W, (w+1)·W)), so every node agrees on them without coordination. The
// decision uses the sliding-window estimate of Cloudflare's limiter,
//
//	estimate = total(w−1) × (1 − f) + total(w)
//
// where f is the elapsed fraction of the current window w, and a request
// for n is admitted iff estimate + n ≤ Limit. A window's cluster total is
// this node's exact count plus, for each peer, the last count it reported
// for that window. Reports are merged per (node, key, window) by taking the
// maximum, so re-delivered, reordered and relayed messages, relays through
// third nodes and anti-entropy after a partition never count anything
// twice. A dead peer's counts stay until its windows expire: they neither
// vanish from the total nor double. A node that restarts under its name
// takes its own counts back when a peer's state reports them higher than
// its own (it would otherwise admit its share twice).
//
// Each key keeps its two live windows in slots of atomics: this node's
// count, and the peers' counts summed when a report arrives. Allow is then
// O(1): a map lookup under a shard's read lock, a few atomic loads, and a
// compare-and-swap of this node's count, so concurrent requests on one
// node never overshoot. Rolling to a new window, merging and expiry take
// the key's mutex, off the request path.
//
// Following Raghavan et al., "Cloud Control with Distributed Rate Limiting"
// (SIGCOMM 2007), a peer's count can be extrapolated by its recent rate
// times the time since its report (Options.Extrapolate, bounded by that
// horizon) to offset gossip delay. Measured in this package's simulation of
// a lossy, delaying network (10 nodes, 3× demand, 80% on one node): with
// minute windows it only moves admitted/limit from about 1.003 to about
// 0.995 (500ms horizon), so it is off by default; with 10-second
// windows and 100–500ms delivery it brings the mean from 1.043 to 1.001 at
// a 250ms horizon. A horizon much longer than the real staleness
// over-corrects (under-admits).
//
// # Error bound
//
// With exact knowledge a fixed window never exceeds Limit: the estimate is
// at least the current window's total. The sliding estimate assumes the
// previous window's requests were spread evenly; any interval one window
// long can hold up to 2 × Limit only if a window's admissions bunch at its
// very end, and under steady demand each window admits about Limit.
//
// Distribution adds the staleness d of peers' counts (up to a flush
// Interval plus gossip delivery, 0.2–0.5s). On the estimate alone, what the
// others admitted during d is invisible, so a window could exceed Limit by
// min(N × Limit, demand × d): a burst fast enough to fill the limit within
// d admitted up to N × Limit (3.0 at 3 nodes, 10 at 10, in this package's
// simulation). Burst shares (below) remove that term.
//
// # Bursts
//
// While a node has peers it admits only within its claim, a count per key
// and window that it gossips (in the claims extension, see Wire format)
// and that peers subtract from their room as an upper bound on what it admits. Once per Interval F
// it budgets γ × share × room, room = Limit − previous × (1 − f) − Σ
// claims, share = (1 − β) × its demand / the cluster's + β / N (demand
// being requests asked for, admitted or not, as last reported), γ = 1/2,
// β = 0.1; it claims from that budget in chunks of half an interval of its
// own demand, flushing at once after each. Until peers have reported a new
// key, each is assumed to have this node's demand: a burst hitting every
// node at once is split N ways for its first F. So per interval the cluster
// claims at most γ × S × R, where S = Σ share (1 with exact views; views one
// gossip delay old overrate growing demand, S ≈ 1.8 measured at 3 nodes,
// N with no news at all) and R the room as seen. A window's excess is then
//
//	excess ≤ max(0, γS − 1) × R + γ × S × C_d
//
// where C_d ≤ min(D × d, γ × S × R_prev) is what peers claimed within the
// last delay d (D the cluster's demand rate): the first term is 0 while
// S ≤ 2 (views at most about one delay old), and the second is a share of
// the previous interval's room, which halves every interval. Measured in
// the simulation (1000 per 10 s, 20–100 ms delivery, 150 ms flushes, 5
// windows each): bursts of 3× and 100× the limit within the first 10% of
// the window, 80% on one node or spread, 3 and 10 nodes: 0.98–1.00 (before:
// 1.12–1.49 at 3×, 2.5–10 at 100×); steady 10× demand: 0.97–0.98. The
// price is γ: a burst reaches the limit in about log2(1/5%) ≈ 4–5 intervals
// rather than one, and a node whose demand appears suddenly waits up to F
// for its next budget. A node that dies keeps its claims counted until its
// windows expire (its last unused claim is lost capacity, not excess).
//
// Measured on real memberlist nodes over mTLS (the bench's limits suite,
// one run on a loaded 2-core machine, worst of 5 windows): 3 nodes hold
// (bursts 0.985, steady 0.92 in one window of five, 0.98 otherwise), but
// 10 nodes do not yet: bursts 80% on one node up to 1.17 at 100×, spread
// evenly 1.06–1.25. Gossip there takes several relay hops, so views are
// more than one interval old and S exceeds 2: the first term of the bound
// is no longer 0.
//
// Edges, tested on the simulated cluster (edge_test.go): a node joining
// mid-burst (with a push/pull of state) or the hot node dying mid-window
// leaves the window at 0.99–1.00 × Limit (the dead node's flushed counts
// stay in the survivors' totals; what it admitted after its last flush is
// lost with it). A 1 h window holds like a 10 s one. Memory per key is
// about 220 bytes plus about 80 per peer reporting it. A partition leaves
// each side budgeting from the room the other side's last claims leave:
// each side admits at most Limit, both together up to 2 × Limit minus the
// claims made before the cut (1.07 measured with a 2 | 2 split at 30% of
// the window); once healed, the next window holds again. Decision.Remaining
// is bounded by the unused claim, so RateLimit-Remaining never promises a
// request the claim refuses.
//
// Known gap: very small limits (1–10 per window). Nodes budgeting on the
// same stale view round their fraction of one request up at random
// independently, so two can claim the last request: up to 2 over Limit
// measured (limit 1: 2; 3: 4; 10: 12); and with γ = ½ a handful of
// requests can all meet empty budgets, so a window with demand can admit
// 0. Correlated rounding (one shared random offset per key and interval,
// cumulated over the nodes in a fixed order) would bound the first; a
// γ of 1 for rooms of a few requests the second.
//
// When gossip reveals that a window's total exceeded Limit, the excess is
// counted (PolicyStats.OverAdmitted), once per (key, window).
//
// # Isolation
//
// A node is isolated when Options.Peers reports no alive peer although the
// node has seen one since it started (or Options.ExpectPeers is set: it
// has addresses to join). A node that never had a peer is a one-node
// cluster and decides normally. While isolated, each policy does what its
// Isolation says:
//
//   - Open: decide on this node's counts alone against the full Limit.
//     Service continues; a partitioned cluster may admit Limit per side.
//   - Closed: deny every request (RetryAfter is one Interval) until a peer
//     is back; then the peers' counts, kept meanwhile, apply again.
//
// Peers is sampled once per Flush, so isolation is noticed within one
// Interval. Note that a cluster scaled down to one node on purpose is, to
// that node, isolated: Closed policies need at least two nodes.
//
// # Gossip
//
// Flush (every Interval under Run) sends this node's counts. Keys are
// hashed into shards sized to fit a message; every shard holding a changed
// count is sent whole, split into messages of at most 1200 bytes
// (gossip.MaxMessage), under the Send key "ratelimit/<shards>/<shard>/<part>".
// Because a shard's message always carries all of the shard's counts, a
// newer message that supersedes a queued older one never loses a count.
// Merge reports relay=true only when a message raised some count, so the
// epidemic spread stops once every node has it. LocalState carries every
// live count this node knows (its own and its peers'), up to MaxStateBytes
// (keys start at a random place each call, so successive exchanges cover
// them all); MergeState merges it idempotently. Policies are matched by
// name and window: counts for a policy a node lacks, or has with another
// window (a config rollout in progress), are ignored and counted.
//
// # Bounded state
//
// A key expires when it had no traffic here and no report from a peer for
// two windows; peers' records expire with their windows; node names no
// record uses are forgotten. A policy holds at most MaxKeys keys: beyond,
// new keys (and keys over 512 bytes) are counted together under OverflowKey
// with one budget of Limit, a warning is logged once per window, and
// PolicyStats.Overflowed counts them; peers' keys beyond the cap are
// dropped and counted. Decoders bound every count by the bytes left.
//
// # Wire format
//
// The gossip layer tags each message with Kind ('l'); Merge and MergeState
// receive the payload after the tag. Broadcasts and states share one format
// (a broadcast names one node, the sender):
//
//	payload = version(1 byte, 1) uvarint(#nodes) string(node)… uvarint(#groups) group…
//	group   = string(policy) uvarint(window ms) uvarint(base window) uvarint(#keys) key…
//	key     = uvarint(shared) string(suffix) uvarint(#records) record…
//	record  = uvarint(node index<<2 | age) uvarint(count)
//	string  = uvarint(length) bytes
//
// A key is the previous key of its group cut to `shared` bytes plus the
// suffix (front coding: keys are sorted within a message; this saves about
// 65% of a sorted state's bytes and 25% in a broadcast shard). A record
// says node admitted count requests in window base − age (age ≤ 3). Names
// are 1 to 255 bytes, keys at most 512, counts at most 2^40. A payload
// that breaks any rule, or has bytes left over, is rejected whole with an
// error and changes nothing; another version byte is rejected too.
//
// Claims (see Bursts) travel in an extension that the previous release
// reads without error and ignores, so that old and new nodes share their
// counts throughout a rolling upgrade. That release rejects a payload with
// another version byte or with bytes after its groups, whole, counts
// included: a version 2 or trailing fields would blind old and new nodes
// to each other's counts until every node is upgraded. Instead, each group
// may be followed by a claims group, a group whose policy is named
// "\x00claims" (no policy may start with a NUL byte), with the same window
// and base and one key per key of the group, in order, each empty
// (shared 0, suffix "") and with either no records or two per record of
// the group's key: (tag, reserve) and (tag, denied), the tag repeating the
// record's. A node's claim is count + reserve, its demand count + denied.
// The previous release reads a claims group as one of a policy it does not
// have, ignores it and counts its keys in Stats.ForeignKeys; this release
// merges it into the group before it and rejects a claims group that
// breaks these rules. A payload without claims (no peers, or nothing
// claimed or denied) has no claims groups: byte for byte what the previous
// release writes. During an upgrade the previous release's nodes still
// admit on the estimate alone, so bursts can exceed the limit by their
// share as before; this release's nodes count their admissions (and their
// demand, as they report none) like everyone's.
package ratelimit
