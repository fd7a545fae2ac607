# shellcheck shell=bash
# tests/sandbox-lib.sh: what a shell script that boots throwaway systemd hosts (tests/sandbox.sh)
# needs around them, sourced by drill/lib.sh, bench/bench.sh and examples/demo/demo.sh: saying
# and dying under the script's name, the root check, booting a host whose launcher is the
# script's child (the host dies with the script, even killed with SIGKILL), tearing it down, and
# running a command inside it.

SANDBOX=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sandbox.sh
# What a command inside a host finds: the system's own tools, nothing from /usr/local (where
# `make install` puts a failover-manager other than the one under test).
SANDBOX_PATH=/usr/sbin:/usr/bin:/sbin:/bin

# ME: the prefix of what the script says (its file name unless it sets ME before sourcing).
: "${ME:=${0##*/}}"
log() { echo "$ME: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# need_root: hosts are booted in new namespaces, which needs root. HOW, if given: the command
# to run instead (sudo make bench).
need_root() { # [HOW]
  [ "$(id -u)" = 0 ] || die "boots throwaway systemd hosts in new namespaces, which needs root${1:+: sudo $1}"
}

# sandbox_start NAME: boots a host and sets SANDBOX_LAUNCHER (this shell's child, which takes
# the host down when this shell dies), SANDBOX_CG (its cgroup) and SANDBOX_PID (its systemd, as
# this machine sees it). Fails, saying why, when the host does not boot, with SANDBOX_LAUNCHER
# and SANDBOX_CG set as far as it got, for sandbox_stop.
sandbox_start() {
  local fd
  SANDBOX_PID=0 SANDBOX_CG=''
  exec {fd}< <(SANDBOX_CALLER=$$ exec "$SANDBOX" run "$1")
  SANDBOX_LAUNCHER=$!
  read -r SANDBOX_CG <&"$fd" || true
  exec {fd}<&-
  [ -n "$SANDBOX_CG" ] || { log "host $1: sandbox.sh run printed no cgroup"; return 1; }
  SANDBOX_PID=$("$SANDBOX" wait "$SANDBOX_CG") || { log "host $1 did not boot"; return 1; }
}

# sandbox_stop LAUNCHER CGROUP PID: shuts the host down, removes its cgroup, reaps its launcher.
sandbox_stop() {
  [ -z "$2" ] || "$SANDBOX" down "${3:-0}" "$2" || true
  [ -z "$1" ] || {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  }
}

# sandbox_in PID ARGV...: runs ARGV inside every namespace of the host whose systemd is PID,
# with a clean environment.
sandbox_in() {
  local pid=$1
  shift
  nsenter -t "$pid" -a -- env -i PATH="$SANDBOX_PATH" LC_ALL=C "$@"
}

# For a script with one host: sandbox_one NAME boots it, torn down when the script exits,
# however it exits (a signal exits); SANDBOX_ROOT is its root as seen from here, and
# `inside ARGV...` runs ARGV in it.
sandbox_one() {
  SANDBOX_LAUNCHER='' SANDBOX_CG='' SANDBOX_PID=0
  trap 'sandbox_stop "$SANDBOX_LAUNCHER" "$SANDBOX_CG" "$SANDBOX_PID"' EXIT
  trap 'exit 130' INT TERM HUP
  sandbox_start "$1" || exit 1
  # shellcheck disable=SC2034 # the caller's
  SANDBOX_ROOT=/proc/$SANDBOX_PID/root
}
inside() { sandbox_in "$SANDBOX_PID" "$@"; }
