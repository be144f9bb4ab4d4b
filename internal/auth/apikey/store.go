package apikey

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Entry is one stored key.
type Entry struct {
	Hash     [sha256.Size]byte // SHA-256 of the key, from ParseHash
	Consumer string            // who the key authenticates
	ID       string            // public name of the key; NewStore sets IDOf(Hash) when empty
}

// Store finds the consumer of a presented key. It is immutable, so any
// number of goroutines may call Lookup; a config change builds a new Store.
type Store struct {
	byHash map[[sha256.Size]byte]Entry
}

// NewStore indexes entries by hash. Two entries with the same hash would
// make a key's consumer ambiguous, so they are an error, as are entries
// without a consumer or without a hash.
func NewStore(entries []Entry) (*Store, error) {
	s := &Store{byHash: make(map[[sha256.Size]byte]Entry, len(entries))}
	for i, e := range entries {
		if e.ID == "" {
			e.ID = IDOf(e.Hash)
		}
		if err := s.add(e); err != nil {
			return nil, fmt.Errorf("apikey: entry %d (id %s): %w", i, e.ID, err)
		}
	}
	return s, nil
}

func (s *Store) add(e Entry) error {
	switch prev, dup := s.byHash[e.Hash]; {
	case e.Consumer == "":
		return errors.New("no consumer")
	case e.Hash == [sha256.Size]byte{}:
		return errors.New("no hash") // an unset field, not a real SHA-256
	case dup:
		return fmt.Errorf("same hash as key %s of consumer %q", prev.ID, prev.Consumer)
	}
	s.byHash[e.Hash] = e
	return nil
}

// Len returns the number of keys in s.
func (s *Store) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byHash)
}

// Lookup returns the consumer and key ID of presented, or ok false.
//
// The map finds the entry by hash, which leaks through timing at most how
// much of SHA-256(presented) matches a stored hash: useless without a
// preimage. The constant-time comparison then confirms the match, so that
// no byte-by-byte comparison of secret-derived data ever decides access.
func (s *Store) Lookup(presented string) (consumer, id string, ok bool) {
	if s == nil || presented == "" || len(presented) > MaxKeyLen {
		return "", "", false
	}
	sum := hashKey(presented)
	e, found := s.byHash[sum]
	if !found || subtle.ConstantTimeCompare(e.Hash[:], sum[:]) != 1 {
		return "", "", false
	}
	return e.Consumer, e.ID, true
}

// hashKey hashes a key of at most MaxKeyLen bytes through a stack buffer:
// converting the string to a slice would allocate on every request.
func hashKey(key string) [sha256.Size]byte {
	var buf [MaxKeyLen]byte
	n := copy(buf[:], key)
	return sha256.Sum256(buf[:n])
}
