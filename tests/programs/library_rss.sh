#!/usr/bin/env bash
# library_rss: what every program pays in resident memory for the library
# itself, not for its blocks (bench workload `startup`: 1.5 MiB peak against
# glibc's 1.0). LIBRARY_RSS (library_rss.c) runs under the library through
# mi-run, as a user's program does, and fails if the mapping the dynamic
# loader reads at start-up (headers, symbols, relocations) has more than
# 48 KiB resident (96 KiB with the relative relocations unpacked, 20 KiB
# packed: DT_RELR), or all of the library's mappings more than 296 KiB
# (316 KiB with every file at -O3, 280 KiB with the code that runs once or
# rarely built for size: lib/meson.build, lib_cold_sources).
#
#   bash library_rss.sh MI_RUN LIB LIBRARY_RSS
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
[[ $# -eq 3 ]] || fail "usage: $0 MI_RUN LIB LIBRARY_RSS"
make_tmp

# mi fails the test, with the program's output, if the bound is exceeded
mi library_rss "$3" "$MI_LIB_MAPNAME" 48 296
out library_rss
note "passed"
