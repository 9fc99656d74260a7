#!/usr/bin/env bash
# python3 under the allocator: dicts, lists, strings, json, sorting and threads
# (python_workload.py), with a deterministic result.
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

# Debian's interpreter when present (not a version-manager shim in PATH).
if [[ -x /usr/bin/python3 ]]; then
  PYTHON=/usr/bin/python3
else
  require_programs python3
  PYTHON=$(command -v python3)
fi
WORKLOAD=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)/python_workload.py

make_tmp
mi py "$PYTHON" "$WORKLOAD" "$MI_LIB_MAPNAME"

expected='dict 300000 143572435722 150000
words 300000 0 ffffd2e5 d0550027d3b1d3ab
rows 101000 299924 25
json 6445241 eb5ef8217b80d2a8
threads 100 1072643326733200
mapped True
done'
expect_eq "python workload output" "$expected" "$(out py)"
note "ok"
