#!/usr/bin/env bash
# reservations: arenas reserve address space without counting against the
# kernel's commit limit, and a reservation the kernel refuses shrinks, with
# one warning.
#
#   bash reservations.sh MI_RUN LIB ALLOC_UNTIL_NULL
#
# 1. MIMALLOC_RESERVE_OS_MEMORY and MIMALLOC_ARENA_RESERVE of twice RAM +
#    swap: the arena is there and nothing is warned about. Arenas were mapped
#    writable without MAP_NORESERVE, and the kernel's default (heuristic)
#    overcommit refuses such a mapping larger than RAM + swap: the start-up
#    reservation failed, and a failed arena_reserve was retried, and warned
#    about, at every new segment (16 warnings). Under vm.overcommit_memory=1
#    or 2 this part passes either way (2: arenas are PROT_NONE there).
# 2. Under a 256 MiB address-space limit (ulimit -v 262144), ALLOC_UNTIL_NULL
#    takes blocks of one size until malloc fails, on the allocator and on
#    glibc: at most one line says a reservation could not be had (it was 16
#    copies of "could not reserve 1073741824 bytes"), and the program gets at
#    least 80% of what glibc's malloc gives it, for blocks of 64 B, 1000 B,
#    16 KiB and 32 MiB. (Not 90%: the segment map, 32 MiB of zero-filled
#    .bss, counts against the limit as mapped address space: 12.5% of it.
#    Blocks of 1 MiB get about 65%: three fit a 4 MiB segment; not checked.)
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
[[ $# -eq 3 ]] || fail "usage: $0 MI_RUN LIB ALLOC_UNTIL_NULL"
ALLOC=$3
require_programs sort seq
make_tmp

GiB=$((1 << 30))
# ---- 1. larger than RAM + swap ----
if [[ $(ulimit -v) != unlimited ]]; then
  note "part 1 not run: the address space is limited here (ulimit -v $(ulimit -v))"
else
  ram_swap=$(awk '/^MemTotal:|^SwapTotal:/ { kib += $2 } END { print kib * 1024 }' /proc/meminfo)
  big=$(( (2 * ram_swap / GiB + 1) * GiB ))
  note "overcommit_memory=$(cat /proc/sys/vm/overcommit_memory), RAM + swap $((ram_swap / GiB)) GiB: reserving $((big / GiB)) GiB"
  seq 20000 -1 1 >lines.txt  # sort: a program that allocates a little
  MIMALLOC_RESERVE_OS_MEMORY=$big mi reserve sort -n lines.txt
  grep -q "mimalloc-numa: reserved $((big / 1024)) KiB memory" "$LOGS/reserve.err" ||
    { show_tail "$LOGS/reserve.err"; fail "MIMALLOC_RESERVE_OS_MEMORY=$big: no arena of that size"; }
  grep -q "warning:" "$LOGS/reserve.err" && { grep "warning:" "$LOGS/reserve.err" >&2; fail "MIMALLOC_RESERVE_OS_MEMORY=$big: warnings"; }
  MIMALLOC_ARENA_RESERVE=$big mi arena sort -n lines.txt
  grep -q "arena 1: $((big / (1 << 20))) MiB" "$LOGS/arena.err" ||
    { show_tail "$LOGS/arena.err"; fail "MIMALLOC_ARENA_RESERVE=$big: no arena of that size"; }
  grep -q "warning:" "$LOGS/arena.err" && { grep -m 3 "warning:" "$LOGS/arena.err" >&2; fail "MIMALLOC_ARENA_RESERVE=$big: warnings"; }
fi

# ---- 2. under ulimit -v 262144 ----
limit_kib=262144
gets() {  # SIZE [LIB]: the bytes ALLOC_UNTIL_NULL gets; its stderr in $LOGS/limit-SIZE-(mi|glibc).err
  local size=$1 lib=${2:-} name=glibc out
  [[ -n $lib ]] && name=mi
  out=$(ulimit -v "$limit_kib" && env ${lib:+LD_PRELOAD=$lib} "$ALLOC" "$size" 2>"$LOGS/limit-$size-$name.err") ||
    fail "alloc_until_null $size ($name) under ulimit -v $limit_kib exited with $?: $(tail -3 "$LOGS/limit-$size-$name.err")"
  [[ $out =~ ^blocks\ [0-9]+\ bytes\ ([0-9]+)$ ]] || fail "alloc_until_null $size: unexpected output '$out'"
  echo "${BASH_REMATCH[1]}"
}
for size in 64 1000 16384 33554432 1048576; do
  g=$(gets "$size")
  m=$(gets "$size" "$MI_LIB")
  pct=$((100 * m / g))
  note "ulimit -v $limit_kib, blocks of $size B: glibc $((g >> 20)) MiB, mimalloc-numa $((m >> 20)) MiB ($pct%)"
  err="$LOGS/limit-$size-mi.err"
  n=$(grep -c "could not reserve" "$err" || true)
  [[ $n -le 1 ]] || { grep -m 5 "could not reserve" "$err" >&2; fail "blocks of $size B: $n lines say a reservation failed"; }
  [[ $size == 1048576 ]] && continue
  [[ $pct -ge 80 ]] || fail "blocks of $size B: the program got $pct% of what glibc's malloc gives it (at least 80%)"
done
note "ok"
