package gossip

import (
	"fmt"

	"github.com/meshgate/meshgate/internal/wire"
)

// The push/pull state is every owner's state in turn:
//
//	count | (kind byte | length-prefixed state)*
const maxStateBytes = 64 << 20

func encodeState(owners []Owner) []byte {
	b := wire.AppendUvarint(nil, uint64(len(owners)))
	for _, o := range owners {
		b = append(b, o.Kind())
		b = wire.AppendBytes(b, o.LocalState())
	}
	return b
}

type ownerState struct {
	kind  byte
	state []byte
}

func decodeState(b []byte) ([]ownerState, error) {
	r := wire.NewReader(b)
	n := r.Count(256, 2, "owners")
	out := make([]ownerState, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		kind := r.Byte()
		out = append(out, ownerState{kind, r.Bytes(maxStateBytes, "state")})
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	return out, nil
}
