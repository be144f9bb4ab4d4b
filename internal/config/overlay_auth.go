package config

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/meshgate/meshgate/internal/auth/apikey"
)

// Consumers, tiers and API keys as cluster resources.
//
// A tier resource is the YAML of a tiers[] entry; it replaces or adds the
// file's tier of its name, and a tombstone removes it.
//
// A consumer resource is the YAML of a consumers[] entry without api_keys:
// its name, tier and metadata. It replaces or adds the file's consumer of
// its name, keeping the keys the file gives that consumer; a tombstone
// removes the consumer, and its keys with it.
//
// An apikey resource is one key of a consumer, as its hash only (APIKey),
// named by the key's id (KeyID: the first 8 hex digits of the hash). It
// stands for every key of that id: the file's key of the same id is
// replaced by it, and a tombstone revokes the key wherever it is listed,
// the file included. The cluster never holds a key in clear: a value that
// looks like one is refused without being quoted.

// APIKey is the value of an apikey resource.
type APIKey struct {
	Consumer string `yaml:"consumer"`
	// Hash is "sha256:" and the 64 lower-case hex digits of the key's
	// SHA-256 (apikey.HashOf), never the key.
	Hash string `yaml:"hash"`
}

// DecodeTier decodes a tier resource strictly.
func DecodeTier(name string, data []byte) (Tier, error) {
	var t Tier
	_, err := decodeStrict(name, data, &t)
	return t, err
}

// DecodeConsumer decodes a consumer resource strictly. A cluster consumer
// has no api_keys: its keys are apikey resources.
func DecodeConsumer(name string, data []byte) (Consumer, error) {
	var c Consumer
	if bytes.Contains(data, []byte(apikey.Prefix)) {
		return c, Errors{{File: name, Msg: clearKeyMsg}}
	}
	s, err := decodeStrict(name, data, &c)
	if err != nil {
		return c, err
	}
	if len(c.APIKeys) > 0 {
		e := Error{File: name, Msg: "api_keys: a cluster consumer holds no keys; they are apikey resources of their own " +
			"(`meshctl keys issue CONSUMER`), and the file's keys of a consumer of the same name stay"}
		if n := s.pos["api_keys"]; n != nil {
			e.Line, e.Col = n.Line, n.Column
		}
		return c, Errors{e}
	}
	return c, nil
}

const clearKeyMsg = "the value holds an API key in clear (" + apikey.Prefix + "…); the cluster keeps only hashes: " +
	"`meshctl keys issue CONSUMER` makes a key and sends only its hash, `meshctl keys hash` prints the hash of a key"

// DecodeAPIKey decodes an apikey resource strictly and checks its hash.
// Its errors never quote the value, which may be a key in clear.
func DecodeAPIKey(name string, data []byte) (APIKey, error) {
	var k APIKey
	if bytes.Contains(data, []byte(apikey.Prefix)) {
		return k, Errors{{File: name, Msg: clearKeyMsg}}
	}
	if k, ok := plainAPIKey(data); ok {
		return k, nil
	}
	if _, err := decodeStrict(name, data, &k); err != nil {
		return k, err
	}
	switch {
	case k.Consumer == "":
		return k, Errors{{File: name, Msg: "consumer is required: the name of the consumer the key identifies"}}
	case !consumerNameRE.MatchString(k.Consumer):
		return k, Errors{{File: name, Msg: fmt.Sprintf("consumer name %q must be 1..%d letters, digits and ._@:-", k.Consumer, MaxConsumerNameLen)}}
	}
	if _, err := apikey.ParseHash(k.Hash); err != nil {
		return k, Errors{{File: name, Msg: "hash: " + err.Error()}}
	}
	return k, nil
}

// plainAPIKey reads the form meshctl and the admin API write, the two
// lines "consumer: NAME" and "hash: sha256:…" with plain values, without
// a YAML decoder: a node applies every key on each change of the
// cluster's resources, and there may be many. Anything else is left to
// the strict decoder.
func plainAPIKey(data []byte) (APIKey, bool) {
	var k APIKey
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if len(lines) != 2 {
		return k, false
	}
	for _, l := range lines {
		f, v, ok := bytes.Cut(l, []byte(": "))
		switch {
		case !ok:
			return k, false
		case string(f) == "consumer" && k.Consumer == "" && consumerNameRE.Match(v) && isAlnum(v[0]) && !yamlNull[string(v)]:
			k.Consumer = string(v)
		case string(f) == "hash" && k.Hash == "" && keyHashRE.Match(v):
			k.Hash = string(v)
		default:
			return k, false
		}
	}
	return k, true
}

var yamlNull = map[string]bool{"null": true, "Null": true, "NULL": true}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// KeyID is the public id of the key whose hash is hash ("sha256:…"), the
// name of its apikey resource; "" when hash is not such a hash.
func KeyID(hash string) string {
	h, err := apikey.ParseHash(hash)
	if err != nil {
		return ""
	}
	return apikey.IDOf(h)
}

// ResourceName decodes a resource of kind strictly and returns its name:
// the name field, or an API key's id.
func ResourceName(kind string, data []byte) (string, error) {
	switch kind {
	case KindRoute:
		r, err := DecodeRoute(kind, data)
		return r.Name, err
	case KindUpstream:
		u, err := DecodeUpstream(kind, data)
		return u.Name, err
	case KindTier:
		t, err := DecodeTier(kind, data)
		return t.Name, err
	case KindConsumer:
		c, err := DecodeConsumer(kind, data)
		return c.Name, err
	case KindAPIKey:
		k, err := DecodeAPIKey(kind, data)
		return KeyID(k.Hash), err
	}
	return "", fmt.Errorf("unknown resource kind %q", kind)
}

func overlayTier(c *Config, r Resource, where string) error {
	i := slices.IndexFunc(c.Tiers, func(x Tier) bool { return x.Name == r.Name })
	if r.Deleted {
		if i >= 0 {
			c.Tiers = slices.Delete(c.Tiers, i, i+1)
		}
		return nil
	}
	t, err := DecodeTier(where, r.Value)
	if err != nil {
		return err
	}
	if t.Name != r.Name {
		return Error{File: where, Msg: fmt.Sprintf("its name is %q", t.Name)}
	}
	if i >= 0 {
		c.Tiers[i] = t
	} else {
		c.Tiers = append(c.Tiers, t)
	}
	return nil
}

func overlayConsumer(c *Config, r Resource, where string) error {
	i := slices.IndexFunc(c.Consumers, func(x Consumer) bool { return x.Name == r.Name })
	if r.Deleted {
		if i >= 0 {
			c.Consumers = slices.Delete(c.Consumers, i, i+1)
		}
		return nil
	}
	cs, err := DecodeConsumer(where, r.Value)
	if err != nil {
		return err
	}
	if cs.Name != r.Name {
		return Error{File: where, Msg: fmt.Sprintf("its name is %q", cs.Name)}
	}
	if i >= 0 {
		cs.APIKeys = c.Consumers[i].APIKeys // the file's keys stay
		c.Consumers[i] = cs
	} else {
		c.Consumers = append(c.Consumers, cs)
	}
	return nil
}

// overlayKeys applies the apikey resources, once the consumers are in
// place, and returns the errors of those that do not fit.
func overlayKeys(c *Config, keys []Resource) Errors {
	if len(keys) == 0 {
		return nil
	}
	// Each resource stands for every key of its id: take them all out
	// first, from the file's consumers too (a tombstone revokes a file key).
	ids := make(map[string]bool, len(keys))
	for _, r := range keys {
		ids[r.Name] = true
	}
	consumers := make(map[string]int, len(c.Consumers))
	owned := map[int]bool{} // consumers whose APIKeys are this config's own copy, not base's
	for i := range c.Consumers {
		cs := &c.Consumers[i]
		if slices.ContainsFunc(cs.APIKeys, func(h string) bool { return ids[KeyID(h)] }) {
			cs.APIKeys = slices.DeleteFunc(slices.Clone(cs.APIKeys), func(h string) bool { return ids[KeyID(h)] })
			owned[i] = true
		}
		if _, dup := consumers[cs.Name]; !dup {
			consumers[cs.Name] = i
		}
	}
	var bad Errors
	for _, r := range keys {
		if r.Deleted {
			continue
		}
		where := fmt.Sprintf("cluster %s %q", r.Kind, r.Name)
		k, err := DecodeAPIKey(where, r.Value)
		if err != nil {
			bad = appendErr(bad, where, err)
			continue
		}
		if id := KeyID(k.Hash); id != r.Name {
			bad = append(bad, Error{File: where, Msg: fmt.Sprintf("its hash has the id %q", id)})
			continue
		}
		i, ok := consumers[k.Consumer]
		if !ok {
			bad = append(bad, Error{File: where, Msg: fmt.Sprintf("unknown consumer %q: the key applies once the consumer exists", k.Consumer)})
			continue
		}
		cs := &c.Consumers[i]
		if !owned[i] {
			cs.APIKeys, owned[i] = slices.Clone(cs.APIKeys), true
		}
		cs.APIKeys = append(cs.APIKeys, k.Hash)
	}
	return bad
}
