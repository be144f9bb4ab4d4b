// Package hydra pins ORY Hydra (github.com/ory/hydra/v2, the OAuth2 and
// OpenID Connect server) that `make hydra` builds into bin/hydra for the
// token-validation tests (internal/idptest), in a module of its own so that
// neither the project's go.mod nor the other tools modules carry Hydra's
// dependencies. Its go.mod repeats Hydra's replace of
// github.com/gobuffalo/pop/v6 by ORY's fork, which Go does not take from a
// dependency: without it Hydra does not compile. The build needs cgo and
// the tags sqlite,sqlite_omit_load_extension (the in-memory store is SQLite).
package hydra
