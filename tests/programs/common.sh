# shellcheck shell=bash
# Shared helpers for the `programs` test suite: real programs run unchanged
# under the allocator with LD_PRELOAD (through tools/mi-run).  Sourced by each
# test script, which is run as:
#
#   bash tests/programs/<test>.sh MI_RUN LIB
#
# MI_RUN is tools/mi-run, LIB the built libmimalloc-numa.so.  Exit status: 0
# passed, 1 failed, 77 skipped (the program is not installed).
#
# Environment knobs (mainly to validate the suite against other allocators):
#   MI_TEST_MARKER    text that must appear in a program's stderr when it runs
#                     with MIMALLOC_SHOW_STATS=1 and MIMALLOC_VERBOSE=1, proving
#                     the allocator was active (default: mimalloc-numa; empty:
#                     skip this check, e.g. for jemalloc)
#   MI_TEST_ERROR_RE  extended regex (case-insensitive) that must NOT appear in
#                     stderr: allocator error reports
#                     (default: 'mimalloc[-a-z]*: *(error|assertion|fatal)')
#   MI_TEST_KEEP=1    keep the temporary directory

set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 MI_RUN LIB" >&2
  exit 2
fi
MI_RUN=$1
MI_LIB=$2
[[ $MI_RUN == /* ]] || MI_RUN=$PWD/$MI_RUN
[[ $MI_LIB == /* ]] || MI_LIB=$PWD/$MI_LIB
MI_MARKER=${MI_TEST_MARKER-mimalloc-numa}
MI_ERROR_RE=${MI_TEST_ERROR_RE-'mimalloc[-a-z]*: *(error|assertion|fatal)'}
# The library's file name as it appears in /proc/PID/maps (symlinks resolved).
MI_LIB_MAPNAME=$(basename -- "$(readlink -f -- "$MI_LIB")")
TEST_NAME=$(basename -- "$0" .sh)

note() { printf '%s: %s\n' "$TEST_NAME" "$*"; }

skip() {
  note "SKIP: $*"
  exit 77
}

fail() {
  note "FAIL: $*" >&2
  exit 1
}

[[ -x $MI_RUN ]] || fail "mi-run not found or not executable: $MI_RUN"
[[ -f $MI_LIB ]] || fail "allocator library not found: $MI_LIB"

# Skips the test unless every named program is installed.
require_programs() {
  local p
  for p in "$@"; do
    command -v -- "$p" >/dev/null 2>&1 || skip "$p is not installed"
  done
}

# Creates $TMP (removed on exit unless MI_TEST_KEEP=1) and cds into it; the
# output of the runs goes to $LOGS = $TMP/logs.  Extra cleanup commands can be
# added to the CLEANUP array.
CLEANUP=()
# The parent directory is $TMP_PARENT, else $TMPDIR, else /tmp.
make_tmp() {
  TMP=$(mktemp -d "${TMP_PARENT:-${TMPDIR:-/tmp}}/mi-$TEST_NAME.XXXXXX")
  trap run_cleanup EXIT
  trap 'exit 130' INT TERM
  LOGS=$TMP/logs
  mkdir -p -- "$LOGS"
  cd "$TMP"
}
run_cleanup() {
  local rc=$? c
  for c in "${CLEANUP[@]}"; do
    eval "$c" || true
  done
  cd /
  if [[ ${MI_TEST_KEEP:-0} == 1 ]]; then
    note "kept $TMP"
  else
    rm -rf -- "$TMP"
  fi
  return "$rc"
}

# Command words put before mi-run by `mi` (e.g. runuser -u USER --).
MI_PREFIX=()

# mi NAME CMD ARGS...: runs CMD under the allocator with stats and verbose
# output on, stdout to $LOGS/NAME.out and stderr to $LOGS/NAME.err, then checks
# that the allocator was active and reported no error (check_allocator).
# Fails the test, showing the output, if CMD fails.
mi() {
  local name=$1
  shift
  local rc=0
  "${MI_PREFIX[@]}" "$MI_RUN" --lib "$MI_LIB" --stats --verbose -- "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" || rc=$?
  if [[ $rc -ne 0 ]]; then
    show_tail "$LOGS/$name.out"
    show_tail "$LOGS/$name.err"
    fail "'$*' exited with status $rc under the allocator"
  fi
  check_allocator "$LOGS/$name.err"
}

# out NAME: what the run NAME printed on stdout.
out() { cat -- "$LOGS/$1.out"; }

show_tail() {
  if [[ -s $1 ]]; then
    echo "---- last lines of $1:" >&2
    tail -n 25 -- "$1" >&2
  fi
}

# check_allocator FILE...: the allocator's marker is in the files (stderr of a
# run with stats + verbose, or a server log), and none of them reports an
# allocator error.
check_allocator() {
  local f
  for f in "$@"; do
    if [[ -n $MI_MARKER ]] && ! grep -qF -- "$MI_MARKER" "$f"; then
      show_tail "$f"
      fail "no '$MI_MARKER' in $f: the allocator was not active in the process"
    fi
    if [[ -n $MI_ERROR_RE ]] && grep -qiE -- "$MI_ERROR_RE" "$f"; then
      grep -m 10 -iE -- "$MI_ERROR_RE" "$f" >&2
      fail "the allocator reported errors in $f"
    fi
  done
}

# check_maps PID: the allocator library is mapped into process PID.
check_maps() {
  grep -qF -- "$MI_LIB_MAPNAME" "/proc/$1/maps" ||
    fail "$MI_LIB_MAPNAME is not mapped into process $1"
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  if [[ $2 != "$3" ]]; then
    printf 'expected:\n%s\nactual:\n%s\n' "$2" "$3" >&2
    fail "$1: wrong result"
  fi
}
