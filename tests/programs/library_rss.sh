#!/usr/bin/env bash
# library_rss: what every program pays in resident memory for the library
# itself, not for its blocks (bench workload `startup`: 1.4 MiB peak, 1.5 in source order, against
# glibc's 1.0). LIBRARY_RSS (library_rss.c) runs under the library through
# mi-run, as a user's program does (no statistics, no verbose messages: the
# code that prints them lies apart, and a program that asks for them pays for
# it), and fails if the mapping the dynamic loader reads at start-up (headers,
# symbols, relocations) has more than 48 KiB resident (96 KiB with the
# relative relocations unpacked, 20 KiB packed: DT_RELR), more than 96 KiB of
# the code (164 KiB, all of it, in source order; 64 KiB with the code
# programs run placed first: lib/text-order.txt), any of the read-only data
# segment (.rodata and the unwind tables: 64 KiB before the tables, strings
# and constants that programs read were moved to the first mapping,
# lib/rodata-start.ld; that mapping 20 -> 36 KiB), or all of the library's
# mappings more than 160 KiB (272 KiB in source order, 172 before the
# read-only data moved, 124 now).
#
# How much of a file a fault maps depends on the page cache too: pages written
# (by the linker, cp, dpkg) are cached in large folios that a fault maps whole
# (108 KiB of the code then, 164 in source order), pages read in by faults in
# smaller ones. The test runs a copy of the library read back from disk, as a
# library installed some time ago is, so that what it measures is the layout;
# where the copy cannot be dropped from the cache, the code bound is not
# applied (noted).
#
#   bash library_rss.sh MI_RUN LIB LIBRARY_RSS
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
[[ $# -eq 3 ]] || fail "usage: $0 MI_RUN LIB LIBRARY_RSS"
make_tmp

lib_copy=$TMP/$MI_LIB_MAPNAME
cp -- "$(readlink -f -- "$MI_LIB")" "$lib_copy"
sync -- "$lib_copy"
dd if="$lib_copy" iflag=nocache count=0 status=none  # drop its pages from the page cache
max_code=96
max_total=160
cached=$(fincore --noheadings --output PAGES -- "$lib_copy" 2>/dev/null | tr -d " " || true)
[[ -n $cached ]] || cached=unknown
if [[ $cached != 0 ]]; then
  note "the copy of the library stayed in the page cache ($cached pages): code and total bounds not applied"
  max_code=1000000
  max_total=296
fi

rc=0
"${MI_PREFIX[@]}" "$MI_RUN" --lib "$lib_copy" -- "$3" "$MI_LIB_MAPNAME" 48 "$max_code" "$max_total" 0 \
  >"$LOGS/library_rss.out" 2>"$LOGS/library_rss.err" || rc=$?
out library_rss
if [[ $rc -ne 0 ]]; then
  show_tail "$LOGS/library_rss.err"
  fail "library_rss exited with status $rc"
fi
note "passed"
