package ratelimit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/wire"
)

// Rolling upgrades (issue 15): nodes of the release before burst shares and
// of this one gossip in one cluster. decodeRelease1 and decodeGroupRelease1
// are that release's decoder (main's internal/ratelimit/wire.go, verbatim
// but for their names): what a node not yet upgraded does with this
// release's payloads. It rejects any version byte but 1 and any byte left
// over, which is why the claims travel in an extension group (claimsGroup)
// rather than under a new version or in trailing fields.
func decodeRelease1(b []byte, m *message) error {
	m.reset()
	r := wire.NewReader(b)
	r.Version(1)
	nn := r.Count(maxNodes, 1, "nodes")
	for i := 0; i < nn && r.Err() == nil; i++ {
		name := r.Bytes(maxNameLen, "node name")
		if len(name) == 0 {
			r.Fail(errors.New("empty node name"))
		}
		m.nodes = append(m.nodes, name)
	}
	ng := r.Count(math.MaxInt, 4, "policies")
	for i := 0; i < ng && r.Err() == nil; i++ {
		decodeGroupRelease1(r, m)
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("ratelimit: %w", err)
	}
	return nil
}

func decodeGroupRelease1(r *wire.Reader, m *message) {
	name := r.Bytes(maxNameLen, "policy name")
	ms := r.UvarintMax(maxWindowMs, "window")
	if ms == 0 {
		r.Fail(errors.New("zero window"))
	}
	base := r.UvarintMax(maxWindowIdx, "base window")
	nk := r.Count(math.MaxInt, 3, "keys")
	prev := 0 // length of the previous key; it ends at len(m.keyBuf)
	for i := 0; i < nk && r.Err() == nil; i++ {
		shared := int(r.UvarintMax(uint64(prev), "shared prefix"))
		suffix := r.Bytes(maxKeyLen-shared, "key")
		start := len(m.keyBuf)
		m.keyBuf = append(m.keyBuf, m.keyBuf[start-prev:start-prev+shared]...)
		m.keyBuf = append(m.keyBuf, suffix...)
		prev = len(m.keyBuf) - start
		nr := r.Count(math.MaxInt, 2, "records")
		for j := 0; j < nr && r.Err() == nil; j++ {
			tag := r.UvarintMax(maxNodes<<2, "record tag")
			if int(tag>>2) >= len(m.nodes) {
				r.Fail(fmt.Errorf("record names node %d of %d", tag>>2, len(m.nodes)))
			}
			age := tag & maxAge
			if age > base {
				r.Fail(fmt.Errorf("record age %d before window 0", age))
			}
			c := r.UvarintMax(maxCount, "count")
			m.recs = append(m.recs, wireRecord{node: int(tag >> 2), win: int64(base - age), count: int64(c)})
		}
		m.keys = append(m.keys, wireKey{start: start, end: len(m.keyBuf), recsEnd: len(m.recs)})
	}
	m.groups = append(m.groups, wireGroup{policy: name, windowMs: int64(ms), keysEnd: len(m.keys)})
}

// counts is v with the claims taken out: what a payload says to a node of
// the previous release, which ignores the extension groups.
func countsOnly(v []goldenGroup) []goldenGroup {
	var out []goldenGroup
	for _, g := range v {
		if g.policy == claimsGroup {
			continue
		}
		g.keys = append([]goldenKey{}, g.keys...)
		for i, k := range g.keys {
			recs := append([]wireRecord{}, k.recs...)
			for j := range recs {
				recs[j].reserve, recs[j].denied = 0, 0
			}
			g.keys[i].recs = recs
		}
		out = append(out, g)
	}
	return out
}

// claimsPayloads are payloads with the claims extension: the goldens, and
// a flush and a state of a node in a burst with peers.
func claimsPayloads(t *testing.T) map[string][]byte {
	out := map[string][]byte{}
	for _, g := range goldenPayloads {
		b, err := hex.DecodeString(g.hex)
		if err != nil {
			t.Fatal(err)
		}
		out["golden "+g.name] = b
	}
	s := newSingle(t, Options{Node: "self"}, perMinute, tenSec)
	s.setPeers(2)
	for i := range 200 {
		s.l.Policy("api").Allow(fmt.Sprintf("tenant-%d", i%7))
		s.l.Policy("s").Allow("ip:10.0.0.1")
	}
	s.sent = nil
	s.l.Flush()
	for i, m := range s.sent {
		out[fmt.Sprintf("flush %d", i)] = m.msg
	}
	mustMerge(t, s.l, countsMsg("b", perMinute, "tenant-0", map[int64]int64{win(perMinute, t0): 5}))
	out["state"] = s.l.LocalState()
	return out
}

// TestRelease1ReadsClaims: a node of the previous release accepts every
// payload this one writes, reads the same counts from it as this release
// does, and sees the claims only as groups of a policy it cannot have
// (which its apply skips, counting them in Stats.ForeignKeys).
func TestRelease1ReadsClaims(t *testing.T) {
	withClaims := 0
	for name, b := range claimsPayloads(t) {
		var old, cur message
		if err := decodeRelease1(b, &old); err != nil {
			t.Errorf("%s: the previous release rejects it: %v", name, err)
			continue
		}
		if err := decode(b, &cur); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		oldNodes, oldView := view(&old)
		curNodes, curView := view(&cur)
		for i := range curView {
			curView[i].base = 0 // the previous release does not keep it
		}
		if !reflect.DeepEqual(oldNodes, curNodes) || !reflect.DeepEqual(countsOnly(oldView), countsOnly(curView)) {
			t.Errorf("%s: counts differ:\nprevious release %+v\nthis one %+v", name, countsOnly(oldView), countsOnly(curView))
		}
		if !reflect.DeepEqual(countsOnly(curView), curView) {
			withClaims++
		}
		for i, g := range oldView {
			if g.policy == claimsGroup && (i == 0 || oldView[i-1].policy == claimsGroup) {
				t.Errorf("%s: extension group %d follows no group", name, i)
			}
		}
	}
	if withClaims < 3 {
		t.Errorf("only %d payloads carry claims: the test checks little", withClaims)
	}
	if err := (PolicyConfig{Name: claimsGroup, Limit: 1, Window: time.Second}).validate(); err == nil {
		t.Errorf("a policy may be named %q, the claims extension's name", claimsGroup)
	}
}

// TestRelease1RejectsOtherLayouts records why the claims are an extension
// group: the previous release rejects, whole (counts included), a payload
// of another version byte and one with bytes after its groups.
func TestRelease1RejectsOtherLayouts(t *testing.T) {
	v1 := countsMsg("a", perMinute, "k", map[int64]int64{win(perMinute, t0): 7})
	var m message
	if err := decodeRelease1(v1, &m); err != nil {
		t.Fatal(err)
	}
	v2 := append([]byte{2}, v1[1:]...)
	if err := decodeRelease1(v2, &m); !errors.Is(err, wire.ErrVersion) {
		t.Errorf("version 2: %v, want ErrVersion", err)
	}
	if err := decodeRelease1(append(v1, 0, 3), &m); err == nil {
		t.Errorf("trailing fields accepted")
	}
	// This release keeps to version 1 too.
	if err := decode(v2, &m); !errors.Is(err, wire.ErrVersion) {
		t.Errorf("this release reads version 2: %v", err)
	}
}

// stripClaims re-encodes a payload without its claims: what a node of the
// previous release sends.
func stripClaims(t testing.TB, msg []byte) []byte {
	var m message
	if err := decode(msg, &m); err != nil {
		t.Fatal(err)
	}
	nodes, groups := view(&m)
	for i := range groups {
		groups[i].base = m.groups[i].base
	}
	out, ok := encodeGolden(nodes, false, countsOnly(groups), 1<<20)
	if !ok {
		t.Fatal("stripClaims: does not fit")
	}
	return out
}

// TestMixedVersionCluster: a burst on a 3-node cluster mid-upgrade, n2
// still on the previous release (it decides on the estimate alone, sends
// counts only and decodes with that release's decoder). Every message is
// accepted both ways, and after the burst every node knows every node's
// count: the cluster total stays whole while it upgrades. (It does not
// hold the limit as tightly: n2 admits on the estimate, as before.)
func TestMixedVersionCluster(t *testing.T) {
	const old = 2
	pc := tenSecLimit
	s := newSimNet(t, 3, 7, Options{}, pc)
	s.relay = true
	s.nodes[old].l.noShares = true
	s.outbound = func(from int, msg []byte) []byte {
		if from == old {
			return stripClaims(t, msg)
		}
		return msg
	}
	s.merge = func(to int, msg []byte) (bool, error) {
		if to != old {
			return s.nodes[to].l.Merge(msg)
		}
		m := new(message)
		if err := decodeRelease1(msg, m); err != nil {
			return false, err
		}
		return s.nodes[to].l.apply(m), nil
	}
	d := newDemand(s, pc.Name, "tenant", burstRates(3*float64(pc.Limit)/(pc.Window/10).Seconds(), 3, 0.8))
	d.run(pc.Window / 10)
	for i := range d.rates {
		d.setRate(i, 0)
	}
	d.run(pc.Window / 2)
	s.flushAll()
	s.settle()
	w := win(pc, t0)
	t.Logf("admitted/limit %.3f", float64(d.admitted[w])/float64(pc.Limit))
	for _, nd := range s.nodes {
		local, peers := nd.l.Policy(pc.Name).counts("tenant", w)
		if local+peers != d.admitted[w] {
			t.Errorf("%s knows %d+%d admitted, want %d", nd.name, local, peers, d.admitted[w])
		}
	}
	if s.nodes[old].l.Stats().ForeignKeys == 0 {
		t.Errorf("the previous release saw no extension groups: the test checks little")
	}
}

// TestClaimsNearMisses: the fuzz seeds that break the extension's rules
// are rejected whole, though the previous release reads them (it does not
// know the rules).
func TestClaimsNearMisses(t *testing.T) {
	seeds := fuzzSeeds(t)
	for _, name := range []string{"claims-orphan", "claims-tag", "claims-records"} {
		var m message
		if err := decode(seeds[name], &m); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if err := decodeRelease1(seeds[name], &m); err != nil {
			t.Errorf("%s: the previous release rejects it: %v", name, err)
		}
	}
}
