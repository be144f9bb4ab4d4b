// Package workload is meshgate's embedded SPIFFE Workload API server: the
// single-host default source of X.509-SVIDs for edge, sidecars and demo
// services. It speaks the gRPC API whose proto ships in go-spiffe
// (proto/spiffe/workload), so a process that consumes identities through
// go-spiffe's workloadapi.X509Source runs unchanged against this server or
// against a SPIRE agent; only the socket address differs.
//
// # Attestation: one socket per workload
//
// Callers are told apart by the socket they connect to, not by inspecting
// the caller. Each workload gets its own unix socket, bound to exactly one
// SPIFFE ID (Server.Add). Whoever can open that socket path gets that
// identity; a connection to a socket is served only that socket's identity,
// and nothing is served on any other path. An unattested caller — one with
// no socket, or one that cannot open the socket file — gets no identity.
//
// Access control is therefore the file system's:
//
//   - the socket file is mode 0600 from the moment its path exists: it is
//     bound inside a private 0700 temporary directory, chmodded, and only
//     then hard-linked to its final path, so there is no window in which the
//     path is reachable with looser permissions;
//   - the operator places sockets in a directory it controls (mode 0700, or
//     0750 with a group that holds exactly the workload's user), and hands
//     each workload only its own socket (a bind mount, a per-user directory);
//     Add logs a warning when the directory is group- or world-writable.
//
// As a second, optional check a Workload may name the uid expected at the
// other end (Workload.UID). The server then reads the caller's credentials
// from the kernel (SO_PEERCRED, Linux only) when the connection is accepted
// and answers every call from another uid with PERMISSION_DENIED. On systems
// without SO_PEERCRED a workload with a UID is never served.
//
// # What is served
//
//   - FetchX509SVID: a server stream. The current SVID set is sent at once
//     (one X509SVID: spiffe_id, the certificate chain leaf first as
//     concatenated DER, the private key as PKCS#8 DER, and the trust
//     domain's bundle as concatenated DER), then again every time the SVID is
//     rotated, until the client cancels or the socket is removed or the
//     server closed.
//   - FetchX509Bundles: a server stream of the trust domain's bundle, keyed by
//     trust domain name, sent at once and again whenever the bundle changes.
//   - The JWT-SVID and WIT-SVID methods answer UNIMPLEMENTED; go-spiffe's
//     X.509 sources do not use them.
//
// Every call must carry the gRPC metadata "workload.spiffe.io: true" (the
// Workload API's guard against server-side request forgery); a call without
// it is answered INVALID_ARGUMENT, as the SPIFFE Workload API specification
// requires.
//
// # Rotation
//
// Each workload has one key and SVID at a time (ECDSA P-256, key never leaves
// the process except to its own socket). A fresh key and SVID are issued
// when the current one reaches half of its usable life: the rotation instant
// is start + (NotAfter − start)/2, where start is the later of the
// certificate's NotBefore and the moment it was requested. A CA that
// backdates NotBefore (commonly by 30 s, for clock skew) therefore does not
// pull rotation earlier. The new set is pushed to every open stream of that
// socket. A failed signing is logged and retried with exponential backoff
// while the previous SVID keeps being served.
//
// Streams cost no goroutine of their own beyond the one gRPC gives each call:
// each waits on its workload's broadcast channel, which is closed and
// replaced on every rotation. Rotation runs from a timer (Clock.AfterFunc),
// not from a goroutine per workload.
package workload
