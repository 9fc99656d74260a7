#!/usr/bin/env bash
# destroy_on_exit: programs under the allocator with MIMALLOC_DESTROY_ON_EXIT=1
# exit 0 with their output whole.
#
#   bash destroy_on_exit.sh MI_RUN LIB EXIT_WITH_THREADS PLUGIN_UNLOAD
#
# It crashed every program at exit (/bin/echo hi: SIGSEGV): the arena's own
# struct was read after it was unmapped. And as the process's malloc the
# library cannot release memory still in use at its destructor: the C library
# flushes stdio's buffers (in our memory) after the last destructor, and
# other threads still run; the output past the last full buffer was lost.
# Runs, each with the option on: echo, cat and sort of a 4 MiB file, python3
# with threads still allocating at exit, EXIT_WITH_THREADS (stdio buffered
# output and 0 or 4 threads churning at exit), also on 1 GiB and 2 MiB page
# arenas where the kernel's pools have free pages (not changed here). Then
# the case the option is for, a plug-in's copy that is unloaded: PLUGIN_UNLOAD
# loads LIB with dlopen (not as the process's malloc), allocates and
# dlcloses it: its blocks must be unmapped then (and stay mapped without the
# option).
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
[[ $# -eq 4 ]] || fail "usage: $0 MI_RUN LIB EXIT_WITH_THREADS PLUGIN_UNLOAD"
EXIT_WITH_THREADS=$3
PLUGIN_UNLOAD=$4
if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else require_programs python3; PYTHON=$(command -v python3); fi
require_programs sort cat

make_tmp
export MIMALLOC_DESTROY_ON_EXIT=1

# lines of text, 4 MiB, in a shuffled order
"$PYTHON" -c '
import random
r = random.Random(7)
lines = ["%08d %s" % (i, "abcdefghij" * (i % 9)) for i in range(90000)]
r.shuffle(lines)
open("input.txt", "w").write("\n".join(lines) + "\n")'

mi echo /bin/echo hi
expect_eq "echo" "hi" "$(out echo)"

mi cat cat input.txt
cmp -s input.txt "$LOGS/cat.out" || fail "cat: the output differs from its input ($(wc -c <"$LOGS/cat.out") of $(wc -c <input.txt) bytes)"

mi sort sort input.txt
LC_ALL=${LC_ALL:-} sort input.txt >sorted.txt
cmp -s sorted.txt "$LOGS/sort.out" || fail "sort: the output differs from sort's own ($(wc -c <"$LOGS/sort.out") of $(wc -c <sorted.txt) bytes)"

# The option acts only where the library is not the process's malloc, so
# mi_is_redirected() must say so under LD_PRELOAD, also in a non-PIE program
# that takes malloc's address (Debian's python3: its PLT entry is malloc's
# address for the whole process; comparing addresses said "not redirected",
# the option then unmapped the arenas at exit and python3 crashed in 2 of 3
# runs)
mi redirected "$PYTHON" -c '
import ctypes
f = ctypes.CDLL(None).mi_is_redirected
f.restype = ctypes.c_bool
print("redirected" if f() else "not redirected")'
expect_eq "python3: mi_is_redirected()" "redirected" "$(out redirected)"

# python3: daemon threads still allocating when the interpreter exits
mi python "$PYTHON" -c '
import sys, threading
def churn():
    while True:
        d = {i: str(i) * 3 for i in range(2000)}
for _ in range(4):
    threading.Thread(target=churn, daemon=True).start()
for i in range(20000):
    print("line", i, "x" * (i % 50))
'
lines=$(out python | wc -l)
expect_eq "python: lines" 20000 "$lines"
expect_eq "python: last line" "line 19999 $(printf 'x%.0s' $(seq 49))" "$(out python | tail -n 1)"

expected_last="line 999 of the output, x"
for threads in 0 4; do
  mi "threads$threads" "$EXIT_WITH_THREADS" "$threads"
  expect_eq "exit_with_threads $threads: lines" 1000 "$(out "threads$threads" | wc -l)"
  expect_eq "exit_with_threads $threads: last line" "$expected_last" "$(out "threads$threads" | tail -n 1)"
done

# on huge and large OS pages, where the pools have them free
free_pages() { cat "/sys/kernel/mm/hugepages/hugepages-$1/free_hugepages" 2>/dev/null || echo 0; }
if [[ $(free_pages 1048576kB) -ge 1 ]]; then
  MIMALLOC_RESERVE_HUGE_OS_PAGES=1 mi huge "$EXIT_WITH_THREADS" 4
  grep -q "reserved 1 GiB huge pages" "$LOGS/huge.err" || fail "no 1 GiB page arena (see $LOGS/huge.err)"
  expect_eq "1 GiB pages: last line" "$expected_last" "$(out huge | tail -n 1)"
  MIMALLOC_RESERVE_HUGE_OS_PAGES=1 "$PLUGIN_UNLOAD" "$MI_LIB" >"$LOGS/plugin-huge.out" 2>"$LOGS/plugin-huge.err" ||
    fail "plugin_unload on a 1 GiB page exited with $?: $(cat "$LOGS/plugin-huge.err")"
  expect_eq "plug-in on a 1 GiB page" "redirected=0 before=3 after=0" "$(cat "$LOGS/plugin-huge.out")"
  note "1 GiB pages: done"
else
  note "1 GiB pages: none free in the kernel's pool; not run"
fi
if [[ $(free_pages 2048kB) -ge 512 ]]; then  # a 1 GiB arena of them
  MIMALLOC_ALLOW_LARGE_OS_PAGES=1 mi large "$EXIT_WITH_THREADS" 4
  grep -q "allow_large_os_pages: the kernel has no free 2 MiB pages" "$LOGS/large.err" && fail "no 2 MiB page arena"
  expect_eq "2 MiB pages: last line" "$expected_last" "$(out large | tail -n 1)"
  note "2 MiB pages: done"
else
  note "2 MiB pages: fewer than 512 free in the kernel's pool; not run"
fi

# the plug-in's copy, unloaded: its memory goes with it (and stays without the option)
"$PLUGIN_UNLOAD" "$MI_LIB" >"$LOGS/plugin.out" 2>"$LOGS/plugin.err" || fail "plugin_unload exited with $?: $(cat "$LOGS/plugin.err")"
expect_eq "plug-in unloaded with destroy_on_exit" "redirected=0 before=3 after=0" "$(cat "$LOGS/plugin.out")"
MIMALLOC_DESTROY_ON_EXIT=0 "$PLUGIN_UNLOAD" "$MI_LIB" >"$LOGS/plugin0.out" 2>&1 || fail "plugin_unload (option off) exited with $?"
expect_eq "plug-in unloaded without destroy_on_exit" "redirected=0 before=3 after=3" "$(cat "$LOGS/plugin0.out")"
note "ok"
