#!/usr/bin/env bash
# drill/report.sh RESULTS [RUNTIME]: renders the results of drill/keepalived.sh (its --out) as
# DRILL.md on stdout. Pure: reads the results file only, so a report can be rendered again
# without measuring again. RUNTIME (the command that produced RESULTS) goes into the text.
set -euo pipefail
export LC_ALL=C
res=${1:?usage: drill/report.sh RESULTS [RUNTIME]}
how=${2:-drill/keepalived.sh}
[ -r "$res" ] || { echo "report: cannot read $res" >&2; exit 1; }
# shellcheck source=drill/report-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/report-lib.sh"

# The rows' values of EXPR (see `values`) for one variant and fault, one per round.
col() { values "$3" "$2" variant "$1"; } # VARIANT FAULT EXPR
rounds() { col "$1" "$2" round | wc -l; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "nan" && a <= b) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) printf "—"; else printf "%.2f×", a / b }'; }
# Rounds in which the application ran on the expected host only, at the window's end (END) or
# once settled (FINAL).
placed() { # VARIANT FAULT A B WHICH(end|final)
  awk -F'\t' -v v="$1" -v f="$2" -v a="$3" -v b="$4" -v w="$5" '
    /^#/ { next }
    !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next }
    $c["variant"] == v && $c["fault"] == f { n++; if ($c[w "_a"] == a && $c[w "_b"] == b) k++ }
    END { print k + 0, n + 0 }' "$res"
}

mapfile -t VARIANTS < <(awk -F'\t' '/^#/ { next } !h { h = 1; next } !s[$1]++ { print $1 }' "$res")
has() { printf '%s\n' "${VARIANTS[@]}" | grep -qx -- "$1"; }
best=keepalived-vip
base=notify
window=$(meta window)
timer=$(meta timer)
nrounds=$(meta rounds)
expect_of() { # FAULT -> "A B" (1 = the application runs there)
  case $1 in boot | comeback-preempt | heal) echo "1 0" ;; partition) echo "1 1" ;; *) echo "0 1" ;; esac
}
FAULTS_SAFE=(stop restart kill app-crash comeback-nopreempt comeback-preempt)
TAKEOVER=(stop restart kill app-crash comeback-preempt boot)
describe() {
  case $1 in
    boot) echo "cold start of both (as at boot)" ;;
    stop) echo "\`systemctl stop keepalived\` on A" ;;
    restart) echo "\`systemctl restart keepalived\` on A" ;;
    kill) echo "SIGKILL to all of A's keepalived" ;;
    app-crash) echo "A's app crashes (track_script → FAULT)" ;;
    partition) echo "link between the sites cut" ;;
    heal) echo "… and back (A keeps the VIP)" ;;
    comeback-nopreempt) echo "A's keepalived back, nopreempt" ;;
    comeback-preempt) echo "A's keepalived back, preempt" ;;
  esac
}
ALL=(boot stop restart kill app-crash comeback-nopreempt comeback-preempt partition heal)
row_of() {
  local out v
  out="| $(describe "$1") |"
  for v in "${VARIANTS[@]}"; do out+=" $2 |"; done
  echo "$out"
}
header() {
  local h="| $1 |" s="| --- |" v
  for v in "${VARIANTS[@]}"; do h+=" $v |" s+=" ---: |"; done
  echo "$h"
  echo "$s"
}

cat <<EOF
# Drill: two sites with keepalived

Produced by \`make drill\` (\`$how\`, then \`drill/report.sh\`) on $(meta date), in $(meta elapsed) s.
Regenerate with \`sudo make drill\`. The figures are measured, never asserted: CI runs one quick
round of the recommended setup through the same script and asserts only where the application
ends up and that nothing pages (\`tests/integration/two_sites.rs\`).

| machine | |
| --- | --- |
| CPU | $(meta cpu) |
| kernel | $(meta kernel) |
| systemd | $(meta systemd) (two throwaway instances booted by \`tests/sandbox.sh\`) |
| keepalived | $(meta keepalived) (Debian's package and unit) |
| binary | \`$(meta binary)\`, commit $(meta rev) |

## How

Two hosts, each a systemd booted in its own namespaces: A on the primary site (VRRP priority
100), B on the DR site (50), joined by a veth pair that exists only inside them (10.99.0.1,
10.99.0.2; VIP 10.99.0.100). Both run Debian's keepalived with \`examples/keepalived/keepalived.conf\`
(unicast VRRP, \`advert_int 1\`, \`state BACKUP\`, \`nopreempt\` unless said, the track script for
the application), the same \`app.service\` (\`Type=simple\`), and one of these integrations:

| variant | what runs on each host |
| --- | --- |
| notify | the baseline: a keepalived notify script that starts \`app.service\` on MASTER and stops it on anything else (\`drill/notify-app\`); Debian's keepalived.service as is |
| role-file | failover-manager with the \`role-file\` check, the shipped notify script, \`failover-manager.path\` and \`.timer\`; Debian's keepalived.service as is |
| vip-on-this-host | the same with the \`vip-on-this-host\` check |
| keepalived-vip | **the recommended setup**: the \`keepalived-vip\` check, the shipped notify script, \`.path\` and \`.timer\`, the shipped drop-in for keepalived.service (\`ExecStopPost=\` a reconcile, \`KillMode=mixed\`) and the site's own \`ExecStopPost=\` that removes the VIP |

failover-manager runs from the shipped units with \`settle: 0s\` (the application is verified
\`active\` once), and its timer shortened by a drop-in to \`OnUnitActiveSec=${timer}s\` (shipped: 1 min)
so that every window of ${window} s sees a tick: whatever the timer would put right, it had the
chance to. Each fault is injected on A, $nrounds rounds each, every round from the same start (A primary
with the application, B standby without it; what a variant did not put right by itself was put
right by hand before the next round). Times count from the command that injects the fault; a
sampler inside each host reads every 20 ms whether \`app.service\` has a process (the longest gap
between two samples is in the last table). "Verified" is failover-manager's
\`started app.service\` line on the new primary (the baseline's: its \`systemctl start\` returned);
"detection" is keepalived's own \`Entering MASTER STATE\` there. Cells are median (max) over the rounds,
in seconds.

The faults: \`systemctl stop keepalived.service\`; \`systemctl restart keepalived.service\` (with
\`nopreempt\`, B keeps the VIP it took while A was down); SIGKILL to every keepalived process at once
(the cgroup frozen first, so that none of them runs another instruction, as in a crash); a
SIGKILL to \`app.service\`, which its track script sees as \`failed\`; A's keepalived started again
while B is primary, with and without \`nopreempt\`; the sites cut apart (each host's neighbour
entry for the other pointed nowhere, so VRRP adverts are lost both ways while both links stay
up), then joined again. The cold start starts the timer and the path unit, then keepalived, on
both fresh hosts, with network-online.target held back for 2 s, as at boot (once per variant;
keepalived starts again in every comeback round).
EOF

if has "$best"; then
  # --- goals --------------------------------------------------------------------------------
  dual_max=0 over_max=0 rec_max=0 fails=0 dual_where='' over_where='' rec_where=''
  for f in "${FAULTS_SAFE[@]}" boot; do
    present "$f" || continue
    read -r _ x n <<<"$(col "$best" "$f" dual | stats)"
    if [ "$n" -gt 0 ] && ! le "$x" "$dual_max"; then dual_max=$x dual_where=$f; fi
  done
  for f in "${TAKEOVER[@]}"; do
    present "$f" || continue
    read -r _ x n <<<"$(col "$best" "$f" verified-detect | stats)"
    if [ "$n" -gt 0 ] && ! le "$x" "$over_max"; then over_max=$x over_where=$f; fi
  done
  for f in comeback-nopreempt comeback-preempt; do
    present "$f" || continue
    read -r _ x n <<<"$(col "$best" "$f" dual | stats)"
    if [ "$n" -gt 0 ] && ! le "$x" "$rec_max"; then rec_max=$x rec_where=$f; fi
  done
  for f in boot comeback-nopreempt comeback-preempt; do
    fails=$((fails + $(col "$best" "$f" fail_a | sum) + $(col "$best" "$f" fail_b | sum)))
  done
  missing=0
  for f in "${TAKEOVER[@]}"; do
    present "$f" || continue
    k=$(col "$best" "$f" verified | grep -cx -- - || true)
    missing=$((missing + k))
  done
  yn() { if "$@"; then echo "**met**"; else echo "**not met**"; fi; }
  echo
  echo "## Goals, for the recommended setup (keepalived-vip)"
  echo
  echo "| goal | measured | |"
  echo "| --- | --- | --- |"
  echo "| both sites run the application ≤ 1.5 s after every fault but the link cut | at most $(f2 "$dual_max") s${dual_where:+ ($(describe "$dual_where"))} | $(yn le "$dual_max" 1.5) |"
  over_ok() { le "$over_max" 0.5 && [ "$missing" = 0 ]; }
  echo "| takeover ≤ keepalived's own detection + 0.5 s | at most $(f2 "$over_max") s after detection${over_where:+ ($(describe "$over_where"))}$([ "$missing" = 0 ] || echo "; $missing round(s) with no verified start in the window") | $(yn over_ok) |"
  echo "| recovery overlap (A coming back) ≤ 0.5 s | at most $(f2 "$rec_max") s${rec_where:+ ($(describe "$rec_where"))} | $(yn le "$rec_max" 0.5) |"
  zero() { [ "$fails" = 0 ]; }
  echo "| no failed run on either site while keepalived is merely starting (cold start, comebacks) | $fails failed run(s) | $(yn zero) |"
fi

# --- tables -------------------------------------------------------------------------------------
echo
echo "## Both sites ran the application"
echo
echo "Seconds within the ${window}-s window after the fault during which \`app.service\` ran on A and B at once."
echo
header fault
for f in "${ALL[@]}"; do
  present "$f" || continue
  line="| $(describe "$f") |"
  for v in "${VARIANTS[@]}"; do line+=" $(cell "$v" "$f" dual) |"; done
  echo "$line"
done

echo
echo "## Takeover"
echo
echo "Seconds until the new primary's application was verified active (B's; A's for the cold start"
echo "and a comeback with preempt), and keepalived's own detection there (all variants together)."
echo
line="| fault | detection |" sep="| --- | ---: |"
for v in "${VARIANTS[@]}"; do line+=" $v |" sep+=" ---: |"; done
if has "$best" && has "$base"; then line+=" $best − detection | $best / $base |" sep+=" ---: | ---: |"; fi
echo "$line"
echo "$sep"
for f in "${TAKEOVER[@]}"; do
  present "$f" || continue
  d=$(for v in "${VARIANTS[@]}"; do col "$v" "$f" detect; done | stats)
  read -r dm dx _ <<<"$d"
  line="| $(describe "$f") | $(f2 "$dm") ($(f2 "$dx")) |"
  for v in "${VARIANTS[@]}"; do line+=" $(cell "$v" "$f" verified) |"; done
  if has "$best" && has "$base"; then
    read -r bm _ <<<"$(col "$best" "$f" verified | stats)"
    read -r nm _ <<<"$(col "$base" "$f" verified | stats)"
    line+=" $(cell "$best" "$f" verified-detect) | $(ratio "$bm" "$nm") |"
  fi
  echo "$line"
done

echo
echo "## Where the application ended up"
echo
echo "Rounds that ended with the application on the expected site only (B after a fault on A; A"
echo "after a cold start, a comeback with preempt and the link's return; both while the link is cut),"
echo "at the window's end, then after waiting up to two more timer periods ($((2 * timer)) s)."
echo
header fault
for f in "${ALL[@]}"; do
  present "$f" || continue
  read -r ea eb <<<"$(expect_of "$f")"
  line="| $(describe "$f") |"
  for v in "${VARIANTS[@]}"; do
    read -r k n <<<"$(placed "$v" "$f" "$ea" "$eb" end)"
    read -r k2 _ <<<"$(placed "$v" "$f" "$ea" "$eb" final)"
    if [ "$n" = 0 ]; then line+=" · |"; else line+=" $k/$n ($k2/$n) |"; fi
  done
  echo "$line"
done

echo
echo "## What else the drill saw"
echo
header ""
line="| failed failover-manager.service runs (non-zero exit), all rounds, both sites |"
for v in "${VARIANTS[@]}"; do
  if [ "$v" = "$base" ]; then line+=" n/a |"; continue; fi
  t=0
  for f in "${ALL[@]}"; do t=$((t + $(col "$v" "$f" fail_a | sum) + $(col "$v" "$f" fail_b | sum))); done
  line+=" $t |"
done
echo "$line"
line="| … of them in the cold start |"
for v in "${VARIANTS[@]}"; do
  if [ "$v" = "$base" ]; then line+=" n/a |"; continue; fi
  line+=" $(($(col "$v" boot fail_a | sum) + $(col "$v" boot fail_b | sum))) |"
done
echo "$line"
if present stop || present restart; then
  line="| A's notify script logged its STOP (stop and restart rounds) |"
  for v in "${VARIANTS[@]}"; do
    line+=" $(($(col "$v" stop stop_notify | sum) + $(col "$v" restart stop_notify | sum)))/$(($(rounds "$v" stop) + $(rounds "$v" restart))) |"
  done
  echo "$line"
fi
if present kill; then
  line="| the VIP still on A at the window's end (kill rounds) |"
  for v in "${VARIANTS[@]}"; do line+=" $(col "$v" kill vip_a | sum)/$(rounds "$v" kill) |"; done
  echo "$line"
fi
line="| longest gap between two samples, ms |"
for v in "${VARIANTS[@]}"; do
  line+=" $(for f in "${ALL[@]}"; do col "$v" "$f" gap_ms; done | stats | awk '{ print $2 }') |"
done
echo "$line"

# --- what it means ------------------------------------------------------------------------------
if has "$best" && present kill && present partition; then
  read -r kb _ <<<"$(col "$best" kill dual | stats)"
  read -r pb _ <<<"$(col "$best" partition dual | stats)"
  read -r pd _ <<<"$(for v in "${VARIANTS[@]}"; do col "$v" partition detect; done | stats)"
  echo
  echo "## What it means"
  echo
  if has "$base"; then
    read -r kn _ <<<"$(col "$base" kill dual | stats)"
    echo "- A keepalived that dies without a word (SIGKILL, a crash) is the fault that tells the"
    echo "  integrations apart: both sites ran the application for a median $(f2 "$kn") s of ${window} with the bare"
    echo "  notify script, which the timer's ticks do not change for the address-only checks either,"
    echo "  against $(f2 "$kb") s with keepalived-vip and the drop-in (ExecStopPost= runs after a SIGKILL too,"
    echo "  and the check sees keepalived not running, whatever the interface still holds)."
  fi
  echo "- Cutting the sites apart makes both keepalived MASTER after about $(f2 "$pd") s, and every variant"
  echo "  then runs the application on both sites (keepalived-vip: a median $(f2 "$pb") s of ${window}): VRRP alone"
  echo "  cannot tell a dead peer from an unreachable one. Only a third opinion (a witness, a quorum"
  echo "  such as etcd) can, and none is part of this setup. When the link is back the lower priority"
  echo "  yields at A's next advert (\`advert_int 1\`), which the \"… and back\" rows show."
  if has "$base"; then
    worst=0
    for f in "${TAKEOVER[@]}"; do
      present "$f" || continue
      read -r bm _ <<<"$(col "$best" "$f" verified | stats)"
      read -r nm _ <<<"$(col "$base" "$f" verified | stats)"
      d=$(awk -v a="$bm" -v b="$nm" 'BEGIN { if (a == "nan" || b == "nan") print 0; else print a - b }')
      le "$d" "$worst" || worst=$d
    done
    echo "- Takeover is keepalived's detection plus what runs after it. With keepalived-vip the"
    echo "  application was verified at most $(f2 "$worst") s (medians, per fault) after the bare notify"
    echo "  script's \`systemctl start\` returned: the notify script, a reconcile (the check, one"
    echo "  \`is-active\`, the start, its verification)."
  fi
fi
