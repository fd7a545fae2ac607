#!/usr/bin/env bash
# `make bench`: measures failover-manager against honest baselines in a throwaway systemd
# sandbox (tests/sandbox.sh), prints the tables and writes them to BENCHMARKS.md.
#
#   bench/bench.sh [BINARY]        BINARY defaults to target/release/failover-manager
#
# Measured, never asserted: the script fails only when something did not work (a sandbox
# that does not boot, a run that did not converge), never because a figure is slow.
# Everything is timed INSIDE the sandbox by one bash loop reading $EPOCHREALTIME (no fork
# for the clock, no nsenter in the figures). Knobs (environment): BENCH_RUNS (steady-state
# runs per variant and size, default 30), BENCH_REPS (takeover repetitions, default 5 for
# instant units, 3 for slow ones), BENCH_OUT (default BENCHMARKS.md at the repo's root).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
ME=bench
# shellcheck source=tests/sandbox-lib.sh
. "$repo/tests/sandbox-lib.sh"
bin=$(readlink -f "${1:-$repo/target/release/failover-manager}")
out_file=${BENCH_OUT:-$repo/BENCHMARKS.md}
runs=${BENCH_RUNS:-30}
reps_fast=${BENCH_REPS:-5}
reps_slow=${BENCH_REPS:-3}
sizes=(1 10 50 200)
fast_takeover=50
slow_takeover=10

need_root "make bench"
[ -x "$bin" ] || die "no binary at $bin: run cargo build --release first"

started_at=$SECONDS
sandbox_one bench
log "sandbox up: systemd is host PID $SANDBOX_PID"
root=$SANDBOX_ROOT

# --- the sandbox's contents ----------------------------------------------------------------
install -Dm755 "$bin" "$root/usr/bin/failover-manager"
unitdir=$root/usr/local/lib/systemd/system
mkdir -p "$unitdir" "$root/etc/failover-manager" "$root/usr/local/lib/fm-bench"
# The D-Bus floor: the check and one ListUnitsByNames over systemd's private socket, in C.
command -v cc >/dev/null || die "needs a C compiler (cc) for bench/dbus-floor.c"
cc -O2 -o "$root/usr/local/lib/fm-bench/dbus-floor" "$here/dbus-floor.c" -lsystemd ||
  die "cannot build bench/dbus-floor.c (needs libsystemd-dev)"
# Instant start: Type=simple is active as soon as it is forked.
cat >"$unitdir/bench-fast@.service" <<'UNIT'
[Unit]
Description=bench: instant-start unit %i
[Service]
ExecStart=/bin/sleep infinity
UNIT
# Takes 1 s to start: ready only once it says so. systemd-notify sends on behalf of its parent
# (the shell, which lives on as the sleep), so the message is never lost to a race.
cat >"$unitdir/bench-slow@.service" <<'UNIT'
[Unit]
Description=bench: unit %i that takes 1 s to start
[Service]
Type=notify
NotifyAccess=all
ExecStart=/bin/sh -c 'sleep 1; systemd-notify --ready; exec sleep infinity'
UNIT

# The timing harness, run inside the sandbox. Prints "LABEL MICROSECONDS" lines.
cat >"$root/usr/local/lib/fm-bench/inner" <<'INNER'
#!/bin/bash
set -euo pipefail
cfg=/etc/failover-manager/config.yaml
die() { echo "bench (inside): $*" >&2; exit 1; }
us() { local t=${1//[.,]/}; echo $((10#$t)); }
# measure LABEL FUNCTION...: one timed call (a bash function call costs no fork).
measure() {
  local label=$1 t0 t1 rc=0
  shift
  t0=$EPOCHREALTIME
  "$@" || rc=$?
  t1=$EPOCHREALTIME
  echo "$label $(($(us "$t1") - $(us "$t0")))"
  return "$rc"
}
names() { # KIND N
  local i
  for ((i = 1; i <= $2; i++)); do printf 'bench-%s@%03d.service\n' "$1" "$i"; done
}
write_config() { # PARALLEL SETTLE UNIT...
  local parallel=$1 settle=$2
  shift 2
  {
    echo "check: { command: [/bin/true], timeout: 10s }"
    echo "defaults: { verify_timeout: 60s, settle: $settle }"
    echo "parallel: $parallel"
    echo "units:"
    printf '  - %s\n' "$@"
  } >"$cfg.new"
  mv "$cfg.new" "$cfg"
}
# (is-active exits 0 when ANY of several units is active: read the states instead.)
all_in() { [ -z "$(systemctl is-active -- "${u[@]}" | grep -vx "$1")" ]; }
all_active() { all_in active; }
all_inactive() { all_in inactive; }

# What the tool does in the steady state, by the cheapest means: the check and ONE batched
# is-active. And what a hand-written script does: the check and one is-active per unit.
check_alone() { /bin/true; }
isactive_alone() { systemctl is-active -- "${u[@]}" >/dev/null; }
floor() { /bin/true && systemctl is-active -- "${u[@]}" >/dev/null; }
# The same over D-Bus by the cheapest means: a C program that runs the check and makes ONE
# ListUnitsByNames call over systemd's private socket (bench/dbus-floor.c).
dbus_floor() { /usr/local/lib/fm-bench/dbus-floor /bin/true "${u[@]}" >/dev/null; }
naive() {
  local x
  /bin/true
  for x in "${u[@]}"; do systemctl is-active -- "$x" >/dev/null; done
}
tool() { failover-manager reconcile >/dev/null; }
# The tool's fixed costs: starting at all, and starting plus reading the config.
version_only() { failover-manager --version >/dev/null; }
config_only() { failover-manager validate --config-only >/dev/null; }

# -vv makes the tool log the check, every D-Bus call and every command it runs, each with its
# duration (Rust's Debug form of a Duration: 812.5µs, 5.4ms, 1.2s). This awk reads that log:
# per run, the check's duration (vv_check), the first ListUnitsByNames' (vv_list), the time in
# the check, calls and commands (vv_cmds) and how many calls of each D-Bus method were made
# (vv_n_METHOD).
vv_awk='
  function dur(s,   n, u) {
    n = s; sub(/[^0-9.].*$/, "", n); u = s; sub(/^[0-9.]+/, "", u)
    if (u ~ /^ns/) return n / 1000; if (u ~ /^(µs|us)/) return n
    if (u ~ /^ms/) return n * 1000; if (u ~ /^s/) return n * 1000000; return 0
  }
  /^check .* after [0-9.]+/ { s = $0; sub(/.* after /, "", s); d = dur(s); sum += d
    printf "vv_check %d\n", d }
  /^dbus [A-Za-z]+ .* in [0-9.]+[^ ]*: / { s = $0; sub(/.* in /, "", s); d = dur(s); sum += d
    n[$2]++; if ($2 == "ListUnitsByNames" && !seen++) printf "vv_list %d\n", d }
  /^ran [^ ]+ .* in [0-9.]+[^ ]*$/ { s = $0; sub(/.* in /, "", s); d = dur(s); sum += d; n[$2]++ }
  END { printf "vv_cmds %d\n", sum; for (v in n) printf "vv_n_%s %d\n", v, n[v] }'
tool_vv() {
  local t0 t1 err
  t0=$EPOCHREALTIME
  err=$(failover-manager -vv reconcile 2>&1 >/dev/null) || die "reconcile -vv failed"
  t1=$EPOCHREALTIME
  echo "vv_total $(($(us "$t1") - $(us "$t0")))"
  printf '%s\n' "$err" | awk "$vv_awk"
}

steady() { # N RUNS
  local n=$1 runs=$2 i
  mapfile -t u < <(names fast "$n")
  write_config false 2s "${u[@]}"
  systemctl start -- "${u[@]}"
  all_active || die "units did not start"
  failover-manager diff >/dev/null || die "not in sync with $n units"
  for i in 1 2 3; do floor; dbus_floor; tool || die "reconcile failed"; naive; done # warm-up
  for ((i = 0; i < runs; i++)); do
    measure floor floor
    measure dbusfloor dbus_floor || die "the D-Bus floor failed"
    measure tool tool || die "reconcile failed in the steady state"
    measure naive naive
    measure check check_alone
    measure isactive isactive_alone
    measure version version_only
    measure cfgonly config_only || die "validate --config-only failed"
  done
  for ((i = 0; i < 20; i++)); do tool_vv; done
}

floor_ordered() {
  local x
  /bin/true
  systemctl is-active -- "${u[@]}" >/dev/null || true
  for x in "${u[@]}"; do systemctl start -- "$x"; done
}
floor_parallel() {
  /bin/true
  systemctl is-active -- "${u[@]}" >/dev/null || true
  systemctl start -- "${u[@]}"
}

takeover() { # KIND N ordered|parallel SETTLE REPS [floor]
  local kind=$1 n=$2 mode=$3 settle=$4 reps=$5 with_floor=${6:-floor} i
  mapfile -t u < <(names "$kind" "$n")
  write_config "$([ "$mode" = parallel ] && echo true || echo false)" "$settle" "${u[@]}"
  for ((i = 0; i < reps; i++)); do
    systemctl stop -- "${u[@]}"
    all_inactive || die "units did not stop"
    measure tool tool || die "the takeover did not converge"
    all_active || die "units not active after the takeover"
    if [ "$with_floor" = floor ]; then
      systemctl stop -- "${u[@]}"
      all_inactive || die "units did not stop"
      measure floor "floor_$mode"
      all_active || die "units not active after the floor's start"
    fi
  done
  systemctl stop -- "${u[@]}"
}

# One takeover with -vv: how its time splits between commands and the waits between them.
takeover_vv() { # KIND N ordered|parallel
  mapfile -t u < <(names "$1" "$2")
  write_config "$([ "$3" = parallel ] && echo true || echo false)" 0s "${u[@]}"
  systemctl stop -- "${u[@]}"
  all_inactive || die "units did not stop"
  tool_vv
  all_active || die "units not active after the takeover"
  systemctl stop -- "${u[@]}"
}

# A systemd upgrade runs `daemon-reexec`: every D-Bus connection drops while units go on
# starting. An ordered takeover of N slow units with one in its middle: still converged?
takeover_reexec() { # N
  local rc=0 t
  mapfile -t u < <(names slow "$1")
  write_config false 0s "${u[@]}"
  systemctl stop -- "${u[@]}"
  all_inactive || die "units did not stop"
  failover-manager reconcile >/dev/null 2>&1 &
  t=$!
  sleep 1.5
  systemctl daemon-reexec
  wait "$t" || rc=$?
  if all_active; then echo "reexec $rc verified"; else echo "reexec $rc not-all-active"; fi
  systemctl stop -- "${u[@]}"
}

# The tool's own peak RSS: its exit_group is held for 0.3 s (strace) while VmHWM is read.
# /usr/bin/time would report the largest of the tool AND the commands it waited for.
rss() { # N
  mapfile -t u < <(names fast "$1")
  write_config false 2s "${u[@]}"
  systemctl start -- "${u[@]}"
  hold_peak rss failover-manager reconcile || die "reconcile failed under strace"
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f 'rss_time %M' failover-manager reconcile 2>&1 >/dev/null | grep '^rss_time'
  fi
}
# The same with the binary from before the etcd client (bench/bench.sh installs it there).
rss_before() { # N
  mapfile -t u < <(names fast "$1")
  write_config false 2s "${u[@]}"
  systemctl start -- "${u[@]}"
  hold_peak rss /usr/local/lib/fm-bench/before/failover-manager reconcile ||
    die "the binary from before the etcd client failed under strace"
}
# hold_peak LABEL COMMAND...: COMMAND (failover-manager) with its exit_group held; prints
# "LABEL_tool VmHWM" and "LABEL_libsystemd kB" (the part of the RSS that is libsystemd's).
hold_peak() {
  local label=$1 s t='' h='' l c m b g= bs= rc=0
  shift
  strace -o /dev/null -e signal=none -e trace=exit_group \
    -e inject=exit_group:delay_enter=300000 "$@" >/dev/null &
  s=$!
  # strace forks a probe child or two first: wait for the one that became failover-manager.
  while [ -z "$t" ] && kill -0 "$s" 2>/dev/null; do
    for c in $(cat "/proc/$s/task/$s/children" 2>/dev/null); do
      [ "$(cat "/proc/$c/comm" 2>/dev/null)" != failover-manage ] || t=$c
    done
  done
  # Until it is gone: a value read after the exec and before the exit (a zombie has none).
  while read -r c 2>/dev/null <"/proc/$t/comm"; do
    [ "$c" = failover-manage ] || continue
    l=$(awk '/^VmHWM:/ { print $2 }' "/proc/$t/status" 2>/dev/null) || true
    [ -z "$l" ] || h=$l
    # The part of it that is libsystemd and the libraries it brings along.
    # And the part that is this binary's own pages (its code, mostly).
    read -r m b < <(awk '/^[0-9a-f]+-[0-9a-f]+ / { lib = ($6 ~ /lib(systemd|gcrypt|gpg-error|lz4|zstd|lzma|cap)\.so/)
        self = ($6 ~ /\/failover-manager$/) }
      lib && /^Rss:/ { k += $2 } self && /^Rss:/ { x += $2 } END { print k + 0, x + 0 }' "/proc/$t/smaps" 2>/dev/null) || true
    [ -z "$m" ] || [ "$m" = 0 ] || g=$m
    [ -z "$b" ] || [ "$b" = 0 ] || bs=$b
  done
  wait "$s" || rc=$?
  echo "${label}_tool ${h:-0}"
  echo "${label}_libsystemd ${g:-0}"
  echo "${label}_self ${bs:-0}"
  return "$rc"
}

# --- etcd: what each tick costs with check.etcd ----------------------------------------------
# One real etcd member inside the sandbox (Debian's etcd-server, as drill/etcd.sh runs it) on
# 127.0.0.1, holding KEY for site dc1 on the holder's lease. Run under `systemd-run --wait`
# (see the host side): this harness is then alone in a cgroup of its own, and the cgroup's
# cpu.stat usage_usec before and after a command is that command's CPU time, its children's
# included (systemd's and etcd's own work is theirs, in every row alike).
EKEY=/failover-manager/primary-site
EP=http://127.0.0.1:2379
ecfg=/etc/failover-manager
cpustat=''
cpu_now() { # sets CPU (µs) without a fork
  local k v
  while read -r k v; do
    if [ "$k" = usage_usec ]; then CPU=$v; return 0; fi
  done <"$cpustat"
  return 1
}
# emeasure LABEL FUNCTION...: prints "LABEL WALL_US" and "LABEL_cpu CPU_US".
emeasure() {
  local label=$1 t0 t1 c0 rc=0
  shift
  cpu_now
  c0=$CPU
  t0=$EPOCHREALTIME
  "$@" || rc=$?
  t1=$EPOCHREALTIME
  cpu_now
  echo "$label $(($(us "$t1") - $(us "$t0")))"
  echo "${label}_cpu $((CPU - c0))"
  return "$rc"
}
etcd_unit() {
  cat >/run/systemd/system/fm-bench-etcd.service <<UNIT
[Unit]
Description=bench: a single etcd member for check.etcd
[Service]
Type=notify
ExecStart=/usr/bin/etcd --name bench --data-dir /var/lib/fm-bench-etcd --listen-client-urls $EP --advertise-client-urls $EP --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster bench=http://127.0.0.1:2380 --initial-cluster-state new --logger zap --log-outputs stderr
UNIT
  systemctl daemon-reload
  systemctl start fm-bench-etcd.service
  ETCDCTL_API=3 etcdctl --endpoints=$EP --command-timeout=10s endpoint health >/dev/null ||
    die "etcd did not come up"
}
etcd_config() { # FILE SITE ETCD_EXTRA FENCE UNIT...
  local file=$1 site=$2 extra=$3 fence=$4
  shift 4
  {
    echo "site: $site"
    echo "check:"
    echo "  etcd:"
    echo "    endpoints: [$EP]"
    echo "    key: $EKEY"
    [ -z "$extra" ] || echo "    $extra"
    echo "  timeout: 10s"
    [ -z "$fence" ] || echo "  fence_after: $fence"
    # 1 s: lease_ttl must outlast fence_after + stopping every unit in turn (10 × 1 s).
    echo "defaults: { verify_timeout: 1s, settle: 0s }"
    echo "units:"
    printf '  - %s\n' "$@"
  } >"$file"
}
# The floor: what any script that asks etcd and systemd must do at least, by their own tools.
efloor() {
  etcdctl --endpoints=$EP get --consistency=l "$EKEY" >/dev/null &&
    systemctl is-active -- "${u[@]}" >/dev/null
}
# The same with the standby's units, which are stopped: systemd has unloaded them, and loads
# them again to answer (so does the standby's run).
efloor_standby() {
  etcdctl --endpoints=$EP get --consistency=l "$EKEY" >/dev/null &&
    { systemctl is-active -- "${s[@]}" >/dev/null || true; }
}
emanual() { failover-manager -c $ecfg/manual.yaml reconcile >/dev/null; }
eholder() { failover-manager -c $ecfg/holder.yaml reconcile >/dev/null; }
estandby() { failover-manager -c $ecfg/standby.yaml reconcile >/dev/null; }
eversion() { failover-manager --version >/dev/null; }

# Processes a command spawns, by strace -f: "LABEL_procs N", "LABEL_threads M" (forks and
# clones without CLONE_THREAD; clones with it) and "LABEL_execs K" (execve beyond its own).
spawned() { # LABEL COMMAND...
  local label=$1 f=/tmp/fm-bench-strace
  shift
  strace -f -qq -o $f -e trace=process "$@" >/dev/null 2>&1 || die "$label failed under strace"
  awk -v l="$label" '
    $2 ~ /^(fork|vfork)\(/ { p++ }
    $2 ~ /^clone3?\(/ && $0 !~ /resumed/ { if ($0 ~ /CLONE_THREAD/) t++; else p++ }
    $2 ~ /^execve\(/ { e++ }
    END { printf "%s_procs %d\n%s_threads %d\n%s_execs %d\n", l, p, l, t, l, e - 1 }' $f
}
# Where a run's time goes, by strace -f -c (syscall counts and time) and by connect(2)s.
eprofile() { # LABEL COMMAND...
  local label=$1 f=/tmp/fm-bench-strace
  shift
  strace -f -qq -o $f -e trace=connect,socket,sendto,write,recvfrom,read,openat "$@" >/dev/null 2>&1 || true
  awk -v l="$label" '
    /connect\(.*sin_port=htons\(2379\)/ { c++ }
    /connect\(.*sun_path=/ { d++ }
    /openat\(.*(\\.pem|\\.crt|ssl|certs)/ { tls++ }
    END { printf "%s_connects_etcd %d\n%s_connects_unix %d\n%s_tls_files %d\n", l, c, l, d, l, tls }' $f
}
etcd_steady() { # N ROUNDS
  local n=$1 rounds=$2 i lease
  cpustat=/sys/fs/cgroup$(awk -F: '$1 == 0 { print $3 }' /proc/self/cgroup)/cpu.stat
  [ -r "$cpustat" ] || die "no cpu.stat at $cpustat"
  etcd_unit
  mapfile -t s < <(for ((i = 101; i < 101 + n; i++)); do printf 'bench-fast@%03d.service\n' "$i"; done)
  mapfile -t u < <(names fast "$n")
  etcd_config $ecfg/manual.yaml dc1 '' '' "${u[@]}"
  etcd_config $ecfg/holder.yaml dc1 'lease_ttl: 30s' 15s "${u[@]}"
  etcd_config $ecfg/standby.yaml dc2 'lease_ttl: 30s' 15s "${s[@]}"
  systemctl start -- "${u[@]}"
  systemctl stop -- "${s[@]}"
  # The holder takes the key (grant, create) on its first run; from then on every run renews.
  failover-manager -c $ecfg/holder.yaml reconcile >/dev/null || die "the holder's first run failed"
  lease=$(etcdctl --endpoints=$EP get "$EKEY" -w fields | awk -F' : ' '/"Lease"/ { print $2 }')
  [ -n "$lease" ] && [ "$lease" != 0 ] || die "the key is not on a lease"
  for c in manual holder standby; do
    failover-manager -c $ecfg/$c.yaml diff >/dev/null || die "$c: not in sync"
  done
  for i in 1 2 3; do efloor; efloor_standby; emanual; eholder; estandby; done # warm-up
  for ((i = 0; i < rounds; i++)); do
    emeasure efloor efloor || die "the etcd floor failed"
    emeasure efloors efloor_standby || die "the etcd floor (the standby's units) failed"
    emeasure emanual emanual || die "manual mode: reconcile failed"
    emeasure eholder eholder || die "the holder: reconcile failed"
    emeasure estandby estandby || die "the standby: reconcile failed"
    emeasure eversion eversion
  done
  # Still steady: nothing was started, stopped or taken meanwhile.
  for c in manual holder standby; do
    failover-manager -c $ecfg/$c.yaml diff >/dev/null || die "$c: not in sync after the rounds"
  done
  [ "$(etcdctl --endpoints=$EP get "$EKEY" -w fields | awk -F' : ' '/"Lease"/ { print $2 }')" = "$lease" ] ||
    die "the key changed hands during the rounds"
  # D-Bus calls per run (-vv), processes, connections, peak RSS.
  for c in manual holder standby; do
    failover-manager -c $ecfg/$c.yaml -vv reconcile 2>&1 >/dev/null | awk -v c="$c" '
      /^dbus [A-Za-z]+ / { n[$2]++ } END { for (v in n) printf "%s_dbus_%s %d\n", c, v, n[v] }'
    spawned "$c" failover-manager -c $ecfg/$c.yaml reconcile
    eprofile "$c" failover-manager -c $ecfg/$c.yaml reconcile
    hold_peak "${c}_rss" failover-manager -c $ecfg/$c.yaml reconcile || die "$c failed under strace"
  done
  spawned floor bash -c "etcdctl --endpoints=$EP get --consistency=l $EKEY >/dev/null && systemctl is-active -- ${u[*]} >/dev/null"
  systemctl stop fm-bench-etcd.service 'failover-manager-deadline-*.timer' || true
}

"$@"
INNER
chmod 755 "$root/usr/local/lib/fm-bench/inner"
inside systemctl daemon-reload
bench() { inside /usr/local/lib/fm-bench/inner "$@"; }

# --- statistics (host side) -----------------------------------------------------------------
# stats DATA LABEL -> "MEDIAN MIN COUNT" in microseconds
stats() {
  awk -v l="$2" '$1 == l { print $2 }' <<<"$1" | sort -n |
    awk '{ a[NR] = $1 } END {
      if (NR == 0) { print "nan nan 0"; exit }
      m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
      print m, a[1], NR }'
}
ms() { awk -v x="$1" 'BEGIN { printf "%.2f", x / 1000 }'; }
sec() { awk -v x="$1" 'BEGIN { printf "%.3f", x / 1000000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

report=''
emit() { printf '%s\n' "$*"; report+="$*"$'\n'; }

# --- measurements ---------------------------------------------------------------------------
declare -A S
for n in "${sizes[@]}"; do
  log "steady state, $n units: $runs runs each of the tool, the floor and the naive loop"
  S[$n]=$(bench steady "$n" "$runs")
done

T_fast_ordered='' T_fast_parallel='' T_slow_ordered='' T_slow_parallel=''
log "takeover: $fast_takeover instant-start units, ordered, settle 0s ($reps_fast reps)"
T_fast_ordered=$(bench takeover fast "$fast_takeover" ordered 0s "$reps_fast")
log "takeover: $fast_takeover instant-start units, parallel, settle 0s ($reps_fast reps)"
T_fast_parallel=$(bench takeover fast "$fast_takeover" parallel 0s "$reps_fast")
log "takeover: $slow_takeover units taking 1 s each, ordered, settle 0s ($reps_slow reps)"
T_slow_ordered=$(bench takeover slow "$slow_takeover" ordered 0s "$reps_slow")
log "takeover: $slow_takeover units taking 1 s each, parallel, settle 0s ($reps_slow reps)"
T_slow_parallel=$(bench takeover slow "$slow_takeover" parallel 0s "$reps_slow")
log "takeover with the default settle 2s: parallel ($reps_slow reps each), ordered slow (1 run)"
T_fast_parallel_s2=$(bench takeover fast "$fast_takeover" parallel 2s "$reps_slow" nofloor)
T_slow_parallel_s2=$(bench takeover slow "$slow_takeover" parallel 2s "$reps_slow" nofloor)
T_slow_ordered_s2=$(bench takeover slow "$slow_takeover" ordered 2s 1 nofloor)
log "one takeover of each kind with -vv, to see where its time goes"
declare -A V
for k in "fast $fast_takeover ordered" "fast $fast_takeover parallel" \
  "slow $slow_takeover ordered" "slow $slow_takeover parallel"; do
  read -r kind n mode <<<"$k"
  V[$kind-$mode]=$(bench takeover_vv "$kind" "$n" "$mode")
done

reexec_n=4 reexec_reps=4
log "daemon-reexec in the middle of an ordered takeover of $reexec_n × 1 s units ($reexec_reps reps)"
X=''
for ((i = 0; i < reexec_reps; i++)); do X+=$(bench takeover_reexec "$reexec_n")$'\n'; done

# The binary and its dependency tree before the etcd client (BENCH_BEFORE, a commit; empty: not
# measured), built once in a temporary worktree and kept in target/bench-before/COMMIT.
# crates DIR: "DISTINCT LINES": the crates in the normal dependency tree (this one included),
# and the lines of `cargo tree -e normal --prefix none | sort -u`, which counts a crate twice
# when cargo tree marks a repeat of it with (*).
crates() {
  local t
  t=$(cd "$1" && ${CARGO:-cargo} tree --locked --offline -e normal --prefix none 2>/dev/null) || {
    echo n/a n/a
    return
  }
  # shellcheck disable=SC2001 # per line
  echo "$(sed 's/ (\*)$//' <<<"$t" | sort -u | wc -l) $(sort -u <<<"$t" | wc -l)"
}
before_rev=${BENCH_BEFORE-f50204e}
before_bin='' before_crates=n/a
if [ -n "$before_rev" ] && before_full=$(git -C "$repo" rev-parse --verify -q "$before_rev^{commit}"); then
  cache=$repo/target/bench-before/${before_full:0:12}
  if [ ! -x "$cache/failover-manager" ] || [ ! -s "$cache/crates" ]; then
    log "building $before_rev (before the etcd client) in a temporary worktree, once"
    wt=$(mktemp -d /tmp/fm-bench-before.XXXXXX)
    git -C "$repo" worktree add --detach -q "$wt" "$before_full"
    if CARGO_TARGET_DIR=$repo/target/bench-before/target ${CARGO:-cargo} build --release --locked \
      --manifest-path "$wt/Cargo.toml" >&2; then
      mkdir -p "$cache"
      cp "$repo/target/bench-before/target/release/failover-manager" "$cache/"
      crates "$wt" >"$cache/crates"
    fi
    git -C "$repo" worktree remove --force "$wt" || true
  fi
  if [ -x "$cache/failover-manager" ]; then
    before_bin=$cache/failover-manager
    before_crates=$(cat "$cache/crates")
  fi
fi
after_crates=$(crates "$repo")

log "peak RSS"
R1=$(bench rss 1)
R200=$(bench rss 200)
R1b=''
if [ -n "$before_bin" ]; then
  install -Dm755 "$before_bin" "$root/usr/local/lib/fm-bench/before/failover-manager"
  R1b=$(bench rss_before 1)
fi
size=$(stat -c %s "$bin")
stripped=n/a
if command -v strip >/dev/null && strip -o "$root/tmp/fm-stripped" "$bin" 2>/dev/null; then
  stripped=$(stat -c %s "$root/tmp/fm-stripped")
fi

etcd_n=10 etcd_rounds=${BENCH_ETCD_ROUNDS:-31}
E=''
if inside test -x /usr/bin/etcd -a -x /usr/bin/etcdctl; then
  log "check.etcd: $etcd_rounds interleaved rounds against one etcd member, $etcd_n units"
  # In a service of its own, so its cgroup's cpu.stat counts only it and what it runs.
  E=$(inside systemd-run --quiet --wait --pipe --collect --unit=fm-bench-etcd-rounds \
    /usr/local/lib/fm-bench/inner etcd_steady "$etcd_n" "$etcd_rounds") ||
    die "the check.etcd rounds failed"
else
  log "no etcd in the sandbox (Debian's etcd-server and etcd-client): check.etcd not measured"
fi


cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | awk -F': *' '/^Model name/ { print $2; exit }')
systemd_version=$(inside systemctl --version | head -n1)
tool_version=$(inside failover-manager --version 2>/dev/null | head -n1 || echo unknown)
rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ] || rev="$rev (with uncommitted changes)"
elapsed=$((SECONDS - started_at))

# --- the report -----------------------------------------------------------------------------
field() { awk -v k="$2" '$1 == k { print $2 }' <<<"$1"; }
kb() { awk -v x="$1" 'BEGIN { printf "%.1f MB (%d kB)", x / 1024, x }'; }
mb() { awk -v x="$1" 'BEGIN { printf "%.2f MB (%d bytes)", x / 1048576, x }'; }

emit "# Benchmarks"
emit ""
emit "Produced by \`make bench\` (\`bench/bench.sh target/release/failover-manager\`) on $(date -u '+%Y-%m-%d %H:%M UTC'),"
emit "in ${elapsed} s. Regenerate with \`sudo make bench\`; the figures are measured, never asserted."
emit ""
emit "| machine | |"
emit "| --- | --- |"
emit "| CPU | ${cpu:-unknown}, $(nproc) CPUs (nproc) |"
emit "| kernel | $(uname -r) |"
emit "| systemd | ${systemd_version} (a throwaway instance booted by \`tests/sandbox.sh\`) |"
emit "| binary | \`${tool_version}\`, release build, commit ${rev} |"
emit ""
emit "Every figure is timed inside the sandbox by one bash loop reading \`\$EPOCHREALTIME\`, so"
emit "neither nsenter nor a clock process is counted. The check command is \`/bin/true\` in the tool"
emit "and in every baseline, so the check costs the same everywhere."
emit ""
emit "## Steady state: all units already right"
emit ""
emit "Wall time of \`failover-manager reconcile\` (it finds nothing to do and prints nothing), against"
emit "two **floors** for the same work: the **systemctl floor** (\`/bin/true\` then ONE \`systemctl"
emit "is-active -- u1 … uN\`) and the **D-Bus floor** (\`bench/dbus-floor.c\`: a C program that runs"
emit "\`/bin/true\` and makes ONE \`ListUnitsByNames\` call over systemd's private socket with sd-bus,"
emit "nothing else), and the **naive** loop of a hand-written script (\`/bin/true\` then one"
emit "\`systemctl is-active\` per unit). Units are \`Type=simple\` \`sleep infinity\` instances, all"
emit "running. ${runs} runs of each, interleaved; median (min) in milliseconds. Goal: tool ≤ 0.6× the"
emit "systemctl floor at every size."
emit ""
emit "| units | systemctl floor | D-Bus floor | failover-manager | naive loop | tool / systemctl floor | tool / D-Bus floor | naive / systemctl floor | ≤ 0.6× |"
emit "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |"
goal_met=yes
for n in "${sizes[@]}"; do
  read -r fm fmin _ <<<"$(stats "${S[$n]}" floor)"
  read -r dm dmin _ <<<"$(stats "${S[$n]}" dbusfloor)"
  read -r tm tmin _ <<<"$(stats "${S[$n]}" tool)"
  read -r nm nmin _ <<<"$(stats "${S[$n]}" naive)"
  r=$(ratio "$tm" "$fm")
  if le "$r" 0.6; then ok=yes; else ok="**no**"; goal_met=no; fi
  emit "| $n | $(ms "$fm") ($(ms "$fmin")) | $(ms "$dm") ($(ms "$dmin")) | $(ms "$tm") ($(ms "$tmin")) | $(ms "$nm") ($(ms "$nmin")) | $r× | $(ratio "$tm" "$dm")× | $(ratio "$nm" "$fm")× | $ok |"
done
emit ""
if [ "$goal_met" = yes ]; then
  emit "**The 0.6× goal is met at every size.**"
else
  emit "**The 0.6× goal is not met at every size** (see the table)."
fi
emit ""
emit "### Where the time goes"
emit ""
emit "\`failover-manager -vv reconcile\` logs the check and every D-Bus call with its duration (20 runs"
emit "per size; its total includes the -vv logging). \"Rest\" is the tool's total minus the check and"
emit "the one \`ListUnitsByNames\`: connecting, the config, the lock, the plan. Then the tool's fixed"
emit "costs, timed alone: \`failover-manager --version\` (start a process of this binary, which links"
emit "libsystemd, and exit) and \`failover-manager validate --config-only\` (start, read and check the"
emit "config). Medians, milliseconds; \"late\" counts the runs where the tool saw the check exit 3 ms"
emit "or more after \`/bin/true\` alone takes."
emit ""
emit "| units | /bin/true alone | check in the tool | late | systemctl is-active alone | ListUnitsByNames in the tool | tool total (-vv) | rest | --version | validate --config-only |"
emit "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
late_all=0 vv_all=0
for n in "${sizes[@]}"; do
  read -r ca _ <<<"$(stats "${S[$n]}" check)"
  read -r ia _ <<<"$(stats "${S[$n]}" isactive)"
  read -r vc _ <<<"$(stats "${S[$n]}" vv_check)"
  read -r vi _ <<<"$(stats "${S[$n]}" vv_list)"
  read -r vt _ vn <<<"$(stats "${S[$n]}" vv_total)"
  read -r vo _ <<<"$(stats "${S[$n]}" version)"
  read -r co _ <<<"$(stats "${S[$n]}" cfgonly)"
  rest=$(awk -v t="$vt" -v c="$vc" -v i="$vi" 'BEGIN { print t - c - i }')
  late=$(awk -v a="$ca" '$1 == "vv_check" && $2 >= a + 3000 { k++ } END { print k + 0 }' <<<"${S[$n]}")
  late_all=$((late_all + late)) vv_all=$((vv_all + vn))
  emit "| $n | $(ms "$ca") | $(ms "$vc") | $late/$vn | $(ms "$ia") | $(ms "$vi") | $(ms "$vt") | $(ms "$rest") | $(ms "$vo") | $(ms "$co") |"
done
emit ""
read -r fm1 _ <<<"$(stats "${S[1]}" floor)"
read -r dm1 _ <<<"$(stats "${S[1]}" dbusfloor)"
read -r tm1 _ <<<"$(stats "${S[1]}" tool)"
read -r vo1 _ <<<"$(stats "${S[1]}" version)"
read -r co1 _ <<<"$(stats "${S[1]}" cfgonly)"
read -r vi200 _ <<<"$(stats "${S[200]}" vv_list)"
read -r ia200 _ <<<"$(stats "${S[200]}" isactive)"
emit "- The D-Bus floor itself is $(ratio "$dm1" "$fm1")× the systemctl floor at 1 unit: starting a process that"
emit "  runs the check and makes one call costs about what one \`systemctl is-active\` does; the"
emit "  0.6× goal is below it there, and the tool is $(ratio "$tm1" "$dm1")× the D-Bus floor."
emit "- The states of 200 units cost one \`ListUnitsByNames\` of $(ms "$vi200") ms in the tool, against"
emit "  $(ms "$ia200") ms for \`systemctl is-active\` alone (a process that makes one D-Bus call per unit)."
emit "- What is left is being a program at all: starting this binary costs $(ms "$vo1") ms and reading"
emit "  the config $(ms "$co1") ms in all, against a D-Bus floor of $(ms "$dm1") ms and a systemctl floor of"
emit "  $(ms "$fm1") ms at 1 unit (the tool: $(ms "$tm1") ms)."
if [ "$late_all" -gt 0 ]; then
  emit "- **The check's exit is seen late** in $late_all of $vv_all runs: the tool polls the check's exit"
  emit "  every 5 ms (the wait loop in \`src/process.rs\`), so a check that has not exited by the first"
  emit "  look costs a whole interval."
fi
emit ""
if [ -n "$E" ]; then
  emit "## Steady state with \`check.etcd\`: what each tick costs"
  emit ""
  emit "$etcd_n units, all right; the role from one real etcd member in the sandbox (Debian's etcd-server, on"
  emit "127.0.0.1), key \`/failover-manager/primary-site\` = \`dc1\` on the holder's lease (\`lease_ttl: 30s\`,"
  emit "\`fence_after: 15s\`). Against the **etcd floor**: \`etcdctl get --consistency=l KEY\` then ONE"
  emit "\`systemctl is-active -- u1 … u$etcd_n\` (what any script asking etcd and systemd does at least). Rows:"
  emit ""
  emit "- **manual**: \`check.etcd\` without \`lease_ttl\`, site dc1: the run reads the key (one request);"
  emit "- **holder**: automatic mode on the site holding the key: read, lease keep-alive, read again,"
  emit "  and the dead man's switch re-armed (\`RestartUnit\` of its timer);"
  emit "- **standby**: automatic mode, site dc2, its own $etcd_n units stopped: one read (and the switch,"
  emit "  which a standby has not, stopped: one \`StopUnit\`);"
  emit "- \`failover-manager --version\`: starting this binary at all."
  emit ""
  emit "$etcd_rounds rounds, each running every row once in turn (after 3 warm-up rounds); medians"
  emit "(min). Wall time by \`\$EPOCHREALTIME\`; CPU time is the \`usage_usec\` of \`cpu.stat\` of the cgroup"
  emit "the harness runs alone in (a \`systemd-run\` service), read before and after each command: the"
  emit "command and every process it starts, not systemd's or etcd's own work (in no row)."
  emit "Processes: \`strace -f -e trace=process\` of one more run, forks and clones without"
  emit "\`CLONE_THREAD\` (threads apart); peak RSS: VmHWM with the exit held, as below."
  emit ""
  emit "| run | wall ms | CPU ms | wall / floor | CPU / floor | ≤ 0.5× both | processes spawned | threads | peak RSS |"
  emit "| --- | ---: | ---: | ---: | ---: | :---: | ---: | ---: | ---: |"
  read -r ef efm _ <<<"$(stats "$E" efloor)"
  read -r efc efcm _ <<<"$(stats "$E" efloor_cpu)"
  erow() { # LABEL DESC KEY
    local w wm c cm rw rc ok p t r
    read -r w wm _ <<<"$(stats "$E" "$1")"
    read -r c cm _ <<<"$(stats "$E" "$1_cpu")"
    rw=$(ratio "$w" "$ef") rc=$(ratio "$c" "$efc")
    ok=''
    p='' t='' r=''
    if [ -n "$3" ]; then
      if le "$rw" 0.5 && le "$rc" 0.5; then ok=yes; else ok='**no**'; fi
      p=$(field "$E" "$3_procs") t=$(field "$E" "$3_threads")
      p="$p$( [ "$(field "$E" "$3_execs")" = 0 ] || echo " ($(field "$E" "$3_execs") exec)")"
      r=$(kb "$(field "$E" "$3_rss_tool")")
    fi
    emit "| $2 | $(ms "$w") ($(ms "$wm")) | $(ms "$c") ($(ms "$cm")) | ${rw}× | ${rc}× | $ok | $p | $t | $r |"
  }
  emit "| etcd floor | $(ms "$ef") ($(ms "$efm")) | $(ms "$efc") ($(ms "$efcm")) | 1× | 1× | | $(field "$E" floor_execs) (exec) | | |"
  erow efloors "etcd floor with the standby's (stopped) units" ''
  erow emanual "check.etcd, manual" manual
  erow eholder "check.etcd, automatic, holder" holder
  erow estandby "check.etcd, automatic, standby" standby
  erow eversion "\`failover-manager --version\`" ''
  emit ""
  emit "Per run (one more of each, \`-vv\` and strace): D-Bus calls, TCP connections to etcd, connections"
  emit "to a unix socket (systemd's private bus), files opened that look like TLS material."
  emit ""
  emit "| run | D-Bus calls | connects to etcd | unix connects | TLS files opened |"
  emit "| --- | --- | ---: | ---: | ---: |"
  for c in manual holder standby; do
    calls=$(awk -v p="${c}_dbus_" 'index($1, p) == 1 { m = substr($1, length(p) + 1); s = s (s ? ", " : "") $2 " " m } END { print s }' <<<"$E")
    emit "| $c | ${calls:-none} | $(field "$E" "${c}_connects_etcd") | $(field "$E" "${c}_connects_unix") | $(field "$E" "${c}_tls_files") |"
  done
  emit ""
  emit "The standby's units are stopped, and systemd unloads a stopped unit nothing refers to: asked"
  emit "for them, it loads them from disk again (in its own time, not the run's CPU), so the standby's"
  emit "run is dearer in wall time than its CPU time says; the floor with the same units shows how much."
  emit ""
  met='' missed='' rss_met='' rss_missed=''
  read -r efs _ <<<"$(stats "$E" efloors)"
  for c in manual holder standby; do
    read -r w _ <<<"$(stats "$E" "e$c")"
    read -r cp _ <<<"$(stats "$E" "e${c}_cpu")"
    if le "$(ratio "$w" "$ef")" 0.5 && le "$(ratio "$cp" "$efc")" 0.5 &&
      [ "$(field "$E" "${c}_procs")" = 0 ] && [ "$(field "$E" "${c}_execs")" = 0 ]; then
      met+=" $c"
    else
      missed+=" $c"
    fi
    if le "$(field "$E" "${c}_rss_tool")" 5120; then rss_met+=" $c"; else rss_missed+=" $c"; fi
  done
  emit "Goal (issue 15): a steady-state run with check.etcd spawns no process and costs ≤ 0.5× the etcd"
  emit "floor in wall and CPU time. **Met:**${met:- none}. **Not met:**${missed:- none}."
  read -r sw _ <<<"$(stats "$E" estandby)"
  emit "(The standby's run against the floor with its own units: $(ratio "$sw" "$efs")× in wall time.)"
  emit "Peak RSS under 5 MB: **met:**${rss_met:- none}; **not met:**${rss_missed:- none}."
  emit ""
fi
emit "## Takeover: standby → primary"
emit ""
emit "\`failover-manager reconcile\` with every unit stopped and the check saying primary, until every"
emit "unit is verified active. Against the **floor**: \`/bin/true\`, one \`systemctl is-active\`, then"
emit "blocking \`systemctl start\`s (ordered: one call per unit, each waiting for its job; parallel: one"
emit "call for all). Units stopped again before every run. \"Own start\" is the time the units need"
emit "by themselves (none for instant units, 1 s each for the slow ones), \"settle\" the settle"
emit "windows the config asks for. Overhead = tool − floor − settle. Median (min) in seconds."
emit ""
emit "| units | mode | settle | runs | failover-manager | floor | own start | overhead | per unit |"
emit "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
row() { # DATA "UNITS DESC" MODE SETTLE_S N OWN_S
  local data=$1 what=$2 mode=$3 settle=$4 n=$5 own=$6 tm tmin cnt fm fmin settle_total over per
  read -r tm tmin cnt <<<"$(stats "$data" tool)"
  read -r fm fmin _ <<<"$(stats "$data" floor)"
  if [ "$mode" = ordered ]; then settle_total=$(calc "$n * $settle"); else settle_total=$settle; fi
  if [ "$fm" = nan ]; then
    # No floor measured with a settle window: the same units' floor from the settle 0s runs.
    fm=$7
    fmin=''
  fi
  over=$(calc "($tm - $fm) / 1000000 - $settle_total")
  per=''
  if [ "$mode" = ordered ]; then per=$(awk -v o="$over" -v n="$n" 'BEGIN { printf "%.1f", o * 1000 / n }'); fi
  emit "| $what | $mode | ${settle} s | $cnt | $(sec "$tm") ($(sec "$tmin")) | $(sec "$fm")${fmin:+ ($(sec "$fmin"))} | ${own} s | ${over} s | ${per:+$per ms} |"
}
fast_desc="$fast_takeover instant"
slow_desc="$slow_takeover × 1 s"
read -r fp _ <<<"$(stats "$T_fast_parallel" floor)"
read -r so _ <<<"$(stats "$T_slow_ordered" floor)"
read -r sp _ <<<"$(stats "$T_slow_parallel" floor)"
row "$T_fast_ordered" "$fast_desc" ordered 0 "$fast_takeover" 0
row "$T_fast_parallel" "$fast_desc" parallel 0 "$fast_takeover" 0
row "$T_slow_ordered" "$slow_desc" ordered 0 "$slow_takeover" "$slow_takeover"
row "$T_slow_parallel" "$slow_desc" parallel 0 "$slow_takeover" 1
row "$T_fast_parallel_s2" "$fast_desc" parallel 2 "$fast_takeover" 0 "$fp"
row "$T_slow_ordered_s2" "$slow_desc" ordered 2 "$slow_takeover" "$slow_takeover" "$so"
row "$T_slow_parallel_s2" "$slow_desc" parallel 2 "$slow_takeover" 1 "$sp"
emit ""
emit "Rows with a settle window reuse the floor measured with settle 0s (the floor has no settle)."
emit ""
read -r _ _ <<<"$(stats "$T_fast_ordered" floor)"
read -r to _ <<<"$(stats "$T_fast_ordered" tool)"
read -r tp _ <<<"$(stats "$T_fast_parallel" tool)"
read -r tso _ <<<"$(stats "$T_slow_ordered" tool)"
read -r tsp _ <<<"$(stats "$T_slow_parallel" tool)"
r_ord=$(ratio "$to" "$fp")
per_unit=$(awk -v a="$to" -v b="$fp" -v n="$fast_takeover" 'BEGIN { printf "%.2f", (a - b) / n / 1000 }')
per_slow=$(awk -v a="$tso" -v b="$so" -v n="$slow_takeover" 'BEGIN { printf "%.2f", (a - b) / n / 1000 }')
if le "$r_ord" 1.2; then g1="**met**"; else g1="**not met**"; fi
if le "$per_unit" 2; then g2="**met**"; else g2="**not met**"; fi
emit "Goals:"
emit ""
emit "- An ordered takeover of $fast_takeover instant units ≤ 1.2× one \`systemctl start\` of all $fast_takeover (the"
emit "  parallel floor, $(sec "$fp") s): $(sec "$to") s, ${r_ord}×: $g1."
emit "- ≤ 2 ms per unit beyond systemd's own job time: each instant unit, ordered, costs the tool"
emit "  $per_unit ms more than systemd takes for it in one \`systemctl start\` of all: $g2. (Each 1 s unit,"
emit "  ordered, costs $per_slow ms more than a blocking \`systemctl start\` of it, a process and its round"
emit "  trips included; a negative figure is less.)"
emit ""
emit "### Where the takeover time goes"
emit ""
emit "One more takeover of each kind with \`-vv\`, settle 0s: the D-Bus calls the tool made, the time"
emit "spent in them (check included) and the rest: waiting for systemd's signals (the units' own job"
emit "time) and the tool's own work. Milliseconds; per unit for ordered runs."
emit ""
emit "| units | mode | total | ListUnitsByNames / StartUnit / StopUnit / Get calls | in calls | between calls | between, per unit |"
emit "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
count() { local v; v=$(field "$1" "vv_n_$2"); echo "${v:-0}"; }
vrow() { # KEY DESC MODE N
  local d=${V[$1]} tot cmds between per
  tot=$(field "$d" vv_total)
  cmds=$(field "$d" vv_cmds)
  between=$((tot - cmds))
  per=''
  [ "$3" != ordered ] || per="$(ms $((between / $4)))"
  emit "| $2 | $3 | $(ms "$tot") | $(count "$d" ListUnitsByNames) / $(count "$d" StartUnit) / $(count "$d" StopUnit) / $(count "$d" Get) | $(ms "$cmds") | $(ms "$between") | $per |"
}
vrow fast-ordered "$fast_desc" ordered "$fast_takeover"
vrow fast-parallel "$fast_desc" parallel "$fast_takeover"
vrow slow-ordered "$slow_desc" ordered "$slow_takeover"
vrow slow-parallel "$slow_desc" parallel "$slow_takeover"
emit ""
emit "Jobs are awaited, not polled: a unit is read (\`ListUnitsByNames\`) when systemd signals its job's"
emit "end or a change of it, so a ready unit is seen at once, however long it took."
emit ""
emit "## daemon-reexec during a takeover"
emit ""
x_ok=$(awk '$1 == "reexec" && $2 == 0 && $3 == "verified" { k++ } END { print k + 0 }' <<<"$X")
x_n=$(awk '$1 == "reexec" { k++ } END { print k + 0 }' <<<"$X")
emit "\`systemctl daemon-reexec\` (what a systemd package upgrade runs) 1.5 s into an ordered takeover of"
emit "$reexec_n units of 1 s each: it drops every D-Bus connection while the units go on starting. The tool"
emit "connects again and keeps verifying until \`verify_timeout\`. **$x_ok of $x_n runs exited 0 with every unit"
emit "verified active.** (\`tests/integration/bus.rs\` asserts it in CI, with a reexec and a reload.)"
emit ""
emit "## Memory and size"
emit ""
emit "| | |"
emit "| --- | ---: |"
emit "| peak RSS of failover-manager itself, steady state, 1 unit | $(kb "$(field "$R1" rss_tool)") |"
emit "| peak RSS of failover-manager itself, steady state, 200 units | $(kb "$(field "$R200" rss_tool)") |"
if [ -n "$(field "$R200" rss_time)" ]; then
  emit "| \`/usr/bin/time\` maximum RSS, 200 units (the largest of the tool and the commands it ran) | $(kb "$(field "$R200" rss_time)") |"
fi
emit "| release binary | $(mb "$size") |"
if [ "$stripped" != n/a ]; then emit "| release binary, stripped | $(mb "$stripped") |"; fi
emit ""
if [ -n "$before_bin" ]; then
  emit "Before and after the etcd client (\`ureq\`, \`rustls\`, \`base64\`): the release binary of commit"
  emit "$before_rev and this one, and the distinct crates in the normal dependency tree (\`cargo tree -e"
  emit "normal --prefix none\`, the \`(*)\` marks of repeats removed, the package itself included)."
  emit ""
  emit "| | before ($before_rev) | after (this build) | after / before |"
  emit "| --- | ---: | ---: | ---: |"
  bsize=$(stat -c %s "$before_bin")
  emit "| release binary | $(mb "$bsize") | $(mb "$size") | $(ratio "$size" "$bsize")× |"
  if [ "$stripped" != n/a ] && strip -o "$root/tmp/fm-before-stripped" "$before_bin" 2>/dev/null; then
    bstripped=$(stat -c %s "$root/tmp/fm-before-stripped")
    emit "| release binary, stripped | $(mb "$bstripped") | $(mb "$stripped") | $(ratio "$stripped" "$bstripped")× |"
  fi
  read -r bc bl <<<"$before_crates"
  read -r ac al <<<"$after_crates"
  if [ -n "$R1b" ]; then
    emit "| peak RSS, steady state, 1 unit, \`/bin/true\` check | $(kb "$(field "$R1b" rss_tool)") | $(kb "$(field "$R1" rss_tool)") | $(ratio "$(field "$R1" rss_tool)" "$(field "$R1b" rss_tool)")× |"
    emit "| of which the binary's own pages | $(kb "$(field "$R1b" rss_self)") | $(kb "$(field "$R1" rss_self)") | $(ratio "$(field "$R1" rss_self)" "$(field "$R1b" rss_self)")× |"
  fi
  emit "| crates in the normal dependency tree | $bc | $ac | +$((ac - bc)) |"
  emit "| lines of \`cargo tree -e normal --prefix none \| sort -u\` (a repeat marked (*) counts twice) | $bl | $al | |"
  emit ""
fi
rss_max=$(field "$R200" rss_tool)
if [ "${rss_max:-0}" != 0 ] && le "$rss_max" 5120; then
  emit "Goal under 5 MB: **met**. The tool's own VmHWM, read while strace holds its exit_group."
else
  emit "Goal under 5 MB: **not met**. The tool's own VmHWM, read while strace holds its exit_group."
fi
emit "Of that, $(kb "$(field "$R200" rss_libsystemd)") is libsystemd (sd-bus) and the libraries it loads whatever"
emit "part of it is used (libgcrypt, libgpg-error, liblz4, libzstd, liblzma, libcap): the price of"
emit "talking D-Bus through the library systemctl uses, which works on systemd's private socket."
emit "GNU time's figure is not the tool's: the kernel folds the peak RSS of every child waited for"
emit "into the parent's (the check's, here)."
emit ""
emit "## What it means"
emit ""
emit "- \`parallel: true\` is for independent units that each take long to start: a takeover then"
emit "  costs the slowest unit instead of the sum ($(sec "$tsp") s instead of $(sec "$tso") s for $slow_takeover units of 1 s"
emit "  here) and one settle window instead of one per unit (with the default 2 s settle: $(sec "$(stats "$T_slow_parallel_s2" tool | cut -d' ' -f1)") s"
emit "  against $(sec "$(stats "$T_slow_ordered_s2" tool | cut -d' ' -f1)") s). For $fast_takeover instant units it also wins: $(sec "$tp") s against $(sec "$to") s."
emit "- Keep the default (ordered) when the order matters: units that need the one before them up"
emit "  (a database before the application that connects to it, with no After=/Requires= between"
emit "  them) or a resource group, where a failed start must stop the starts after it. Parallel"
emit "  starts them all at once and reports each failure, but the group semantics are lost."
emit "- The run that happens every minute, with nothing to do, costs the check plus one"
emit "  \`ListUnitsByNames\` call, plus starting the program; a per-unit loop of \`systemctl is-active\` is"
emit "  $(ratio "$(stats "${S[200]}" naive | cut -d' ' -f1)" "$(stats "${S[200]}" tool | cut -d' ' -f1)")× slower than the tool at 200 units."

printf '%s' "$report" >"$out_file"
log "wrote $out_file in ${elapsed} s"
