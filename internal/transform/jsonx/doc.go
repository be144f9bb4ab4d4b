// Package jsonx applies declarative transforms to JSON request and response
// bodies: field filtering (an allow or a deny list of paths) and a mapping
// for legacy formats (rename, move, wrap, extract, set, delete). A Spec is
// compiled once per configuration into a Program; Program.Apply runs per
// request, is safe for concurrent use, and costs a few microseconds and one
// allocation (the result) on a 1 KiB body.
//
// # Paths
//
// A path is a dot-separated list of object keys, each optionally followed
// by "[]", which descends into every element of an array:
//
//	user.name          member "name" of member "user"
//	items[].id         "id" of every element of the array "items"
//	matrix[][]         every element of every element of "matrix"
//	[].id              "id" of every element of a top-level array
//	"a.b".c            a key holding '.', '[', ']', '"', a space, a control
//	                   character, or an empty key is quoted; a quoted key is
//	                   a JSON string literal, so its escapes are JSON's:
//	                   "say \"hi\"", "tab\there", "\u00e9", ""
//	"" or "."          the whole document (the root)
//
// A leading "." is optional (".a.b" is "a.b", as in jq). Bare keys are any
// other UTF-8 text. Array indexes ("a[0]") are not supported. Keys compare
// by value: the path key "é" matches the input key "\u00e9". A path has at
// most MaxPathSteps (64) steps, and a set constant nests at most 128 deep.
//
// # Filtering
//
// Allow keeps only the listed paths; Deny removes them; a Spec has at most
// one of the two. With "[]" both act in every element: allow "items[].id"
// keeps just "id" in each element of "items", deny "items[].secret" removes
// "secret" from each. Under Allow, an object or array a path goes through is
// kept with only its allowed parts (possibly empty); a value whose type does
// not fit the path (a scalar where the path goes on, an object where it says
// "[]", an array where it names a key) is dropped; a top-level value that is
// dropped becomes null. Deny paths must end in a key and cannot be the root.
//
// # Order: filter, then ops
//
// The filter runs first, on the document as received, then the Ops in
// order. Operators write Allow and Deny against the upstream's (or the
// client's) documented schema, which is the stable thing they know; the
// mapping then produces the legacy shape. Running the filter first also
// means that fields injected by "set" (a consumer name, a request id) are
// not stripped by an allow list that does not mention them, and that data a
// deny list removes cannot be carried past it by a move or rename to a path
// the list does not name.
//
// # Operations
//
// See Op for the fields each operation takes. Rules common to all:
//
//   - A missing path is a no-op, not an error, and so is a path that runs
//     into a value of another type. Apply fails only on the body itself.
//     Exception: extract of a missing path yields null, so that a client
//     never receives the whole document where a part was configured.
//   - Ops whose path has "[]" run in every element the prefix up to the last
//     "[]" reaches; move's From and To must share that prefix, so
//     {From: "items[].price.amount", To: "items[].amount"} moves within each
//     element.
//   - Conflicts: a move, set or rename onto an existing key overwrites it.
//     move and set put the value where the existing member was (a new key
//     is appended at the end of the object); rename keeps the renamed
//     member's position and removes the member it overwrites. If the
//     destination of a move runs into a non-object, nothing moves.
//   - move and set create missing objects on the way to their destination.
//   - set with Var writes the variable as a JSON string; an unknown
//     variable (or nil Vars) leaves the document unchanged.
//   - Duplicate keys (legal JSON, rarely sent) are kept. Allow, Deny, delete
//     and rename act on every occurrence; reading a value (the steps of a
//     path, move's source, extract) uses the last one, as encoding/json and
//     JavaScript do.
//
// # Empty bodies
//
// An empty or all-whitespace body is an absent document. The filter and
// rename, move, delete and extract leave it absent, and the result is
// empty. set and wrap need a document: they start from {}, so a wrap of an
// empty body is {"key":{}}.
//
// # Precision and fidelity
//
// Scalars are never decoded: numbers (9007199254740993, 0.1, 1e400, -0,
// 1E+999999) and strings (with their exact escapes: "\u00e9", surrogate
// pairs, "\u0000") are copied byte for byte. Object members keep their input
// order; members created by ops are appended. The output is compact JSON.
//
// # Limits and errors
//
// Input must be a single RFC 8259 JSON value in UTF-8, optionally
// surrounded by whitespace. Otherwise Apply returns a *BodyError whose
// message is short and safe to show to a client ("invalid JSON at offset 17:
// unexpected '}'"). Limits.MaxDepth (default 128) bounds nesting
// (*BodyError wrapping ErrTooDeep); Limits.MaxBytes bounds input and output
// (an error wrapping ErrTooLarge). Apply never panics.
package jsonx
