// stats_snapshot.cpp: see stats_snapshot.h. Also the public mi_numa_stats.
#include "stats_snapshot.h"

#include <errno.h>
#include <string.h>

#include "../../include/mimalloc-numa.h"
#include "../arena/arena.h"
#include "../common/stats.h"
#include "../heap/full_held.h"
#include "../heap/size_class.h"
#include "../os/os.h"
#include "../segment/segment.h"

namespace mi {

namespace {

int64_t load(const std::atomic<int64_t>& a) { return a.load(std::memory_order_relaxed); }

// Fields of segments and pages that their owner threads change while the walk
// reads them: one relaxed atomic load each (a value a moment old, never torn).
template <typename T>
T peek(const T& field) {
  return __atomic_load_n(&field, __ATOMIC_RELAXED);
}

size_t page_bytes(const Segment* s) { return (s->capacity == 1) ? s->segment_size : (size_t{1} << s->page_shift); }

// What one page in use holds (a large page spanning several slices counts once).
struct PageFigures {
  size_t bin;
  int64_t block_size;
  int64_t used;
  int64_t free_blocks;
};

// Calls fn for each page in use of s; returns the committed bytes of free
// pages waiting for their purge.
template <typename F>
int64_t for_each_page(const Segment* s, F fn) {
  const uint64_t free_mask = peek(s->free_mask);
  const size_t capacity = s->capacity;
  const bool huge = s->page_kind == PageKind::huge;
  for (size_t i = 0; i < capacity; i++) {
    if ((free_mask >> i) & 1) continue;
    const Page* page = &s->pages[i];
    if (peek(page->slice_offset) != 0) continue;  // an inner slice of a large page
    PageFigures f;
    f.block_size = static_cast<int64_t>(peek(page->block_size));
    f.used = static_cast<int64_t>(peek(page->used));
    const int64_t reserved = static_cast<int64_t>(peek(page->reserved));
    f.free_blocks = (reserved > f.used) ? reserved - f.used : 0;
    if (f.block_size == 0) continue;  // being set up or given back right now
    f.bin = huge ? BIN_HUGE : bin_of_size(static_cast<size_t>(f.block_size));
    fn(f);
  }
  const uint64_t pending =
      (peek(s->purge_mask) | peek(s->purge_aged_mask)) & s->commit_mask.load(std::memory_order_relaxed) & free_mask;
  int64_t bytes = 0;
  for (size_t i = 0; i < capacity && i < 64; i++) {
    if (((pending >> i) & 1) == 0) continue;
    size_t size = page_bytes(s);
    if (i == 0) size -= align_up(s->segment_info_size, os_page_size());
    bytes += static_cast<int64_t>(size);
  }
  return bytes;
}

struct WalkRows {
  MemoryRow* rows;
  int node_count;
};

void walk_segment(const Segment* s, void* arg) {
  WalkRows* w = static_cast<WalkRows*>(arg);
  MemoryRow& r = w->rows[stats_row_of_account(s->memid.account, w->node_count)];
  r.segments += static_cast<int64_t>(peek(s->committed_bytes));
  const bool huge = s->page_kind == PageKind::huge;
  // an over-aligned huge block's bytes run from its page start, over the
  // alignment's room, whose whole OS pages are decommitted: not counted
  const int64_t hole = huge ? static_cast<int64_t>(peek(s->hole_size)) : 0;
  r.purge_pending += for_each_page(s, [&](const PageFigures& f) {
    const int64_t used_bytes = f.used * f.block_size - (f.used > 0 ? hole : 0);
    r.blocks += used_bytes;
    r.block_count += f.used;
    r.free_blocks += f.free_blocks;
    r.free_block_bytes += f.free_blocks * f.block_size;
    if (huge) {
      r.big_blocks += f.used;
      r.big_block_bytes += used_bytes;
    }
  });
  if (huge) r.big_committed += static_cast<int64_t>(peek(s->committed_bytes));
}

void visit_arena(const ArenaInfo& info, void* arg) {
  WalkRows* w = static_cast<WalkRows*>(arg);
  MemoryRow& r = w->rows[stats_row_of_account(info.account, w->node_count)];
  r.arenas++;
  r.purge_pending += static_cast<int64_t>(info.purge_pending);
  if (info.is_pinned && !info.is_huge) r.large_page_bytes += static_cast<int64_t>(info.reserved);
  if (info.is_huge) {
    r.huge_pages += static_cast<int64_t>(info.reserved / HUGE_OS_PAGE_SIZE);
    r.huge_pages_in_use += static_cast<int64_t>(divide_up(info.blocks_in_use * ARENA_BLOCK_SIZE, HUGE_OS_PAGE_SIZE));
  }
}

void add_row(MemoryRow& to, const MemoryRow& r) {
  const int64_t* src = reinterpret_cast<const int64_t*>(&r);
  int64_t* dst = reinterpret_cast<int64_t*>(&to);
  for (size_t i = 0; i < sizeof(MemoryRow) / sizeof(int64_t); i++) dst[i] += src[i];
}

struct WalkBins {
  int row;
  int node_count;
  BinFigures* bins;
};

void walk_segment_bins(const Segment* s, void* arg) {
  WalkBins* w = static_cast<WalkBins*>(arg);
  if (w->row != ROW_TOTAL && stats_row_of_account(s->memid.account, w->node_count) != w->row) return;
  for_each_page(s, [&](const PageFigures& f) {
    BinFigures& b = w->bins[f.bin];
    b.blocks += f.used;
    b.bytes += f.used * f.block_size;
    b.free_blocks += f.free_blocks;
    b.free_bytes += f.free_blocks * f.block_size;
    b.pages++;
  });
}

}  // namespace

int stats_row_of_account(int account, int node_count) noexcept {
  if (account == ACCOUNT_UNBOUND) return (node_count <= 1) ? 0 : ROW_UNBOUND;
  if (account >= 0 && account < ACCOUNT_NODES) return (account < node_count) ? account : ROW_UNBOUND;
  if (account == ACCOUNT_OS) return ROW_OUTSIDE;
  return ROW_META;
}

void stats_snapshot(MemorySnapshot* snap) noexcept {
  full_held_flush_own();  // the calling thread's held blocks are free, not the program's (heap/full_held.h)
  memset(static_cast<void*>(snap), 0, sizeof(*snap));
  const int node_count = topology().node_count;
  snap->node_count = node_count;
  for (int a = 0; a < ACCOUNT_COUNT; a++) {
    MemoryRow& r = snap->rows[stats_row_of_account(a, node_count)];
    const AccountCounters& c = os_counters.accounts[a];
    r.reserved += load(c.reserved);
    r.committed += load(c.committed);
    r.committed_peak += load(c.committed_peak);
    r.purged += load(c.purged);
  }
  WalkRows w{snap->rows, node_count};
  arenas_visit(&visit_arena, &w);
  segments_visit(&walk_segment, &w);
  for (int n = 0; n < node_count && n < NUMA_MAX_NODES; n++) {
    size_t local, remote, fallbacks;
    arenas_node_placement(n, &local, &remote, &fallbacks);
    snap->rows[n].local_segments = static_cast<int64_t>(local);
    snap->rows[n].remote_segments = static_cast<int64_t>(remote);
    snap->rows[n].fallbacks = static_cast<int64_t>(fallbacks);
  }
  for (int i = 0; i < ROW_TOTAL; i++) add_row(snap->rows[ROW_TOTAL], snap->rows[i]);
  snap->reserved_peak = load(os_counters.reserved_peak);
  snap->committed_peak = load(os_counters.committed_peak);
  snap->big_block_bytes_peak = load(stats_global.huge_bytes.peak);
}

int64_t stats_committed_now() noexcept {
  int64_t sum = 0;
  for (const AccountCounters& c : os_counters.accounts) sum += load(c.committed);
  return sum;
}

void stats_bins(int row, int node_count, BinFigures* bins) noexcept {
  full_held_flush_own();
  memset(static_cast<void*>(bins), 0, sizeof(BinFigures) * (BIN_HUGE + 1));
  WalkBins w{row, node_count, bins};
  segments_visit(&walk_segment_bins, &w);
}

}  // namespace mi

// ---------------------------------------------------------------------------
// Public API (mimalloc-numa.h)
// ---------------------------------------------------------------------------
using namespace mi;

extern "C" {

int mi_numa_stats(int node, mi_numa_stats_t* stats) mi_attr_noexcept {
  if (stats == nullptr) return EINVAL;
  const Topology& t = topology();
  int row;
  switch (node) {
    case MI_NUMA_STATS_TOTAL: row = ROW_TOTAL; break;
    case MI_NUMA_STATS_UNBOUND: row = ROW_UNBOUND; break;
    case MI_NUMA_STATS_OUTSIDE: row = ROW_OUTSIDE; break;
    case MI_NUMA_STATS_METADATA: row = ROW_META; break;
    default:
      if (node < 0 || node >= t.node_count) return EINVAL;
      row = node;
  }
  MemorySnapshot snap;
  stats_snapshot(&snap);
  const MemoryRow& r = snap.rows[row];
  auto z = [](int64_t v) { return v > 0 ? static_cast<size_t>(v) : size_t{0}; };
  memset(static_cast<void*>(stats), 0, sizeof(*stats));
  stats->node = node;
  stats->os_index = (node >= 0) ? t.nodes[node].os_index : -1;
  stats->reserved = z(r.reserved);
  stats->committed = z(r.committed);
  stats->in_use = z(r.segments);
  stats->purged = z(r.purged);
  stats->huge_pages_reserved = z(r.huge_pages);
  stats->huge_pages_in_use = z(r.huge_pages_in_use);
  stats->local_segments = z(r.local_segments);
  stats->remote_segments = z(r.remote_segments);
  stats->fallbacks = z(r.fallbacks);
  stats->blocks = z(r.blocks);
  stats->block_count = z(r.block_count);
  stats->big_blocks = z(r.big_blocks);
  stats->big_block_bytes = z(r.big_block_bytes);
  stats->purge_pending = z(r.purge_pending);
  return 0;
}

}  // extern "C"
