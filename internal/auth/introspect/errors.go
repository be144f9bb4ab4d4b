package introspect

import (
	"errors"
	"fmt"
)

var (
	// ErrInactive: the server says the token is not active (unknown,
	// expired, revoked), or its exp has passed. Answer 401.
	ErrInactive = errors.New("introspect: token is not active")
	// ErrAudience: the token is active but meant for another audience.
	// Answer 403 (or 401).
	ErrAudience = errors.New("introspect: token audience not accepted")
	// ErrUnavailable: no trustworthy answer (server down, slow, failing or
	// garbled, or the Introspector closed). Answer 503; never treat as active.
	ErrUnavailable = errors.New("introspect: authorization server unavailable")
)

// unavailable returns an error wrapping ErrUnavailable (and any %w
// argument). The cause never contains the token: it only travels in the
// request body, which no error or log quotes.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnavailable}, args...)...)
}
