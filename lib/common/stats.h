// stats.h: process-wide statistics (the report is api/stats_report.h).
//
// Owns: gauges (segments, pages, bytes of blocks over 2 MiB, abandoned
// segments, threads) as atomics updated on slow paths; the totals merged from
// threads' counters (allocations by size class and events); when the process
// started (a fork child starts anew). Memory figures (reserved, committed,
// blocks) are read in one place, api/stats_snapshot.h, from the OS layer's
// counters and the segments; the report is api/stats_report.cpp.
// Thread-safe: atomics; merging takes a thread's own counters (owner only).
#pragma once

#include <atomic>
#include <cstdint>

#include "types.h"

namespace mi {

struct StatGauge {
  std::atomic<int64_t> current;
  std::atomic<int64_t> peak;
  std::atomic<int64_t> total;  // sum of increases
};

struct GlobalStats {
  StatGauge segments;
  StatGauge pages;
  StatGauge huge_bytes;   // bytes of live blocks over 2 MiB (LARGE_OBJ_SIZE_MAX), a segment each
  StatGauge huge_blocks;  // ... and their number
  StatGauge segments_abandoned;
  StatGauge threads;
  std::atomic<int64_t> segments_reclaimed;
  std::atomic<int64_t> pages_abandoned;
  std::atomic<int64_t> node_moves;  // a slow path found its thread on another node than before (heap/migrate.cpp)
  std::atomic<int64_t> huge_page_fallbacks;   // 1 GiB pages asked for at start-up that the kernel did not give
  std::atomic<int64_t> large_page_fallbacks;  // 2 MiB-page mappings asked for that fell back to 4 KiB pages
  // merged from the threads
  std::atomic<int64_t> pages_extended;
  std::atomic<int64_t> page_searches;
  std::atomic<int64_t> page_search_steps;
  std::atomic<int64_t> pages_retired_kept;
  std::atomic<int64_t> huge_allocs;
  std::atomic<int64_t> huge_alloc_bytes;
  std::atomic<int64_t> bin_malloc[BIN_HUGE + 1];
  std::atomic<int64_t> remote_frees[ACCOUNT_COUNT];  // ThreadStats' of exited threads
  std::atomic<int64_t> local_frees[ACCOUNT_COUNT];
};

// Whether local frees are counted (ThreadStats::local_frees): on while the
// statistics are published (api/stats_publish sets it at start-up, through
// heap_count_local_frees: heap/heap.h).
extern MI_HIDDEN std::atomic<bool> stats_counting_local_frees;

// Held while a thread's counters move to stats_global (stats_merge_*), and
// by the publisher while it adds the live threads' counters to stats_global
// (api/stats_area), so that each count is seen once.
void stats_merge_lock_take() noexcept;
void stats_merge_lock_give() noexcept;
// In a fork child, first thing: the merge lock may have been held by a
// thread that did not come along.
void stats_fork_child_unlock() noexcept;

extern MI_HIDDEN GlobalStats stats_global;

void stat_increase(StatGauge& g, int64_t n) noexcept;
inline void stat_decrease(StatGauge& g, int64_t n) noexcept { g.current.fetch_sub(n, std::memory_order_relaxed); }
inline void stat_counter(std::atomic<int64_t>& c, int64_t n) noexcept { c.fetch_add(n, std::memory_order_relaxed); }

// Adds a thread's counters (its Tld) to the process totals and zeroes them.
// pre: called by the owner thread, through heap_stats_merge (heap/heap_stats.h),
// which makes the allocations of the direct sizes exact first.
void stats_merge_thread(Tld* tld) noexcept;

// Peaks restart from the current values, totals from zero (the os layer's
// byte counters: os_counters_reset_peaks).
void stats_reset() noexcept;

// The process's start: set once at process init; a fork child sets it again
// (and resets the totals and peaks it inherited: its statistics are its own).
void stats_set_process_start() noexcept;
void stats_fork_child() noexcept;
// Milliseconds since the process started (for mi_process_info and the report).
int64_t stats_elapsed_ms() noexcept;
// The start in seconds since the epoch (the stats_file pattern %t).
int64_t stats_start_time_s() noexcept;

}  // namespace mi
