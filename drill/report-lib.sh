# shellcheck shell=bash
# drill/report-lib.sh: what both reports (report.sh, etcd-report.sh) read their results file
# with; sourced after the caller set `res` (the results file).

# shellcheck disable=SC2154 # res is the caller's
meta() { awk -F'\t' -v k="# $1" '$1 == k { print $2; exit }' "$res"; }

# stdin: values -> "MEDIAN MAX COUNT" of those that are not "-".
stats() {
  { grep -vx -- - || true; } | sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "nan nan 0"; exit }
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    print m, a[NR], NR }'
}

# stdin: values -> their sum, "-" left out.
sum() { { grep -vx -- - || true; } | awk '{ s += $1 } END { print s + 0 }'; }
