package introspect

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// decode parses an introspection response (RFC 7662 section 2.2). Only
// the JSON value true makes a token active: "true", 1 or a missing member
// do not. The members of an active answer must have their standard types:
// a server that sends "exp": "soon" is broken, and its answer is refused
// rather than half-believed.
func decode(body []byte) (*Result, error) {
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("decoding response: %w", err)
	}
	if raw == nil {
		return nil, errors.New("response is null, not a JSON object")
	}
	r := &Result{Raw: raw}
	if raw["active"] != true {
		return r, nil
	}
	if err := r.fill(raw); err != nil {
		return nil, err
	}
	return r, nil
}

// fill sets r's fields from the members of an active answer, and returns
// the first type error.
func (r *Result) fill(raw map[string]any) error {
	var err error
	str := func(name string) string {
		s, e := stringMember(raw, name)
		err = cmp.Or(err, e)
		return s
	}
	r.Subject, r.ClientID = str("sub"), str("client_id")
	r.Username, r.Issuer = str("username"), str("iss")
	// Ory Hydra answers active for refresh tokens too, telling them apart
	// by token_use; only access tokens may call APIs.
	use := str("token_use")
	r.Active = use == "" || use == "access_token"
	aud, errAud := listMember(raw, "aud", false)
	scp, errScp := scopes(raw)
	exp, errExp := expiry(raw)
	r.Audience, r.Scopes, r.Expiry = aud, scp, exp
	return cmp.Or(err, errAud, errScp, errExp)
}

// stringMember returns a string member; absent or null is "". Errors name
// the member and its type, never its value.
func stringMember(raw map[string]any, name string) (string, error) {
	switch v := raw[name].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("%q is a JSON %s, not a string", name, kind(v))
	}
}

// listMember returns a member that is a string or an array of strings. A
// string is one element, or with split a space-separated list (scope).
func listMember(raw map[string]any, name string, split bool) ([]string, error) {
	switch v := raw[name].(type) {
	case nil:
		return nil, nil
	case string:
		if split {
			return strings.Fields(v), nil
		}
		return []string{v}, nil
	case []any:
		list := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%q has a JSON %s element, not a string", name, kind(e))
			}
			list[i] = s
		}
		return list, nil
	default:
		return nil, fmt.Errorf("%q is a JSON %s, not a string or an array", name, kind(v))
	}
}

// scopes reads the standard "scope", else "scp", the array (or string)
// some servers (Okta, Azure AD) send instead.
func scopes(raw map[string]any) ([]string, error) {
	if raw["scope"] != nil {
		s, err := stringMember(raw, "scope")
		return strings.Fields(s), err
	}
	return listMember(raw, "scp", true)
}

// maxExp is year 33658: a later exp is garbage, not a long-lived token,
// and would overflow time arithmetic.
const maxExp = 1e12

// expiry reads "exp", seconds since the epoch, which may have a fraction.
func expiry(raw map[string]any) (time.Time, error) {
	switch v := raw["exp"].(type) {
	case nil:
		return time.Time{}, nil
	case float64:
		if v < 0 || v >= maxExp {
			return time.Time{}, errors.New(`"exp" is out of range`)
		}
		sec, frac := math.Modf(v)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	default:
		return time.Time{}, fmt.Errorf(`"exp" is a JSON %s, not a number`, kind(v))
	}
}

// kind names the JSON type of a value decoded into any.
func kind(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}
