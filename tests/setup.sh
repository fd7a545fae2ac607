#!/usr/bin/env bash
# Installs what the build and the tests use beyond a fresh Debian machine with Rust, once and
# idempotently: `make test` runs it first, so a newcomer's `make test` runs the whole suite.
#
# Services that apt would start (keepalived, etcd, node_exporter) must never run on this host:
# the tests boot them only inside throwaway sandboxes. While installing, a policy-rc.d that
# refuses every start is put in place (unless the machine has one), and afterwards whatever
# the packages enabled is disabled again.
set -euo pipefail

# `tests/setup.sh --build`: only what the build itself needs (make build, make demo).
build_only=false
[ "${1:-}" = --build ] && build_only=true

# command -> Debian package
declare -A NEED=(
  [prometheus-node-exporter]=prometheus-node-exporter
  [promtool]=prometheus
  [keepalived]=keepalived
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [lintian]=lintian
  # drill/etcd.sh --mode automatic, fault clock-step: libfaketime (a dependency of faketime)
  [faketime]=faketime
  # make lint: every shell script of the repo
  [shellcheck]=shellcheck
)
SERVICES=(prometheus-node-exporter.service prometheus.service keepalived.service etcd.service)

missing=()
"$build_only" && NEED=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 ||
    missing+=("${NEED[$cmd]}")
done
# The build links libsystemd (sd-bus, src/sdbus.rs): the linker needs its development symlink.
compgen -G '/usr/lib/*/libsystemd.so' >/dev/null || [ -e /usr/lib/libsystemd.so ] ||
  missing+=(libsystemd-dev)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages ${missing[*]}; run as root (or: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# failover-manager tests/setup.sh: no service starts during install\nexit 101\n' >"$guard"
    chmod 755 "$guard"
  fi
  cleanup() { [ -z "$guard" ] || rm -f "$guard"; }
  trap cleanup EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  cleanup
  guard=""
  # On a host where systemd is PID 1, stop and disable what the packages enabled.
  if [ -d /run/systemd/system ]; then
    for s in "${SERVICES[@]}"; do
      systemctl disable --now "$s" >/dev/null 2>&1 || true
    done
  fi
fi

"$build_only" && exit 0
# The .deb test builds the package with cargo-deb. Pinned: what the test was written against.
if ! command -v cargo-deb >/dev/null 2>&1; then
  cargo install cargo-deb --version 3.8.0 --locked
fi
