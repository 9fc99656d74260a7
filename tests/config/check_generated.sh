#!/usr/bin/env bash
# check_generated.sh GEN_OPTIONS SOURCE_ROOT: the committed sample config and
# option reference are byte for byte what tools/gen-options writes from the
# option table. On a difference, regenerate:
#   build/tools/gen-options/gen-options --toml > config/mimalloc-numa.toml
#   build/tools/gen-options/gen-options --markdown > docs/options.md
set -u
gen=$1
root=$2
tmp=$(mktemp) || exit 1
trap 'rm -f "$tmp"' EXIT
status=0
check() {  # FLAG FILE
  if ! "$gen" "$1" >"$tmp"; then
    echo "FAIL: $gen $1 failed"
    status=1
  elif cmp -s "$tmp" "$root/$2"; then
    echo "ok: $2 is what gen-options $1 writes"
  else
    echo "FAIL: $2 differs from gen-options $1 (regenerate: gen-options $1 > $2):"
    diff -u "$root/$2" "$tmp" | head -n 60
    status=1
  fi
}
check --toml config/mimalloc-numa.toml
check --markdown docs/options.md
exit $status
