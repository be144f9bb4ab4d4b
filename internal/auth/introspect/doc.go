// Package introspect validates opaque OAuth 2.0 access tokens by asking the
// authorization server (RFC 7662 token introspection), and caches answers
// so that the server sees one call per token and cache life, not one per
// request.
//
//	in, err := introspect.New(introspect.Options{Endpoint: url, ClientID: id, ClientSecret: secret})
//	defer in.Close()
//	res, err := in.Introspect(ctx, token)
//	switch {
//	case errors.Is(err, introspect.ErrUnavailable): // 503: fail closed
//	case err != nil:                                // 401 (ErrInactive) or 403 (ErrAudience)
//	default:                                        // res.Subject, res.Scopes…
//	}
//
// # Failing closed
//
// A token is accepted only on a 200 response whose "active" member is the
// JSON value true, whose "exp" (if any) is still ahead, whose token_use (if
// any, as Ory Hydra sends) is access_token, and whose "aud" names one of
// Options.Audiences when those are set. Anything else is an error: an
// inactive token, or ErrUnavailable when the server is down, slow, answers
// other than 200, or sends something that is not a well-formed answer.
// ErrUnavailable is never cached, so service resumes with the server.
//
// # Caching
//
// Answers are cached by the SHA-256 of the token, so a heap dump shows no
// usable token; neither logs nor errors ever contain one. An active answer
// is cached until its exp, and at most CacheMax: that bounds how long a
// token revoked at the server is still accepted here. An inactive one is
// cached InactiveTTL, which spares the server the retries of a client
// presenting a dead token. Concurrent requests with the same uncached
// token wait for a single call. The cache holds at most MaxEntries answers;
// when full, inserting evicts the entry closest to expiry among a few
// sampled at random, which is O(1) and mostly drops short-lived inactive
// answers first.
package introspect
