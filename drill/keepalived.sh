#!/usr/bin/env bash
# drill/keepalived.sh: two sites kept apart by real keepalived, and every keepalived fault.
#
#   drill/keepalived.sh [OPTIONS] [BINARY]     BINARY: target/release/failover-manager
#
# Boots two throwaway hosts, A (primary site, priority 100) and B (DR site, priority 50), each
# a systemd in its own namespaces (tests/sandbox.sh), joined by a veth pair that exists only
# inside them (10.99.0.1 and 10.99.0.2, VIP 10.99.0.100). Each runs Debian's keepalived with
# unicast VRRP from examples/keepalived/keepalived.conf, the same app.service, and one of the
# variants below. Then, for each fault, rounds of: back to A primary, the fault, a window of
# observation. A sampler inside each host records every 20 ms whether app.service runs there.
#
# Variants (--variants, in this order by default):
#   notify            the baseline: keepalived's notify script starts app.service on MASTER
#                     and stops it on anything else (drill/notify-app); no failover-manager
#   role-file         failover-manager with the role-file check, the shipped notify script,
#                     failover-manager.path and .timer (the shipped integration until now)
#   vip-on-this-host  the same with the vip-on-this-host check
#   keepalived-vip    the recommended setup: the keepalived-vip check, the shipped notify
#                     script, .path and .timer, the shipped keepalived.service drop-in and a
#                     drop-in that removes the VIP when keepalived stops (address.conf)
# Faults (--faults, all by default; each on A):
#   stop                systemctl stop keepalived.service
#   restart             systemctl restart keepalived.service (with nopreempt, B keeps the VIP)
#   kill                SIGKILL to every keepalived process at once (its cgroup frozen, then
#                       systemctl kill): keepalived dies without a word, as in a crash
#   app-crash           SIGKILL to app.service: it fails, keepalived's track_script sees it
#   partition           the link between the sites cut (VRRP adverts lost both ways), then
#                       a second row, "heal", once it is back
#   comeback-nopreempt  A's keepalived started again while B is primary, with nopreempt
#   comeback-preempt    the same without nopreempt
# Each variant also starts with a "boot" row: failover-manager.timer and .path, then keepalived,
# started on both fresh hosts as at boot, network-online.target held back for 2 s.
#
# Options: --rounds N (3), --window SECONDS observed after each fault (10), --timer SECONDS:
# failover-manager.timer's OnUnitActiveSec= in the drill (5; the shipped minute would need
# minute-long windows, and every window must see a tick), --out FILE (results; default stdout),
# --journals DIR (keep both hosts' journals of every round there, to see why).
#
# Results: tab-separated, one row per round; lines starting with # describe the run. Times in
# seconds from the fault (taken just before the command that injects it), "-" when it did
# not happen in the window. Columns:
#   variant fault round    what was run
#   primary                the host expected to be primary after the fault
#   detect                 keepalived on `primary` entered MASTER (its own detection)
#   run                    app.service began to run on `primary` and ran to the window's end
#   verified               the start was verified: failover-manager's (or notify-app's) line
#   dual                   seconds both hosts ran app.service within the window
#   end_a end_b            app.service running (1) or not (0) on A and B at the window's end
#   final_a final_b        the same once settled: after waiting up to two timer periods more
#                          for the expected state (not for partition)
#   vip_a vip_b            the VIP on A and B at the window's end
#   fail_a fail_b          failover-manager.service runs that failed (a non-zero exit, or
#                          systemd's start limit hit) in the window ("-" for the baseline)
#   limit_a limit_b        of them, start limit hits ("Start request repeated too quickly")
#   stop_notify            stop and restart rounds: whether A's notify script logged its STOP
#   gap_ms                 the longest gap between two samples in the window
# Measured, never asserted: the script fails only when the drill itself cannot run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=drill/lib.sh
. "$here/lib.sh"

rounds=3 window=10 timer=5 out=- journals=
variants=notify,role-file,vip-on-this-host,keepalived-vip
faults=stop,restart,kill,app-crash,partition,comeback-nopreempt,comeback-preempt
drill_options drill/keepalived.sh "--rounds N" "--variants LIST" "--faults LIST" "--window S" \
  "--timer S" "--out FILE" "--journals DIR" -- "$@"
drill_counts "$rounds" "$window" "$timer"
IFS=, read -r -a VARIANTS <<<"$variants"
IFS=, read -r -a FAULTS <<<"$faults"
for v in "${VARIANTS[@]}"; do
  case $v in notify | role-file | vip-on-this-host | keepalived-vip) ;; *) die "unknown variant $v" ;; esac
done
for f in "${FAULTS[@]}"; do
  case $f in
    stop | restart | kill | app-crash | partition | comeback-nopreempt | comeback-preempt) ;;
    *) die "unknown fault $f" ;;
  esac
done

VIP=10.99.0.100
IF=site0
declare -A ADDR=([A]=10.99.0.1 [B]=10.99.0.2) PRIO=([A]=100 [B]=50) PEER=([A]=B [B]=A)
# A MAC address that is no one's: the partition points each host's neighbour entry for the
# other there, so unicast adverts are lost while both interfaces stay up.
declare -A NOWHERE=([A]=02:00:00:00:99:0a [B]=02:00:00:00:99:0b)
NOTIFY_FM=/usr/lib/failover-manager/keepalived/notify-failover-manager
NOTIFY_APP=/usr/local/lib/drill/notify-app
DROPIN=/usr/lib/failover-manager/keepalived/keepalived.service.d/failover-manager.conf

drill_init "$journals"
started_at=$SECONDS
drill_out "$out"

# --- a host ---------------------------------------------------------------------------------
# examples/keepalived/keepalived.conf for HOST, with the drill's addresses; PREEMPT yes drops
# nopreempt. Every substitution is checked: the drill runs the example, or fails.
ka_conf() { # HOST VARIANT PREEMPT
  local h=$1 v=$2 p=$3 notify=$NOTIFY_FM text
  [ "$v" != notify ] || notify=$NOTIFY_APP
  local e=(-e "s|192\.0\.2\.10/24 dev eth0|$VIP/24 dev $IF|"
    -e "s|^\( *interface \)eth0\$|\1$IF|"
    -e "s|^\( *priority \)100\$|\1${PRIO[$h]}|"
    -e "s|^\( *unicast_src_ip \)192\.0\.2\.11\$|\1${ADDR[$h]}|"
    -e "s|^\( *\)192\.0\.2\.12\$|\1${ADDR[${PEER[$h]}]}|"
    -e "s|my-application\.service|app.service|g"
    -e "s|^\( *notify \)/.*\$|\1$notify|")
  [ "$p" = no ] || e+=(-e '/^ *nopreempt$/d')
  text=$(sed "${e[@]}" "$DRILL_REPO/examples/keepalived/keepalived.conf")
  local want
  for want in "^ *interface $IF\$" "^ *priority ${PRIO[$h]}\$" "^ *unicast_src_ip ${ADDR[$h]}\$" \
    "^ *${ADDR[${PEER[$h]}]}\$" "^ *$VIP/24 dev $IF\$" "^ *notify $notify\$" \
    "is-failed --quiet app.service"; do
    grep -q -- "$want" <<<"$text" || die "examples/keepalived/keepalived.conf: no line for ${want//\\/}"
  done
  if grep -v '^ *#' <<<"$text" | grep -q '192\.0\.2\.'; then
    die "examples/keepalived/keepalived.conf: an example address the drill does not replace"
  fi
  [ "$p" = yes ] || grep -q '^ *nopreempt$' <<<"$text" || die "keepalived.conf: no nopreempt"
  printf '%s\n' "$text"
}

# keepalived's own config test, inside the host: any complaint fails the drill.
ka_test() { # HOST
  local said
  said=$(drill_in "$1" keepalived --config-test -f /etc/keepalived/keepalived.conf 2>&1) ||
    die "keepalived --config-test: $said"
  if grep -qi 'unknown\|error\|invalid' <<<"$said"; then die "keepalived --config-test: $said"; fi
}

check_argv() { # VARIANT
  local c=/usr/lib/failover-manager/checks
  case $1 in
    role-file) echo "[\"$c/role-file\"]" ;;
    vip-on-this-host) echo "[\"$c/vip-on-this-host\", \"$VIP\"]" ;;
    keepalived-vip) echo "[\"$c/keepalived-vip\", \"$VIP\"]" ;;
  esac
}

setup_host() { # HOST VARIANT
  local h=$1 v=$2
  drill_put_app "$h"
  ka_conf "$h" "$v" no | drill_put "$h" /etc/keepalived/keepalived.conf 644
  ka_test "$h"
  if [ "$v" = notify ]; then
    drill_put "$h" "$NOTIFY_APP" 755 <"$here/notify-app"
  else
    drill_install_fm "$h" "$bin"
    drill_put "$h" "$NOTIFY_FM" 755 <"$DRILL_REPO/examples/keepalived/notify-failover-manager"
    drill_put "$h" /etc/failover-manager/config.yaml 644 <<YAML
check:
  command: $(check_argv "$v")
  timeout: 5s
defaults: { verify_timeout: 10s, settle: 0s }
units:
  - app.service
YAML
    printf '[Timer]\nOnUnitActiveSec=\nOnUnitActiveSec=%ss\n' "$timer" |
      drill_put "$h" /etc/systemd/system/failover-manager.timer.d/drill.conf 644
  fi
  if [ "$v" = keepalived-vip ]; then
    # As docs/keepalived.md says: the shipped drop-in linked in, and the site's own for its address.
    drill_put "$h" "$DROPIN" 644 <"$DRILL_REPO/examples/keepalived/keepalived.service.d/failover-manager.conf"
    drill_in "$h" mkdir -p /etc/systemd/system/keepalived.service.d
    drill_in "$h" ln -sf "$DROPIN" /etc/systemd/system/keepalived.service.d/
    printf '[Service]\nExecStopPost=-/sbin/ip address del %s/24 dev %s\n' "$VIP" "$IF" |
      drill_put "$h" /etc/systemd/system/keepalived.service.d/address.conf 644
  fi
  # As at boot, network-online.target is reached a while after the timers: a stand-in for the
  # network holds it back for 2 s (keepalived and failover-manager.service are both ordered
  # after it), so the cold start below starts them when a real boot would.
  printf '[Unit]\nDescription=drill: the network coming up\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 2\n' |
    drill_put "$h" /etc/systemd/system/drill-network.service 644
  printf '[Unit]\nWants=drill-network.service\nAfter=drill-network.service\n' |
    drill_put "$h" /etc/systemd/system/network-online.target.d/drill.conf 644
  drill_in "$h" systemctl daemon-reload
  drill_sample_start "$h" app.service
}

# --- what a host is doing -------------------------------------------------------------------
ka_active() { [ "$(drill_in "$1" systemctl is-active keepalived.service)" = active ]; }
vip_on() { [ -n "$(drill_in "$1" ip -o address show to "$VIP")" ]; }
fm_idle() { [ "$(drill_in "$1" systemctl is-active failover-manager.service)" != activating ]; }
# HOST holds the VIP and runs the application; the other host neither.
primary_is() {
  local o=${PEER[$1]}
  vip_on "$1" && ! vip_on "$o" && drill_only_on "$1" "$o"
}
freeze() { # HOST 1|0: freezes or thaws keepalived's cgroup
  drill_in "$1" sh -c 'echo "$1" 2>/dev/null >"$2" || true' freeze "$2" \
    /sys/fs/cgroup/system.slice/keepalived.service/cgroup.freeze
  [ "$2" = 0 ] || drill_wait 2 drill_in "$1" grep -qx 'frozen 1' \
    /sys/fs/cgroup/system.slice/keepalived.service/cgroup.events || die "cannot freeze keepalived"
}
del_stale_vip() { drill_in "$1" ip address del "$VIP/24" dev "$IF" 2>/dev/null || true; }
cut_link() {
  drill_in A ip neighbour replace "${ADDR[B]}" lladdr "${NOWHERE[B]}" dev "$IF" nud permanent
  drill_in B ip neighbour replace "${ADDR[A]}" lladdr "${NOWHERE[A]}" dev "$IF" nud permanent
}
heal_link() {
  drill_in A ip neighbour del "${ADDR[B]}" dev "$IF" 2>/dev/null || true
  drill_in B ip neighbour del "${ADDR[A]}" dev "$IF" 2>/dev/null || true
}
# No run under way, and every round starts as if the last event were long ago: the drill's own
# stops and starts before the fault would otherwise count against failover-manager.service's
# start limit (reset-failed resets it) and could leave the path unit failed.
quiet() {
  local h
  for h in A B; do
    drill_wait 20 fm_idle "$h" || true
    [ "$V" = notify ] || {
      drill_in "$h" systemctl reset-failed failover-manager.service failover-manager.path
      drill_in "$h" systemctl start failover-manager.path
    }
  done
  sleep 1
}

# Back to the starting point of every round: A primary with the application, B standby
# without it, keepalived running on both with PREEMPT as asked. What a variant does not put
# right by itself within 15 s is put right by hand (and said).
PREEMPT_NOW=no
reset() { # PREEMPT
  local want=$1 h
  heal_link
  for h in A B; do drill_in "$h" systemctl reset-failed app.service 2>/dev/null || true; done
  if [ "$want" != "$PREEMPT_NOW" ]; then
    for h in A B; do
      ka_conf "$h" "$V" "$want" | drill_put "$h" /etc/keepalived/keepalived.conf 644
      ka_test "$h"
    done
    PREEMPT_NOW=$want
    drill_in B systemctl stop keepalived.service
    drill_in A systemctl stop keepalived.service
  fi
  if ! { ka_active A && vip_on A; }; then
    drill_in B systemctl stop keepalived.service
    del_stale_vip B
    if ! ka_active A; then
      del_stale_vip A
      drill_in A systemctl start keepalived.service
    fi
    drill_wait 15 vip_on A || die "$V: reset: A did not take the VIP"
  fi
  if ! ka_active B; then
    del_stale_vip B
    drill_in B systemctl start keepalived.service
  fi
  if ! drill_wait 15 primary_is A; then
    log "$V: reset: the application did not settle on A by itself; moved by hand"
    drill_in B systemctl stop app.service
    drill_in A systemctl start app.service
    drill_wait 10 primary_is A || die "$V: reset: A is not primary"
  fi
  quiet
}

# A comeback starts from B primary: A's keepalived stopped, the application on B only.
pre_comeback() {
  drill_in A systemctl stop keepalived.service
  if ! drill_wait 15 primary_is B; then
    log "$V: comeback: the application did not settle on B by itself; moved by hand"
    del_stale_vip A
    drill_in A systemctl stop app.service
    drill_in B systemctl start app.service
    drill_wait 10 primary_is B || die "$V: comeback: B is not primary"
  fi
  quiet
}

# --- one round's figures --------------------------------------------------------------------
# record FAULT ROUND T0 PRIMARY: reads back the window [T0, T0 + window] and writes the row.
record() {
  local fault=$1 r=$2 t0=$3 p=$4 t1 h detect run verified dual gap stop_n
  t1=$(drill_later "$t0" "$window")
  declare -A j end vip fail limit final
  for h in A B; do
    j[$h]=$DRILL_TMP/journal.$h
    drill_keep_journal "$h" "$t0" "$V.$fault.$r"
    end[$h]=$(drill_state_at "$t1" 1 "$(drill_samples "$h")")
    if vip_on "$h"; then vip[$h]=1; else vip[$h]=0; fi
    if [ "$V" = notify ]; then
      fail[$h]=- limit[$h]=-
    else
      fail[$h]=$(drill_count "${j[$h]}" "$t0" "$t1" "$DRILL_FAILED")
      limit[$h]=$(drill_count "${j[$h]}" "$t0" "$t1" "$DRILL_LIMIT")
    fi
  done
  detect=$(drill_since "$t0" "$(drill_first "${j[$p]}" "$t0" "$t1" 'Entering MASTER STATE')")
  run=$(drill_state_since "$t0" "$t1" 1 1 "$(drill_samples "$p")")
  [ "$run" = - ] || run=$(drill_since "$t0" "$run")
  verified=$(drill_since "$t0" "$(drill_first "${j[$p]}" "$t0" "$t1" "$DRILL_VERIFIED")")
  dual=$(drill_overlap "$t0" "$t1" 1 "$(drill_samples A)" "$(drill_samples B)")
  gap=$(drill_max_gap "$t0" "$t1" "$(drill_samples A)" "$(drill_samples B)")
  stop_n=-
  case $fault in stop | restart) stop_n=$(drill_count "${j[A]}" "$t0" "$t1" ' is STOP: ') ;; esac
  # Settled: wait (up to two timer periods) for the expected state, then read it.
  [ "$fault" = partition ] || drill_wait $((2 * timer)) drill_only_on "$p" "${PEER[$p]}" || true
  for h in A B; do final[$h]=$(drill_now "$h"); done
  drill_row "$V" "$fault" "$r" "$p" "$detect" "$run" "$verified" "$dual" "${end[A]}" "${end[B]}" \
    "${final[A]}" "${final[B]}" "${vip[A]}" "${vip[B]}" "${fail[A]}" "${fail[B]}" \
    "${limit[A]}" "${limit[B]}" "$stop_n" "$gap"
  log "$V $fault $r: primary $p, detect $detect s, verified $verified s, dual $dual s, end A${end[A]} B${end[B]}, final A${final[A]} B${final[B]}, failed runs A ${fail[A]} B ${fail[B]}"
}

# --- the drill --------------------------------------------------------------------------------
boot_hosts() {
  drill_boot A
  drill_boot B
  drill_link A "$IF" "${ADDR[A]}/24" B "$IF" "${ADDR[B]}/24"
  setup_host A "$V"
  setup_host B "$V"
  PREEMPT_NOW=no
}

# Both hosts cold, as at boot: the timer and the path unit first (timers.target and
# paths.target come early), keepalived with multi-user.target; the timer's first run and
# keepalived both wait for network-online.target. The window starts with the first command.
cold_start() {
  local t0 h
  t0=$EPOCHREALTIME
  for h in A B; do
    [ "$V" = notify ] ||
      drill_in "$h" systemctl start --no-block failover-manager.timer failover-manager.path
    drill_in "$h" systemctl start --no-block keepalived.service
  done
  drill_sleep_until "$(drill_later "$t0" "$window")"
  record boot 1 "$t0" A
}

fault_round() { # FAULT ROUND
  local f=$1 r=$2 t0 t1 preempt=no p=B
  [ "$f" != comeback-preempt ] || preempt=yes p=A
  reset "$preempt"
  case $f in comeback-*) pre_comeback ;; esac
  t0=$EPOCHREALTIME
  case $f in
    stop) drill_in A systemctl stop --no-block keepalived.service ;;
    restart) drill_in A systemctl restart --no-block keepalived.service ;;
    kill)
      # Frozen first, so that no keepalived process runs another instruction: otherwise the
      # VRRP child sometimes sees its parent die first (SIGTERM) and says goodbye. Frozen
      # behind systemd's back (the cgroup file): a unit systemd froze runs no ExecStopPost=.
      freeze A 1
      drill_in A systemctl kill --signal=SIGKILL keepalived.service
      freeze A 0
      ;;
    app-crash) drill_in A systemctl kill --signal=SIGKILL app.service ;;
    partition) cut_link ;;
    comeback-*) drill_in A systemctl start --no-block keepalived.service ;;
  esac
  drill_sleep_until "$(drill_later "$t0" "$window")"
  record "$f" "$r" "$t0" "$p"
  if [ "$f" = partition ]; then
    # The link back: A (the higher priority) stays MASTER, B must give up.
    t1=$EPOCHREALTIME
    heal_link
    drill_sleep_until "$(drill_later "$t1" "$window")"
    record heal "$r" "$t1" A
  fi
}

drill_meta drill keepalived
drill_meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
drill_machine
drill_meta keepalived "$(keepalived --version 2>&1 | head -n1)"
drill_meta binary "$("$bin" --version 2>/dev/null | head -n1)"
drill_meta rounds "$rounds"
drill_meta window "$window"
drill_meta timer "$timer"
drill_row variant fault round primary detect run verified dual end_a end_b final_a final_b \
  vip_a vip_b fail_a fail_b limit_a limit_b stop_notify gap_ms
for V in "${VARIANTS[@]}"; do
  log "$V: booting A and B"
  boot_hosts
  cold_start
  for f in "${FAULTS[@]}"; do
    for ((r = 1; r <= rounds; r++)); do fault_round "$f" "$r"; done
  done
  drill_down A
  drill_down B
done
drill_meta elapsed "$((SECONDS - started_at))"
