# The shell tests' checks, sourced by tests/test_*.sh:
#   check NAME RC CMD...  runs CMD (stdout to $tmp/out, stderr to $tmp/err, both in $tmp/all),
#                         wants exit status RC
#   has out|err|all TEXT  the last check's stdout/stderr/both hold TEXT (fixed string)
#   ok / bad MESSAGE      count a pass / a failure of a check of the test's own
#   finish                prints the tally; the test's exit status is its status
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0; pass=0
ok()  { pass=$((pass+1)); }
bad() { echo "FAIL $*"; fail=$((fail+1)); }
check() {
  local name="$1" want="$2"; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  cat "$tmp/out" "$tmp/err" >"$tmp/all"
  if [ "$rc" -eq "$want" ]; then ok; else bad "$name: rc $rc, want $want"; cat "$tmp/out" "$tmp/err"; fi
}
has() { grep -q -- "$2" "$tmp/$1" && ok || { bad "expected '$2' in $1:"; cat "$tmp/$1"; }; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
