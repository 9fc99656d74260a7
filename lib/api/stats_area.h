// stats_area.h: the live statistics of the process, in the published layout.
//
// Owns: filling an mi_stats_area_t (include/mimalloc-numa-stats.h) with the
// process's figures now: the memory per NUMA node and in total from the
// same snapshot as the exit report (stats_snapshot: MemorySnapshot,
// stats_bins), the counters the threads keep for it (allocations by size
// class, local and remote frees by node: stats_live_counts), the OS layer's
// call counters and purge time, and the kernel's figures of the process
// (page faults from /proc/self/stat, RSS from /proc/self/statm). The
// published file (stats_publish) and the JSON forms (stats_json) both take
// their figures from here, so they cannot disagree.
// No allocation; not from a signal handler (the snapshot takes locks).
#pragma once

#include <cstdint>

#include "../../include/mimalloc-numa-stats.h"
#include "../common/stats.h"

namespace mi {

// The threads' counters now, added to those of the threads that exited
// (stats_global), each counted once (the merge lock): allocations by size
// class and frees by memory account.
struct LiveCounts {
  int64_t bin_malloc[BIN_HUGE + 1];
  int64_t remote_frees[ACCOUNT_COUNT];
  int64_t local_frees[ACCOUNT_COUNT];
};
void stats_live_counts(LiveCounts* counts) noexcept;

// The process's start time in clock ticks since boot (/proc/self/stat field
// 22), as a published file's name carries it; 0 if unknown.
uint64_t stats_start_ticks() noexcept;
// The same for another process (0: no such process, or unreadable).
uint64_t stats_start_ticks_of(long pid) noexcept;

// Fills every field of *area (the header too: magic, version, size,
// offsets; seq is set to 0): `updates` and `interval_ms` are the
// publisher's. Takes about a millisecond per GiB in use (the snapshot walks
// the segments).
void stats_area_fill(mi_stats_area_t* area, int64_t updates, int64_t interval_ms) noexcept;

// Wall clock in milliseconds since the epoch.
int64_t stats_unix_ms() noexcept;

}  // namespace mi
