#!/usr/bin/env bash
# provision.sh HOST — the VM's half of provisioning the several-host demo
# (the Vagrantfile runs it as root in each VM; prepare.sh ran on the Vagrant
# host first, and /vagrant is the repository synced at boot). It installs:
#
#   /usr/local/bin/{edge,sidecar,meshctl,demosvc}   from /vagrant/bin
#   /etc/meshgate/*.yaml, demosvc-*.env              from demo/hosts/out/HOST
#   /etc/meshgate/identity/INSTANCE/                 this host's SVIDs only
#   /etc/systemd/system/{meshgate-edge,meshgate-sidecar@,demosvc@}.service
#
# then validates every config and (re)starts the host's units. Run it again
# (vagrant reload --provision, which re-syncs /vagrant) after make build or
# to renew the 24 h SVIDs.
set -euo pipefail
host=${1:?usage: provision.sh HOST}
src=/vagrant
out=$src/demo/hosts/out/$host
ids=$src/demo/hosts/pki/$host

die() { echo "provision.sh: $*" >&2; exit 1; }

[ -f "$out/units" ] || die "$out/units is missing: demo/hosts/prepare.sh has not run on the Vagrant host (vagrant reload --provision runs it and re-syncs /vagrant)"
[ -d "$ids" ] || die "$ids is missing: demo/hosts/prepare.sh has not issued this host's identities"

id -u meshgate >/dev/null 2>&1 ||
	useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin meshgate

install -m 0755 -t /usr/local/bin "$src"/bin/{edge,sidecar,meshctl,demosvc}

install -d -m 0755 /etc/meshgate
find /etc/meshgate -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.env' \) -delete
for f in "$out"/*.yaml "$out"/*.env; do
	[ -e "$f" ] && install -m 0644 "$f" /etc/meshgate/
done

# Keys readable by the services' group only.
rm -rf /etc/meshgate/identity
install -d -m 0750 -g meshgate /etc/meshgate/identity
for dir in "$ids"/*/; do
	inst=$(basename "$dir")
	install -d -m 0750 -g meshgate "/etc/meshgate/identity/$inst"
	install -m 0644 -g meshgate "$dir/svid.pem" "$dir/bundle.pem" "/etc/meshgate/identity/$inst/"
	install -m 0640 -g meshgate "$dir/svid_key.pem" "/etc/meshgate/identity/$inst/"
done

install -m 0644 -t /etc/systemd/system "$src"/demo/hosts/systemd/*.service
systemctl daemon-reload

# Refuse to start on a config that does not validate (file:line:col errors).
for f in /etc/meshgate/*.yaml; do
	case $(basename "$f") in
	edge.yaml) /usr/local/bin/edge validate --config "$f" ;;
	sidecar-*.yaml) /usr/local/bin/sidecar validate --config "$f" ;;
	esac
done

mapfile -t units <"$out/units"
systemctl enable "${units[@]}"
systemctl restart "${units[@]}"
sleep 2
systemctl --no-pager --lines=0 status "${units[@]}" || die "a unit failed to start: journalctl -u UNIT"
echo "provision.sh: $host runs ${units[*]}"
