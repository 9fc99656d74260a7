#!/bin/sh
# tidy_check.sh BUILD_DIR SOURCE_ROOT: clang-tidy, with the checks of
# .clang-tidy, over every source file of lib/, with the flags of the build
# (BUILD_DIR/compile_commands.json). Any finding fails (--warnings-as-errors).
# Runs a file a core at once. Skips (77) without clang-tidy (Debian package
# clang-tidy) or without the compilation database.
# clang-tidy 14 (Debian 12) crashed once in 3 runs of the whole library, on a
# file it then checked cleanly: a file whose run crashes is run once more.
if [ "${1:-}" = "--one" ]; then  # --one BUILD_DIR FILE: one file, for xargs
  out=$(clang-tidy -p "$2" --quiet --warnings-as-errors='*' "$3" 2>&1)
  status=$?
  if printf '%s\n' "$out" | grep -q 'PLEASE submit a bug report'; then
    echo "clang-tidy crashed on $3; once more"
    out=$(clang-tidy -p "$2" --quiet --warnings-as-errors='*' "$3" 2>&1)
    status=$?
  fi
  printf '%s\n' "$out" | grep -v ' warnings generated\.$'
  exit "$status"
fi
build=${1:?usage: tidy_check.sh BUILD_DIR SOURCE_ROOT}
root=${2:?usage: tidy_check.sh BUILD_DIR SOURCE_ROOT}
command -v clang-tidy >/dev/null 2>&1 || { echo "SKIP: clang-tidy not found (Debian package clang-tidy)"; exit 77; }
[ -f "$build/compile_commands.json" ] || { echo "SKIP: no $build/compile_commands.json"; exit 77; }
jobs=$(nproc 2>/dev/null || echo 2)
cd "$root" || exit 2
files=$(find lib -name '*.cpp' | sort)
# shellcheck disable=SC2086  # one file a word
if ! printf '%s\n' $files | xargs -r -P "$jobs" -n 1 sh "$0" --one "$build"; then
  echo "clang-tidy found something in lib/ (above); fix it, or silence that one place with"
  echo "// NOLINT(check-name): and the reason (.clang-tidy says why each check is on)"
  exit 1
fi
echo "clang-tidy: lib/ clean ($(printf '%s\n' $files | wc -l) files, the checks of .clang-tidy)"
