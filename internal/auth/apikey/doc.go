// Package apikey authenticates consumers by API key, keeping only the keys'
// hashes: a leaked configuration, snapshot or log gives nobody a usable key.
//
//	key, hash, _ := apikey.Generate() // hand key to the consumer once; store hash
//	h, err := apikey.ParseHash(hash)  // at config load: "sha256:<64 hex>"
//	s, err := apikey.NewStore([]apikey.Entry{{Hash: h, Consumer: "billing"}})
//	x := apikey.Extractor{Header: "Authorization", Scheme: "ApiKey"}
//	k, found := x.Extract(r)          // per request
//	consumer, id, ok := s.Lookup(k)   // ~0.3 µs, no allocation
//	x.Strip(r)                        // never forward the credential upstream
//
// # Why plain SHA-256
//
// Keys are "mgk_" followed by 32 bytes from crypto/rand (256 bits) in
// lower-case base32. Nobody can guess such a key, so unlike a password it
// needs no salt and no slow KDF (bcrypt, scrypt, argon2): those defend
// low-entropy secrets against offline guessing, and here would only cost
// milliseconds and memory on every request. A single unsalted SHA-256 is
// preimage resistant, and being deterministic it lets Lookup find the entry
// with one map access instead of trying every stored hash.
//
// The stored form is "sha256:" followed by the 64 lower-case hex digits of
// SHA-256(key); ParseHash refuses anything else, in particular a key pasted
// in clear (which starts with "mgk_"): run `meshctl keys hash` to get the
// stored form. An entry's ID, the first 8 hex digits of its hash, names it
// in logs and revocations without revealing anything usable.
//
// The clear key is never kept or logged by this package: Lookup hashes it
// and forgets it, and errors never quote the value they refuse.
package apikey
