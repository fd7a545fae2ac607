# shellcheck shell=bash
# drill/lib.sh: what every multi-host drill needs, sourced by drill/keepalived.sh and
# drill/etcd.sh: the command line, boot throwaway hosts (tests/sandbox-lib.sh), join them,
# install failover-manager the way the tests do, sample units' states inside each host, read
# the samples and the journals back, write the results, and tear everything down on exit.
#
# Hosts are named (A, B, …); each is a systemd booted as PID 1 of its own namespaces over an
# overlay of /, in its own network namespace. Nothing here touches the machine's network or
# starts a service outside a host. Every time is the wall clock ($EPOCHREALTIME, journal
# realtime stamps): one clock, shared by the host namespaces (no time namespace is used).
#
# The caller sets `set -euo pipefail`, sources this file, parses its command line with
# drill_options and calls drill_init; every host it boots is torn down when the caller exits,
# however it exits. A caller killed with SIGKILL takes its hosts with it: each host's launcher
# dies with its parent (sandbox.sh run).

DRILL_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ME=drill
# shellcheck source=tests/sandbox-lib.sh
. "$DRILL_REPO/tests/sandbox-lib.sh"
declare -A DRILL_PID=() DRILL_CG=() DRILL_LAUNCHER=()
DRILL_HOSTS=()

# drill_options NAME SPEC... -- ARG...: the drill's command line. Each SPEC is "--OPTION WHAT"
# (WHAT as the usage shows it); `--OPTION VALUE` sets the caller's variable OPTION, dashes as
# underscores. One operand at most, BINARY (target/release/failover-manager by default),
# resolved into `bin`. Anything else (an unknown option, --help, an option without its value,
# two operands) prints the usage, made from NAME and the SPECs, and exits 1 (drill_usage).
drill_options() {
  local _spec _var
  local -A _takes=()
  DRILL_USAGE="usage: $1"
  shift
  while [ "$1" != -- ]; do
    _spec=$1
    _takes[${_spec%% *}]=1
    DRILL_USAGE+=" [$_spec]"
    shift
  done
  shift
  DRILL_USAGE+=" [BINARY]"
  while [ $# -gt 0 ]; do
    case $1 in
      --)
        shift
        break
        ;;
      -*)
        [ -n "${_takes[$1]:-}" ] && [ $# -ge 2 ] || drill_usage
        _var=${1#--}
        printf -v "${_var//-/_}" '%s' "$2"
        shift 2
        ;;
      *) break ;;
    esac
  done
  [ $# -le 1 ] || drill_usage
  bin=${1:-$DRILL_REPO/target/release/failover-manager}
  bin=$(readlink -f -- "$bin") || bin=${1:-$DRILL_REPO/target/release/failover-manager}
  [ -x "$bin" ] || die "no binary at $bin: build it first (cargo build --release)"
}
drill_usage() { die "$DRILL_USAGE"; }

# drill_counts VALUE...: each a whole number above 0, else the usage.
drill_counts() {
  local n
  for n in "$@"; do
    case $n in '' | *[!0-9]* | 0) drill_usage ;; esac
  done
}

# drill_init JOURNALS: needs root; makes DRILL_TMP (a scratch directory on this machine) and
# JOURNALS, if not empty (drill_keep_journal copies every journal it reads there); on exit,
# however it comes, tears down every host and removes DRILL_TMP. A signal exits.
drill_init() {
  need_root
  DRILL_JOURNALS=$1
  [ -z "$DRILL_JOURNALS" ] || mkdir -p -- "$DRILL_JOURNALS"
  DRILL_TMP=$(mktemp -d /tmp/fm-drill.XXXXXX)
  trap drill_exit EXIT
  trap 'exit 130' INT TERM HUP
}

drill_exit() {
  drill_teardown
  [ -z "${DRILL_TMP:-}" ] || rm -rf -- "$DRILL_TMP"
}

# drill_out FILE: the results go to FILE ("-": stdout), through descriptor 3.
drill_out() { if [ "$1" = - ]; then exec 3>&1; else exec 3>"$1"; fi; }
# drill_meta KEY VALUE: a line of the results that describes the run, "# KEY<TAB>VALUE".
drill_meta() { printf '# %s\t%s\n' "$1" "$2" >&3; }
# drill_row FIELD...: a row of the results, tab-separated.
drill_row() { (IFS=$'\t' && printf '%s\n' "$*") >&3; }

# drill_boot NAME: boots a host. Its launcher is this shell's child and dies with it.
drill_boot() {
  local name=$1 booted=yes
  sandbox_start "drill-$name" || booted=no
  # Torn down by drill_teardown however far the boot got.
  DRILL_HOSTS+=("$name")
  DRILL_LAUNCHER[$name]=$SANDBOX_LAUNCHER DRILL_CG[$name]=$SANDBOX_CG DRILL_PID[$name]=$SANDBOX_PID
  [ "$booted" = yes ] || exit 1
  mkdir -p "$(drill_root "$name")/run/drill"
}

drill_teardown() {
  local name
  for name in "${DRILL_HOSTS[@]}"; do
    sandbox_stop "${DRILL_LAUNCHER[$name]:-}" "${DRILL_CG[$name]:-}" "${DRILL_PID[$name]:-0}"
  done
  DRILL_HOSTS=()
}

# drill_down NAME: tears one host down now (a drill that boots fresh hosts per variant).
drill_down() {
  local name=$1 kept=() h
  sandbox_stop "${DRILL_LAUNCHER[$name]}" "${DRILL_CG[$name]}" "${DRILL_PID[$name]:-0}"
  for h in "${DRILL_HOSTS[@]}"; do [ "$h" = "$name" ] || kept+=("$h"); done
  DRILL_HOSTS=("${kept[@]}")
  unset "DRILL_PID[$name]" "DRILL_CG[$name]" "DRILL_LAUNCHER[$name]"
}

# The host's root as seen from here.
drill_root() { echo "/proc/${DRILL_PID[$1]}/root"; }

# drill_in NAME ARGV...: runs ARGV inside every namespace of the host, with a clean environment.
drill_in() {
  local name=$1
  shift
  sandbox_in "${DRILL_PID[$name]}" "$@"
}

# drill_put NAME PATH MODE: writes stdin to PATH inside the host. Removed first from inside,
# so that a symlink there is replaced, never followed out of the host.
drill_put() {
  local name=$1 path=$2 mode=$3 root
  root=$(drill_root "$name")
  drill_in "$name" mkdir -p -- "${path%/*}"
  drill_in "$name" rm -f -- "$path"
  cat >"$root$path"
  chmod "$mode" "$root$path"
}

# drill_link A IF_A ADDR_A B IF_B ADDR_B: a veth pair that exists only inside the two hosts.
drill_link() {
  "$SANDBOX" link "${DRILL_PID[$1]}" "$2" "$3" "${DRILL_PID[$4]}" "$5" "$6"
}

# drill_install_fm NAME BINARY: the binary and the shipped units (where `make install` puts
# units, /usr/local/lib/systemd/system, as the integration tests do), and the example checks
# where the .deb puts them. Nothing is enabled or started.
drill_install_fm() {
  local name=$1 bin=$2 f
  drill_put "$name" /usr/bin/failover-manager 755 <"$bin"
  for f in "$DRILL_REPO"/units/*; do
    drill_put "$name" "/usr/local/lib/systemd/system/${f##*/}" 644 <"$f"
  done
  for f in "$DRILL_REPO"/examples/checks/*; do
    drill_put "$name" "/usr/lib/failover-manager/checks/${f##*/}" 755 <"$f"
  done
}

# drill_put_app NAME: the drills' application, app.service, a process that runs until stopped.
drill_put_app() {
  printf '[Unit]\nDescription=drill: the application\n\n[Service]\nExecStart=/bin/sleep infinity\n' |
    drill_put "$1" /etc/systemd/system/app.service 644
}

# drill_sample_start NAME UNIT...: a sampler inside the host (a transient unit, so it dies
# with the host) appends "TIME R1 R2 …" to /run/drill/samples every 20 ms, Ri = 1 while the
# i-th unit has a process (its cgroup is populated), else 0. It reads files only, no fork per
# sample: a unit "runs" from its first process to its last, whatever systemd says about it.
drill_sample_start() {
  local name=$1
  shift
  drill_put "$name" /usr/local/lib/drill/sample 755 <"$DRILL_REPO/drill/sample"
  drill_in "$name" systemd-run --quiet --unit=drill-sample --collect \
    /usr/local/lib/drill/sample /run/drill/samples "$@"
}

# The samples file of a host, as seen from here.
drill_samples() { echo "$(drill_root "$1")/run/drill/samples"; }

# drill_journal NAME SINCE: the host's journal since SINCE (epoch seconds) as
# "EPOCH.MICROS IDENTIFIER: MESSAGE" lines.
drill_journal() {
  local since=${2%.*}
  drill_in "$1" journalctl --no-pager -q -o short-unix --since "@$((since - 1))" |
    awk '{ t = $1; $1 = ""; $2 = ""; sub(/^  /, ""); print t, $0 }'
}

# drill_keep_journal NAME SINCE AS: the host's journal since SINCE into $DRILL_TMP/journal.NAME
# (what drill_first and drill_count read), and a copy as AS.NAME in drill_init's JOURNALS.
drill_keep_journal() {
  local f=$DRILL_TMP/journal.$1
  drill_journal "$1" "$2" >"$f"
  [ -z "$DRILL_JOURNALS" ] || cp -- "$f" "$DRILL_JOURNALS/$3.$1"
}

# What the journals say, for drill_first and drill_count: a failover-manager run failed, its
# start limit was hit, a start of the drills' app.service was verified (failover-manager's
# line, or notify-app's).
# shellcheck disable=SC2034 # the drills'
DRILL_FAILED='failover-manager\.service: Failed with result'
# shellcheck disable=SC2034
DRILL_LIMIT='failover-manager\.service: Start request repeated too quickly'
# shellcheck disable=SC2034
DRILL_VERIFIED='started app\.service|app\.service finished starting'

# drill_wait SECONDS ARGV...: polls ARGV every 50 ms until it succeeds; fails after SECONDS.
drill_wait() {
  local limit=$1 end
  shift
  end=$(awk -v n="$EPOCHREALTIME" -v s="$limit" 'BEGIN { printf "%.6f", n + s }')
  until "$@"; do
    awk -v n="$EPOCHREALTIME" -v e="$end" 'BEGIN { exit !(n >= e) }' && return 1
    sleep 0.05
  done
}

# drill_sleep_until EPOCH: sleeps until the wall clock reads EPOCH.
drill_sleep_until() {
  local d
  d=$(awk -v n="$EPOCHREALTIME" -v e="$1" 'BEGIN { d = e - n; if (d < 0) d = 0; printf "%.3f", d }')
  sleep "$d"
}

# drill_overlap T0 T1 COLUMN FILE...: from sample files, the seconds in [T0, T1] during which
# at least two of the files' COLUMN-th unit (1 = first) ran at once. Each file is a step
# function (a sample holds until the next); a file with no sample before a moment counts as
# not running then.
drill_overlap() {
  local t0=$1 t1=$2 col=$3
  shift 3
  local i=0 f
  for f in "$@"; do
    awk -v h="$i" -v c="$((col + 1))" '{ print $1, h, $c }' "$f"
    i=$((i + 1))
  done | sort -n -k1,1 | awk -v t0="$t0" -v t1="$t1" '
    function count(   k, n) { n = 0; for (k in s) n += s[k]; return n }
    {
      t = $1
      if (t > t1) t = t1
      if (t > last && last < t1) {
        from = last < t0 ? t0 : last
        if (t > from && count() >= 2) both += t - from
      }
      if ($1 > last) last = $1
      s[$2] = $3
    }
    END {
      if (last < t1) { from = last < t0 ? t0 : last; if (count() >= 2) both += t1 - from }
      printf "%.3f\n", both
    }'
}

# drill_state_since T0 T1 COLUMN VALUE FILE: the first moment in [T0, T1] from which the unit's
# state was VALUE (1 running, 0 not) without a break until T1, or "-" if it was not at T1.
drill_state_since() {
  awk -v t0="$1" -v t1="$2" -v c="$(($3 + 1))" -v v="$4" '
    $1 > t1 { exit }
    { if ($c == v && prev != v) since = $1; prev = $c }
    END {
      if (prev != v) { print "-"; exit }
      if (since < t0) since = t0
      printf "%.6f\n", since
    }' "$5"
}

# drill_flips T0 T1 COLUMN FILE: how often the unit changed between running and not in [T0, T1]
# (against its state at T0).
drill_flips() {
  awk -v t0="$1" -v t1="$2" -v c="$(($3 + 1))" '
    $1 > t1 { exit }
    $1 <= t0 { s = $c; next }
    { if ($c != s) n++; s = $c }
    END { print n + 0 }' "$4"
}

# drill_later T SECONDS: the moment SECONDS after T.
drill_later() { awk -v a="$1" -v w="$2" 'BEGIN { printf "%.6f", a + w }'; }

# drill_since T0 T|-: T - T0 in seconds (3 decimals), or "-".
drill_since() {
  if [ "$2" = - ] || [ -z "$2" ]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; fi
}

# drill_first FILE T0 T1 REGEX: the time of the first line of FILE ("TIME …", as drill_journal
# writes it) in [T0, T1] that matches REGEX, or nothing.
drill_first() {
  awk -v t0="$2" -v t1="$3" -v re="$4" '$1 >= t0 && $1 <= t1 && $0 ~ re { print $1; exit }' "$1"
}

# drill_count FILE T0 T1 REGEX: how many lines of FILE in [T0, T1] match REGEX.
drill_count() {
  awk -v t0="$2" -v t1="$3" -v re="$4" '$1 >= t0 && $1 <= t1 && $0 ~ re { n++ } END { print n + 0 }' "$1"
}

# drill_state_at T COLUMN FILE: 1 if the unit ran at moment T (the last sample at or before
# T), else 0.
drill_state_at() {
  awk -v t="$1" -v c="$(($2 + 1))" '$1 > t { exit } { s = $c } END { print s + 0 }' "$3"
}

# drill_max_gap T0 T1 FILE...: the longest time between two samples of a file in [T0, T1], in
# milliseconds.
drill_max_gap() {
  local t0=$1 t1=$2
  shift 2
  awk -v t0="$t0" -v t1="$t1" 'FNR == 1 { p = "" }
    $1 >= t0 && $1 <= t1 {
      if (p != "" && $1 - p > g) g = $1 - p
      p = $1 }
    END { printf "%d\n", g * 1000 }' "$@"
}

# drill_now NAME: 1 if the host's first sampled unit ran at its last sample, else 0.
drill_now() { tail -n1 "$(drill_samples "$1")" | cut -d' ' -f2; }
drill_runs() { [ "$(drill_now "$1")" = 1 ]; }
drill_stopped() { [ "$(drill_now "$1")" = 0 ]; }
# drill_only_on NAME OTHER: the unit runs on NAME and not on OTHER.
drill_only_on() { drill_runs "$1" && drill_stopped "$2"; }

# drill_machine: the results' lines describing this machine and build.
drill_machine() {
  local cpu
  cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  drill_meta cpu "${cpu:-unknown}, $(nproc) CPUs (nproc)"
  drill_meta kernel "$(uname -r)"
  drill_meta systemd "$(systemctl --version 2>/dev/null | head -n1)"
  drill_meta rev "$(git -C "$DRILL_REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
}
