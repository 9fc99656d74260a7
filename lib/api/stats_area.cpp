// stats_area.cpp: see stats_area.h.
#include "stats_area.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/format.h"
#include "../heap/heap.h"
#include "../heap/size_class.h"
#include "../os/os.h"
#include "stats_file.h"
#include "stats_snapshot.h"

namespace mi {

static_assert(BIN_HUGE + 1 <= MI_STATS_AREA_BINS_MAX, "every size class fits in the area");
static_assert(NUMA_MAX_NODES <= MI_STATS_AREA_NODES_MAX, "every node fits in the area");
static_assert(sizeof(mi_stats_area_memory_t) == 10 * sizeof(int64_t) &&
                  sizeof(mi_stats_area_bin_t) == 4 * sizeof(int64_t),
              "the area's records are int64_t only (no padding)");

namespace {

void add_live(const Tld* tld, void* arg) {
  LiveCounts* c = static_cast<LiveCounts*>(arg);
  // The direct sizes are counted when a free list is filled (heap/page.cpp):
  // ahead of their allocations by the blocks still waiting in the thread's
  // free lists, which only the owner may walk (heap/heap_stats.h: heap_stats_settle).
  for (size_t b = 0; b <= BIN_HUGE; b++) c->bin_malloc[b] += own_counter_read(tld->stats.bin_malloc[b]);
  for (int a = 0; a < ACCOUNT_COUNT; a++) {
    c->remote_frees[a] += own_counter_read(tld->stats.remote_frees[a]);
    c->local_frees[a] += own_counter_read(tld->stats.local_frees[a]);
  }
}

// Field `field` (1-based) of a /proc/PID/stat line; 0 if missing. The
// command name (field 2) may hold spaces and parentheses: counting starts
// after its last ')'.
uint64_t stat_field(const char* line, int field) {
  const char* s = strrchr(line, ')');
  if (s == nullptr || field < 3) return 0;
  s++;
  for (int f = 3; f <= field; f++) {
    while (*s == ' ') s++;
    if (*s == 0) return 0;
    if (f == field) {
      uint64_t v = 0;
      while (*s >= '0' && *s <= '9') v = v * 10 + static_cast<uint64_t>(*s++ - '0');
      return v;
    }
    while (*s != 0 && *s != ' ') s++;
  }
  return 0;
}

void fill_memory(mi_stats_area_memory_t* m, const MemoryRow& r, const int64_t* local, const int64_t* remote) {
  m->reserved = r.reserved;
  m->committed = r.committed;
  m->in_use = r.blocks;
  m->purgeable = r.purge_pending;
  m->huge_1g = r.huge_pages * static_cast<int64_t>(HUGE_OS_PAGE_SIZE);
  m->large_2m = r.large_page_bytes;
  m->local_frees = *local;
  m->remote_frees = *remote;
  m->fallbacks = r.fallbacks;
  m->purged = r.purged;
}

}  // namespace

void stats_live_counts(LiveCounts* counts) noexcept {
  memset(static_cast<void*>(counts), 0, sizeof(*counts));
  stats_merge_lock_take();
  for (size_t b = 0; b <= BIN_HUGE; b++)
    counts->bin_malloc[b] = stats_global.bin_malloc[b].load(std::memory_order_relaxed);
  for (int a = 0; a < ACCOUNT_COUNT; a++) {
    counts->remote_frees[a] = stats_global.remote_frees[a].load(std::memory_order_relaxed);
    counts->local_frees[a] = stats_global.local_frees[a].load(std::memory_order_relaxed);
  }
  threads_visit_live(&add_live, counts);
  stats_merge_lock_give();
}

uint64_t stats_start_ticks_of(long pid) noexcept {
  char path[64];
  char line[1024];
  format(path, sizeof(path), "/proc/%ld/stat", pid);
  if (os_read_file(path, line, sizeof(line)) <= 0) return 0;
  return stat_field(line, 22);
}

uint64_t stats_start_ticks() noexcept { return stats_start_ticks_of(static_cast<long>(getpid())); }

int64_t stats_unix_ms() noexcept {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void stats_area_fill(mi_stats_area_t* area, int64_t updates, int64_t interval_ms) noexcept {
  memset(static_cast<void*>(area), 0, sizeof(*area));
  area->magic = MI_STATS_AREA_MAGIC;
  area->version = MI_STATS_AREA_VERSION;
  area->size = static_cast<uint32_t>(sizeof(mi_stats_area_t));
  area->nodes_offset = static_cast<uint32_t>(offsetof(mi_stats_area_t, nodes));
  area->bins_offset = static_cast<uint32_t>(offsetof(mi_stats_area_t, bins));

  const int64_t now_ms = stats_unix_ms();
  area->pid = static_cast<int64_t>(getpid());
  area->start_ticks = stats_start_ticks();
  area->start_unix_ms = now_ms - stats_elapsed_ms();  // a fork child: its fork (stats_fork_child)
  area->updated_unix_ms = now_ms;
  area->updates = updates;
  area->interval_ms = interval_ms;
  stats_program_name(area->program, sizeof(area->program));

  MemorySnapshot snap;
  stats_snapshot(&snap);
  LiveCounts live;
  stats_live_counts(&live);
  BinFigures bins[BIN_HUGE + 1];
  stats_bins(ROW_TOTAL, snap.node_count, bins);

  // frees by row, as the snapshot puts accounts in rows
  int64_t local[ROW_COUNT] = {};
  int64_t remote[ROW_COUNT] = {};
  for (int a = 0; a < ACCOUNT_COUNT; a++) {
    const int row = stats_row_of_account(a, snap.node_count);
    local[row] += live.local_frees[a];
    remote[row] += live.remote_frees[a];
    local[ROW_TOTAL] += live.local_frees[a];
    remote[ROW_TOTAL] += live.remote_frees[a];
  }

  area->threads = stats_global.threads.current.load(std::memory_order_relaxed);
  area->segments = stats_global.segments.current.load(std::memory_order_relaxed);
  area->segments_abandoned = stats_global.segments_abandoned.current.load(std::memory_order_relaxed);
  area->purges = os_counters.purge_calls.load(std::memory_order_relaxed);
  area->purge_ns = os_counters.purge_ns.load(std::memory_order_relaxed);
  area->os_mmap_calls = os_counters.mmap_calls.load(std::memory_order_relaxed);
  area->os_commit_calls = os_counters.commit_calls.load(std::memory_order_relaxed);
  area->os_purge_calls = os_counters.purge_calls.load(std::memory_order_relaxed);
  char line[1024];
  if (os_read_file("/proc/self/stat", line, sizeof(line)) > 0) {
    area->page_faults_minor = static_cast<int64_t>(stat_field(line, 10));
    area->page_faults_major = static_cast<int64_t>(stat_field(line, 12));
  }
  size_t rss = 0, rss_peak = 0;
  os_process_rss(&rss, &rss_peak);
  area->rss = static_cast<int64_t>(rss);
  area->metadata_committed = snap.rows[ROW_META].committed;
  fill_memory(&area->totals, snap.rows[ROW_TOTAL], &local[ROW_TOTAL], &remote[ROW_TOTAL]);

  const int nodes = (snap.node_count < MI_STATS_AREA_NODES_MAX) ? snap.node_count : MI_STATS_AREA_NODES_MAX;
  area->node_count = static_cast<uint32_t>(nodes);
  for (int n = 0; n < nodes; n++) fill_memory(&area->nodes[n], snap.rows[n], &local[n], &remote[n]);

  area->bin_count = static_cast<uint32_t>(BIN_HUGE + 1);
  for (size_t b = 0; b <= BIN_HUGE; b++) {
    mi_stats_area_bin_t& out = area->bins[b];
    out.block_size = (b == BIN_HUGE) ? 0 : static_cast<int64_t>(bin_block_sizes[b]);  // 0: over 2 MiB, any size
    out.live_blocks = bins[b].blocks;
    out.live_bytes = bins[b].bytes;
    out.allocations = live.bin_malloc[b];
  }
}

}  // namespace mi
