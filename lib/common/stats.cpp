// stats.cpp: see stats.h.
#include "stats.h"

#include <sched.h>
#include <string.h>
#include <time.h>

#include "sys.h"

namespace mi {

constinit GlobalStats stats_global{};
constinit std::atomic<bool> stats_counting_local_frees{false};

namespace {

std::atomic<int64_t> process_start_ms{0};
std::atomic<int64_t> process_start_s{0};  // wall clock, seconds since the epoch

int64_t wall_clock_s() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec);
}

void raise_peak(std::atomic<int64_t>& peak, int64_t v) {
  int64_t old = peak.load(std::memory_order_relaxed);
  while (v > old && !peak.compare_exchange_weak(old, v, std::memory_order_relaxed)) {
  }
}

// Held while a thread's counters move to stats_global and while the
// publisher adds the live threads' counters to it: each is counted once.
std::atomic<bool> merge_lock{false};
void merge_lock_take() {
  while (merge_lock.exchange(true, std::memory_order_acquire)) sched_yield();
}
void merge_lock_give() { merge_lock.store(false, std::memory_order_release); }

}  // namespace

void stats_merge_lock_take() noexcept { merge_lock_take(); }
void stats_merge_lock_give() noexcept { merge_lock_give(); }

void stats_fork_child_unlock() noexcept { merge_lock.store(false, std::memory_order_relaxed); }

void stat_increase(StatGauge& g, int64_t n) noexcept {
  int64_t now = g.current.fetch_add(n, std::memory_order_relaxed) + n;
  g.total.fetch_add(n, std::memory_order_relaxed);
  raise_peak(g.peak, now);
}

void stats_merge_thread(Tld* tld) noexcept {
  if (tld == nullptr) return;
  merge_lock_take();
  ThreadStats& s = tld->stats;
  stat_counter(stats_global.pages_extended, s.pages_extended);
  stat_counter(stats_global.page_searches, s.page_searches);
  stat_counter(stats_global.page_search_steps, s.page_search_steps);
  stat_counter(stats_global.pages_retired_kept, s.pages_retired_kept);
  stat_counter(stats_global.huge_allocs, s.huge_allocs);
  stat_counter(stats_global.huge_alloc_bytes, s.huge_alloc_bytes);
  for (size_t b = 0; b <= BIN_HUGE; b++) {
    const int64_t n = own_counter_read(s.bin_malloc[b]);
    if (n == 0) continue;
    stats_global.bin_malloc[b].fetch_add(n, std::memory_order_relaxed);
    own_counter_zero(s.bin_malloc[b]);
  }
  for (int a = 0; a < ACCOUNT_COUNT; a++) {
    const int64_t r = own_counter_read(s.remote_frees[a]);
    const int64_t l = own_counter_read(s.local_frees[a]);
    if (r != 0) stats_global.remote_frees[a].fetch_add(r, std::memory_order_relaxed);
    if (l != 0) stats_global.local_frees[a].fetch_add(l, std::memory_order_relaxed);
    if (r != 0) own_counter_zero(s.remote_frees[a]);
    if (l != 0) own_counter_zero(s.local_frees[a]);
  }
  // the rest is the owner's alone
  s.pages_extended = s.page_searches = s.page_search_steps = s.pages_retired_kept = 0;
  s.huge_allocs = s.huge_alloc_bytes = 0;
  merge_lock_give();
}

void stats_reset() noexcept {
  for (auto& b : stats_global.bin_malloc) b.store(0, std::memory_order_relaxed);
  for (auto& f : stats_global.remote_frees) f.store(0, std::memory_order_relaxed);
  for (auto& f : stats_global.local_frees) f.store(0, std::memory_order_relaxed);
  stats_global.pages_extended.store(0);
  stats_global.page_searches.store(0);
  stats_global.page_search_steps.store(0);
  stats_global.pages_retired_kept.store(0);
  stats_global.huge_allocs.store(0);
  stats_global.huge_alloc_bytes.store(0);
  stats_global.segments_reclaimed.store(0);
  stats_global.pages_abandoned.store(0);
  stats_global.node_moves.store(0);
  for (StatGauge* g : {&stats_global.segments, &stats_global.pages, &stats_global.huge_bytes, &stats_global.huge_blocks,
                       &stats_global.segments_abandoned, &stats_global.threads}) {
    g->peak.store(g->current.load(std::memory_order_relaxed), std::memory_order_relaxed);
    g->total.store(0, std::memory_order_relaxed);
  }
}

void stats_set_process_start() noexcept {
  int64_t zero = 0;
  if (process_start_ms.compare_exchange_strong(zero, os_clock_ms())) process_start_s.store(wall_clock_s());
}

void stats_fork_child() noexcept {
  // A forked server process (PostgreSQL's backends) reports its own time and
  // what it did, not its parent's: the inherited totals and peaks go; the
  // memory it inherited is still there and stays in the figures.
  process_start_ms.store(os_clock_ms(), std::memory_order_relaxed);
  process_start_s.store(wall_clock_s(), std::memory_order_relaxed);
  stats_reset();
}

int64_t stats_start_time_s() noexcept { return process_start_s.load(std::memory_order_relaxed); }

int64_t stats_elapsed_ms() noexcept {
  int64_t start = process_start_ms.load(std::memory_order_relaxed);
  return (start == 0) ? 0 : os_clock_ms() - start;
}

}  // namespace mi
