// Unit tests of lib/heap/abandoned_purge.cpp: the free blocks of an exited
// thread's pages (pages that still hold live blocks) are purged after
// purge_delay and not before, the free lists parked meanwhile are rebuilt by
// whoever takes the segment over, and the live blocks are untouched.
#include "heap/abandoned_purge.h"

#include <gtest/gtest.h>
#include <mimalloc.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "common/options.h"
#include "heap/heap.h"
#include "heap/page.h"
#include "option_guard.h"
#include "os/os.h"
#include "segment/abandon.h"
#include "segment/purger.h"
#include "segment/segment.h"
#include "unit_util.h"

namespace {

using mi::Page;
using mi::Segment;
constexpr size_t KiB = 1024;
constexpr size_t BLOCK = 8 * KiB;  // 8 blocks per 64 KiB small page
constexpr size_t COUNT = 8 * 8;    // eight pages or so

using unit::OptionGuard;

Segment* seg(const void* p) { return mi::segmap_segment_of(p); }
Page* page_of(const void* p) { return mi::segment_page_of(seg(p), p); }

uint8_t tag_of(const void* p) { return static_cast<uint8_t>(reinterpret_cast<uintptr_t>(p) >> 13); }

struct Exited {
  std::vector<void*> live;   // one block per page, filled with tag_of
  std::vector<void*> freed;  // the others, freed by the thread before it exited
};

// A thread fills eight small pages or so with 8 KiB blocks, frees all but
// one block of each page and exits: its segment is abandoned with eight partly
// used pages, whose free blocks the segment's page purge never sees.
Exited exit_with_sparse_pages() {
  Exited e;
  std::thread([&] {
    std::vector<void*> v;
    for (size_t i = 0; i < COUNT; i++) {
      void* p = mi_malloc(BLOCK);
      memset(p, tag_of(p), BLOCK);
      v.push_back(p);
    }
    // the first block of each page stays (page 0, after the segment's
    // header, holds fewer blocks than the others)
    const Page* last = nullptr;
    for (size_t i = 0; i < COUNT; i++) {
      if (page_of(v[i]) != last) e.live.push_back(v[i]);
      else e.freed.push_back(v[i]);
      last = page_of(v[i]);
    }
    for (void* p : e.freed) mi_free(p);
    v.clear();
    v.shrink_to_fit();
  }).join();
  return e;
}

bool intact(const void* p) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  for (size_t k = 0; k < BLOCK; k++) {
    if (b[k] != tag_of(p)) return false;
  }
  return true;
}

// OS pages of the freed blocks still resident (past each block's first OS
// page: a list not parked keeps its links there).
size_t resident_of(const std::vector<void*>& blocks) {
  size_t n = 0;
  for (void* p : blocks) n += unit::resident_pages(static_cast<uint8_t*>(p), BLOCK);
  return n;
}

TEST(AbandonedPurge, FreeBlocksArePurgedAfterTheDelayNotBefore) {
  OptionGuard g(mi_option_purge_delay);
  mi_option_set(mi_option_purge_delay, 60000);
  mi_collect(true);  // the main heap takes whatever was abandoned before
  ASSERT_EQ(mi::abandoned_count(), 0u);
  Exited e = exit_with_sparse_pages();
  Segment* s = seg(e.live[0]);
  for (void* p : e.live) ASSERT_EQ(seg(p), s);
  ASSERT_EQ(s->thread_id.load(), 0u) << "abandoned";
  const size_t resident0 = resident_of(e.freed);
  ASSERT_GT(resident0, e.freed.size()) << "the freed blocks are resident after the exit";

  // not due: nothing purged, the lists as they were
  EXPECT_EQ(mi::heap_purge_abandoned(false), 0u);
  mi_collect(false);
  for (void* p : e.live) EXPECT_FALSE(page_of(p)->free_parked);
  EXPECT_EQ(resident_of(e.freed), resident0) << "purged before purge_delay";

  // due (the delay shortened to 1 ms: due 10 ms after the exit, arena_purge_mult 10)
  mi_option_set(mi_option_purge_delay, 1);
  usleep(30000);  // more than purge_delay * arena_purge_mult (10 ms)
  // any thread's collect (or allocation slow path) does it
  const int64_t purged0 = mi::os_counters.accounts[s->memid.account].purged.load();
  mi_collect(false);
  const int64_t discarded = mi::os_counters.accounts[s->memid.account].purged.load() - purged0;
  EXPECT_GE(discarded, static_cast<int64_t>(e.freed.size() * BLOCK * 3 / 4)) << "most of the free blocks' memory";
  EXPECT_EQ(resident_of(e.freed), 0u) << "free blocks still resident after the purge";
  EXPECT_EQ(mi::abandoned_count(), 1u) << "the segment went back on the abandoned list";
  EXPECT_EQ(s->thread_id.load(), 0u);
  for (void* p : e.live) {
    EXPECT_TRUE(page_of(p)->free_parked);
    EXPECT_TRUE(intact(p)) << "a live block changed";
  }
  EXPECT_EQ(mi::heap_purge_abandoned(false), 0u) << "purged once per abandonment";

  // Another thread takes the segment over: the lists are rebuilt, it gets
  // exactly the freed blocks back (and none of the live ones), readable
  // and writable.
  mi_option_set(mi_option_purge_delay, 60000);
  std::set<void*> freed(e.freed.begin(), e.freed.end());
  size_t from_freed = 0, overlaps = 0;
  bool valid = false;
  std::thread([&] {
    std::vector<void*> v;
    // as many as the segment has free (a page the exit emptied holds 8)
    for (size_t i = 0; i < e.freed.size() + 8; i++) {
      void* p = mi_malloc(BLOCK);
      if (freed.count(p) != 0) from_freed++;
      for (void* l : e.live) {
        if (p == l) overlaps++;
      }
      memset(p, 0x77, BLOCK);
      v.push_back(p);
    }
    for (void* l : e.live) {
      if (page_of(l)->free_parked) overlaps++;
    }
    valid = mi::segment_is_valid(s) && mi::heap_is_valid(mi::heap_get_default());
    for (void* p : v) mi_free(p);
  }).join();
  EXPECT_EQ(from_freed, e.freed.size()) << "the reclaiming thread did not get the freed blocks back";
  EXPECT_EQ(overlaps, 0u);
  EXPECT_TRUE(valid);
  for (void* p : e.live) {
    EXPECT_TRUE(intact(p));
    mi_free(p);
  }
  mi_collect(true);
}

TEST(AbandonedPurge, NeverWithANegativeDelay) {
  OptionGuard g(mi_option_purge_delay);
  mi_option_set(mi_option_purge_delay, -1);
  mi_collect(true);
  Exited e = exit_with_sparse_pages();
  usleep(2000);
  EXPECT_EQ(mi::heap_purge_abandoned(false), 0u);
  for (void* p : e.live) EXPECT_FALSE(page_of(p)->free_parked);
  for (void* p : e.live) mi_free(p);
  mi_collect(true);
}

// A free into a purged page of an exited thread (a remote free: the
// segment has no owner) waits on the page's thread-free list; the thread
// that takes the segment over counts it, and hands out no live block.
TEST(AbandonedPurge, FreesIntoAParkedPageAreKept) {
  OptionGuard g(mi_option_purge_delay);
  OptionGuard g2(mi_option_abandoned_reclaim_on_free);
  mi_option_set(mi_option_abandoned_reclaim_on_free, 0);
  mi_option_set(mi_option_purge_delay, 1);
  mi_collect(true);
  Exited e = exit_with_sparse_pages();
  usleep(30000);  // more than purge_delay * arena_purge_mult (10 ms)
  ASSERT_GT(mi::heap_purge_abandoned(false), 0u);
  Page* pg = page_of(e.live[1]);
  ASSERT_TRUE(pg->free_parked);
  const uint32_t used0 = pg->used;
  mi_free(e.live[1]);  // into the parked page, from this thread (not its owner)
  EXPECT_TRUE(pg->free_parked);
  EXPECT_EQ(seg(e.live[1])->thread_id.load(), 0u) << "still abandoned";
  // reclaimed by a thread: every block of that page comes back exactly once
  mi_option_set(mi_option_purge_delay, 60000);
  std::set<void*> got;
  std::thread([&] {
    std::vector<void*> v;
    for (size_t i = 0; i < e.freed.size() + 1 + 8; i++) v.push_back(mi_malloc(BLOCK));
    for (void* p : v) got.insert(p);
    for (void* p : v) mi_free(p);
  }).join();
  EXPECT_EQ(used0, 1u);
  // its page held that one block: empty now, the reclaim released it (or
  // the block came back from its free list)
  EXPECT_TRUE(got.count(e.live[1]) == 1 || !pg->segment_in_use) << "the block freed into the parked page was lost";
  EXPECT_FALSE(pg->free_parked);
  for (size_t i = 0; i < e.live.size(); i++) {
    if (i != 1) {
      EXPECT_EQ(got.count(e.live[i]), 0u) << "a live block was handed out";
      mi_free(e.live[i]);
    }
  }
  mi_collect(true);
}

// With the background thread (purge_thread), an idle process purges them
// too: no thread allocates after the exit here. All that are due at once,
// not a few per call as on the slow path.
TEST(AbandonedPurgeChild, DISABLED_IdleProcessIsPurged) {
  ASSERT_TRUE(mi::purger_running());
  // The thread's start-up may allocate (ASan's does, before purger_main):
  // an allocation after the exit below reclaims the abandoned segment into
  // the purge thread (1 run in ~120 failed so), which then owns the pages.
  for (int i = 0; i < 3000 && mi::purger_threads_entered() == 0; i++) usleep(1000);
  ASSERT_GT(mi::purger_threads_entered(), 0u) << "the purge thread did not start within 3 s";
  Exited e = exit_with_sparse_pages();
  // (every live block's page: the background thread parks them one after
  // the other, and a check right after the first was parked failed once)
  auto all_parked = [&] {
    for (void* p : e.live) {
      if (!page_of(p)->free_parked) return false;
    }
    return true;
  };
  for (int i = 0; i < 3000 && !all_parked(); i++) usleep(1000);  // no allocation meanwhile
  for (void* p : e.live)
    EXPECT_TRUE(page_of(p)->free_parked) << "not purged within 3 s; the segment's owner: " << seg(p)->thread_id.load()
                                         << " (0: abandoned; this thread: " << mi::thread_id() << ")";
  EXPECT_EQ(resident_of(e.freed), 0u);
  for (void* p : e.live) EXPECT_TRUE(intact(p));
}

TEST(AbandonedPurge, IdleProcessIsPurgedByTheBackgroundThread) {
  unit::ChildResult r =
      unit::run_child("AbandonedPurgeChild.DISABLED_IdleProcessIsPurged",
                      {"MIMALLOC_PURGE_THREAD=1", "MIMALLOC_PURGE_DELAY=5", "MIMALLOC_ARENA_PURGE_MULT=1"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

}  // namespace
