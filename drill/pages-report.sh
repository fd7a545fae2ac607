#!/usr/bin/env bash
# drill/pages-report.sh BEFORE.pages.tsv... -- AFTER.pages.tsv...: the "Pages per incident"
# section of DRILL.md, from the page counts drill/etcd.sh writes beside its results
# (FILE.pages.tsv: one row per fault, round and host), the same drills run with the binary and
# units before and after one page per incident (the faults both ran). Sums over the rounds,
# per fault and host. `make drill-report` renders it when target/drill-pages-before/ holds the
# before's files (drill/etcd.sh of that tree, --out there), else keeps DRILL.md's.
#   failed       failover-manager.service runs that failed (exit 1 or 3), fault to recovery
#   alert starts starts of the alert unit: OnFailure= (systemd merges a start into one still
#                running) and, after, the run's at the end of an incident it paged
#   pages        before: every start of the alert unit (it logged the run's errors at crit);
#                after: what it sent, starts + ends (failover-manager page)
#   most         the most incident starts paged for one host in one round (after)
#   Prometheus   alerts the shipped rules would raise, paging (critical) / warnings: counted
#                as conditions that began (drill/pages-count)
set -euo pipefail
before=() after=() side=before
for a in "$@"; do
  if [ "$a" = -- ]; then side=after; continue; fi
  if [ "$side" = before ]; then before+=("$a"); else after+=("$a"); fi
done
[ ${#before[@]} -gt 0 ] && [ ${#after[@]} -gt 0 ] || { echo "usage: $0 BEFORE... -- AFTER..." >&2; exit 2; }
bin() { awk -F'\t' '$1 == "# binary" { print $2; exit }' "$1"; }
cat <<EOF2
# Pages per incident

The same drills before and after one page per incident (docs/metrics-and-alerts.md): before,
$(bin "${before[0]}"), the shipped alert unit as \`OnFailure=\` target and the shipped rules;
after, $(bin "${after[0]}"), the same. Both with \`OnFailure=failover-manager-alert@%n.service\`
and each run's metrics kept as Prometheus would scrape them. Per fault and host, summed over
the rounds, from the fault until the hosts were back where the key says (the end of an
incident is in it). Prometheus: the alerts the shipped rules would raise (a condition that
began, counted when it would last the rule's \`for:\`), paging / warnings. A host did
nothing wrong when it ran no primary unit: B in every fault here, but for the time it held the
role after a takeover (partition, automatic cutoff).

| mode | fault | host | rounds | failed runs before → after | alert unit starts before → after | pages before → after (start + end) | most starts in a round | Prometheus page / warn before → after |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
EOF2
{
  for f in "${before[@]}"; do awk -F'\t' -v s=b 'NF >= 10 && $1 != "mode" && $1 !~ /^#/ { print s "\t" $0 }' "$f"; done
  for f in "${after[@]}"; do awk -F'\t' -v s=a 'NF >= 10 && $1 != "mode" && $1 !~ /^#/ { print s "\t" $0 }' "$f"; done
} | awk -F'\t' '
  {
    k = $2 "\t" $3 "\t" $5
    if (!(k in seen)) { seen[k] = 1; order[++n] = k }
    s = $1
    fail[s, k] += $6; onf[s, k] += $7; start[s, k] += $8; end[s, k] += $9
    pp[s, k] += $10; pw[s, k] += $11; rounds[s, k]++
    if (s == "a" && $8 > most[k]) most[k] = $8
  }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]; split(k, p, "\t")
      if (!rounds["a", k] || !rounds["b", k]) continue
      printf "| %s | %s | %s | %d | %d → %d | %d → %d | %d → %d (%d + %d) | %d | %d / %d → %d / %d |\n", \
        p[1], p[2], p[3], rounds["a", k], fail["b", k], fail["a", k], onf["b", k], onf["a", k], \
        onf["b", k], start["a", k] + end["a", k], start["a", k], end["a", k], most[k] + 0, \
        pp["b", k], pw["b", k], pp["a", k], pw["a", k]
    }
  }'
