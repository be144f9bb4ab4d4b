package replica

import (
	"errors"
	"fmt"

	"github.com/meshgate/meshgate/internal/wire"
)

// Wire format of an item (integers are uvarints, strings length-prefixed):
//
//	flags | clock | node | kind | name | value [| extension]
//
// flags bit 0: a tombstone; bit 1: an extension follows the value. The
// extension is Item.Ext, a length-prefixed blob the store keeps and relays
// as it came: the writer's signature (package itemsig defines its content,
// itself versioned so that a later release can add fields to it). An
// unsigned item (Ext empty) is written without the bit and the blob, in
// the bytes of the release before signatures; that release skipped the
// blob and still reads a signed item. Flag bits this release does not know
// are ignored. The goldens in codec_test.go pin the format.
//
// Limits keep a hostile peer from making the store allocate much.
const (
	maxName      = 253
	maxValue     = 256 << 10
	maxExtension = 16 << 10
)

// Item flags.
const (
	flagDeleted   = 1 << 0
	flagExtension = 1 << 1
)

func encodeItem(b []byte, it *Item) []byte {
	var flags uint64
	if it.Deleted {
		flags = flagDeleted
	}
	if len(it.Ext) > 0 {
		flags |= flagExtension
	}
	b = wire.AppendUvarint(b, flags)
	b = wire.AppendUvarint(b, it.Version.Clock)
	b = wire.AppendString(b, it.Version.Node)
	b = wire.AppendString(b, it.Kind)
	b = wire.AppendString(b, it.Name)
	b = wire.AppendBytes(b, it.Value)
	if len(it.Ext) > 0 {
		b = wire.AppendBytes(b, it.Ext)
	}
	return b
}

// encodeState is the count of items, then each item.
func encodeState(items map[key]*Item) []byte {
	b := wire.AppendUvarint(nil, uint64(len(items)))
	for _, it := range items {
		b = encodeItem(b, it)
	}
	return b
}

func decodeItem(r *wire.Reader) *Item {
	flags := r.Uvarint() // bits this release does not know are a later one's
	it := &Item{Deleted: flags&flagDeleted != 0}
	it.Version.Clock = r.Uvarint()
	it.Version.Node = name(r, "node")
	it.Kind = name(r, "kind")
	it.Name = name(r, "name")
	if v := r.Bytes(maxValue, "value"); len(v) > 0 {
		if it.Deleted {
			r.Fail(errors.New("tombstone with a value"))
		}
		it.Value = append([]byte(nil), v...)
	}
	if flags&flagExtension != 0 {
		// Kept whole, even the fields this release does not know, so a
		// relayed signature verifies on a node of any release.
		if ext := r.Bytes(maxExtension, "extension"); len(ext) > 0 {
			it.Ext = append([]byte(nil), ext...)
		}
	}
	return it
}

func name(r *wire.Reader, what string) string {
	s := r.String(maxName, what)
	if s == "" {
		r.Fail(fmt.Errorf("empty %s", what))
	}
	return s
}

// decodeMessage reads one broadcast item.
func decodeMessage(b []byte) (*Item, error) {
	r := wire.NewReader(b)
	it := decodeItem(r)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	return it, nil
}

// decodeState reads a LocalState; each item takes at least 5 bytes.
func decodeState(b []byte, maxItems int) ([]*Item, error) {
	r := wire.NewReader(b)
	n := r.Count(maxItems, 5, "items")
	items := make([]*Item, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		items = append(items, decodeItem(r))
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	return items, nil
}
