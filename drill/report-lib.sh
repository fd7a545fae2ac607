# shellcheck shell=bash
# drill/report-lib.sh: what both reports (report.sh, etcd-report.sh) read their results file
# with; sourced after the caller set `res` (the results file). The caller defines `col`, the
# values of one column for the rows its arguments pick (with `values`), which `cell` reads.

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

# values EXPR FAULT [COLUMN VALUE]: the value of EXPR (a column, or "a-b": the difference of
# two, "-" if either is) in each row of FAULT (and, with COLUMN, whose COLUMN is VALUE; an empty
# VALUE: any), one per row.
values() {
  awk -F'\t' -v e="$1" -v f="$2" -v k="${3:-}" -v v="${4:-}" '
    /^#/ { next }
    !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next }
    $c["fault"] != f || (k != "" && v != "" && $c[k] != v) { next }
    {
      n = split(e, p, "-")
      x = $c[p[1]]
      if (n == 1) { print x; next }
      y = $c[p[2]]
      if (x == "-" || y == "-") print "-"; else printf "%.6f\n", x - y
    }' "$res"
}

# present FAULT: some row is of FAULT.
present() { [ -n "$(values round "$1")" ]; }

f2() { awk -v x="$1" 'BEGIN { if (x == "nan") printf "—"; else printf "%.2f", x }'; }

# cell ARGS...: the rounds' values `col ARGS...` gives as "median (max)", "·" when there is no
# round, "none in N" when no round has one, "; none in k of N" added when some lack it.
cell() {
  local v m x n total=0
  v=$(col "$@")
  [ -z "$v" ] || total=$(wc -l <<<"$v")
  [ "$total" -gt 0 ] || { printf '·'; return; }
  read -r m x n <<<"$(stats <<<"$v")"
  [ "$n" -gt 0 ] || { printf 'none in %s' "$total"; return; }
  printf '%s (%s)' "$(f2 "$m")" "$(f2 "$x")"
  [ "$n" = "$total" ] || printf '; none in %s of %s' "$((total - n))" "$total"
}
