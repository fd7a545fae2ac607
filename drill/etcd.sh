#!/usr/bin/env bash
# drill/etcd.sh: two sites and a witness, the role in a real three-member etcd cluster, and
# every fault a witness is there for.
#
#   drill/etcd.sh [OPTIONS] [BINARY]     BINARY: target/release/failover-manager
#
# Boots three throwaway hosts (tests/sandbox.sh): A (site dc1), B (site dc2) and the witness W,
# each a systemd in its own namespaces, each running one member of an etcd 3.4 cluster
# (Debian's etcd-server). Each member has one address, 10.97.0.N/32 on its loopback (A .1,
# B .2, W .3); every pair of hosts shares a veth link of its own (A–B 10.97.1.0/24, A–W
# 10.97.2.0/24, B–W 10.97.3.0/24) with a host route to the other's member address over it, so
# cutting a link (both ends down) cuts exactly that pair. All of it exists only inside the
# hosts' network namespaces.
#
# A and B run failover-manager with `check.etcd` in manual mode (no lease_ttl: the key
# /failover-manager/primary-site names the primary site, a person or `failover-manager
# switchover` moves it): the binary's own client, every member listed, the host's own first,
# request_timeout 500ms; each run acknowledges itself (KEY/ack/SITE/HOST). With
# `check.fence_after`, the shipped service and failover-manager-watch.service, the shipped
# timer with a drill drop-in (OnUnitActiveSec= --timer seconds instead of the example
# cadence.conf's 5 s), and the same app.service. W runs only its member (the witness has no
# failover-manager).
# For the page counts (FILE.pages.tsv beside --out, drill/pages-report.sh): the shipped alert
# unit as OnFailure= target, and a metrics file each run writes (kept by drill/keep-metrics).
#
# Faults (--faults, all by default), each round from the same start (the key names dc1, A runs
# the application, B does not, every link up, every member healthy):
#   switchover     `failover-manager switchover dc2`, run on B (the site taking the role)
#   switchback     the same back, `switchover dc1` on A (a round of it starts from B primary)
#   partition      A cut off from B and W; after --promote-after seconds (docs/etcd.md's
#                  inequality, see below) `etcdctl put KEY dc2` on W; then A rejoins
#   partition-early  the same, promoted after 1 s: the inequality broken on purpose
#   witness-lost   W cut off from A and B: nothing may change
#   cluster-down   every member stopped: the primary fences itself (the trade-off), then
#                  the members are started again
#   link-cut       only the A–B link cut; both still reach W. Round r first moves etcd's
#                  leader to W, A, B, W, … (etcdctl move-leader): where it is decides whether
#                  A can still read the key
# A sampler inside A and B records every 20 ms whether app.service has a process there.
#
# The inequality (docs/etcd.md, "Self-fencing"): promote no sooner than fence_after + run cadence
# + check.timeout + the units' stop time after the old primary was lost. The run cadence is
# the time between two runs' starts, which is the timer's period but at least one run's length:
# while the role is unknown a run lasts as long as the check, up to check.timeout. So with
# --timer below check.timeout the drill counts check.timeout as the cadence.
#
# Options: --mode manual|automatic (manual), --rounds N (3), --faults LIST, --timer SECONDS
# (2), --fence-after SECONDS (5), --check-timeout SECONDS (4), --stop
# SECONDS (defaults.verify_timeout, the bound on the units' stop time: 3), --window SECONDS
# observed after witness-lost, cluster-down and link-cut (fence_after + 3 × cadence + 3),
# --out FILE (results; default stdout), --journals DIR (keep each round's journals there).
#
# Results: tab-separated, one row per round; lines starting with # describe the run. Times in
# seconds from the fault (taken just before the command that injects it), "-" when it did not
# happen in the window. Columns:
#   fault round          what was run
#   leader               the etcd member that led the cluster when the fault came
#   old new              the site hosts that held the role before, and should after
#                        (partition: B after the promotion; witness-lost, cluster-down and
#                        link-cut: "-", nothing should take over)
#   promote              partition: when the key was put to dc2
#   stopped              when the old primary's application stopped for good (fenced, or
#                        stopped by the switchover)
#   verified             when the new primary's start was verified (failover-manager's line)
#   dual                 seconds both hosts ran app.service within the window
#   flips_a flips_b      how often app.service changed between running and not on A and B
#   end_a end_b          app.service running (1) or not (0) on A and B at the window's end
#   fenced_a fenced_b    failover-manager runs that fenced (or kept fenced) the host
#   fail_a fail_b        failover-manager.service runs that failed (exit 1 when fenced, 3 when
#                        the role was unknown) in the window
#   limit_a limit_b      start limit hits of failover-manager.service in the window
#   window               the window's length
#   back                 partition, cluster-down: seconds from the heal (A back in the cluster,
#                        the members started again) until each host was where the key says
#   exit                 switchover, switchback: `failover-manager switchover`'s exit status
#   gap_ms               the longest gap between two samples in the window
#
# --mode automatic (`make drill` runs both modes): the same check.etcd with lease_ttl
# (--lease-ttl, 6 s): the key names dc1 on a lease A's runs renew, and when it has expired a
# run on B (both sites are candidates) takes it; no failback.
# Defaults: --timer 1, --fence-after 3 (the dead man's switch fires 2.25 s after a confirming
# run), --check-timeout 3, --stop 1 (load requires fence_after + stop + lease_ttl/50 <
# lease_ttl). Each round starts with the key held by dc1 on a lease and the application on A
# only (when B holds the key, B's runs are stopped and the key deleted so that A takes it).
# Nobody acts by hand unless the fault says so:
#   cutoff         A cut off from B and W for lease_ttl + fence_after + 4 s, then rejoined and
#                  watched 6 s more (longer if the application is not on one site then); the
#                  etcd leader is moved to W, A, B, … by round first
#   freeze         A's whole sandbox frozen (cgroup.freeze) until B runs the application, plus
#                  1 s; then thawed
#   link-cut       the A–B link only, the leader moved to W, A, B, … by round first
#   flap           A cut off 2 s, back 2 s, for --flap seconds (48)
#   cluster-down   every member stopped, then started again
#   switchover     `failover-manager switchover dc2` on B (dc2 gets a lease of its own)
#   timer-stopped  A's timer and watch stopped, then A cut off: only the dead man's switch
#   clock-step     A's runs get a wall clock an hour behind (libfaketime: FAKETIME=-1h with
#                  FAKETIME_DONT_FAKE_MONOTONIC=1, which leaves CLOCK_BOOTTIME alone too; a
#                  drop-in on failover-manager.service) at the cut, then A cut off
# Columns (automatic mode): fault round leader old new stopped verified dual flips_a flips_b
# end_a end_b fail_a fail_b limit_a limit_b window back exit gap_ms as above (old is A, new is
# B or "-" where nothing should move; stopped: A's application stopped for good), and
#   stops_a              how often A's application stopped in the window
#   fenced_a             runs on A that fenced (or kept fenced) it
#   deadline_a           A's dead man's switch fired (its service started: a oneshot says "Starting")
#   back                 cutoff: from the rejoin until A's member answered; cluster-down: from
#                        the restart until the application ran on exactly one site
#   after_thaw           freeze: from the thaw until A's application stopped
#   skew_s               clock-step: how far behind the real time A's runs' wall clock was
#                        (their last-confirmed record, once A is back)
#
# Measured, never asserted: the script fails only when the drill itself cannot run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=drill/lib.sh
. "$here/lib.sh"

mode=manual rounds=3 timer='' fence_after='' check_timeout='' stop='' lease_ttl=6 window='' promote_after=''
out=- journals='' faults='' flap=48
drill_options drill/etcd.sh "--mode manual|automatic" "--rounds N" "--faults LIST" "--timer S" \
  "--fence-after S" "--check-timeout S" "--stop S" "--lease-ttl S" "--flap S" "--window S" \
  "--promote-after S" "--out FILE" "--journals DIR" -- "$@"
case $mode in
  manual)
    : "${timer:=2}" "${fence_after:=5}" "${check_timeout:=4}" "${stop:=3}"
    : "${faults:=switchover,switchback,partition,partition-early,witness-lost,cluster-down,link-cut}"
    ;;
  automatic)
    # A 1-s timer with fence_after 3 s: the dead man's switch fires 2.25 s after a run armed
    # it, well after the next run (1 s later) re-arms it. Load requires fence_after + the
    # units' verify_timeout + lease_ttl/50 < lease_ttl: 3 + 1 + 0.12 < 6.
    : "${timer:=1}" "${fence_after:=3}" "${check_timeout:=3}" "${stop:=1}"
    : "${faults:=cutoff,freeze,link-cut,flap,cluster-down,switchover,timer-stopped,clock-step}"
    ;;
  *) drill_usage ;;
esac
cadence=$((timer > check_timeout ? timer : check_timeout))
# The inequality's bound, and a second more before promoting.
bound=$((fence_after + cadence + check_timeout + stop))
[ -n "$promote_after" ] || promote_after=$((bound + 1))
[ -n "$window" ] || window=$((fence_after + 3 * cadence + 3))
drill_counts "$rounds" "$timer" "$fence_after" "$check_timeout" "$stop" "$window" "$promote_after" "$lease_ttl" "$flap"
IFS=, read -r -a FAULTS <<<"$faults"
for f in "${FAULTS[@]}"; do
  case $mode:$f in
    manual:switchover | manual:switchback | manual:partition | manual:partition-early | manual:witness-lost | manual:cluster-down | manual:link-cut) ;;
    automatic:cutoff | automatic:freeze | automatic:link-cut | automatic:flap | automatic:cluster-down | automatic:switchover | automatic:timer-stopped | automatic:clock-step) ;;
    *) die "unknown fault $f (--mode $mode)" ;;
  esac
done
# Automatic mode: how long A stays cut off (or frozen, or B waits) for a takeover: the lease's
# TTL, fence_after and a few seconds more; then how long the drill watches after A is back.
cut_win=$((lease_ttl + fence_after + 4))
rejoin_win=6
LIBFAKETIME=
if [ "$mode" = automatic ] && [[ ",$faults," == *,clock-step,* ]]; then
  for f in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1; do
    [ -e "$f" ] && LIBFAKETIME=$f && break
  done
  [ -n "$LIBFAKETIME" ] ||
    die "clock-step needs libfaketime (apt-get install libfaketime, or tests/setup.sh), or leave clock-step out of --faults"
fi

KEY=/failover-manager/primary-site
declare -A SITE=([A]=dc1 [B]=dc2) NUM=([A]=1 [B]=2 [W]=3) PEER=([A]=B [B]=A)
HOSTS=(A B W)
ETCD=etcd-drill.service
WATCH=failover-manager-watch.service
member_addr() { echo "10.97.0.${NUM[$1]}"; }
# The link between two hosts: its /24's third octet, and each end's address and interface.
link_net() {
  case "$1$2" in AB | BA) echo 1 ;; AW | WA) echo 2 ;; *) echo 3 ;; esac
}
link_addr() { # HOST PEER
  local low=2
  [ "${NUM[$1]}" -gt "${NUM[$2]}" ] || low=1
  echo "10.97.$(link_net "$1" "$2").$low"
}
ifname() { echo "to-${1,,}"; }

drill_init "$journals"
# A host frozen when the drill ends is thawed first, so that it can be shut down.
trap 'thaw_all; drill_exit' EXIT
started_at=$SECONDS
drill_out "$out"
# The page counts (pages_row), beside --out: FILE.pages.tsv (none on stdout).
pages_out=-
if [ "$out" != - ]; then
  pages_out=${out%.tsv}.pages.tsv
  printf '# binary\t%s\nmode\tfault\tround\thost\tfail\tonfailure\tpage_start\tpage_end\tprom_page\tprom_warn\n' \
    "$("$bin" --version 2>/dev/null | head -n1)" >"$pages_out"
fi

# --- the hosts ----------------------------------------------------------------------------------
route() { # HOST PEER: HOST's route to PEER's member address over their link
  drill_in "$1" ip route replace "$(member_addr "$2")/32" via "$(link_addr "$2" "$1")" \
    dev "$(ifname "$2")" src "$(member_addr "$1")"
}

etcd_unit() { # HOST
  local h=$1 me cluster=
  me=$(member_addr "$h")
  for m in "${HOSTS[@]}"; do cluster+="${cluster:+,}${m,,}=http://$(member_addr "$m"):2380"; done
  cat <<EOF
[Unit]
Description=drill: etcd member ${h,,}

[Service]
Type=notify
ExecStart=/usr/bin/etcd --name ${h,,} --data-dir /var/lib/etcd-drill --listen-client-urls http://$me:2379,http://127.0.0.1:2379 --advertise-client-urls http://$me:2379 --listen-peer-urls http://$me:2380 --initial-advertise-peer-urls http://$me:2380 --initial-cluster $cluster --initial-cluster-state new --initial-cluster-token fm-drill --logger zap --log-outputs stderr
TimeoutStartSec=60
EOF
}

etcdctl_in() { # HOST ARGS...: etcdctl against HOST's own member
  local h=$1
  shift
  drill_in "$h" etcdctl --endpoints=http://127.0.0.1:2379 --dial-timeout=2s --command-timeout=3s "$@"
}
healthy() { etcdctl_in "$1" endpoint health >/dev/null 2>&1; }
all_healthy() { healthy A && healthy B && healthy W; }

setup_fm() { # HOST
  local h=$1
  drill_install_fm "$h" "$bin"
  # The built-in client, every member listed, this host's own first. Manual mode: no lease,
  # the key moves only by hand or by the switchover; automatic: both sites candidates. The runs
  # acknowledge themselves (KEY/ack/SITE/HOST), which the switchover waits for.
  local eps=http://127.0.0.1:2379 m lease=
  for m in "${HOSTS[@]}"; do [ "$m" = "$h" ] || eps+=", http://$(member_addr "$m"):2379"; done
  [ "$mode" = manual ] || lease="
    lease_ttl: ${lease_ttl}s"
  drill_put "$h" /etc/failover-manager/config.yaml 644 <<YAML
site: ${SITE[$h]}
check:
  etcd:
    endpoints: [$eps]
    key: $KEY
    request_timeout: 500ms$lease
  timeout: ${check_timeout}s
  fence_after: ${fence_after}s
defaults: { verify_timeout: ${stop}s, settle: 0s }
units:
  - app.service
YAML
  drill_put_app "$h"
  # Paging as shipped (docs/metrics-and-alerts.md): the alert unit started at every failed run,
  # and each run's metrics kept as Prometheus would scrape them (drill/keep-metrics), for the
  # page counts.
  drill_put "$h" /usr/local/lib/drill/keep-metrics 755 <"$DRILL_REPO/drill/keep-metrics"
  printf '%s\n' '[Unit]' 'OnFailure=failover-manager-alert@%n.service' '[Service]' 'ExecStart=' \
    'ExecStart=/usr/bin/failover-manager reconcile --metrics-file /run/failover-manager/metrics.prom' \
    'ExecStopPost=+/usr/local/lib/drill/keep-metrics /run/failover-manager/metrics.prom /run/drill/metrics' |
    drill_put "$h" /etc/systemd/system/failover-manager.service.d/drill-pages.conf 644
  # The drill's cadence: the shipped timer, its minute replaced (as cadence.conf does it).
  printf '[Timer]\nOnUnitActiveSec=\nOnActiveSec=0\nOnUnitActiveSec=%ss\nAccuracySec=100ms\n' "$timer" |
    drill_put "$h" /etc/systemd/system/failover-manager.timer.d/drill.conf 644
}

boot_hosts() {
  local h i j pair
  for h in "${HOSTS[@]}"; do drill_boot "$h"; done
  for pair in AB AW BW; do
    i=${pair:0:1} j=${pair:1:1}
    drill_link "$i" "$(ifname "$j")" "$(link_addr "$i" "$j")/24" "$j" "$(ifname "$i")" "$(link_addr "$j" "$i")/24"
  done
  for h in "${HOSTS[@]}"; do
    # The host name is what the runs file their acknowledgements under.
    drill_in "$h" hostname "${h,,}"
    drill_in "$h" ip address add "$(member_addr "$h")/32" dev lo
    for j in "${HOSTS[@]}"; do [ "$j" = "$h" ] || route "$h" "$j"; done
    etcd_unit "$h" | drill_put "$h" "/etc/systemd/system/$ETCD" 644
  done
  setup_fm A
  setup_fm B
  for h in "${HOSTS[@]}"; do drill_in "$h" systemctl daemon-reload; done
  for h in A B; do
    out=$(drill_in "$h" failover-manager validate --config-only 2>&1) ||
      die "host $h: the $mode-mode config does not load: $out"
  done
  # Not one by one: a member of a new cluster is ready only once a majority is up.
  for h in "${HOSTS[@]}"; do drill_in "$h" systemctl start --no-block "$ETCD"; done
  drill_wait 60 all_healthy || die "the etcd cluster did not become healthy"
  [ "$mode" = automatic ] || etcdctl_in W put -- "$KEY" dc1 >/dev/null
  for h in A B; do
    drill_sample_start "$h" app.service
    # Automatic mode: A first, so that it takes the free key (reset_auto makes sure).
    [ "$mode" = automatic ] && [ "$h" = B ] && continue
    drill_in "$h" systemctl start failover-manager.timer "$WATCH"
  done
}

# --- faults and repairs -------------------------------------------------------------------------
cut_link() { # I J: both ends down (the routes go with them)
  drill_in "$1" ip link set "$(ifname "$2")" down
  drill_in "$2" ip link set "$(ifname "$1")" down
}
restore() { # I J
  drill_in "$1" ip link set "$(ifname "$2")" up
  drill_in "$2" ip link set "$(ifname "$1")" up
  route "$1" "$2"
  route "$2" "$1"
}
isolate() { local j; for j in "${HOSTS[@]}"; do [ "$j" = "$1" ] || cut_link "$1" "$j"; done; }
heal_all() {
  restore A B
  restore A W
  restore B W
}
etcd_up_all() {
  local h
  for h in "${HOSTS[@]}"; do
    [ "$(drill_in "$h" systemctl is-active "$ETCD" || true)" = active ] ||
      drill_in "$h" systemctl start --no-block "$ETCD"
  done
}

# HOST's member: "ID_HEX IS_LEADER" (true/false), from etcdctl's simple output (hex IDs: awk's
# doubles cannot hold etcd's 64-bit decimal ones).
status_of() { # HOST
  etcdctl_in "$1" endpoint status -w simple 2>/dev/null |
    awk -F', *' 'NF >= 5 { print $2, $5; ok = 1; exit } END { exit !ok }'
}
leader() { # -> the leader's host name, or "-"
  local h is
  for h in "${HOSTS[@]}"; do
    read -r _ is <<<"$(status_of "$h" || echo "- -")"
    [ "$is" != true ] || { echo "$h"; return; }
  done
  echo -
}
move_leader() { # HOST
  local now target
  now=$(leader)
  [ "$now" != "$1" ] || return 0
  [ "$now" != - ] || die "no etcd leader"
  read -r target _ <<<"$(status_of "$1")"
  # To the leader, through the address it advertises (etcdctl looks for it among the endpoints).
  drill_in "$now" etcdctl --endpoints="http://$(member_addr "$now"):2379" --command-timeout=5s \
    move-leader "$target" >/dev/null
  drill_wait 10 leader_is "$1" || die "the etcd leader did not move to $1"
}
leader_is() { [ "$(leader)" = "$1" ]; }
# Where etcd's leader is decides what a cut does: W, A, B, W, … by round.
leader_by_round() { # ROUND
  local place=(W A B)
  move_leader "${place[$((($1 - 1) % 3))]}"
  sleep 1
}

key_value() { etcdctl_in W get --print-value-only -- "$KEY" 2>/dev/null; }
key_rev() {
  etcdctl_in W get -w fields -- "$KEY" 2>/dev/null | awk -F' : ' '/^"ModRevision"/ { print $2 }'
}
# HOST acknowledged the key's current revision with the role the key gives it (what a
# switchover from or to its site waits for). Only the value's first two fields, REVISION ROLE:
# more may follow.
acked() { # HOST
  local rev want value r role
  rev=$(key_rev) || return 1
  want=standby
  [ "$(key_value)" != "${SITE[$1]}" ] || want=primary
  value=$(etcdctl_in W get --print-value-only -- "$KEY/ack/${SITE[$1]}/${1,,}" 2>/dev/null) || return 1
  read -r r role _ <<<"$value"
  [ "$r" = "$rev" ] && [ "$role" = "$want" ]
}
# Manual mode also waits for the acknowledgements: a switchover refuses a site not in step.
settled_on() { # HOST
  drill_only_on "$1" "${PEER[$1]}" || return 1
  [ "$mode" = automatic ] || { acked A && acked B; }
}

# What the hosts say, when the drill cannot go on.
diagnose() {
  local h
  log "key: $(key_value || echo unreadable) (revision $(key_rev || echo -))"
  etcdctl_in W get --prefix -- "$KEY/ack/" >&2 || true
  for h in A B; do
    log "$h: app.service $(drill_in "$h" systemctl is-active app.service || true), last sample $(tail -n1 "$(drill_samples "$h")")"
    drill_in "$h" journalctl --no-pager -q -n 15 -u failover-manager.service -u "$WATCH" >&2 || true
  done
}

# Back to the start of every round: every link up, every member up and healthy, the key naming
# PRIMARY's site, the application on PRIMARY only, both hosts' acknowledgements current.
reset() { # PRIMARY
  local p=$1
  heal_all
  etcd_up_all
  drill_wait 60 all_healthy || die "reset: the etcd cluster is not healthy"
  [ "$(key_value)" = "${SITE[$p]}" ] || etcdctl_in W put -- "$KEY" "${SITE[$p]}" >/dev/null
  drill_wait 30 settled_on "$p" || { diagnose; die "reset: the application did not settle on $p"; }
  sleep 1
}

# --- one round's figures ------------------------------------------------------------------------
# per_host T0 T1 NAME: each host's journal and samples over [T0, T1], into the caller's j, end,
# flips, fenced, fail, limit and gap (bash's dynamic scope); journals kept as NAME.HOST.
per_host() {
  local t0=$1 t1=$2 name=$3 h
  # The run that ends an incident starts the alert unit as it exits: let it page (pages_row).
  sleep 2
  for h in A B; do
    j[$h]=$DRILL_TMP/journal.$h
    drill_keep_journal "$h" "$t0" "$name"
    end[$h]=$(drill_state_at "$t1" 1 "$(drill_samples "$h")")
    flips[$h]=$(drill_flips "$t0" "$t1" 1 "$(drill_samples "$h")")
    fenced[$h]=$(drill_count "${j[$h]}" "$t0" "$t1" 'failover-manager\[[0-9]+\]: fenced: role unknown')
    fail[$h]=$(drill_count "${j[$h]}" "$t0" "$t1" "$DRILL_FAILED")
    limit[$h]=$(drill_count "${j[$h]}" "$t0" "$t1" "$DRILL_LIMIT")
    # Until now: past the window, through the heal (the incident's end, and its page).
    pages_row "$h" "$t0" "$EPOCHREALTIME" "$name"
  done
  gap=$(drill_max_gap "$t0" "$t1" "$(drill_samples A)" "$(drill_samples B)")
}

# stopped_for_good HOST T0 T1: seconds from T0 until HOST's application stopped for good in
# [T0, T1] ("-": it ran at T1, or was not running at T0).
stopped_for_good() {
  local s
  s=$(drill_state_since "$2" "$3" 1 0 "$(drill_samples "$1")")
  [ "$s" = - ] || [ "$(drill_state_at "$2" 1 "$(drill_samples "$1")")" = 1 ] || s=-
  drill_since "$2" "$s"
}

# record FAULT ROUND T0 T1 LEADER OLD NEW PROMOTE BACK: reads back [T0, T1] and writes the row.
record() {
  local fault=$1 r=$2 t0=$3 t1=$4 ld=$5 old=$6 new=$7 promote=$8 back=$9 h
  local stopped=- verified=- dual gap
  declare -A j end flips fenced fail limit
  per_host "$t0" "$t1" "$fault.$r"
  [ "$old" = - ] || stopped=$(stopped_for_good "$old" "$t0" "$t1")
  [ "$new" = - ] || verified=$(drill_since "$t0" "$(drill_first "${j[$new]}" "$t0" "$t1" "$DRILL_VERIFIED")")
  dual=$(drill_overlap "$t0" "$t1" 1 "$(drill_samples A)" "$(drill_samples B)")
  [ "$promote" = - ] || promote=$(drill_since "$t0" "$promote")
  drill_row "$fault" "$r" "$ld" "$old" "$new" "$promote" "$stopped" "$verified" "$dual" \
    "${flips[A]}" "${flips[B]}" "${end[A]}" "${end[B]}" "${fenced[A]}" "${fenced[B]}" \
    "${fail[A]}" "${fail[B]}" "${limit[A]}" "${limit[B]}" \
    "$(drill_since "$t0" "$t1")" "$back" "$status" "$gap"
  log "$fault $r: leader $ld, promote $promote s, old $old stopped $stopped s, new $new verified $verified s, dual $dual s, end A${end[A]} B${end[B]}, fenced A ${fenced[A]} B ${fenced[B]}, failed runs A ${fail[A]} B ${fail[B]}, back $back s"
}

# pages_row HOST T0 T1 NAME: one row of the page counts (FILE.pages.tsv) for HOST over [T0, T1]:
# failed runs, the alert unit's starts (OnFailure=), what it sent to the pager (the shipped
# unit's logger tag: an incident's start and its end), and the alerts the shipped Prometheus
# rules would fire (drill/pages-count). Before the change the alert unit had no pager tag of
# its own: every start logged the run's errors at daemon.crit, a page each.
pages_row() {
  local h=$1 t0=$2 t1=$3 jf=$DRILL_TMP/journal.$1 prom fault=${4%.*}
  fault=${fault#auto.}
  [ "$pages_out" != - ] || return 0
  prom=$("$here/pages-count" "$t0" "$t1" "$(drill_root "$h")/run/drill/metrics" 2>/dev/null || echo "- -")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$fault" "${4##*.}" "$h" \
    "$(drill_count "$jf" "$t0" "$t1" "$DRILL_FAILED")" \
    "$(drill_count "$jf" "$t0" "$t1" 'Starting failover-manager-alert@')" \
    "$(drill_count "$jf" "$t0" "$t1" 'failover-manager-page\[[0-9]+\]: .*incident started')" \
    "$(drill_count "$jf" "$t0" "$t1" 'failover-manager-page\[[0-9]+\]: .*incident ended')" \
    ${prom% *} ${prom#* } >>"$pages_out"
}

fault_round() { # FAULT ROUND
  local f=$1 r=$2 t0 t1 ld promote=- back=- from=A to=B wait out th
  local status=-
  case $f in switchback) from=B to=A ;; esac
  reset "$from"
  [ "$f" != link-cut ] || leader_by_round "$r"
  ld=$(leader)
  t0=$EPOCHREALTIME
  case $f in
    switchover | switchback)
      if out=$(drill_in "$to" failover-manager switchover --timeout 30s "${SITE[$to]}" 2>&1); then
        status=0
      else
        status=$?
        log "$f $r: the switchover failed: $out"
      fi
      t1=$(drill_later "$EPOCHREALTIME" 2)
      drill_sleep_until "$t1"
      record "$f" "$r" "$t0" "$t1" "$ld" "$from" "$to" - -
      ;;
    partition | partition-early)
      wait=$promote_after
      [ "$f" = partition ] || wait=1
      isolate A
      drill_sleep_until "$(drill_later "$t0" "$wait")"
      promote=$EPOCHREALTIME
      etcdctl_in W put -- "$KEY" dc2 >/dev/null
      t1=$(drill_later "$promote" "$((cadence + stop + 3))")
      drill_sleep_until "$t1"
      th=$EPOCHREALTIME
      heal_all
      if drill_wait 60 settled_on B; then back=$(drill_since "$th" "$EPOCHREALTIME"); fi
      record "$f" "$r" "$t0" "$t1" "$ld" A B "$promote" "$back"
      ;;
    witness-lost)
      isolate W
      t1=$(drill_later "$t0" "$window")
      drill_sleep_until "$t1"
      record "$f" "$r" "$t0" "$t1" "$ld" A - - -
      ;;
    cluster-down)
      for h in W B A; do drill_in "$h" systemctl stop --no-block "$ETCD"; done
      t1=$(drill_later "$t0" "$window")
      drill_sleep_until "$t1"
      th=$EPOCHREALTIME
      etcd_up_all
      if drill_wait 90 settled_on A; then back=$(drill_since "$th" "$EPOCHREALTIME"); fi
      record "$f" "$r" "$t0" "$t1" "$ld" A - - "$back"
      ;;
    link-cut)
      cut_link A B
      t1=$(drill_later "$t0" "$window")
      drill_sleep_until "$t1"
      record "$f" "$r" "$t0" "$t1" "$ld" A - - -
      ;;
  esac
}

# --- automatic mode -----------------------------------------------------------------------------
# The key's lease (decimal, 0 without one) as W's member has it; fails when unreadable.
key_lease() {
  local out
  out=$(etcdctl_in W get -w fields -- "$KEY" 2>/dev/null) || return 1
  printf '%s\n' "$out" | awk -F' : ' '/^"Lease"/ { l = $2 } END { print l + 0 }'
}
# The key names SITE and is held on a lease.
held_by() { # SITE
  local l
  [ "$(key_value)" = "$1" ] && l=$(key_lease) && [ "$l" != 0 ]
}
# The sandbox's cgroup frozen (1) or thawed (0): every process of the host, systemd and its
# etcd member among them.
freeze() { # HOST 0|1
  echo "$2" >"${DRILL_CG[$1]}/cgroup.freeze"
}
thaw_all() {
  local h
  for h in "${DRILL_HOSTS[@]}"; do
    [ -z "${DRILL_CG[$h]:-}" ] || [ ! -e "${DRILL_CG[$h]}/cgroup.freeze" ] || echo 0 >"${DRILL_CG[$h]}/cgroup.freeze" || true
  done
}
FAKETIME_DROPIN=/etc/systemd/system/failover-manager.service.d/faketime.conf
runs_on() { # HOST: the timer and the watch started (a no-op when they run)
  drill_in "$1" systemctl start failover-manager.timer "$WATCH"
}

# Back to the start of every automatic round: every link up, no host frozen, every member up
# and healthy, no faked clock, the key naming dc1 on a lease (A's), the application on A
# only, both hosts' acknowledgements current. There is no failback: when dc2 holds the key, B's
# runs are stopped (its app with them) and the key deleted, so that A takes it.
reset_auto() {
  thaw_all
  heal_all
  if drill_in A test -e "$FAKETIME_DROPIN"; then
    drill_in A rm -f "$FAKETIME_DROPIN"
    drill_in A systemctl daemon-reload
  fi
  etcd_up_all
  drill_wait 60 all_healthy || die "reset: the etcd cluster is not healthy"
  if ! held_by dc1; then
    drill_in B systemctl stop failover-manager.timer "$WATCH"
    drill_in B systemctl stop failover-manager.service app.service
    etcdctl_in W del -- "$KEY" >/dev/null
    runs_on A
    drill_in A systemctl start --no-block failover-manager.service
    drill_wait 20 held_by dc1 || { diagnose; die "reset: A did not take the key"; }
  fi
  runs_on A
  runs_on B
  drill_wait 30 settled_on A || { diagnose; die "reset: the application did not settle on A"; }
  sleep 1
}

# record_auto FAULT ROUND T0 T1 LEADER NEW BACK EXIT AFTER_THAW SKEW: reads back [T0, T1] and
# writes the row (the old primary is always A).
record_auto() {
  local fault=$1 r=$2 t0=$3 t1=$4 ld=$5 new=$6 back=$7 status=$8 thaw=$9 skew=${10} h
  local stopped verified=- dual gap stops_a deadline
  declare -A j end flips fenced fail limit
  per_host "$t0" "$t1" "auto.$fault.$r"
  # A's application stopping: every change from running to not.
  stops_a=$(awk -v t0="$t0" -v t1="$t1" '$1 > t1 { exit } $1 <= t0 { s = $2; next }
    { if (s == 1 && $2 == 0) n++; s = $2 } END { print n + 0 }' "$(drill_samples A)")
  # The dead man's switch fired on A: its service started (the runs re-arm only its timer).
  deadline=$(drill_count "${j[A]}" "$t0" "$t1" '(Starting|Started) failover-manager-deadline-[0-9a-f]+\.service')
  stopped=$(stopped_for_good A "$t0" "$t1")
  [ "$new" = - ] || verified=$(drill_since "$t0" "$(drill_first "${j[$new]}" "$t0" "$t1" "$DRILL_VERIFIED")")
  dual=$(drill_overlap "$t0" "$t1" 1 "$(drill_samples A)" "$(drill_samples B)")
  drill_row "$fault" "$r" "$ld" A "$new" "$stopped" "$verified" "$dual" "${flips[A]}" "${flips[B]}" \
    "$stops_a" "${end[A]}" "${end[B]}" "${fenced[A]}" "$deadline" "${fail[A]}" "${fail[B]}" \
    "${limit[A]}" "${limit[B]}" "$(drill_since "$t0" "$t1")" "$back" "$status" "$thaw" "$skew" "$gap"
  log "auto $fault $r: leader $ld, A stopped $stopped s, $new verified $verified s, dual $dual s, end A${end[A]} B${end[B]}, A's stops $stops_a, fenced by A's runs ${fenced[A]}, by the switch $deadline, failed runs A ${fail[A]} B ${fail[B]}, back $back, exit $status, after thaw $thaw, skew $skew"
}

# Seconds from T until A's member answers again (healthy), at most LIMIT; "-" if not.
until_healthy() { # T LIMIT
  if drill_wait "$2" healthy A; then drill_since "$1" "$EPOCHREALTIME"; else echo -; fi
}

fault_round_auto() { # FAULT ROUND
  local f=$1 r=$2 t0 t1 th ld back=- status=- thaw=- skew=- new=B out h
  reset_auto
  case $f in link-cut | cutoff) leader_by_round "$r" ;; esac
  ld=$(leader)
  case $f in
    cutoff)
      t0=$EPOCHREALTIME
      isolate A
      drill_sleep_until "$(drill_later "$t0" "$cut_win")"
      th=$EPOCHREALTIME
      heal_all
      back=$(until_healthy "$th" "$rejoin_win")
      t1=$(drill_later "$th" "$rejoin_win")
      drill_sleep_until "$t1"
      # Where it ends: when the rejoin disturbed the cluster (see DRILL.md), until the
      # application runs on one site again, 20 s at most.
      if ! settled_any; then
        drill_wait 20 settled_any || true
        t1=$(drill_later "$EPOCHREALTIME" 0.5)
        drill_sleep_until "$t1"
      fi
      ;;
    timer-stopped)
      drill_in A systemctl stop failover-manager.timer "$WATCH"
      t0=$EPOCHREALTIME
      isolate A
      t1=$(drill_later "$t0" "$cut_win")
      drill_sleep_until "$t1"
      ;;
    clock-step)
      # From the cut on, every run on A reads a wall clock an hour behind; the boot clock
      # and the monotonic one untouched.
      printf '[Service]\nEnvironment=LD_PRELOAD=%s FAKETIME=-1h FAKETIME_DONT_FAKE_MONOTONIC=1\n' "$LIBFAKETIME" |
        drill_put A "$FAKETIME_DROPIN" 644
      t0=$EPOCHREALTIME
      drill_in A systemctl daemon-reload
      isolate A
      t1=$(drill_later "$t0" "$cut_win")
      drill_sleep_until "$t1"
      # Proof that the runs saw the stepped clock: back in the cluster, A's next run records
      # its confirmation (a standby now) with the faked wall time.
      heal_all
      drill_wait 10 healthy A || true
      sleep 3
      skew=$(drill_in A sed -n 's/.*"unix":\([0-9]*\).*/\1/p' /var/lib/failover-manager/last-confirmed 2>/dev/null |
        awk -v n="$EPOCHREALTIME" 'NF { printf "%.0f", n - $1; ok = 1 } END { if (!ok) print "-" }')
      ;;
    freeze)
      t0=$EPOCHREALTIME
      freeze A 1
      drill_wait "$cut_win" drill_runs B || true
      sleep 1
      th=$EPOCHREALTIME
      freeze A 0
      drill_wait 10 drill_stopped A || true
      t1=$(drill_later "$EPOCHREALTIME" 3)
      drill_sleep_until "$t1"
      thaw=$(drill_state_since "$th" "$t1" 1 0 "$(drill_samples A)")
      [ "$thaw" = - ] || thaw=$(drill_since "$th" "$thaw")
      ;;
    link-cut)
      new=-
      t0=$EPOCHREALTIME
      cut_link A B
      t1=$(drill_later "$t0" "$cut_win")
      drill_sleep_until "$t1"
      ;;
    flap)
      new=-
      t0=$EPOCHREALTIME
      while awk -v n="$EPOCHREALTIME" -v e="$(drill_later "$t0" "$flap")" 'BEGIN { exit !(n < e) }'; do
        isolate A
        sleep 2
        heal_all
        sleep 2
      done
      t1=$(drill_later "$EPOCHREALTIME" "$rejoin_win")
      drill_sleep_until "$t1"
      ;;
    cluster-down)
      new=-
      t0=$EPOCHREALTIME
      for h in W B A; do drill_in "$h" systemctl stop --no-block "$ETCD"; done
      t1=$(drill_later "$t0" "$cut_win")
      drill_sleep_until "$t1"
      th=$EPOCHREALTIME
      etcd_up_all
      if drill_wait 90 settled_any; then back=$(drill_since "$th" "$EPOCHREALTIME"); fi
      ;;
    switchover)
      t0=$EPOCHREALTIME
      if out=$(drill_in B failover-manager switchover --timeout 30s dc2 2>&1); then
        status=0
      else
        status=$?
        log "switchover $r: failed: $out"
      fi
      # Past the lease's TTL: B renews the lease the switchover granted.
      t1=$(drill_later "$EPOCHREALTIME" "$((lease_ttl + 2))")
      drill_sleep_until "$t1"
      ;;
  esac
  record_auto "$f" "$r" "$t0" "$t1" "$ld" "$new" "$back" "$status" "$thaw" "$skew"
}
# The application on exactly one site.
settled_any() { drill_only_on A B || drill_only_on B A; }

drill_meta drill etcd
drill_meta mode "$mode"
drill_meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
drill_machine
drill_meta etcd "$(etcd --version 2>/dev/null | head -n1)"
drill_meta binary "$("$bin" --version 2>/dev/null | head -n1)"
drill_meta rounds "$rounds"
drill_meta timer "$timer"
drill_meta fence_after "$fence_after"
drill_meta check_timeout "$check_timeout"
drill_meta stop "$stop"
drill_meta cadence "$cadence"
drill_meta bound "$bound"
drill_meta promote_after "$promote_after"
drill_meta window "$window"
if [ "$mode" = manual ]; then
  drill_row fault round leader old new promote stopped verified dual flips_a flips_b end_a end_b \
    fenced_a fenced_b fail_a fail_b limit_a limit_b window back exit gap_ms
else
  drill_meta lease_ttl "$lease_ttl"
  drill_meta cut_win "$cut_win"
  drill_meta rejoin_win "$rejoin_win"
  drill_meta flap "$flap"
  drill_meta libfaketime "${LIBFAKETIME:--}"
  drill_row fault round leader old new stopped verified dual flips_a flips_b stops_a end_a end_b \
    fenced_a deadline_a fail_a fail_b limit_a limit_b window back exit after_thaw skew_s gap_ms
fi
log "booting A, B and W ($mode mode)"
boot_hosts
for f in "${FAULTS[@]}"; do
  for ((r = 1; r <= rounds; r++)); do
    if [ "$mode" = manual ]; then fault_round "$f" "$r"; else fault_round_auto "$f" "$r"; fi
  done
done
drill_meta elapsed "$((SECONDS - started_at))"
