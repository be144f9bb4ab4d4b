package gossip

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate is the Cluster as memberlist's Delegate: it multiplexes the
// owners' messages and states by their kind byte.
type delegate Cluster

func (d *delegate) NodeMeta(limit int) []byte {
	b := *d.meta.Load()
	if len(b) > limit { // Marshal already checked MetaMaxSize
		return nil
	}
	return b
}

// NotifyMsg receives one broadcast (memberlist may reuse b afterwards).
func (d *delegate) NotifyMsg(b []byte) {
	c := (*Cluster)(d)
	if !c.started.Load() {
		return // peers repeat news and push/pull repairs the rest
	}
	if len(b) == 0 {
		c.stats.badMessages.Add(1)
		return
	}
	direct := b[0] == directTag // DirectSender's: never relayed
	if direct {
		if b = b[1:]; len(b) == 0 {
			c.stats.badMessages.Add(1)
			return
		}
	}
	o := c.owners[b[0]]
	if o == nil {
		c.stats.unknownKind.Add(1)
		return
	}
	c.stats.messagesIn.Add(1)
	msg := bytes.Clone(b)
	relay, err := o.Merge(msg[1:])
	if err != nil {
		c.stats.badMessages.Add(1)
		c.badInput("message", msg[0], err)
		return
	}
	if relay && !direct {
		// Keyed by content: the same news relayed twice is queued once.
		c.stats.relayed.Add(1)
		c.queueFor(msg[0]).QueueBroadcast(&broadcast{key: "relay/" + string(msg), msg: msg})
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	out := d.queue.GetBroadcasts(overhead, limit)
	for _, b := range out {
		limit -= overhead + len(b)
	}
	return append(out, d.frequent.GetBroadcasts(overhead, limit)...)
}

func (d *delegate) LocalState(join bool) []byte {
	if !d.started.Load() {
		return encodeState(nil)
	}
	return encodeState(d.kinds)
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	c := (*Cluster)(d)
	if !c.started.Load() {
		return
	}
	states, err := decodeState(buf)
	if err != nil {
		c.stats.badStates.Add(1)
		c.badInput("state", 0, err)
		return
	}
	c.stats.statesIn.Add(1)
	for _, st := range states {
		o := c.owners[st.kind]
		if o == nil {
			c.stats.unknownKind.Add(1)
			continue
		}
		if err := o.MergeState(st.state); err != nil {
			c.stats.badStates.Add(1)
			c.badInput("state", st.kind, err)
		}
	}
}

var lastBadLog atomic.Int64

// badInput logs a peer's malformed bytes at most once a second (they are
// also counted): a broken or hostile peer must not flood the log.
func (c *Cluster) badInput(what string, kind byte, err error) {
	now := time.Now().UnixNano()
	last := lastBadLog.Load()
	if now-last < int64(time.Second) || !lastBadLog.CompareAndSwap(last, now) {
		return
	}
	c.log.Warn("rejected a peer's gossip "+what, "kind", string(rune(kind)), "err", err)
}

// events is the Cluster as memberlist's EventDelegate. memberlist calls it
// for dead nodes too (NotifyLeave), so discovery drops an endpoint as soon
// as memberlist declares its node dead.
type events Cluster

func (e *events) NotifyJoin(n *memberlist.Node)   { (*Cluster)(e).update(n, Alive) }
func (e *events) NotifyUpdate(n *memberlist.Node) { (*Cluster)(e).update(n, Alive) }

// NotifyLeave: memberlist passes a stale Node.State here, so a leave is
// told from a death by the Leaving flag of the node's last metadata.
func (e *events) NotifyLeave(n *memberlist.Node) { (*Cluster)(e).update(n, Dead) }

// logWriter turns memberlist's "[LEVEL] memberlist: ..." lines into slog.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := slog.LevelDebug
	for prefix, l := range map[string]slog.Level{"[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[INFO]": slog.LevelDebug} {
		if len(line) >= len(prefix) && line[:len(prefix)] == prefix {
			level, line = l, line[len(prefix)+1:]
			break
		}
	}
	if strings.Contains(line, "shut down") {
		level = slog.LevelDebug // a peer or this node stopping: expected, not an error
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
