#!/usr/bin/env bash
# `make demo`: a takeover and a hand-back with real units, on a throwaway systemd booted in
# its own namespaces (tests/sandbox.sh). Nothing on this machine is started or changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ME=demo
# shellcheck source=tests/sandbox-lib.sh
. "$repo/tests/sandbox-lib.sh"
bin=$(readlink -f "${1:-$repo/target/debug/failover-manager}")

need_root "make demo"
[ -x "$bin" ] || die "no binary at $bin: run cargo build first"

sandbox_one demo
root=$SANDBOX_ROOT

bold=$(printf '\033[1m') dim=$(printf '\033[2m') off=$(printf '\033[0m')
[ -t 1 ] && [ -z "${NO_COLOR:-}" ] || { bold='' dim='' off=''; }
say() { printf '\n%s# %s%s\n' "$dim" "$*" "$off"; }
run() {
  printf '%s$ %s%s\n' "$bold" "$*" "$off"
  local rc=0
  inside "$@" 2>&1 || rc=$?
  [ "$rc" = 0 ] || printf '%s(exit %s)%s\n' "$dim" "$rc" "$off"
}

# The host: this is site "dc2"; the application runs on the primary site only, a replica
# sync runs on the standby only.
install -Dm755 "$bin" "$root/usr/bin/failover-manager"
install -Dm755 "$repo/examples/checks/primary-site-file" \
  "$root/usr/lib/failover-manager/checks/primary-site-file"
for u in shop-db shop-web; do
  cat >"$root/etc/systemd/system/$u.service" <<UNIT
[Unit]
Description=demo: $u (runs on the primary site)
[Service]
ExecStart=/bin/sleep infinity
UNIT
done
cat >"$root/etc/systemd/system/replica-sync.service" <<'UNIT'
[Unit]
Description=demo: replica sync (runs on the standby site)
[Service]
ExecStart=/bin/sleep infinity
UNIT
mkdir -p "$root/etc/failover-manager"
cat >"$root/etc/failover-manager/config.yaml" <<'YAML'
# This host belongs to site dc2. /etc/failover-manager/primary-site names the primary site.
check:
  command: [/usr/lib/failover-manager/checks/primary-site-file, dc2]
  timeout: 5s
defaults: { verify_timeout: 10s, settle: 1s }
units:
  - shop-db.service
  - shop-web.service
  - name: replica-sync.service
    when: standby
YAML
echo dc1 >"$root/etc/failover-manager/primary-site"
inside systemctl daemon-reload

say "A DR host (site dc2) while dc1 is primary. The config:"
sed 's/^/    /' "$root/etc/failover-manager/config.yaml"
say "What should run here, and what does? (+ must start, - must stop)"
run failover-manager diff
say "The timer's run: one line per change, nothing at all when nothing changes."
run failover-manager reconcile
run failover-manager reconcile

say "Disaster: dc1 is lost, the operator (or a DNS/VIP change) makes dc2 the primary site."
echo dc2 >"$root/etc/failover-manager/primary-site"
run failover-manager reconcile --dry-run
run failover-manager diff
say "Takeover: stops the standby's units first, then starts and verifies the primary's in order."
run failover-manager reconcile
run failover-manager diff
run systemctl is-active shop-db.service shop-web.service replica-sync.service

say "The check breaks (its flag file is gone): an unknown role never changes anything."
rm "$root/etc/failover-manager/primary-site"
run failover-manager reconcile

say "dc1 is back: hand back to it."
echo dc1 >"$root/etc/failover-manager/primary-site"
run failover-manager reconcile
run failover-manager diff
run failover-manager reconcile --output json
say "Done; the sandbox is torn down on exit."
