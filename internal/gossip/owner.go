package gossip

// An Owner is one kind of replicated state the cluster carries: the route
// and upstream resources, the breakers' reports, the rate-limit counts,
// the upstream stats. Gossip moves the owner's bytes and never looks inside
// them, so the owner packages (replica, breaker, ratelimit, clusterstats)
// do not import this one: they satisfy the interface structurally and are
// handed a Send function.
//
// Two paths carry an owner's state, as in memberlist itself:
//   - news: a small message broadcast through memberlist's
//     TransmitLimitedQueue. memberlist hands a queued message to only a few
//     peers, so a receiver that learns something new from it answers
//     relay=true and the cluster queues the same bytes again (epidemic
//     spread); old news answers false and the spread dies out.
//   - anti-entropy: in each push/pull exchange (memberlist's LocalState and
//     MergeRemoteState) every owner's whole state is sent and merged, which
//     repairs whatever a node missed (a partition, a full queue, a restart).
//
// Merge and MergeState receive a peer's bytes: outside input. They must
// reject anything malformed with an error (the cluster counts and logs it)
// and never panic; both are fuzzed.
type Owner interface {
	// Kind tags the owner's messages on the wire; unique within a cluster.
	Kind() byte
	// Merge applies one broadcast message.
	Merge(msg []byte) (relay bool, err error)
	// LocalState is the owner's whole state for a push/pull exchange. It
	// should stay well under a megabyte: bound it (expire idle keys).
	LocalState() []byte
	// MergeState applies a peer's LocalState.
	MergeState(state []byte) error
}

// Send queues msg for broadcast. A queued message whose key equals a later
// message's key is dropped in favour of the later one, so an owner that
// sends a fresh count for the same key every round never grows the queue.
// Messages should fit one packet: keep them under MaxMessage bytes.
type Send func(key string, msg []byte)

// MaxMessage is the largest message an owner of frequent news (counts,
// reports) should Send, so that many share a packet alongside memberlist's
// own traffic: it was sized for memberlist's UDP packets (about 1,400
// bytes). Packets are larger now (packetSize, for signed replicated items,
// which exceed this), and a message up to that size is still broadcast.
const MaxMessage = 1200
