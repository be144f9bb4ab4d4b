package ratelimit

import (
	"encoding/hex"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// goldenKey and goldenGroup are what a payload says, in the order it says
// it: the inputs of builder.add and, decoded, the view of a message.
type goldenKey struct {
	key  string
	recs []wireRecord
}

type goldenGroup struct {
	policy   string
	windowMs int64
	base     int64
	keys     []goldenKey
}

// goldenPayloads pin the wire format: nodes of different versions gossip
// together, so these bytes must never change (only a new wireVersion may).
// Those with claims carry the claims extension (burst shares); the others
// are what the release before it writes and reads.
var goldenPayloads = []struct {
	name   string
	nodes  []string
	claims bool
	groups []goldenGroup
	hex    string
}{
	{
		name:  "no keys",
		nodes: []string{"self"},
		hex:   "01010473656c6600",
	},
	{
		name:  "one count",
		nodes: []string{"a"},
		groups: []goldenGroup{{"api", 60000, 29000000, []goldenKey{
			{"consumer-42", []wireRecord{{node: 0, win: 29000000, count: 7}}},
		}}},
		hex: "01" + // version
			"01" + "0161" + // nodes: "a"
			"01" + // groups
			"03617069" + "e0d403" + "c082ea0d" + "01" + // "api", 60000 ms, base 29000000, 1 key
			"00" + "0b636f6e73756d65722d3432" + "01" + // shared 0, "consumer-42", 1 record
			"00" + "07", // node 0 age 0, count 7
	},
	{
		// Three nodes, every age, counts of one to six varint bytes,
		// front-coded keys (shared prefixes, an empty key, a key sharing
		// nothing), two policies, and the first policy again under another
		// base (a new group).
		name:  "state",
		nodes: []string{"self", "node-b", strings.Repeat("n", 200)},
		groups: []goldenGroup{
			{"api", 60000, 29000000, []goldenKey{
				{"", []wireRecord{{node: 1, win: 29000000, count: 1}}},
				{"tenant-0/consumer-0", []wireRecord{
					{node: 0, win: 29000000, count: 5},
					{node: 1, win: 28999999, count: 900},
					{node: 2, win: 28999997, count: maxCount},
				}},
				{"tenant-0/consumer-1", []wireRecord{{node: 2, win: 28999998, count: 300}}},
				{"tenant-0/consumer-10", []wireRecord{{node: 1, win: 29000000, count: 1 << 20}}},
				{"zz", []wireRecord{}}, // no records
			}},
			{"s", 10000, 174000000, []goldenKey{
				{"ip:10.0.0.1", []wireRecord{{node: 0, win: 174000000, count: 127}}},
				{"ip:10.0.0.2", []wireRecord{{node: 0, win: 173999999, count: 128}}},
			}},
			{"api", 60000, 29000001, []goldenKey{
				{"k", []wireRecord{{node: 0, win: 29000001, count: 3}}},
			}},
		},
		hex: "01" +
			"03" + "0473656c66" + "066e6f64652d62" + "c801" + strings.Repeat("6e", 200) +
			"03" +
			"03617069" + "e0d403" + "c082ea0d" + "05" +
			"00" + "00" + "01" + "0401" +
			"00" + "1374656e616e742d302f636f6e73756d65722d30" + "03" + "0005" + "058407" + "0b808080808020" +
			"12" + "0131" + "01" + "0aac02" +
			"13" + "0130" + "01" + "04808040" +
			"00" + "027a7a" + "00" +
			"0173" + "904e" + "808ffc52" + "02" +
			"00" + "0b69703a31302e302e302e31" + "01" + "007f" +
			"0a" + "0132" + "01" + "018001" +
			"03617069" + "e0d403" + "c182ea0d" + "01" +
			"00" + "016b" + "01" + "0003",
	},
	{
		name:  "longest",
		nodes: []string{strings.Repeat("x", maxNameLen)},
		groups: []goldenGroup{{strings.Repeat("p", maxNameLen), maxWindowMs, maxWindowIdx, []goldenKey{
			{strings.Repeat("k", maxKeyLen), []wireRecord{{node: 0, win: maxWindowIdx - maxAge, count: maxCount}}},
			{strings.Repeat("k", maxKeyLen-1) + "l", []wireRecord{{node: 0, win: maxWindowIdx, count: 0}}},
		}}},
		hex: "01" + "01" + "ff01" + strings.Repeat("78", 255) +
			"01" + "ff01" + strings.Repeat("70", 255) + "808080808020" + "80808080808080" + "08" + "02" +
			"00" + "8004" + strings.Repeat("6b", 512) + "01" + "03808080808020" +
			"ff03" + "016c" + "01" + "0000",
	},
	{
		// Each group is followed by its claims extension: the same window
		// and base, an empty key per key of the group, and per key either
		// no records (k2: nothing to add) or (tag, reserve), (tag, denied)
		// per record of the key.
		name:   "claims",
		nodes:  []string{"a", "b"},
		claims: true,
		groups: []goldenGroup{
			{"api", 60000, 29000000, []goldenKey{
				{"k1", []wireRecord{
					{node: 0, win: 29000000, count: 7, reserve: 3},
					{node: 1, win: 28999999, count: 900, denied: 250},
				}},
				{"k2", []wireRecord{{node: 0, win: 29000000, count: 2}}},
			}},
			{"s", 10000, 174000000, []goldenKey{
				{"x", []wireRecord{{node: 0, win: 174000000, count: 1, denied: 1}}},
			}},
		},
		hex: "01" + // version: 1, as before
			"02" + "0161" + "0162" + // nodes "a", "b"
			"04" + // groups: two, each with its extension
			"03617069" + "e0d403" + "c082ea0d" + "02" + // "api", 60000 ms, base 29000000, 2 keys
			"00" + "026b31" + "02" + "0007" + "058407" + // "k1": node 0 age 0 count 7, node 1 age 1 count 900
			"01" + "0132" + "01" + "0002" + // "k2" (shares "k"): node 0 count 2
			"0700636c61696d73" + "e0d403" + "c082ea0d" + "02" + // "\x00claims", same window, base, 2 keys
			"0000" + "04" + "0003" + "0000" + "0500" + "05fa01" + // k1: reserve 3, denied 0; reserve 0, denied 250
			"0000" + "00" + // k2: nothing
			"0173" + "904e" + "808ffc52" + "01" + // "s", 10000 ms, base 174000000, 1 key
			"00" + "0178" + "01" + "0001" + // "x": count 1
			"0700636c61696d73" + "904e" + "808ffc52" + "01" +
			"0000" + "02" + "0000" + "0001", // reserve 0, denied 1
	},
	{
		// The largest values the extension carries.
		name:   "claims longest",
		nodes:  []string{"a"},
		claims: true,
		groups: []goldenGroup{{"p", 1000, 5, []goldenKey{
			{"k", []wireRecord{{node: 0, win: 2, count: maxCount, reserve: maxCount, denied: maxCount}}},
		}}},
		hex: "01" + "01" + "0161" + "02" +
			"0170" + "e807" + "05" + "01" +
			"00" + "016b" + "01" + "03" + "808080808020" +
			"0700636c61696d73" + "e807" + "05" + "01" +
			"0000" + "02" + "03808080808020" + "03808080808020",
	},
}

func encodeGolden(nodes []string, claims bool, groups []goldenGroup, max int) ([]byte, bool) {
	b := newBuilder(max, nodes)
	b.claims = claims
	for _, g := range groups {
		for _, k := range g.keys {
			if !b.add(g.policy, g.windowMs, g.base, k.key, k.recs) {
				return nil, false
			}
		}
	}
	return b.finish(), true
}

// view is what m says, in goldenGroup form.
func view(m *message) (nodes []string, groups []goldenGroup) {
	for _, n := range m.nodes {
		nodes = append(nodes, string(n))
	}
	k, r := 0, 0
	for _, g := range m.groups {
		gg := goldenGroup{policy: string(g.policy), windowMs: g.windowMs, base: g.base}
		for ; k < g.keysEnd; k++ {
			key := m.keys[k]
			recs := append([]wireRecord{}, m.recs[r:key.recsEnd]...)
			r = key.recsEnd
			gg.keys = append(gg.keys, goldenKey{string(m.keyBuf[key.start:key.end]), recs})
		}
		groups = append(groups, gg)
	}
	return nodes, groups
}

// TestWireGolden: the builder writes the pinned bytes, sizes them exactly
// (a payload of exactly max bytes fits, one byte less does not), and the
// decoder reads them back to the same values.
func TestWireGolden(t *testing.T) {
	for _, g := range goldenPayloads {
		got, _ := encodeGolden(g.nodes, g.claims, g.groups, 1<<20)
		if h := hex.EncodeToString(got); h != g.hex {
			t.Errorf("%s: encoded\n%s\nwant\n%s", g.name, h, g.hex)
			continue
		}
		if len(g.groups) > 0 {
			if _, ok := encodeGolden(g.nodes, g.claims, g.groups, len(got)); !ok {
				t.Errorf("%s: does not fit in its own %d bytes", g.name, len(got))
			}
			if _, ok := encodeGolden(g.nodes, g.claims, g.groups, len(got)-1); ok {
				t.Errorf("%s: fits in %d bytes", g.name, len(got)-1)
			}
		}
		var m message
		if err := decode(got, &m); err != nil {
			t.Errorf("%s: decode: %v", g.name, err)
			continue
		}
		nodes, groups := view(&m)
		if !reflect.DeepEqual(nodes, g.nodes) || !reflect.DeepEqual(groups, g.groups) {
			t.Errorf("%s: decoded %q %+v\nwant %q %+v", g.name, nodes, groups, g.nodes, g.groups)
		}
	}
}

// benchPayload is a full message (maxMessage bytes at most) of sorted keys
// with a record or two each, as Flush sends: the same bytes every run.
func benchPayload() []byte {
	keys := manyKeys(200)
	slices.Sort(keys)
	bld := newBuilder(maxMessage, []string{"node-a"})
	for i, k := range keys {
		recs := []wireRecord{{node: 0, win: 29000000, count: int64(i)}}
		if i%2 == 0 {
			recs = append(recs, wireRecord{node: 0, win: 28999999, count: 900})
		}
		if !bld.add("api", 60000, 29000000, k, recs) {
			break
		}
	}
	return bld.finish()
}

// BenchmarkDecode: decoding alone (no merging) of one full message.
func BenchmarkDecode(b *testing.B) {
	msg := benchPayload()
	var m message
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := decode(msg, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuild: encoding one full message.
func BenchmarkBuild(b *testing.B) {
	keys := manyKeys(200)
	slices.Sort(keys)
	recs := []wireRecord{{node: 0, win: 28999999, count: 900}, {node: 0, win: 29000000, count: 17}}
	bld := newBuilder(maxMessage, []string{"node-a"})
	b.ReportAllocs()
	for b.Loop() {
		for _, k := range keys {
			if !bld.add("api", 60000, 29000000, k, recs) {
				break
			}
		}
		bld.finish()
	}
}
