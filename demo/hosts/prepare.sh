#!/usr/bin/env bash
# prepare.sh — the Vagrant host's half of provisioning the several-host demo.
# The Vagrantfile runs it before `vagrant up`, `reload` and `provision`; it
# can be run by hand too. From the repository root it:
#
#   1. checks bin/ holds Linux x86-64 binaries (make build; on another OS:
#      GOOS=linux GOARCH=amd64 make build);
#   2. renders every host's configs, unit list and identity list into
#      demo/hosts/out/HOST/ (go run ./demo/hosts/render: the same templates
#      and topology as the netns test);
#   3. creates the trust domain's CA once, in demo/hosts/pki/ca (its key
#      never leaves this machine: the Vagrantfile keeps it out of /vagrant);
#   4. issues each host's SVIDs (24 h) into demo/hosts/pki/HOST/INSTANCE/,
#      again when they are older than 12 h.
#
# provision.sh, in each VM, installs the results. Nothing here is committed.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=demo/hosts

die() { echo "prepare.sh: $*" >&2; exit 1; }

for b in edge sidecar demosvc meshctl; do
	[ -x "bin/$b" ] || die "bin/$b is missing: run 'make build' first (GOOS=linux GOARCH=amd64 make build on a non-Linux host)"
done
# ELF magic, then e_machine 0x3e (x86-64): what the debian/bookworm64 box runs.
if [ "$(od -An -tx1 -N4 bin/edge | tr -d ' \n')" != 7f454c46 ] ||
	[ "$(od -An -tx1 -j18 -N2 bin/edge | tr -d ' \n')" != 3e00 ]; then
	die "bin/ does not hold Linux x86-64 binaries: rebuild with 'GOOS=linux GOARCH=amd64 make build'"
fi
command -v go >/dev/null || die "go not found: the configs are rendered with 'go run ./demo/hosts/render'"

# meshctl from bin/ when it runs here (a Linux x86-64 host), else from source.
meshctl() {
	if bin/meshctl --version >/dev/null 2>&1; then bin/meshctl "$@"; else go run ./meshctl "$@"; fi
}

go run ./demo/hosts/render -out "$here/out"
td=$(cat "$here/out/trust-domain")

if [ ! -f "$here/pki/ca/root.pem" ]; then
	meshctl pki init --trust-domain "$td" --dir "$here/pki/ca"
fi

for ids in "$here"/out/*/identities; do
	host=$(basename "$(dirname "$ids")")
	while read -r inst id; do
		dir="$here/pki/$host/$inst"
		# Fresh enough: issued less than 12 h (720 min) ago.
		if [ -f "$dir/svid.pem" ] && [ -n "$(find "$dir/svid.pem" -mmin -720)" ]; then
			continue
		fi
		meshctl pki issue --ca-dir "$here/pki/ca" --spiffe-id "$id" --ttl 24h --out "$dir" >/dev/null
		echo "prepare.sh: issued $id for $host ($dir)"
	done <"$ids"
done
