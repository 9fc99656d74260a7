#!/usr/bin/env bash
# sqlite3 under the allocator: 100k inserts in one transaction, indexes,
# aggregates, a self-join, update/delete, VACUUM and an integrity check; the
# expected results are computed independently with awk.
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
require_programs sqlite3 awk sort
make_tmp

N=100000
# The rows: id, grp = id % 97, name = 'name<id>', payload = first id % 300
# characters of a fixed 300-character string.
awk -v n="$N" 'BEGIN {
  s = ""; for (i = 0; i < 30; i++) s = s "abcdefghij"
  print "PRAGMA journal_mode=WAL;"
  print "CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, name TEXT NOT NULL, payload TEXT NOT NULL);"
  print "BEGIN;"
  for (id = 1; id <= n; id++)
    printf "INSERT INTO t VALUES(%d, %d, '\''name%d'\'', '\''%s'\'');\n", id, id % 97, id, substr(s, 1, id % 300)
  print "COMMIT;"
}' >load.sql

cat >query.sql <<'SQL'
CREATE INDEX t_grp ON t(grp);
CREATE INDEX t_name ON t(name);
SELECT 'q1', count(*), sum(id), sum(length(payload)) FROM t;
SELECT 'q2', grp, count(*), sum(id), max(length(payload)) FROM t GROUP BY grp ORDER BY grp LIMIT 3;
SELECT 'q3', count(*) FROM t a JOIN t b ON b.id = a.id + 1 WHERE b.grp = a.grp + 1;
SELECT 'q4', name FROM t WHERE grp = 5 ORDER BY name DESC LIMIT 2;
UPDATE t SET payload = payload || payload WHERE grp < 10;
DELETE FROM t WHERE id % 10 = 0;
SELECT 'q5', count(*), sum(length(payload)) FROM t;
VACUUM;
PRAGMA integrity_check;
SQL

# Expected output, computed the same way with awk.
{
  awk -v n="$N" 'BEGIN {
    for (id = 1; id <= n; id++) { c++; sid += id; sl += id % 300
      g = id % 97; gc[g]++; gs[g] += id; if (id % 300 > gm[g]) gm[g] = id % 300 }
    printf "q1|%d|%.0f|%.0f\n", c, sid, sl
    for (g = 0; g < 3; g++) printf "q2|%d|%d|%.0f|%d\n", g, gc[g], gs[g], gm[g]
    for (id = 1; id < n; id++) if ((id + 1) % 97 == id % 97 + 1) j++
    printf "q3|%d\n", j
  }'
  awk -v n="$N" 'BEGIN { for (id = 1; id <= n; id++) if (id % 97 == 5) print "name" id }' |
    LC_ALL=C sort -r | sed -n "1,2s/^/q4|/p"
  awk -v n="$N" 'BEGIN {
    for (id = 1; id <= n; id++) { if (id % 10 == 0) continue
      c++; l = id % 300; if (id % 97 < 10) l *= 2; sl += l }
    printf "q5|%d|%.0f\n", c, sl
    print "ok"
  }'
} >expected.txt

mi load sqlite3 -batch -bail db.sqlite ".read load.sql"
expect_eq "journal mode" "wal" "$(out load)"
mi query sqlite3 -batch -bail db.sqlite ".read query.sql"
expect_eq "query results" "$(cat expected.txt)" "$(out query)"
note "ok"
