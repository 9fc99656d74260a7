#!/bin/sh
# format_check.sh SOURCE_ROOT: every C/C++ file git tracks is as .clang-format
# makes it (clang-format --dry-run --Werror). On failure: the files to
# format, and the command that does it (tools/dev format).
# Skips (77) without clang-format (Debian: clang-format) or outside a git
# checkout (a release tarball: nothing to keep).
root=${1:?usage: format_check.sh SOURCE_ROOT}
command -v clang-format >/dev/null 2>&1 || { echo "SKIP: clang-format not found (Debian package clang-format)"; exit 77; }
git -C "$root" rev-parse --git-dir >/dev/null 2>&1 || { echo "SKIP: $root is not a git checkout"; exit 77; }
cd "$root" || exit 2
out=$(mktemp) || exit 2
trap 'rm -f "$out"' EXIT
git ls-files -- '*.c' '*.cpp' '*.h' | xargs -r clang-format --dry-run --Werror --style=file >"$out" 2>&1
status=$?
if [ "$status" != 0 ]; then
  files=$(grep -o '^[^:]*:[0-9]*:[0-9]*: error' "$out" | cut -d: -f1 | sort -u)
  echo "not formatted as .clang-format says: $(echo "$files" | wc -l) file(s), $(grep -c ': error' "$out") place(s):"
  echo "$files" | head -n 40
  echo "the first places:"
  head -n 30 "$out"
  echo "apply it with: tools/dev format (or tools/dev format FILE...)"
  exit 1
fi
echo "format: $(git ls-files -- '*.c' '*.cpp' '*.h' | wc -l) files as .clang-format makes them"
