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
// it budgets γ × share × room, room = Limit − previous × (1 − f′) − Σ
// claims with f′ = min(1, f + F/W) the elapsed fraction at its next budget
// (what the previous window's decaying weight frees meanwhile is claimable
// now, not an interval late), share = (1 − β) × its demand / the cluster's
// + β / N (demand being requests asked for, admitted or not, as last
// reported), γ = 1/2, β = 0.1; when the previous window had demand, the
// last Limit × F/W of the room is budgeted whole (share × it, undamped).
// It claims from that budget in chunks of half an interval of its
// own demand, flushing at once after each. Claims still sum to at most
// Limit − previous × (1 − f′) ≤ Limit with exact views, and the estimate
// still decides each request. Without f′ and the undamped sliver, steady
// demand left about Limit × F/(γW) unclaimed at every window's end: 0.92–
// 0.93 × Limit with 4 s windows (the node package's tier test), 0.97 at
// 10 s; with them 0.99–1.00. Until peers have reported a new
// key, each is assumed to have this node's demand: a burst hitting every
// node at once is split N ways for its first F. So per interval the cluster
// claims at most γ × S × R, where S = Σ share (1 with exact views; views one
// gossip delay old overrate growing demand, S ≈ 1.8 measured at 3 nodes,
// N with no news at all) and R the room as seen. A window's excess is then
//
//	excess ≤ max(0, γS − 1) × R + γ × S × C_d  (+ (S − 1) × Limit × F/W
//	                                            after a busy window)
//
// where C_d ≤ min(D × d, γ × S × R_prev) is what peers claimed within the
// last delay d (D the cluster's demand rate): the first term is 0 while
// S ≤ 2 (views at most about one delay old), and the second is a share of
// the previous interval's room, which halves every interval. Measured in
// the simulation (1000 per 10 s, 20–100 ms delivery, 150 ms flushes, 5
// windows each): bursts of 3× and 100× the limit within the first 10% of
// the window, 80% on one node or spread, 3 and 10 nodes: 0.98–1.00 (before:
// 1.12–1.49 at 3×, 2.5–10 at 100×); steady 10× demand: 0.97–0.98, 0.997–1.000 with
// the look-ahead room and undamped sliver. The
// price is γ: a burst reaches the limit in about log2(1/5%) ≈ 4–5 intervals
// rather than one, and a node whose demand appears suddenly waits up to F
// for its next budget. A node that dies keeps its claims counted until its
// windows expire (its last unused claim is lost capacity, not excess).
//
// Claims must reach the peers fast: a claim bounds a peer's budget only
// once the peer has it, and the bound above holds while views are at most
// about one interval old (S ≤ 2). Measured on real memberlist nodes over
// mTLS (the bench's limits suite, which probes the delay from an Allow that
// raises a claim on one node to each other node's view of it, under the
// case's load, on a loaded 2-core machine): as broadcasts, claims waited for
// the next gossip round (every 100 ms) and most peers got them only through
// relays, each another round: 3 nodes p50 48 ms; 10 nodes idle p50 56 ms
// per peer, 151 ms (≈ F) until the last peer, p90 246 ms; under a 100×
// burst p50 105 / 178 ms, p90 247 / 285 ms, tail 1.9 s; spread 3× p90 583
// ms. Beyond warmUp (3F) a node that has not heard from its peers takes
// the whole demand as its own, so at 10 nodes with spread demand each node
// budgeted half the room: 1.84–2.60 × Limit in that run (1.06–1.25 in an
// earlier one). So a message that carries claims is also sent straight to
// every alive peer (Options.SendNow, gossip.Cluster.DirectSender), one
// packet each, not relayed; the broadcast still goes and repairs a lost
// packet. With it, 3 nodes: claim delay p50 2 ms, p90 24–28 ms (the
// flush gap F/4 and the loaded machine); see docs/config.md for the
// suite's ratios. The cost is N − 1 packets per flush that changes a
// claim, at most one flush per F/4 per node: at 10 nodes less than the
// epidemic it replaces (each of 8 transmissions plus a relay per receiver).
//
// # Tiny limits
//
// For a limit of at most 16 (ownerMaxLimit) rounding budgets cannot be
// exact: nodes budgeting on one stale view each round a fraction of the
// last request up (limit 1 admitted 2, 10 admitted 12), and with γ = ½ a
// few requests can all meet empty budgets. There, one node per key (its
// owner: rendezvous hashing of the key over the alive members that hold
// the policy, Options.Members) raises every claim: its own as its requests
// need it, and in each Flush the peers' whose reported demand exceeds
// their claim, one request each in turn; the raised claim goes to the
// cluster as a record about the peer in the owner's message, and the peer
// adopts it as it adopts any record about itself. Only the owner writes
// claims, so a window never admits more than Limit, whatever the delay
// (tested: limits 1, 3, 10, 3 and 10 nodes, 3× and 100×, bursts and whole
// windows, from a cold start). The price: a non-owner's first request
// waits for its demand to reach the owner and the grant to come back (two
// deliveries and a flush, a few ms with SendNow).
//
// Who holds a policy is announced, not guessed from traffic (a node that
// had heard from nobody owned every key, and at a cold start every node
// did: limit 3 admitted 12 at 10 nodes). Each node sends the list of the
// tiny policies it holds (name and window) when it sees a new member or
// the list changes, straight to every peer and as a broadcast, and again
// every 20 flushes as a broadcast. A member that has not announced is
// presumed to hold every policy for warmUp (3F) after it was first seen,
// so nodes starting together agree on owners at once; past that, a member
// that never announces (the previous release, or a process without the
// limiter) holds none. A wrong presumption costs at most warmUp of
// refusals on the keys the silent member would own.
//
// Known gaps: a grant goes to a node that asked and is not taken back, so
// with demand under about 2 requests per node per window a window can
// admit nothing (limit 1 at 3× spread over 3 or 10 nodes, two windows in a
// row in 5); members whose views of the membership differ (a join or leave
// in flight) can both act as owner for that moment; and under steady
// demand the sliding estimate admits a limit of 1 only every other window,
// on one node as on many.
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
// record uses are forgotten. A policy holds at most MaxKeys keys: at the
// cap a new key takes the place of the coldest of 8 sampled keys (the least
// activity in this and the previous window: asked for here, reported by
// peers), counted in PolicyStats.Evicted. A flood of distinct keys seen
// once each then churns among itself, and a key with traffic goes only
// when all 8 sampled are busier; sharing one overflow budget among all new
// keys, as before, let such a flood starve every consumer after it. An
// evicted key that returns starts from what peers still report of it (this
// node's own count is lost: its limit can be exceeded by what this node
// had admitted, once per eviction; a key at its limit is as evictable as
// any, since by its counts it cannot be told from a flood's). An evicted
// key's decisions stay in PolicyStats' totals. Keys over 512 bytes, and new keys when
// no sampled key could be removed, are counted together under OverflowKey
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
// breaks these rules. Holdings (see Tiny limits) travel the same way: a
// message whose only group is named "\x00holds" (window 1, base 0), its
// keys the ids "<policy>/<window ms>" of the sender's tiny policies, each
// with no records; the previous release ignores it and counts its keys in
// Stats.ForeignKeys. A payload without claims (no peers, or nothing
// claimed or denied) has no claims groups: byte for byte what the previous
// release writes. During an upgrade the previous release's nodes still
// admit on the estimate alone, so bursts can exceed the limit by their
// share as before; this release's nodes count their admissions (and their
// demand, as they report none) like everyone's.
package ratelimit
