#!/usr/bin/env bash
# glibc's malloc introspection (mallinfo2, mallinfo, malloc_stats,
# malloc_info, mallopt, malloc_trim) against the allocator's own statistics,
# in python3 under LD_PRELOAD through mi-run, as a program or monitoring
# agent calls them; and a forking python3's statistics reports
# (introspection.py says what is checked).
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

# Debian's interpreter when present (not a version-manager shim in PATH).
if [[ -x /usr/bin/python3 ]]; then
  PYTHON=/usr/bin/python3
else
  require_programs python3
  PYTHON=$(command -v python3)
fi
SCRIPT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)/introspection.py

make_tmp
rc=0
mi intro "$PYTHON" "$SCRIPT" "$MI_LIB_MAPNAME" "$TMP" || rc=$?
cat -- "$LOGS/intro.out"
grep -q '^introspection: 0 failure(s)$' "$LOGS/intro.out" || fail "see the FAIL lines above"
note "ok"
