#!/usr/bin/env bash
# PostgreSQL under the allocator: initdb and the server (postmaster and every
# backend) run with the allocator preloaded, as an unprivileged user, on a unix
# socket in a private temporary directory (no TCP).  pgbench initialises scale
# 5 and runs a fixed number of transactions with 4 clients; a psql script does
# inserts, joins, aggregates, updates and deletes; the results, pgbench's
# balance invariants and the server log (no crash, clean shutdown) are checked.
#
# MI_TEST_PG_BINDIR overrides the PostgreSQL bin directory.
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

pg_bindir() {
  if [[ -n ${MI_TEST_PG_BINDIR:-} ]]; then
    printf '%s' "$MI_TEST_PG_BINDIR"
    return
  fi
  local d major best="" best_major=-1
  # Debian: /usr/lib/postgresql/<major>/bin; take the newest major.
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x $d/postgres && -x $d/initdb ]] || continue
    major=${d#/usr/lib/postgresql/}
    major=${major%/bin}
    [[ $major =~ ^[0-9]+$ ]] || continue
    if ((major > best_major)); then
      best_major=$major
      best=$d
    fi
  done
  if [[ -z $best ]] && command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
    best=$(dirname -- "$(readlink -f -- "$(command -v postgres)")")
  fi
  printf '%s' "$best"
}

BIN=$(pg_bindir)
[[ -n $BIN ]] || skip "PostgreSQL (postgres, initdb) is not installed"
for p in postgres initdb pgbench psql pg_isready; do
  [[ -x $BIN/$p ]] || skip "$BIN/$p is not installed"
done
require_programs awk ps

# PostgreSQL refuses to run as root: use the postgres user (or nobody).
PGUSER_OS=$(id -un)
if [[ $(id -u) -eq 0 ]]; then
  require_programs runuser
  if id postgres >/dev/null 2>&1; then PGUSER_OS=postgres; else PGUSER_OS=nobody; fi
  MI_PREFIX=(runuser -u "$PGUSER_OS" --)
fi

# A short path: the unix socket's path must fit in 107 bytes.
TMP_PARENT=/tmp
make_tmp
mkdir -p bin data
# Copies of mi-run and the library that the server's user can surely read.
cp -- "$MI_RUN" bin/mi-run
cp -- "$(readlink -f -- "$MI_LIB")" "bin/$MI_LIB_MAPNAME"
MI_RUN=$TMP/bin/mi-run
MI_LIB=$TMP/bin/$MI_LIB_MAPNAME
chmod 755 "$TMP" bin bin/mi-run
chmod 644 "$MI_LIB"
if [[ $(id -u) -eq 0 ]]; then
  chown -R "$PGUSER_OS" "$TMP"
  chown root "$LOGS"   # the logs are written by this (root) shell
fi
PORT=$((20000 + RANDOM % 40000))
DATA=$TMP/data
PSQL=("$BIN/psql" -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -h "$TMP" -p "$PORT" -U postgres -d postgres)

mi initdb "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C --no-sync

# Start the server in the background; its stderr (the log, and the allocator's
# verbose output and per-process statistics) goes to $LOGS/server.log.
SERVER_PID=""
stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  local pm="" i
  [[ -f $DATA/postmaster.pid ]] && pm=$(head -n 1 "$DATA/postmaster.pid")
  if [[ -n $pm ]] && kill -0 "$pm" 2>/dev/null; then
    kill -INT "$pm" 2>/dev/null || true    # fast shutdown
    for ((i = 0; i < 300; i++)); do
      kill -0 "$pm" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pm" 2>/dev/null; then
      note "server did not stop in 30 s: killing it"
      kill -QUIT "$pm" 2>/dev/null || true
      sleep 1
      kill -KILL "$pm" 2>/dev/null || true
    fi
  fi
  SERVER_RC=0
  wait "$SERVER_PID" || SERVER_RC=$?
  SERVER_PID=""
}
CLEANUP+=(stop_server)

"${MI_PREFIX[@]}" "$MI_RUN" --lib "$MI_LIB" --stats --verbose -- \
  "$BIN/postgres" -D "$DATA" -k "$TMP" -p "$PORT" \
  -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
  -c shared_buffers=64MB -c max_connections=20 -c logging_collector=off \
  -c log_min_messages=warning -c autovacuum=off \
  >"$LOGS/server.log" 2>&1 &
SERVER_PID=$!

ready=0
for ((i = 0; i < 600; i++)); do
  if "$BIN/pg_isready" -q -h "$TMP" -p "$PORT" -U postgres -d postgres; then
    ready=1
    break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [[ $ready -ne 1 ]]; then
  show_tail "$LOGS/server.log"
  fail "the server did not start"
fi

PM=$(head -n 1 "$DATA/postmaster.pid")
check_maps "$PM"
# So do the processes the postmaster forked.
mi checkpointer "${PSQL[@]}" -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'checkpointer'"
expect_eq "checkpointer running" 1 "$(out checkpointer)"
CHILD=$(ps -o pid= --ppid "$PM" | awk 'NR == 1 { print $1 }')
[[ -n $CHILD ]] || fail "the postmaster has no child processes"
check_maps "$CHILD"

# pgbench: scale 5 (500k accounts), then a fixed number of TPC-B transactions.
TX=300
CLIENTS=4
mi pgbench_init "$BIN/pgbench" -i -s 5 -q -h "$TMP" -p "$PORT" -U postgres postgres
mi pgbench "$BIN/pgbench" -c "$CLIENTS" -j 2 -t "$TX" -h "$TMP" -p "$PORT" -U postgres postgres
grep -q "number of transactions actually processed: $((TX * CLIENTS))/$((TX * CLIENTS))" "$LOGS/pgbench.out" || {
  show_tail "$LOGS/pgbench.out"
  fail "pgbench did not complete all transactions"
}
mi pgbench_check "${PSQL[@]}" -c "
  SELECT (SELECT count(*) FROM pgbench_accounts),
         (SELECT count(*) FROM pgbench_history),
         (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history),
         (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(delta) FROM pgbench_history),
         (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT sum(delta) FROM pgbench_history)"
expect_eq "pgbench tables" "500000|$((TX * CLIENTS))|t|t|t" "$(out pgbench_check)"

# A psql script: inserts, an index, joins, aggregates, update, delete, jsonb.
cat >workload.sql <<'SQL'
CREATE TABLE t (id int PRIMARY KEY, grp int NOT NULL, payload text NOT NULL);
INSERT INTO t SELECT g, g % 100, repeat(md5(g::text), 1 + g % 20) FROM generate_series(1, 100000) g;
CREATE TABLE groups (grp int PRIMARY KEY, name text NOT NULL);
INSERT INTO groups SELECT i, 'group' || i FROM generate_series(0, 99) i;
CREATE INDEX t_grp ON t (grp);
ANALYZE;
SELECT 'q1', count(*), sum(id), sum(length(payload)) FROM t;
SELECT 'q2', g.name, count(*), sum(t.id) FROM t JOIN groups g USING (grp)
  GROUP BY g.name ORDER BY count(*) DESC, g.name LIMIT 2;
SELECT 'q3', count(DISTINCT payload) FROM t;
SELECT 'q4', count(*) FROM t a JOIN t b ON b.id = a.id + 1 AND b.grp = (a.grp + 1) % 100;
UPDATE t SET payload = payload || 'x' WHERE grp < 10;
DELETE FROM t WHERE id % 10 = 0;
SELECT 'q5', count(*), sum(length(payload)) FROM t;
SELECT 'q6', sum((j ->> 'v')::int), sum(jsonb_array_length(j -> 'a'))
  FROM (SELECT jsonb_build_object('v', g, 'a', array_agg(g * k)) AS j
          FROM generate_series(1, 1000) g, generate_series(1, 10) k GROUP BY g) s;
SQL
expected=$(awk 'BEGIN {
  for (g = 1; g <= 100000; g++) { sid += g; sl += 32 * (1 + g % 20); gs[g % 100] += g
    if (g % 10 != 0) { c5++; l5 += 32 * (1 + g % 20) + (g % 100 < 10 ? 1 : 0) } }
  printf "q1|100000|%.0f|%.0f\n", sid, sl
  printf "q2|group0|1000|%.0f\nq2|group1|1000|%.0f\n", gs[0], gs[1]
  print "q3|100000"
  print "q4|99999"
  printf "q5|%d|%.0f\n", c5, l5
  print "q6|500500|10000"
}')
mi workload "${PSQL[@]}" -f workload.sql
expect_eq "psql workload results" "$expected" "$(out workload)"

# Stop the server and check its log.
stop_server
[[ $SERVER_RC -eq 0 ]] || { show_tail "$LOGS/server.log"; fail "the server exited with status $SERVER_RC"; }
grep -q "database system is shut down" "$LOGS/server.log" || {
  show_tail "$LOGS/server.log"
  fail "no clean shutdown in the server log"
}
if grep -Ei "PANIC|terminated by signal|was terminated by|server process .* exited with exit code|terminating any other active server processes|TRAP:|out of memory|corrupt" "$LOGS/server.log" >&2; then
  fail "the server log shows a crash or an error (above)"
fi
check_allocator "$LOGS/server.log"
note "ok"
