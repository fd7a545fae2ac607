# drill/etcd-report-auto.sh: DRILL.md's automatic-mode etcd section, from the results of
# `drill/etcd.sh --mode automatic`. Sourced by drill/etcd-report.sh (which defines res, how,
# col, ended, on_text, leaders and the timings timer, fence, ct and stop, and sources
# report-lib.sh) when the results say "# mode automatic".
# shellcheck shell=bash disable=SC2154,SC2016

AUTO_FAULTS=(cutoff freeze link-cut flap cluster-down switchover timer-stopped clock-step)
ttl=$(meta lease_ttl)
cut_win=$(meta cut_win)
rejoin_win=$(meta rejoin_win)
flap=$(meta flap)
# The sampler's longest gap, but in the freeze (where A's sampler is frozen with the rest).
gap=$(for f in "${AUTO_FAULTS[@]}"; do [ "$f" = freeze ] || col "$f" gap_ms; done | stats | awk '{ print $2 }')
# The largest value of a column over some faults ("—" when none has one).
maxof() { # EXPR FAULT...
  local e=$1
  shift
  for f in "$@"; do col "$f" "$e"; done | stats | awk '{ print $2 }'
}
# Rounds (of some faults) whose row satisfies an awk condition on named columns: "k/N".
rounds_where() { # CONDITION FAULT...
  local cond=$1
  shift
  awk -F'\t' -v fs="$*" -v OFS='\t' '
    BEGIN { n = split(fs, l, " "); for (i = 1; i <= n; i++) want[l[i]] = 1 }
    /^#/ { next }
    !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next }
    want[$c["fault"]] { t++; if ('"$cond"') k++ }
    END { printf "%d/%d", k, t }' "$res"
}
v() { printf '$c["%s"]' "$1"; }
present_any() { local f; for f in "$@"; do present "$f" && return 0; done; return 1; }

aline() { # FAULT TEXT A B [LEADER]
  present "$1" || return 0
  echo "| $2 | $(cell "$1" verified "${5:-}") | $(cell "$1" stopped "${5:-}") | $(col "$1" stops_a "${5:-}" | sum) | $(cell "$1" dual "${5:-}") | $(col "$1" fail_a "${5:-}" | sum) / $(col "$1" fail_b "${5:-}" | sum) | $(on_text "$3" "$4"): $(ended "$1" "$3" "$4" "${5:-}") |"
}

cat <<EOF

# Drill: automatic takeover behind the witness (etcd, \`check.etcd\` on a lease)

Produced by \`make drill\` (\`$how\`, then \`drill/etcd-report.sh\`) on $(meta date), in $(meta elapsed) s,
on the same machine as the manual-mode section above. The figures are measured, never asserted: CI
runs one quick round of the faults that have a safety property (cutoff, timer stopped, link cut,
clock step, whole cluster down) through the same script and asserts only that property
(\`tests/integration/witness_drill.rs\`).

## How

The same three hosts, links and etcd cluster as the manual mode. A (\`dc1\`) and B (\`dc2\`) use
\`check.etcd\`, the binary's own client: every member listed, the host's own first,
\`request_timeout: 500ms\`, and \`lease_ttl\`, which makes the mode automatic: the key
\`/failover-manager/primary-site\` names the primary site and is attached to a lease that every
run on the holding site renews; when the lease has expired a run on the other site (both are
candidates) takes the key with a lease of its own. No failback. Both run the shipped
\`failover-manager-watch.service\` (a run within about a second of any change or expiry) and the
shipped timer with a drill drop-in; each run writes its own acknowledgement
(\`KEY/ack/SITE/HOST\`), which the switchover waits for. W runs its member only. The drill's
values:

| setting | drill |
| --- | ---: |
| timer (\`OnUnitActiveSec=\`) | ${timer} s |
| \`check.etcd.lease_ttl\` | ${ttl} s |
| \`check.fence_after\` (the dead man's switch fires ¾ of it after a confirming run: $(awk -v f="$fence" 'BEGIN { printf "%.2f", f * 0.75 }') s, above the timer's period) | ${fence} s |
| \`check.timeout\` / \`request_timeout\` | ${ct} s / 0.5 s |
| \`defaults.verify_timeout\` | ${stop} s |
| load's condition: fence_after + verify_timeout + lease_ttl/50 < lease_ttl | ${fence} + ${stop} + $(awk -v t="$ttl" 'BEGIN { printf "%.2f", t / 50 }') < ${ttl} |

Each round starts with the key held by \`dc1\` on A's lease, A running the application, B not, every
link up and every member healthy; when B held the key after the last round, B's runs are stopped
and the key deleted so that A takes it (there is no failback to wait for). Nobody acts by hand
unless the fault says so. Times count from the command that injects the fault; a sampler inside A
and B reads every 20 ms whether \`app.service\` has a process (longest gap seen outside the freeze:
${gap} ms; a frozen host's last sample holds while it is frozen, which is right: its processes
exist).
"Verified" is B's \`started app.service\` line; "A stopped" is when A's application stopped for
good in the window; "failed runs" counts \`failover-manager.service: Failed with result\` lines in
each host's journal in the window, one per failed activation (exit 3, role unknown; exit 1,
fenced); "switch" counts starts of A's \`failover-manager-deadline-*.service\`, the dead man's
switch firing.

| fault | what is done | window |
| --- | --- | ---: |
| cutoff | etcd's leader moved to W, A, B, … by round; A cut off from B and W for ${cut_win} s, then rejoined and watched ${rejoin_win} s more | $((cut_win + rejoin_win)) s |
| freeze | A's whole sandbox frozen (\`cgroup.freeze\`: its systemd, etcd member, runs, app) until B's app runs, plus 1 s; then thawed | until A's app stopped + 3 s |
| link-cut | only the A–B link cut; round r first moves etcd's leader to W, A, B, … (\`etcdctl move-leader\`) | ${cut_win} s |
| flap | A cut off 2 s, back 2 s, for ${flap} s; then watched ${rejoin_win} s | ${flap} + ${rejoin_win} s |
| cluster-down | every member stopped; then started again ("back": until the app runs on exactly one site) | ${cut_win} s |
| switchover | \`failover-manager switchover dc2\` on B (dc2's lease a fresh one) | its run + ${ttl} + 2 s |
| timer-stopped | A's timer and watch stopped, then A cut off: no run on A at all | ${cut_win} s |
| clock-step | A's runs get a wall clock an hour behind (libfaketime, \`FAKETIME=-1h\`, a drop-in on failover-manager.service) at the cut, then A cut off | ${cut_win} s |

## Figures

Cells are median (max) over $(meta rounds) rounds (over the rounds it led, per etcd leader), in seconds.

| fault | B verified | A's app stopped for good | A's app stops (sum) | both sites ran the app | failed runs A / B (sum) | ended with the app on |
| --- | ---: | ---: | ---: | ---: | ---: | --- |
EOF

if present cutoff; then
  for l in $(leaders cutoff); do
    aline cutoff "A cut off, nobody acts; A rejoins; etcd leader on $l" 0 1 "$l"
  done
fi
aline freeze "A's host frozen past the lease, thawed" 0 1
if present link-cut; then
  for l in $(leaders link-cut); do
    aline link-cut "only the A–B link cut, etcd leader on $l" 1 0 "$l"
  done
fi
aline flap "A's links flapping (2 s off, 2 s on)" 1 0
aline cluster-down "every etcd member stopped" 0 0
aline switchover "switchover A→B (\`failover-manager switchover dc2\` on B)" 0 1
aline timer-stopped "A's timer and watch stopped, A cut off" 0 1
aline clock-step "A's wall clock an hour back, A cut off" 0 1

cat <<EOF

Per round (seconds from the fault; "-": did not happen in the window):

| fault | round | etcd leader | B verified | A stopped | both ran | end A B | A's app stops | fenced by A's runs / by the switch | failed runs A B | other |
| --- | ---: | --- | ---: | ---: | ---: | --- | ---: | --- | --- | --- |
EOF
awk -F'\t' '
  /^#/ { next }
  !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next }
  {
    o = ""
    if ($c["back"] != "-") o = o "back " $c["back"] " s; "
    if ($c["exit"] != "-") o = o "exit " $c["exit"] "; "
    if ($c["after_thaw"] != "-") o = o "stopped " $c["after_thaw"] " s after the thaw; "
    if ($c["skew_s"] != "-") o = o "A'\''s runs saw the wall clock " $c["skew_s"] " s behind; "
    if ($c["flips_b"] > 1) o = o "B'\''s app changed " $c["flips_b"] " times; "
    sub(/; $/, "", o)
    printf "| %s | %s | %s | %s | %s | %s | %s %s | %s | %s / %s | %s %s | %s |\n", $c["fault"], $c["round"],
      $c["leader"], $c["verified"], $c["stopped"], $c["dual"], $c["end_a"], $c["end_b"], $c["stops_a"],
      $c["fenced_a"], $c["deadline_a"], $c["fail_a"], $c["fail_b"], o
  }' "$res"

# The goals, measured against.
others=()
for f in "${AUTO_FAULTS[@]}"; do [ "$f" = freeze ] || others+=("$f"); done
one_site=()
for f in "${AUTO_FAULTS[@]}"; do [ "$f" = cluster-down ] || one_site+=("$f"); done
cut_max=$(maxof verified cutoff)
dual_max=$(maxof dual "${others[@]}")
thaw_max=$(maxof after_thaw freeze)
goal() { awk -v x="$1" -v b="$2" 'BEGIN { if (x == "nan") print "—"; else if (x <= b) print "met"; else print "**missed**" }'; }
cat <<EOF

## Goals (reported, not asserted)

| goal | measured | |
| --- | ---: | --- |
| B's app verified after the cutoff within lease_ttl + 2 s = $((ttl + 2)) s | $(f2 "$cut_max") s at most | $(goal "$cut_max" $((ttl + 2))) |
| 0.00 s both-running in every fault but the freeze | $(f2 "$dual_max") s at most | $(goal "$dual_max" 0) |
| after the thaw, A's app stopped within 0.5 s | $(f2 "$thaw_max") s at most | $(goal "$thaw_max" 0.5) |
| the app on exactly one site at the end of every fault but cluster-down | $(rounds_where "$(v end_a) + $(v end_b) == 1" "${one_site[@]}") rounds | $([ "$(rounds_where "$(v end_a) + $(v end_b) == 1" "${one_site[@]}" | awk -F/ '{ print ($1 == $2) }')" = 1 ] && echo met || echo "**missed**") |
EOF

echo
echo "## What each fault showed"
if present cutoff; then
  cat <<EOF

**Cutoff.** A's dead man's switch or its own run stopped A's application $(cell cutoff stopped) s after
the cut, long before the lease let B take the key; B's start was verified $(cell cutoff verified) s after
the cut. That is the lease's TTL counted from the last renewal before the cut, plus, when etcd's
leader was on A (cut off with it), the election of a new leader among B and W: a new etcd leader
extends every lease by its TTL plus an election timeout when it takes over (etcd's lessor
"promote"), so the key then outlives A's last renewal by the TTL plus the election and that
extension ($(cell cutoff verified A) s with the leader on A). Leaders at the cut:
$(col cutoff leader | sort | uniq -c | awk '{ printf "%s%s on %s", (NR > 1 ? ", " : ""), $1, $2 }'). After A rejoined, A stayed a standby in
$(rounds_where "$(v end_a) == 0 && $(v stops_a) == 1 && $(v flips_a) == 1" cutoff) rounds (its application stopped once and never started again):
no failback. B's application changed more than once in $(rounds_where "$(v flips_b) > 1" cutoff) rounds: A's member
rejoins with a higher Raft term (etcd 3.4 runs without \`--pre-vote\` by default), which deposes
the leader; the cluster can have no leader for longer than B's dead man's switch waits (¾ of
fence_after), so B fences itself and takes the application up again a few seconds later. Safe,
but an outage caused by the old primary's return: run etcd with \`--pre-vote\` (the default from
etcd 3.5 on) or a fence_after that outlasts an election. (Checked once by hand, not part of
\`make drill\`: the same drill with \`--pre-vote\` added to the members' command line, 6 cutoff
rounds, 2 of them with the leader on A, on 2026-12-05: B never fenced after the rejoin, A's
member answered again 0.13–0.48 s after it, and B's start still took 8.6–8.7 s with the leader
on A, as the lease extension says.)
EOF
fi
if present freeze; then
  cat <<EOF

**Freeze.** A whole frozen host cannot fence itself while frozen: its application keeps its
processes, and B takes over once the lease has expired ($(cell freeze verified) s after the freeze).
The moment A is thawed, its systemd finds the dead man's switch long overdue and fires it: A's
application stopped $(cell freeze after_thaw) s after the thaw. The both-running time
($(cell freeze dual) s) is the time B ran while A was frozen (the drill thaws 1 s after B's start)
plus that; a frozen process does nothing, but anything it holds (a socket, a file lock, a VIP)
stays held: a real deployment needs the application itself to use the fencing token
(\`/run/failover-manager/epoch\`) or the storage to refuse the old epoch.
EOF
fi
if present link-cut; then
  cat <<EOF

**Link cut (A–B only).** Both sites still reach W, and every host lists every member, so a read
that its own member cannot serve (cut off from the leader) goes through W's. Both sites ran the
application for $(f2 "$(maxof dual link-cut)") s at most; the role stayed with A in
$(rounds_where "$(v end_a) == 1 && $(v end_b) == 0" link-cut) rounds; failed runs on A and B with the leader
$(for l in $(leaders link-cut); do printf 'on %s: %s and %s; ' "$l" "$(col link-cut fail_a "$l" | sum)" "$(col link-cut fail_b "$l" | sum)"; done | sed 's/; $//').
EOF
fi
if present flap; then
  cat <<EOF

**Flap.** A cut off for 2 s and back for 2 s, for ${flap} s: shorter than the lease, so B never
took the key (B verified: $(cell flap verified)), but longer than the ¾ × fence_after the dead man's switch
waits, so A's application stopped $(col flap stops_a | stats | awk '{ printf "%s (max %s)", $1, $2 }') times per round (median) and was
started again at the next confirming run; both ran $(f2 "$(maxof dual flap)") s at most. At the end the
application ran on A only in $(ended flap 1 0) rounds. The stops are the flap's own: the switch fires ¾ ×
fence_after after the last confirming run, which came up to one timer period before the cut, so
any cut longer than about $(awk -v f="$fence" -v t="$timer" 'BEGIN { printf "%.2f", f * 0.75 - t }') s stops the application, by design.
EOF
fi
if present cluster-down; then
  cat <<EOF

**Cluster down.** No member answers: A fences itself ($(cell cluster-down stopped) s after the
stop; A's runs fenced $(col cluster-down fenced_a | sum) times, the switch fired $(col cluster-down deadline_a | sum) times) and B,
which cannot take a key it cannot read, starts nothing: $(ended cluster-down 0 0) rounds ended with
the application nowhere, the trade-off of \`fence_after\`. Once the members were started again the
application ran on exactly one site $(cell cluster-down back) s later (the restarted leader extends
the leases, so A keeps the key).
EOF
fi
if present switchover; then
  cat <<EOF

**Switchover.** \`failover-manager switchover dc2\` exited 0 in
$(rounds_where "$(v exit) == 0" switchover) rounds; both ran $(f2 "$(maxof dual switchover)") s at most; A stopped
$(cell switchover stopped) s and B was verified $(cell switchover verified) s after it began. B was still
primary ${ttl} + 2 s after the switchover ended in $(ended switchover 0 1) rounds: B renews the
lease the switchover granted.
EOF
fi
if present timer-stopped; then
  cat <<EOF

**Timer stopped.** With no run on A at all (timer and watch stopped, then A cut off), the dead
man's switch stopped A's application $(cell timer-stopped stopped) s after the cut (it fired in
$(rounds_where "$(v deadline_a) > 0" timer-stopped) rounds); B was verified $(cell timer-stopped verified) s after the cut.
EOF
fi
if present clock-step; then
  cat <<EOF

**Clock step.** From the cut on, A's runs read a wall clock an hour behind (back in the cluster,
their record of the last confirmation was $(col clock-step skew_s | stats | awk '{ print $1 }') s behind the real time, the proof
that libfaketime reached them). A's application stopped $(cell clock-step stopped) s after the cut,
as in the cutoff: fencing counts on CLOCK_BOOTTIME. libfaketime 0.9.10 fakes CLOCK_BOOTTIME
(and the monotonic clocks) too unless \`FAKETIME_DONT_FAKE_MONOTONIC=1\`, which exempts it with
them; the drill sets it, as a real clock step (NTP, an operator's \`date -s\`) moves only
CLOCK_REALTIME. A's runs fenced $(col clock-step fenced_a | sum) times, the switch fired
$(col clock-step deadline_a | sum) times.
EOF
fi
cat <<EOF

**Start limit.** Start limit hits of failover-manager.service in all rounds:
$(for f in "${AUTO_FAULTS[@]}"; do col "$f" limit_a; col "$f" limit_b; done | sum).
EOF
