#!/usr/bin/env bash
# dbsim (tools/dbsim) under the allocator: the bundled database-like workload
# with cross-thread frees; it verifies its own data and exits 1 on corruption.
#   bash dbsim.sh MI_RUN LIB DBSIM
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
DBSIM=${3:-}
[[ -n $DBSIM && -x $DBSIM ]] || skip "dbsim is not built (pass its path as the third argument)"
make_tmp

mi dbsim "$DBSIM" --ops 300000 --threads 4 --seed 7
grep -q '^  integrity OK' "$LOGS/dbsim.out" || { out dbsim >&2; fail "dbsim did not report integrity OK"; }
grep -q '^  total  *300000 ops' "$LOGS/dbsim.out" || { out dbsim >&2; fail "dbsim did not run 300000 operations"; }
# Timed mode, more threads than cores, a tiny queue (producers block) and every
# retired record freed by the flusher thread.
mi dbsim2 "$DBSIM" --seconds 1 --threads 6 --flushers 2 --queue 8 --handoff 100 --keys 20000
grep -q '^  integrity OK' "$LOGS/dbsim2.out" || { out dbsim2 >&2; fail "dbsim (timed) did not report integrity OK"; }
note "ok"
