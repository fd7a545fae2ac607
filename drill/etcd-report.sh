#!/usr/bin/env bash
# drill/etcd-report.sh RESULTS [RUNTIME]: renders the results of drill/etcd.sh (its --out) as
# DRILL.md's etcd section on stdout: the manual-mode section, or the automatic-mode one when
# the results say "# mode automatic" (drill/etcd.sh --mode automatic). Pure: reads the
# results file only, so the section can be rendered again without measuring again. RUNTIME
# (the command that produced RESULTS) goes into the text.
set -euo pipefail
export LC_ALL=C
res=${1:?usage: drill/etcd-report.sh RESULTS [RUNTIME]}
how=${2:-drill/etcd.sh}
[ -r "$res" ] || { echo "report: cannot read $res" >&2; exit 1; }
# shellcheck source=drill/report-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/report-lib.sh"

# The rows' values of EXPR (see `values`) for one fault (and, with LEADER, only the rounds whose
# etcd leader it was), one per round.
col() { values "$2" "$1" leader "${3:-}"; } # FAULT EXPR [LEADER]
# Rounds that ended with the application running on A (END_A) and B (END_B): "k/N".
ended() { # FAULT A B [LEADER]
  awk -F'\t' -v f="$1" -v a="$2" -v b="$3" -v l="${4:-}" '
    /^#/ { next }
    !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next }
    $c["fault"] == f && (l == "" || $c["leader"] == l) { n++; if ($c["end_a"] == a && $c["end_b"] == b) k++ }
    END { printf "%d/%d", k, n }' "$res"
}
# Where the application ended: "A only", "B only", "neither site" or "both sites".
on_text() { # A B (1 = it ran there)
  case "$1$2" in 10) echo "A only" ;; 01) echo "B only" ;; 00) echo "neither site" ;; *) echo "both sites" ;; esac
}
leaders() { col "$1" leader | sort -u; }
# Rounds in which A's application stopped before the promotion: "k/N".
before_promote() { # FAULT
  col "$1" promote-stopped | awk '{ n++; if ($1 != "-" && $1 > 0) k++ } END { printf "%d/%d", k, n }'
}

# The timings both modes' reports show.
timer=$(meta timer)
fence=$(meta fence_after)
ct=$(meta check_timeout)
stop=$(meta stop)

if [ "$(meta mode)" = automatic ]; then
  # shellcheck source=drill/etcd-report-auto.sh
  . "$(dirname "${BASH_SOURCE[0]}")/etcd-report-auto.sh"
  exit 0
fi

cadence=$(meta cadence)
bound=$(meta bound)
promote=$(meta promote_after)
window=$(meta window)
gap=$(for f in switchover switchback partition partition-early witness-lost cluster-down link-cut; do col "$f" gap_ms; done | stats | awk '{ print $2 }')

cat <<EOF

# Drill: two sites and a witness with etcd

Produced by \`make drill\` (\`$how\`, then \`drill/etcd-report.sh\`) on $(meta date), in $(meta elapsed) s.
Regenerate with \`sudo make drill\`. The figures are measured, never asserted: CI runs one quick
round of the switchover, the partition, the witness's loss and the whole cluster down through the
same script and asserts only the safety property of each (\`tests/integration/witness_drill.rs\`).

| machine | |
| --- | --- |
| CPU | $(meta cpu) |
| kernel | $(meta kernel) |
| systemd | $(meta systemd) (three throwaway instances booted by \`tests/sandbox.sh\`) |
| etcd | $(meta etcd) (Debian's etcd-server and etcd-client; default Raft timing: 100 ms heartbeat, 1 s election) |
| binary | \`$(meta binary)\`, commit $(meta rev) |

## How

Three hosts, each a systemd booted in its own namespaces: A (site \`dc1\`), B (site \`dc2\`) and
the witness W, each running one member of a three-member etcd cluster. Every pair of hosts has
a link of its own (veth pairs that exist only inside the hosts), so any pair can be cut apart.
A and B run failover-manager with \`check.etcd\` in manual mode (no \`lease_ttl\`: the key
\`/failover-manager/primary-site\` names the primary site, and only a person or \`failover-manager
switchover\` moves it): the binary's own client, every member listed, the host's own first,
\`request_timeout: 500ms\`; each run writes its own acknowledgement (\`KEY/ack/SITE/HOST\`). The
shipped service and \`failover-manager-watch.service\`, and the same \`app.service\`
(\`Type=simple\`). W runs its member only. The drill's values, chosen so that it runs quickly:

| setting | drill | shipped example |
| --- | ---: | ---: |
| timer (\`OnUnitActiveSec=\`, a drop-in replacing the shipped minute as \`cadence.conf\` does) | ${timer} s | 5 s |
| \`check.fence_after\` | ${fence} s | 30 s |
| \`check.timeout\` (each endpoint gets \`request_timeout\`, 0.5 s) | ${ct} s | 10 s |
| units' stop time, bounded by \`defaults.verify_timeout\` | ${stop} s | 30 s |

**The inequality.** Promote the other site no sooner than fence_after + run cadence +
check.timeout + units' stop time after the primary was lost. The run cadence is the time between
two runs' starts: the timer's period, but never less than one run, and while the role is unknown a
run lasts as long as its check (up to check.timeout). With a ${timer}-s timer and a ${ct}-s check the
cadence to count is ${cadence} s: ${fence} + ${cadence} + ${ct} + ${stop} = **${bound} s**; the drill promotes
after **${promote} s** (\`partition\`), and once after 1 s (\`partition-early\`, the inequality broken
on purpose, to show what it is for).

Each round starts from the same state (the key names \`dc1\`, A runs the application, B does not,
every link up, every member healthy, both hosts' acknowledgements current). Times count from the
command that injects the fault; a sampler inside A and B reads every 20 ms whether \`app.service\`
has a process (longest gap seen: ${gap} ms). "Stopped" is when A's application (B's, switching
back) stopped for good; "verified" is failover-manager's \`started app.service\` line on the new
primary. Cells are median (max) over $(meta rounds) rounds, in seconds; the faults without a takeover
are watched for ${window} s.

## Figures

| fault | both sites ran the app | old primary's app stopped (fenced) | new primary verified | rounds that ended with the app on |
| --- | ---: | ---: | ---: | --- |
EOF

line() { # FAULT TEXT A B [LEADER]
  present "$1" || return 0
  echo "| $2 | $(cell "$1" dual "${5:-}") | $(cell "$1" stopped "${5:-}") | $(cell "$1" verified "${5:-}") | $(on_text "$3" "$4"): $(ended "$1" "$3" "$4" "${5:-}") |"
}
line switchover "planned switchover A→B (\`failover-manager switchover dc2\` on B)" 0 1
line switchback "… and back, B→A" 1 0
line partition "A cut off from B and W, B promoted by hand after ${promote} s" 0 1
line partition-early "the same, promoted after 1 s (inequality broken)" 0 1
line witness-lost "W cut off from A and B" 1 0
line cluster-down "every etcd member stopped" 0 0
if present link-cut; then
  for l in $(leaders link-cut); do
    line link-cut "only the A–B link cut, etcd leader on $l" 1 0 "$l"
  done
fi

cat <<EOF

The last column counts the rounds whose window ended with the application where it says.
EOF

if present partition; then
  echo
  echo "**The partition.** A's application stopped before B was promoted in $(before_promote partition) rounds;"
  echo "B's start was verified $(cell partition verified-promote) s after the promotion. A fenced"
  echo "itself $(cell partition stopped) s after the cut: earlier than fence_after alone would suggest,"
  echo "because \`fence_after\` counts from A's last confirmed answer, which came up to one cadence"
  echo "before the cut, and the dead man's switch that answer armed fires ¾ of it later. Once A was"
  echo "back in the cluster it stayed a standby; every host was where the"
  echo "key says $(cell partition back) s after the links came back."
  if present partition-early; then
    echo "Promoted after 1 s instead, both sites ran the application for $(cell partition-early dual) s:"
    echo "B started at once while A still ran, until A fenced itself."
  fi
fi
if present witness-lost; then
  t=0
  for x in flips_a flips_b fenced_a fenced_b; do t=$((t + $(col witness-lost "$x" | sum))); done
  echo
  echo "**The witness lost.** A and B still make a majority: $t starts, stops or fencings in all"
  echo "rounds, and failed failover-manager runs: A $(col witness-lost fail_a | sum), B $(col witness-lost fail_b | sum) (a run whose"
  echo "check fell into a leader election would exit 3; W led the cluster in $(col witness-lost leader | grep -cx W || true)"
  echo "of $(col witness-lost round | wc -l) rounds, and A and B elected another between two runs)."
fi
if present cluster-down; then
  echo
  echo "**The whole etcd cluster down: the trade-off, plainly.** Neither site can tell its role, so"
  echo "the primary fences itself ($(cell cluster-down stopped) s after the members were stopped) and the"
  echo "application runs nowhere ($(ended cluster-down 0 0) rounds ended with it stopped on both sites) until"
  echo "etcd is back, although nothing else was promoted: with \`fence_after\`, never running twice costs"
  echo "an outage whenever etcd as a whole is gone. Every run on both hosts fails meanwhile (exit 1,"
  echo "fenced: A $(col cluster-down fail_a | sum), B $(col cluster-down fail_b | sum) failed runs), which is what"
  echo "pages someone. Once the members were started again, A ran the application again"
  echo "$(cell cluster-down back) s later. Leave \`fence_after\` unset if that outage is worse for you than"
  echo "the risk of two primaries."
fi
if present link-cut; then
  fails() { # LEADER: failed runs on A and B in the link-cut rounds it led
    echo "A $(col link-cut fail_a "$1" | sum), B $(col link-cut fail_b "$1" | sum)"
  }
  echo
  echo "**The link between the sites cut, answered by the witness.** Where keepalived makes both"
  echo "sites MASTER when the link between them breaks (the keepalived section's \"link between the sites cut\" row: the"
  echo "application on both sites), the witness keeps it to one site at most: both sites ran the"
  echo "application for $(f2 "$(col link-cut dual | stats | awk '{ print $2 }')") s at most. A member answers a quorum read"
  echo "only through etcd's leader, and a member cut off from the leader cannot get itself elected"
  echo "while the witness still hears the leader (etcd's CheckQuorum); but both sites still reach W,"
  echo "and every host lists every member, so a read that its own member cannot serve goes through"
  echo "W's: wherever the leader was, the role stayed where the key says (failed runs with the leader"
  echo "$(for l in $(leaders link-cut); do printf 'on %s: %s; ' "$l" "$(fails "$l")"; done | sed 's/; $//'))."
fi

cat <<EOF

**Start limit.** The timer, the watch and a switchover start many runs: start limit hits of
failover-manager.service seen in all rounds: $(for f in switchover switchback partition partition-early witness-lost cluster-down link-cut; do col "$f" limit_a; col "$f" limit_b; done | sum) (the shipped unit sets \`StartLimitIntervalSec=0\`;
a hit would refuse every start for the rest of the interval, fencing runs among them).
EOF
