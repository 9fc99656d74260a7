// Unit tests of lib/arena/arena: exclusive arenas (mi_reserve_os_memory_ex,
// mi_manage_os_memory_ex) and heaps bound to them, first-fit reuse of freed
// blocks (and of freed blocks for larger segments beside them), delayed
// purging, the purge of what waits beyond the arena's peak (observed with mincore and the OS counters), and
// arena_alloc / arena_free called directly.
//
// Each test reserves an exclusive arena of its own, so no other allocation
// (gtest's, other tests') lands in it or schedules purges in it.
#include "arena/arena.h"

#include <gtest/gtest.h>
#include <mimalloc.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "common/options.h"
#include "common/test_point.h"
#include "os/os.h"
#include "segment/segmap.h"
#include "segment/segment.h"
#include "segment/thp.h"
#include "unit_util.h"

namespace {

// Arena count, bytes reserved and bytes held by segments, from arenas_visit
// (what the statistics read).
void arenas_stats(size_t* count, size_t* reserved, size_t* in_use, size_t* huge_pages) {
  struct Sum {
    size_t count, reserved, in_use, huge;
  } sum{};
  mi::arenas_visit(
      [](const mi::ArenaInfo& a, void* arg) {
        Sum* s = static_cast<Sum*>(arg);
        s->count++;
        s->reserved += a.reserved;
        s->in_use += a.blocks_in_use * mi::ARENA_BLOCK_SIZE;
        if (a.is_huge) s->huge += a.reserved / mi::HUGE_OS_PAGE_SIZE;
      },
      &sum);
  *count = sum.count;
  *reserved = sum.reserved;
  *in_use = sum.in_use;
  *huge_pages = sum.huge;
}

using mi::ARENA_BLOCK_SIZE;
constexpr size_t MiB = 1024 * 1024;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct ArenaTest : testing::Test {
  long saved_delay = 0, saved_mult = 0, saved_extend = 0, saved_show = 0;
  mi::OptionSource src_delay{}, src_mult{}, src_extend{}, src_show{};
  mi_arena_id_t id = 0;
  uint8_t* start = nullptr;
  size_t size = 0;

  void SetUp() override {
    saved_delay = mi::option_get(mi_option_purge_delay);
    saved_mult = mi::option_get(mi_option_arena_purge_mult);
    saved_extend = mi::option_get(mi_option_purge_extend_delay);
    src_delay = mi::option_source(mi_option_purge_delay, nullptr, nullptr);
    src_mult = mi::option_source(mi_option_arena_purge_mult, nullptr, nullptr);
    src_extend = mi::option_source(mi_option_purge_extend_delay, nullptr, nullptr);
    saved_show = mi::option_get(mi_option_show_errors);
    src_show = mi::option_source(mi_option_show_errors, nullptr, nullptr);
  }
  void TearDown() override {
    mi::option_set_from(mi_option_purge_delay, saved_delay, src_delay, nullptr, 0);
    mi::option_set_from(mi_option_arena_purge_mult, saved_mult, src_mult, nullptr, 0);
    mi::option_set_from(mi_option_purge_extend_delay, saved_extend, src_extend, nullptr, 0);
    mi::option_set_from(mi_option_show_errors, saved_show, src_show, nullptr, 0);
  }

  // An exclusive arena of `bytes`, committed.
  void reserve(size_t bytes) {
    ASSERT_EQ(mi_reserve_os_memory_ex(bytes, true, false, true, &id), 0);
    ASSERT_GT(id, 0);
    start = static_cast<uint8_t*>(mi_arena_area(id, &size));
    ASSERT_NE(start, nullptr);
    ASSERT_EQ(size, bytes);
  }
  bool inside(const void* p, size_t n = 1) const {
    const uint8_t* q = static_cast<const uint8_t*>(p);
    return q >= start && q + n <= start + size;
  }
};

// --- reservation, ids, contains --------------------------------------------

TEST_F(ArenaTest, ReserveExclusive) {
  reserve(64 * MiB);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(start) % ARENA_BLOCK_SIZE, 0u);
  EXPECT_TRUE(mi::arena_id_is_valid(id));
  EXPECT_TRUE(mi::arena_contains(start));
  EXPECT_TRUE(mi::arena_contains(start + size - 1));
  EXPECT_TRUE(mi::arena_contains(start + size / 2));
  int local = 0;
  EXPECT_FALSE(mi::arena_contains(&local));
  EXPECT_FALSE(mi::arena_contains(nullptr));
  EXPECT_FALSE(mi::arena_id_is_valid(0));
  EXPECT_FALSE(mi::arena_id_is_valid(-1));
  EXPECT_FALSE(mi::arena_id_is_valid(id + 100000));
  size_t sz = 77;
  EXPECT_EQ(mi_arena_area(0, &sz), nullptr);
  EXPECT_EQ(sz, 0u);
  // sizes are rounded up to whole blocks
  mi_arena_id_t id2 = 0;
  ASSERT_EQ(mi_reserve_os_memory_ex(5 * MiB, true, false, true, &id2), 0);
  size_t sz2 = 0;
  ASSERT_NE(mi_arena_area(id2, &sz2), nullptr);
  EXPECT_EQ(sz2, 8 * MiB);
  EXPECT_NE(id2, id);
}

TEST_F(ArenaTest, StatsCountTheArena) {
  size_t count0, reserved0, in_use0, huge0;
  arenas_stats(&count0, &reserved0, &in_use0, &huge0);
  reserve(16 * MiB);
  size_t count1, reserved1, in_use1, huge1;
  arenas_stats(&count1, &reserved1, &in_use1, &huge1);
  EXPECT_EQ(count1, count0 + 1);
  EXPECT_EQ(reserved1, reserved0 + 16 * MiB);
  mi::MemId memid;
  void* p = mi::arena_alloc(2 * ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &memid);
  ASSERT_NE(p, nullptr);
  size_t count2, reserved2, in_use2, huge2;
  arenas_stats(&count2, &reserved2, &in_use2, &huge2);
  EXPECT_EQ(in_use2, in_use1 + 2 * ARENA_BLOCK_SIZE);
  mi::arena_free(p, 2 * ARENA_BLOCK_SIZE, 2 * ARENA_BLOCK_SIZE, memid);
}

// --- arena_alloc / arena_free directly ----------------------------------------

TEST_F(ArenaTest, DirectAllocIsFirstFit) {
  mi_option_set(mi_option_purge_delay, -1);  // freed blocks stay dirty
  reserve(32 * MiB);                         // 8 blocks
  mi::MemId ma, mb, mc;
  uint8_t* a = static_cast<uint8_t*>(mi::arena_alloc(ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &ma));
  uint8_t* b = static_cast<uint8_t*>(mi::arena_alloc(2 * ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &mb));
  uint8_t* c = static_cast<uint8_t*>(mi::arena_alloc(ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &mc));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(a, start);
  EXPECT_EQ(b, start + ARENA_BLOCK_SIZE);
  EXPECT_EQ(c, start + 3 * ARENA_BLOCK_SIZE);
  EXPECT_EQ(ma.kind, mi::MemKind::arena);
  EXPECT_EQ(static_cast<int>(ma.arena_index), id - 1);
  EXPECT_EQ(ma.block_index, 0u);
  EXPECT_EQ(mb.block_index, 1u);
  EXPECT_EQ(mb.block_count, 2u);
  EXPECT_EQ(mc.block_index, 3u);
  EXPECT_TRUE(ma.initially_zero) << "fresh blocks are zero";
  EXPECT_TRUE(ma.initially_committed);
  EXPECT_TRUE(mi::arena_memid_is_suitable(ma, id));
  EXPECT_FALSE(mi::arena_memid_is_suitable(ma, 0)) << "exclusive: not for heaps that take any arena";
  memset(b, 0xab, 2 * ARENA_BLOCK_SIZE);

  // freeing b leaves a 2-block hole: a 1-block request takes its start
  mi::arena_free(b, 2 * ARENA_BLOCK_SIZE, 2 * ARENA_BLOCK_SIZE, mb);
  mi::MemId md;
  uint8_t* d = static_cast<uint8_t*>(mi::arena_alloc(ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &md));
  EXPECT_EQ(d, b);
  EXPECT_FALSE(md.initially_zero) << "reused, not purged: not known to be zero";
  // a 2-block request does not fit the 1-block rest of the hole: after c
  mi::MemId me;
  uint8_t* e = static_cast<uint8_t*>(mi::arena_alloc(2 * ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &me));
  EXPECT_EQ(e, start + 4 * ARENA_BLOCK_SIZE);
  // the rest: block 2, blocks 6 and 7; then the arena is full and a bound request fails
  std::vector<std::pair<void*, mi::MemId>> rest;
  for (;;) {
    mi::MemId m;
    void* p = mi::arena_alloc(ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &m);
    if (p == nullptr) break;
    EXPECT_TRUE(inside(p, ARENA_BLOCK_SIZE));
    rest.push_back({p, m});
    ASSERT_LE(rest.size(), 3u);
  }
  EXPECT_EQ(rest.size(), 3u);
  ASSERT_GE(rest.size(), 1u);
  EXPECT_EQ(rest[0].first, start + 2 * ARENA_BLOCK_SIZE);
  mi::MemId mf;
  EXPECT_EQ(mi::arena_alloc(ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &mf), nullptr)
      << "a request bound to a full arena never spills to the OS";
  for (auto& r : rest) mi::arena_free(r.first, ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, r.second);
  mi::arena_free(a, ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, ma);
  mi::arena_free(c, ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, mc);
  mi::arena_free(d, ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, md);
  mi::arena_free(e, 2 * ARENA_BLOCK_SIZE, 2 * ARENA_BLOCK_SIZE, me);
  // all free again: the whole arena in one run
  mi::MemId mall;
  void* all = mi::arena_alloc(size, ARENA_BLOCK_SIZE, true, false, id, -1, &mall);
  EXPECT_EQ(all, start);
  if (all != nullptr) mi::arena_free(all, size, size, mall);
}

TEST_F(ArenaTest, ImmediatePurgeMakesBlocksZeroAgain) {
  mi_option_set(mi_option_purge_delay, 0);  // purge at once on free
  reserve(16 * MiB);
  mi::MemId m1;
  uint8_t* p = static_cast<uint8_t*>(mi::arena_alloc(ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &m1));
  ASSERT_EQ(p, start);
  memset(p, 0x5c, ARENA_BLOCK_SIZE);
  size_t total = 0;
  EXPECT_EQ(unit::resident_pages(p, ARENA_BLOCK_SIZE, &total), total);
  const int64_t purged0 = mi::os_counters.purged.load();
  mi::arena_free(p, ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, m1);
  EXPECT_EQ(unit::resident_pages(p, ARENA_BLOCK_SIZE), 0u) << "purge_delay 0: purged on free";
  EXPECT_GE(mi::os_counters.purged.load() - purged0, static_cast<int64_t>(ARENA_BLOCK_SIZE));
  mi::MemId m2;
  uint8_t* q = static_cast<uint8_t*>(mi::arena_alloc(ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &m2));
  ASSERT_EQ(q, p);
  EXPECT_TRUE(m2.initially_zero) << "decommitted memory reads as zero";
  EXPECT_TRUE(m2.initially_committed);
  for (size_t i = 0; i < ARENA_BLOCK_SIZE; i += 4096) ASSERT_EQ(q[i], 0) << i;
  mi::arena_free(q, ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, m2);
}

// --- heaps in an arena ----------------------------------------------------------

TEST_F(ArenaTest, HeapInArenaAllocatesOnlyThere) {
  reserve(64 * MiB);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  EXPECT_EQ(heap->arena_id, id);
  std::vector<void*> blocks;
  for (size_t sz : {size_t{8}, size_t{100}, size_t{1000}, size_t{10000}, size_t{50000}, size_t{200000}, size_t{1500000},
                    size_t{6 * MiB}, size_t{20 * MiB}}) {
    void* p = mi_heap_malloc(heap, sz);
    ASSERT_NE(p, nullptr) << sz;
    EXPECT_TRUE(inside(p, sz)) << sz << " at " << p << " not in arena " << static_cast<void*>(start);
    mi::Segment* s = mi::segmap_segment_of(p);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->memid.kind, mi::MemKind::arena);
    EXPECT_EQ(static_cast<int>(s->memid.arena_index), id - 1);
    memset(p, 1, sz);
    blocks.push_back(p);
  }
  // the default heap never uses the exclusive arena
  void* d1 = mi_malloc(100);
  void* d2 = mi_malloc(6 * MiB);
  EXPECT_FALSE(inside(d1));
  EXPECT_FALSE(inside(d2));
  mi_free(d1);
  mi_free(d2);
  // beyond the arena: no memory (a bound heap never spills)
  mi_option_set(mi_option_show_errors, 0);
  void* big = mi_heap_malloc(heap, 100 * MiB);
  EXPECT_EQ(big, nullptr);
  for (void* p : blocks) mi_free(p);
  mi_heap_collect(heap, true);
  mi_heap_delete(heap);
}

TEST_F(ArenaTest, HugeBlockReusedAfterFree) {
  reserve(32 * MiB);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  void* h1 = mi_heap_malloc(heap, 6 * MiB);
  void* h2 = mi_heap_malloc(heap, 6 * MiB);
  ASSERT_NE(h1, nullptr);
  ASSERT_NE(h2, nullptr);
  mi::Segment* s1 = mi::segmap_segment_of(h1);
  EXPECT_EQ(reinterpret_cast<uint8_t*>(s1), start) << "the first segment takes the first blocks";
  // sized to the block (to the OS page), in two arena blocks
  EXPECT_GE(s1->segment_size, 6 * MiB);
  EXPECT_LT(s1->segment_size, 6 * MiB + 64 * 1024);
  mi_free(h1);
  void* h3 = mi_heap_malloc(heap, 6 * MiB);
  EXPECT_EQ(h3, h1) << "first fit: the freed blocks are used again";
  void* h4 = mi_heap_malloc(heap, 6 * MiB);
  EXPECT_NE(h4, h1);
  EXPECT_TRUE(inside(h4, 6 * MiB));
  mi_free(h2);
  mi_free(h3);
  mi_free(h4);
  mi_heap_delete(heap);
}

// --- delayed purge ---------------------------------------------------------------

// Polls until [p, p+n) has no resident page; returns the time it was first
// seen so (or -1 after `limit_ms`). Calls only arenas_try_purge, which
// allocates nothing.
int64_t wait_purged(const void* p, size_t n, int64_t limit_ms) {
  const int64_t deadline = now_ms() + limit_ms;
  for (;;) {
    mi::arenas_try_purge(false);
    const int64_t t = now_ms();
    if (unit::resident_pages(p, n) == 0) return t;
    if (t > deadline) return -1;
    usleep(1000);
  }
}

TEST_F(ArenaTest, FreedHugeBlockIsPurgedAfterTheDelayNotBefore) {
  const long delay = 50;
  mi_option_set(mi_option_purge_delay, delay);
  mi_option_set(mi_option_arena_purge_mult, 1);
  reserve(32 * MiB);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  const size_t sz = 6 * MiB;
  uint8_t* h = static_cast<uint8_t*>(mi_heap_malloc(heap, sz));
  ASSERT_NE(h, nullptr);
  ASSERT_TRUE(inside(h, sz));
  memset(h, 0x77, sz);
  size_t total = 0;
  ASSERT_EQ(unit::resident_pages(h, sz, &total), total);
  ASSERT_GT(total, 1000u);

  mi_collect(true);  // nothing else pending from earlier
  const int64_t purged0 = mi::os_counters.purged.load();
  const int64_t t_free = now_ms();
  mi_free(h);
  // at once (and the arena asked to purge): still resident
  mi::arenas_try_purge(false);
  const size_t res_now = unit::resident_pages(h, sz);
  const int64_t t_check = now_ms();
  if (t_check - t_free < delay - 10) {
    EXPECT_EQ(res_now, total) << "purged " << (t_check - t_free) << " ms after the free, before the delay";
  }
  EXPECT_GE(mi::arenas_next_purge_in_ms(), 0);
  EXPECT_LE(mi::arenas_next_purge_in_ms(), delay);

  const int64_t t_purged = wait_purged(h, sz, 5000);
  ASSERT_GE(t_purged, 0) << "not purged within 5 s of a " << delay << " ms delay";
  EXPECT_GE(t_purged - t_free, delay - 1) << "purged before the delay";
  EXPECT_GE(mi::os_counters.purged.load() - purged0, static_cast<int64_t>(sz));
  mi_heap_delete(heap);
}

TEST_F(ArenaTest, PurgeThroughCollect) {
  // The same observed through the public mi_collect(false).
  mi_option_set(mi_option_purge_delay, 20);
  mi_option_set(mi_option_arena_purge_mult, 1);
  reserve(16 * MiB);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  const size_t sz = 5 * MiB;
  uint8_t* h = static_cast<uint8_t*>(mi_heap_malloc(heap, sz));
  ASSERT_NE(h, nullptr);
  memset(h, 0x11, sz);
  const int64_t t_free = now_ms();
  mi_free(h);
  const int64_t deadline = t_free + 5000;
  int64_t t_purged = -1;
  while (now_ms() < deadline) {
    mi_collect(false);
    if (unit::resident_pages(h, sz) == 0) {
      t_purged = now_ms();
      break;
    }
    usleep(1000);
  }
  ASSERT_GE(t_purged, 0);
  EXPECT_GE(t_purged - t_free, 19);
  mi_heap_delete(heap);
}

TEST_F(ArenaTest, ReusedMemoryIsNotPurged) {
  const long delay = 20;
  mi_option_set(mi_option_purge_delay, delay);
  mi_option_set(mi_option_arena_purge_mult, 1);
  reserve(16 * MiB);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  const size_t sz = 6 * MiB;
  uint8_t* h = static_cast<uint8_t*>(mi_heap_malloc(heap, sz));
  ASSERT_NE(h, nullptr);
  memset(h, 0x22, sz);
  size_t total = 0;
  ASSERT_EQ(unit::resident_pages(h, sz, &total), total);

  mi_collect(true);  // flush every pending purge of the process first
  const int64_t purged0 = mi::os_counters.purged.load();
  mi_free(h);
  uint8_t* again = static_cast<uint8_t*>(mi_heap_malloc(heap, sz));  // at once: cancels the purge
  ASSERT_EQ(again, h);
  // well past the delay, with the arena asked to purge all along
  const int64_t until = now_ms() + 4 * delay;
  while (now_ms() < until) {
    mi::arenas_try_purge(false);
    usleep(2000);
  }
  mi::arenas_try_purge(false);
  EXPECT_EQ(unit::resident_pages(again, sz), total) << "memory in use was purged";
  EXPECT_EQ(mi::os_counters.purged.load(), purged0) << "something was purged";
  // (the first words hold free-list links; a purge would have zeroed the rest)
  for (size_t i = 4096; i < sz; i += 4096) ASSERT_EQ(again[i], 0x22) << "contents lost at " << i;
  mi_free(again);
  mi_heap_delete(heap);
}

TEST_F(ArenaTest, PurgeDelayMinusOneNeverPurges) {
  mi_collect(true);  // purges of earlier tests' arenas are done now
  mi_option_set(mi_option_purge_delay, -1);
  mi_option_set(mi_option_arena_purge_mult, 1);
  reserve(16 * MiB);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  const size_t sz = 6 * MiB;
  uint8_t* h = static_cast<uint8_t*>(mi_heap_malloc(heap, sz));
  ASSERT_NE(h, nullptr);
  memset(h, 0x33, sz);
  size_t total = 0;
  ASSERT_EQ(unit::resident_pages(h, sz, &total), total);
  mi_free(h);
  const int64_t until = now_ms() + 100;
  while (now_ms() < until) {
    mi_collect(false);
    mi::arenas_try_purge(false);
    usleep(5000);
  }
  EXPECT_EQ(unit::resident_pages(h, sz), total) << "purge_delay -1 purged";
  EXPECT_EQ(mi::arenas_next_purge_in_ms(), -1) << "nothing may be scheduled";
  // not even a forced purge: nothing was scheduled
  mi::arenas_try_purge(true);
  EXPECT_EQ(unit::resident_pages(h, sz), total) << "a forced purge purged memory freed with purge_delay -1";
  mi_heap_delete(heap);
}

TEST_F(ArenaTest, PendingPurgeIsPutOffAtMostTwiceTheDelay) {
  // More frees while a purge is pending put it off by purge_extend_delay,
  // but never past twice the delay from the first: here the extension is
  // 10 s, the purge must still come after ~2 * 40 ms.
  const long delay = 40;
  mi_option_set(mi_option_purge_delay, delay);
  mi_option_set(mi_option_arena_purge_mult, 1);
  mi_option_set(mi_option_purge_extend_delay, 10000);
  reserve(32 * MiB);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  const size_t sz = 6 * MiB;
  uint8_t* h1 = static_cast<uint8_t*>(mi_heap_malloc(heap, sz));
  uint8_t* h2 = static_cast<uint8_t*>(mi_heap_malloc(heap, sz));
  ASSERT_NE(h1, nullptr);
  ASSERT_NE(h2, nullptr);
  memset(h1, 1, sz);
  memset(h2, 2, sz);
  mi_collect(true);
  const int64_t t0 = now_ms();
  mi_free(h1);  // schedules the arena's purge at t0 + delay
  mi_free(h2);  // puts it off: to t0 + 2 * delay at most
  const int64_t t1 = now_ms();
  const int64_t t_purged = wait_purged(h1, sz, 5000);
  ASSERT_GE(t_purged, 0) << "the pending purge was put off by the full extension";
  EXPECT_GE(t_purged - t0, delay - 1) << "purged before the delay";
  if (t1 - t0 < delay / 2) {  // (the second free came before any purge could run)
    EXPECT_GE(t_purged - t0, 2 * delay - 1) << "the pending purge was not put off (up to its deadline)";
  }
  EXPECT_EQ(wait_purged(h2, sz, 1000) >= 0, true) << "the second block was not purged with the first";
  mi_heap_delete(heap);
}

// --- freed blocks reused for other sizes, and the resident cap ---------------------

long minor_faults() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

// Bytes of the arena `arena_id` waiting for their purge, committed (the
// statistics' "waiting for a purge": arenas_visit).
size_t purge_pending_of(int arena_id) {
  struct Find {
    int id;
    size_t pending;
  } find{arena_id, 0};
  mi::arenas_visit(
      [](const mi::ArenaInfo& a, void* arg) {
        Find* f = static_cast<Find*>(arg);
        if (a.id == f->id) f->pending = a.purge_pending;
      },
      &find);
  return find.pending;
}

TEST_F(ArenaTest, FreedBlocksServeALargerSegmentBesideThem) {
  // A 4-block segment after a 3-block one was freed, beside 4 free blocks
  // that were purged: it takes the 3 freed blocks (resident, no page
  // faults) and one purged one, not the 4 purged blocks first fit found.
  mi_option_set(mi_option_purge_delay, 10000);  // nothing purged by time in this test
  mi_option_set(mi_option_arena_purge_mult, 1);
  reserve(32 * MiB);  // 8 blocks
  mi::MemId ma, mb, mc;
  uint8_t* a = static_cast<uint8_t*>(mi::arena_alloc(4 * ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &ma));
  uint8_t* b = static_cast<uint8_t*>(mi::arena_alloc(3 * ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &mb));
  uint8_t* c = static_cast<uint8_t*>(mi::arena_alloc(ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &mc));
  ASSERT_EQ(a, start);
  ASSERT_EQ(b, start + 4 * ARENA_BLOCK_SIZE);
  ASSERT_EQ(c, start + 7 * ARENA_BLOCK_SIZE);
  memset(b, 0x3b, 3 * ARENA_BLOCK_SIZE);
  mi_option_set(mi_option_purge_delay, 0);
  mi::arena_free(a, 4 * ARENA_BLOCK_SIZE, 4 * ARENA_BLOCK_SIZE, ma);  // purged at once
  mi_option_set(mi_option_purge_delay, 10000);
  mi::arena_free(b, 3 * ARENA_BLOCK_SIZE, 3 * ARENA_BLOCK_SIZE, mb);  // waits for its purge
  EXPECT_EQ(purge_pending_of(id), 3 * ARENA_BLOCK_SIZE);
  size_t total = 0;
  EXPECT_EQ(unit::resident_pages(b, 3 * ARENA_BLOCK_SIZE, &total), total);

  mi::MemId md;
  uint8_t* d = static_cast<uint8_t*>(mi::arena_alloc(4 * ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &md));
  EXPECT_EQ(d, start + 3 * ARENA_BLOCK_SIZE) << "the run with the freed blocks in it, not the lowest free run";
  EXPECT_FALSE(md.initially_zero) << "freed blocks reused: not known to be zero";
  EXPECT_EQ(purge_pending_of(id), 0u) << "every block waiting for a purge is in use again";
  EXPECT_EQ(unit::resident_pages(b, 3 * ARENA_BLOCK_SIZE), total) << "the reused blocks were purged";
  for (size_t i = 4096; i < 3 * ARENA_BLOCK_SIZE; i += 4096) ASSERT_EQ(b[i], 0x3b) << "contents lost at " << i;
  if (d != nullptr) mi::arena_free(d, 4 * ARENA_BLOCK_SIZE, 4 * ARENA_BLOCK_SIZE, md);
  mi::arena_free(c, ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, mc);
  mi::arenas_try_purge(true);
}

TEST_F(ArenaTest, FreedHugeBlockServesALargerOneThroughTheHeap) {
  // The same through mi_heap_malloc / mi_free: a freed 20 MiB block (6 arena
  // blocks) and the 2 purged blocks below it serve a 28 MiB block (8), not
  // the 8 purged blocks at the arena's start that first fit took.
  mi_option_set(mi_option_purge_delay, 10000);
  mi_option_set(mi_option_arena_purge_mult, 1);
  reserve(128 * MiB);  // 32 blocks
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  uint8_t* x = static_cast<uint8_t*>(mi_heap_malloc(heap, 36 * MiB));  // blocks 0-9
  uint8_t* a = static_cast<uint8_t*>(mi_heap_malloc(heap, 20 * MiB));  // 10-15
  uint8_t* y = static_cast<uint8_t*>(mi_heap_malloc(heap, 6 * MiB));   // 16-17
  ASSERT_NE(x, nullptr);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(y, nullptr);
  uint8_t* a_seg = reinterpret_cast<uint8_t*>(mi::segmap_segment_of(a));
  ASSERT_EQ(a_seg, start + 10 * ARENA_BLOCK_SIZE);
  memset(a, 0x4d, 20 * MiB);
  mi_option_set(mi_option_purge_delay, 0);
  mi_free(x);  // purged at once
  mi_option_set(mi_option_purge_delay, 10000);
  mi_free(a);  // waits for its purge
  size_t total = 0;
  const size_t resident_before = unit::resident_pages(a_seg, 20 * MiB, &total);
  // all resident but, in secure mode, the guard page after the segment's
  // header (protected, never touched), unless a transparent huge page may
  // back the huge segment ("always"): the header's first write faulted the
  // 2 MiB around it, guard page included, before it was protected
  if (mi::secure_enabled() && !mi::thp_may_back_huge_segments()) {
    EXPECT_EQ(resident_before + 1, total);
  } else {
    EXPECT_EQ(resident_before, total);
  }

  uint8_t* c = static_cast<uint8_t*>(mi_heap_malloc(heap, 28 * MiB));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(reinterpret_cast<uint8_t*>(mi::segmap_segment_of(c)), start + 8 * ARENA_BLOCK_SIZE)
      << "not placed over the freed block";
  EXPECT_EQ(unit::resident_pages(a_seg, 20 * MiB), resident_before) << "the reused memory was purged";
  // writing it faults in the 8 MiB that were purged, not the 20 that were not
  const long faults0 = minor_faults();
  memset(c, 0x4e, 28 * MiB);
  const long faults = minor_faults() - faults0;
  EXPECT_LT(faults, static_cast<long>(12 * MiB / 4096)) << "page faults writing the 28 MiB block";
  mi_free(c);
  mi_free(y);
  mi_heap_delete(heap);
  mi::arenas_try_purge(true);
}

TEST_F(ArenaTest, BlocksWaitingBeyondThePeakInUseArePurgedWhenTheArenaGrows) {
  // 8 blocks freed, then a 10-block segment that does not fit them: the
  // arena had at most 9 blocks in use, now 11; of the 8 waiting it keeps 2
  // (the least slack, arena.cpp arena_purge_excess) and purges the 6
  // lowest at once, long before their delay.
  mi_option_set(mi_option_purge_delay, 10000);
  mi_option_set(mi_option_arena_purge_mult, 1);
  reserve(128 * MiB);  // 32 blocks
  mi::MemId ma, mb;
  uint8_t* a = static_cast<uint8_t*>(mi::arena_alloc(8 * ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &ma));
  uint8_t* b = static_cast<uint8_t*>(mi::arena_alloc(ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &mb));
  ASSERT_EQ(a, start);
  ASSERT_EQ(b, start + 8 * ARENA_BLOCK_SIZE);
  memset(a, 0x5a, 8 * ARENA_BLOCK_SIZE);
  size_t total = 0;
  ASSERT_EQ(unit::resident_pages(a, 8 * ARENA_BLOCK_SIZE, &total), total);
  mi::arena_free(a, 8 * ARENA_BLOCK_SIZE, 8 * ARENA_BLOCK_SIZE, ma);
  EXPECT_EQ(purge_pending_of(id), 8 * ARENA_BLOCK_SIZE) << "freed: waiting for the delay";
  EXPECT_EQ(unit::resident_pages(a, 8 * ARENA_BLOCK_SIZE), total);

  const int64_t purged0 = mi::os_counters.purged.load();
  mi::MemId md;
  uint8_t* d =
      static_cast<uint8_t*>(mi::arena_alloc(10 * ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &md));
  ASSERT_EQ(d, start + 9 * ARENA_BLOCK_SIZE);
  EXPECT_EQ(purge_pending_of(id), 2 * ARENA_BLOCK_SIZE) << "all 8 freed blocks still wait for their purge";
  EXPECT_EQ(unit::resident_pages(a, 6 * ARENA_BLOCK_SIZE), 0u) << "the 6 lowest not purged";
  EXPECT_EQ(unit::resident_pages(a + 6 * ARENA_BLOCK_SIZE, 2 * ARENA_BLOCK_SIZE), total / 4)
      << "the highest 2 purged too";
  EXPECT_GE(mi::os_counters.purged.load() - purged0, static_cast<int64_t>(6 * ARENA_BLOCK_SIZE));

  // Freed again and taken by a segment that fits in what waits: nothing
  // more becomes resident, and nothing is purged.
  mi::arena_free(d, 10 * ARENA_BLOCK_SIZE, 10 * ARENA_BLOCK_SIZE, md);
  const int64_t purged1 = mi::os_counters.purged.load();
  mi::MemId me;
  uint8_t* e = static_cast<uint8_t*>(mi::arena_alloc(8 * ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &me));
  EXPECT_EQ(e, d) << "the freed 10-block run, resident";
  EXPECT_EQ(mi::os_counters.purged.load(), purged1);
  EXPECT_EQ(purge_pending_of(id), 4 * ARENA_BLOCK_SIZE);
  if (e != nullptr) mi::arena_free(e, 8 * ARENA_BLOCK_SIZE, 8 * ARENA_BLOCK_SIZE, me);
  mi::arena_free(b, ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, mb);
  mi::arenas_try_purge(true);
}

#if MI_FAULT_INJECTION
namespace {
// The purge thread's walk at the moment a freeing thread has scheduled its
// blocks' purge and still holds them (arena_free, between
// arena_schedule_purge and the unclaim): it cannot take them, so it leaves
// their purge bits; the arena must still have an expiry for them.
std::atomic<int> purges_at_test_point{0};
void purge_at_scheduled(mi::TestPoint point) {
  if (point != mi::TestPoint::arena_purge_scheduled) return;
  purges_at_test_point.fetch_add(1);
  mi::arenas_try_purge(true);
}
}  // namespace
#endif

TEST_F(ArenaTest, APurgeThatFindsFreedBlocksStillHeldPurgesThemLater) {
#if !MI_FAULT_INJECTION
  GTEST_SKIP() << "needs the test points of a -Dfault_injection=true build (tools/dev's debug build)";
#else
  // Before: the forced purge reset the arena's expiry, skipped the held
  // blocks and left their bits with no expiry: they stayed resident until
  // the arena's next free.
  mi_option_set(mi_option_purge_delay, 10000);
  mi_option_set(mi_option_arena_purge_mult, 1);
  reserve(128 * MiB);  // 32 blocks
  mi::MemId ma;
  uint8_t* a = static_cast<uint8_t*>(mi::arena_alloc(2 * ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &ma));
  ASSERT_NE(a, nullptr);
  memset(a, 0x5a, 2 * ARENA_BLOCK_SIZE);
  size_t total = 0;
  ASSERT_EQ(unit::resident_pages(a, 2 * ARENA_BLOCK_SIZE, &total), total);
  purges_at_test_point.store(0);
  mi::test_point_hook.store(&purge_at_scheduled);
  mi::arena_free(a, 2 * ARENA_BLOCK_SIZE, 2 * ARENA_BLOCK_SIZE, ma);
  mi::test_point_hook.store(nullptr);
  ASSERT_EQ(purges_at_test_point.load(), 1);
  EXPECT_EQ(unit::resident_pages(a, 2 * ARENA_BLOCK_SIZE), total) << "purged while the freeing thread held it";
  EXPECT_GE(mi::arenas_next_purge_in_ms(), 0) << "its purge bits left with no expiry";
  mi::arenas_try_purge(true);
  EXPECT_EQ(unit::resident_pages(a, 2 * ARENA_BLOCK_SIZE), 0u) << "never purged";
#endif
}

// A new thread's first small segment, in arena `id` (eager_commit_delay
// `eager_delay`: 0 commits it whole, 1 page by page): the pages of it past
// its first two that are resident once everything due or not has been
// purged (mi_collect(true)) while the segment holds a 64 B block; *seg: where
// the segment lies.
size_t resident_under_new_segment(mi_arena_id_t id, long eager_delay, uint8_t** seg) {
  const long saved_eager_delay = mi_option_get(mi_option_eager_commit_delay);
  mi_option_set(mi_option_eager_commit_delay, eager_delay);
  size_t resident = SIZE_MAX;
  *seg = nullptr;
  std::thread t([&] {
    mi_heap_t* th = mi_heap_new_in_arena(id);
    void* p = (th != nullptr) ? mi_heap_malloc(th, 64) : nullptr;
    if (p == nullptr) return;
    *seg = reinterpret_cast<uint8_t*>(mi::segmap_segment_of(p));
    mi_collect(true);
    resident = unit::resident_pages(*seg + 128 * 1024, ARENA_BLOCK_SIZE - 128 * 1024);
    mi_free(p);
  });
  t.join();
  mi_option_set(mi_option_eager_commit_delay, saved_eager_delay);
  return resident;
}

TEST_F(ArenaTest, ASegmentOverBlocksFreedPartlyCommittedLeavesNoneOfTheirPagesResident) {
  // A 6 MiB block's segment is freed partly committed (its last arena block
  // only up to the block's end): its blocks wait for their purge, resident.
  // A new thread's first segment commits page by page (eager_commit_delay)
  // and takes the first of them (resident blocks first). Before, it took
  // them as uncommitted, which cancelled their purge: the old block's pages
  // that the new segment never used stayed resident for the segment's life
  // (992 of them here), and nothing could purge them, mi_collect(true)
  // included (the fork test of the purge thread failed on it under ASan).
  mi_option_set(mi_option_purge_delay, 10000);
  mi_option_set(mi_option_arena_purge_mult, 1);
  reserve(32 * MiB);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  uint8_t* h = static_cast<uint8_t*>(mi_heap_malloc(heap, 6 * MiB));
  ASSERT_NE(h, nullptr);
  ASSERT_EQ(reinterpret_cast<uint8_t*>(mi::segmap_segment_of(h)), start);
  memset(h, 0x6b, 6 * MiB);
  mi_free(h);  // waits for its purge, resident
  size_t total = 0;
  ASSERT_EQ(unit::resident_pages(start + 128 * 1024, ARENA_BLOCK_SIZE - 128 * 1024, &total), total);
  uint8_t* seg = nullptr;
  const size_t resident = resident_under_new_segment(id, 4, &seg);
  ASSERT_EQ(seg, start) << "the new segment did not take the freed block's first arena block";
  EXPECT_EQ(resident, 0u) << "pages of the freed block stayed resident under the new segment";
  mi_heap_delete(heap);
}

TEST_F(ArenaTest, ASegmentOverCommittedFreedBlocksLeavesNoneOfTheirPagesResident) {
  // The same over a block freed whole and committed, taken by a segment that
  // commits at once: the pages it never used kept the old owner's data
  // resident for its life (992 here), committed but never scheduled for a purge.
  mi_option_set(mi_option_purge_delay, 10000);
  mi_option_set(mi_option_arena_purge_mult, 1);
  reserve(32 * MiB);
  mi::MemId m;
  uint8_t* b = static_cast<uint8_t*>(mi::arena_alloc(ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, true, false, id, -1, &m));
  ASSERT_EQ(b, start);
  memset(b, 0x6c, ARENA_BLOCK_SIZE);
  mi::arena_free(b, ARENA_BLOCK_SIZE, ARENA_BLOCK_SIZE, m);  // waits for its purge, resident
  uint8_t* seg = nullptr;
  const size_t resident = resident_under_new_segment(id, 0, &seg);
  ASSERT_EQ(seg, start) << "the new segment did not take the freed block";
  EXPECT_EQ(resident, 0u) << "pages of the freed block stayed resident under the new segment";
}

// --- user-provided memory ---------------------------------------------------------

TEST_F(ArenaTest, ManageOsMemoryExclusive) {
  const size_t len = 36 * MiB;
  void* region = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(region, MAP_FAILED);
  // (never unmapped: the arena stays registered for the life of the process)
  mi_arena_id_t mid = 0;
  ASSERT_TRUE(mi_manage_os_memory_ex(region, len, true, false, true, -1, true, &mid));
  ASSERT_GT(mid, 0);
  size_t area_size = 0;
  uint8_t* area = static_cast<uint8_t*>(mi_arena_area(mid, &area_size));
  ASSERT_NE(area, nullptr);
  EXPECT_GE(area, static_cast<uint8_t*>(region));
  EXPECT_LE(area + area_size, static_cast<uint8_t*>(region) + len);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(area) % ARENA_BLOCK_SIZE, 0u);
  EXPECT_GE(area_size, 32 * MiB);
  if (area > static_cast<uint8_t*>(region)) {
    EXPECT_FALSE(mi::arena_contains(region)) << "the unaligned head is not used";
  }
  EXPECT_TRUE(mi::arena_contains(area));

  mi_heap_t* heap = mi_heap_new_in_arena(mid);
  ASSERT_NE(heap, nullptr);
  std::vector<void*> blocks;
  for (size_t sz : {size_t{16}, size_t{3000}, size_t{40000}, size_t{300000}, size_t{10 * MiB}}) {
    void* p = mi_heap_zalloc(heap, sz);
    ASSERT_NE(p, nullptr) << sz;
    const uint8_t* q = static_cast<const uint8_t*>(p);
    EXPECT_TRUE(q >= area && q + sz <= area + area_size) << sz << " at " << p;
    for (size_t i = 0; i < sz; i += 512) ASSERT_EQ(q[i], 0) << sz;
    memset(p, 0x44, sz);
    mi::Segment* s = mi::segmap_segment_of(p);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->memid.kind, mi::MemKind::arena);
    EXPECT_EQ(static_cast<int>(s->memid.arena_index), mid - 1);
    blocks.push_back(p);
  }
  for (void* p : blocks) mi_free(p);
  mi_heap_collect(heap, true);
  mi_heap_delete(heap);
  // nothing unmapped the region (mincore fails on unmapped memory)
  EXPECT_NE(unit::resident_pages(region, len), SIZE_MAX);
}

TEST_F(ArenaTest, ManageOsMemoryRejectsRangesWithoutABlock) {
  mi_option_set(mi_option_show_errors, 0);
  mi_arena_id_t mid = 99;
  EXPECT_FALSE(mi_manage_os_memory_ex(nullptr, 64 * MiB, true, false, true, -1, true, &mid));
  EXPECT_EQ(mid, 0);
  static char small_region[64 * 1024];
  EXPECT_FALSE(mi_manage_os_memory_ex(small_region, sizeof(small_region), true, false, false, -1, true, &mid));
  EXPECT_EQ(mid, 0);
}

// --- options that steer arenas ---------------------------------------------------------

TEST_F(ArenaTest, DisallowArenaAllocTakesSegmentsFromTheOS) {
  mi::OptionSource src = mi::option_source(mi_option_disallow_arena_alloc, nullptr, nullptr);
  const long old = mi::option_get(mi_option_disallow_arena_alloc);
  mi_option_set(mi_option_disallow_arena_alloc, 1);
  void* p = mi_malloc(6 * MiB);
  ASSERT_NE(p, nullptr);
  mi::Segment* s = mi::segmap_segment_of(p);
  EXPECT_EQ(s->memid.kind, mi::MemKind::os);
  EXPECT_FALSE(mi::arena_contains(p));
  mi_free(p);
  // a heap that asks for an arena by id still gets it
  reserve(16 * MiB);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  void* q = mi_heap_malloc(heap, 6 * MiB);
  EXPECT_TRUE(inside(q, 6 * MiB));
  mi_free(q);
  mi_heap_delete(heap);
  mi::option_set_from(mi_option_disallow_arena_alloc, old, src, nullptr, 0);
  void* r = mi_malloc(6 * MiB);
  EXPECT_EQ(mi::segmap_segment_of(r)->memid.kind, mi::MemKind::arena);
  mi_free(r);
}

// Run in a child with MIMALLOC_RESERVE_OS_MEMORY=64MiB, MIMALLOC_ARENA_RESERVE=32MiB.
TEST(ArenaChild, DISABLED_StartupReservation) {
  // arena 1 was reserved at start-up with the reserve_os_memory size
  size_t size1 = 0;
  void* a1 = mi_arena_area(1, &size1);
  ASSERT_NE(a1, nullptr);
  EXPECT_EQ(size1, 64 * MiB);
  EXPECT_EQ(mi_option_get_size(mi_option_arena_reserve), 32 * MiB);
  // fill it: the next arena reserved on demand has the arena_reserve size
  std::vector<void*> blocks;
  size_t count0 = 0, reserved0 = 0, in_use0 = 0, huge0 = 0;
  arenas_stats(&count0, &reserved0, &in_use0, &huge0);
  for (int i = 0; i < 20; i++) blocks.push_back(mi_malloc(7 * MiB));  // 8 MiB segments
  size_t count1 = 0, reserved1 = 0, in_use1 = 0, huge1 = 0;
  arenas_stats(&count1, &reserved1, &in_use1, &huge1);
  EXPECT_GT(count1, count0);
  for (size_t id = count0 + 1; id <= count1; id++) {
    size_t sz = 0;
    ASSERT_NE(mi_arena_area(static_cast<mi_arena_id_t>(id), &sz), nullptr);
    EXPECT_EQ(sz, 32 * MiB) << "arena " << id;
  }
  for (void* p : blocks) mi_free(p);
}

TEST(ArenaOptions, StartupReservationAndArenaReserveSize) {
  unit::ChildResult r = unit::run_child("ArenaChild.DISABLED_StartupReservation",
                                        {"MIMALLOC_RESERVE_OS_MEMORY=64MiB", "MIMALLOC_ARENA_RESERVE=32MiB"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

// Run in a child with MIMALLOC_DISALLOW_OS_ALLOC=1 and a 32 MiB arena reserved
// at start-up: allocations come from it, and fail (with an error) beyond it.
TEST(ArenaChild, DISABLED_DisallowOsAlloc) {
  size_t size1 = 0;
  uint8_t* a1 = static_cast<uint8_t*>(mi_arena_area(1, &size1));
  ASSERT_NE(a1, nullptr);
  void* small = mi_malloc(100);
  void* mid = mi_malloc(3 * MiB);
  EXPECT_TRUE(mi::arena_contains(small));
  EXPECT_TRUE(mi::arena_contains(mid));
  mi_option_set(mi_option_show_errors, 0);
  errno = 0;
  void* too_big = mi_malloc(100 * MiB);
  EXPECT_EQ(too_big, nullptr) << "memory beyond the reserved arena came from the OS";
  EXPECT_EQ(errno, ENOMEM);
  size_t count = 0, reserved = 0, in_use = 0, huge = 0;
  arenas_stats(&count, &reserved, &in_use, &huge);
  EXPECT_EQ(count, 1u) << "a new arena was reserved";
  mi_free(small);
  mi_free(mid);
}

TEST(ArenaOptions, DisallowOsAllocOnlyUsesReservedArenas) {
  unit::ChildResult r = unit::run_child("ArenaChild.DISABLED_DisallowOsAlloc",
                                        {"MIMALLOC_RESERVE_OS_MEMORY=32MiB", "MIMALLOC_DISALLOW_OS_ALLOC=1"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

}  // namespace
