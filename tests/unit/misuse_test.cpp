// Unit tests of lib/heap/misuse: the message of each kind of misuse (the
// call, the pointer, the size class, what was wrong, what follows), and the
// state a page is left in after a detection in the default build: a free
// list a double free made into a loop is dropped, its blocks count as used,
// the page stays valid and none of those blocks is handed out again; a bad
// thread-free list is leaked. In secure mode each detection aborts (tests
// with "Secure" in their name, and tests/api/misuse_test.cpp).
// Each test uses a heap of its own, so that the page holds only its blocks;
// the ones that print run in a child (the process-wide error count).
#include "heap/misuse.h"

#include <gtest/gtest.h>
#include <mimalloc.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/options.h"
#include "heap/free_list.h"
#include "heap/heap_stats.h"
#include "heap/page.h"
#include "heap_util.h"
#include "segment/segment.h"
#include "unit_util.h"

namespace {

using mi::Block;
using mi::Misuse;
using mi::Page;

using unit::OwnHeap;

std::string g_out;
void capture(const char* msg, void*) { g_out += msg; }

std::string hex(const void* p) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%p", p);
  return buf;
}

Page* page_of(const void* p) { return mi::block_page(static_cast<const Block*>(p)); }

// --- the messages ---------------------------------------------------------------

TEST(MisuseChild, DISABLED_Messages) {
  mi_register_output(capture, nullptr);
  OwnHeap h;
  char* p = static_cast<char*>(mi_heap_malloc(h.heap, 64));
  Page* page = page_of(p);
  struct Case {
    Misuse what;
    const char* call;
    const void* ptr;
    const void* other;
    std::string expect;
  } cases[] = {
      {Misuse::double_free, "free", p, nullptr,
       "mimalloc-numa: error: free(" + hex(p) +
           "): double free: the block (size class 64 bytes) is free already; the "
           "block is left alone\n"},
      {Misuse::listed_twice, "malloc", p, nullptr,
       "mimalloc-numa: error: malloc: double free: the block at " + hex(p) +
           " (size class 64 bytes) is on its page's free list twice; the page's free blocks are leaked, none is "
           "handed out twice\n"},
      {Misuse::interior, "free", p + 16, p,
       "mimalloc-numa: error: free(" + hex(p + 16) + "): not the start of a block: 16 bytes into the block at " +
           hex(p) + " (size class 64 bytes); ignored\n"},
      {Misuse::outside_blocks, "realloc", p - 64, nullptr,
       "mimalloc-numa: error: realloc(" + hex(p - 64) +
           "): not a block: outside the blocks of its page (size class "
           "64 bytes, blocks at " +
           hex(page->page_start) + "); ignored\n"},
      {Misuse::page_not_in_use, "malloc_usable_size", p, nullptr,
       "mimalloc-numa: error: malloc_usable_size(" + hex(p) +
           "): not a block: its page holds no blocks (a double free "
           "of a large block, or a stale pointer); returning 0\n"},
      {Misuse::corrupt_link, "malloc", p, p + 1000000,
       "mimalloc-numa: error: malloc: corrupted free list: the free block at " + hex(p) +
           " (size class 64 bytes) links to " + hex(p + 1000000) +
           ", not a block of its page (a write after free, or an overflow of the block before it); the page's free "
           "blocks are leaked, none is handed out\n"},
      {Misuse::too_many_free, "malloc", p, nullptr,
       "mimalloc-numa: error: malloc: more blocks freed than handed out in the page of blocks at " +
           hex(page->page_start) +
           " (size class 64 bytes): a double free, the block freed twice not found; the "
           "page's free blocks are leaked, none is handed out twice\n"},
  };
  for (const Case& c : cases) {
    g_out.clear();
    mi::misuse_report(c.what, c.call, c.ptr, page, c.other);
    EXPECT_EQ(g_out, c.expect);
  }
  mi_register_output(nullptr, nullptr);
  mi_free(p);
}

TEST(Misuse, MessagesNameTheCallThePointerTheSizeClassAndWhatWasWrong) {
  if (mi::secure_enabled()) GTEST_SKIP() << "secure mode aborts after the message (test MisuseSecure.*)";
  unit::ChildResult r = unit::run_child("MisuseChild.DISABLED_Messages", {});
  EXPECT_EQ(r.status, 0) << r.describe();
}

TEST(MisuseChild, DISABLED_SecureAborts) {
  OwnHeap h;
  char* p = static_cast<char*>(mi_heap_malloc(h.heap, 64));
  mi::misuse_report(Misuse::interior, "free", p + 8, page_of(p), p);
  printf("@@not aborted\n");
}

TEST(MisuseSecure, EveryDetectionAbortsAfterItsMessage) {
  // the secure build always; the default build with the secure option
  unit::ChildResult r =
      unit::run_child("MisuseChild.DISABLED_SecureAborts", {"MIMALLOC_SECURE=1", "MIMALLOC_SHOW_ERRORS=0"});
  EXPECT_EQ(r.status, 128 + SIGABRT) << r.describe();
  EXPECT_NE(r.err.find("): not the start of a block: 8 bytes into the block at "), std::string::npos)
      << "printed even with show_errors off\n"
      << r.describe();
  EXPECT_NE(r.err.find("(size class 64 bytes); aborting (secure mode)\n"), std::string::npos) << r.describe();
  EXPECT_EQ(r.out.find("@@not aborted"), std::string::npos);
}

// --- a free list made into a loop, in the default build ---------------------------

TEST(MisuseChild, DISABLED_LoopIsDropped) {
  mi_register_output(capture, nullptr);
  OwnHeap h;
  std::vector<char*> live;
  for (int i = 0; i < 10; i++) live.push_back(static_cast<char*>(mi_heap_malloc(h.heap, 64)));
  Page* page = page_of(live[0]);
  char* victim = live[3];
  char* again = unit::opaque(victim);
  mi_free(victim);
  mi_free(again);  // local_free: victim -> victim
  live.erase(live.begin() + 3);
  const uint16_t capacity = page->capacity;
  ASSERT_NE(page->free, nullptr) << "the page's free list holds blocks not handed out yet";
  // allocations of its size class so far: the thread's count less the blocks
  // counted ahead in the free lists (heap/page.cpp, page_stat_add)
  auto allocations = [&] {
    int64_t in_free[mi::BIN_HUGE + 1];
    mi::heap_stats_settle(h.heap->tld, in_free);
    return h.heap->tld->stats.bin_malloc[page->bin] - in_free[page->bin];
  };
  const int64_t allocated = allocations();
  mi::page_free_collect(page, false);
  EXPECT_EQ(allocations(), allocated) << "the dropped blocks were never handed out";
  EXPECT_NE(g_out.find("malloc: double free: the block at " + hex(victim) +
                       " (size class 64 bytes) is on its page's "
                       "free list twice; the page's free blocks are leaked, none is handed out twice"),
            std::string::npos)
      << g_out;
  EXPECT_EQ(page->free, nullptr);
  EXPECT_EQ(page->local_free, nullptr);
  EXPECT_EQ(page->capacity, capacity);
  EXPECT_EQ(page->used, page->capacity) << "the dropped blocks count as used: the page is never freed under a live one";
  EXPECT_TRUE(mi::page_is_valid(page));
  // later allocations: fresh blocks (or another page), never the victim, never twice
  std::set<char*> seen(live.begin(), live.end());
  for (int i = 0; i < 2000; i++) {
    char* q = static_cast<char*>(mi_heap_malloc(h.heap, 64));
    EXPECT_NE(q, victim);
    EXPECT_TRUE(seen.insert(q).second) << "handed out twice: " << hex(q);
  }
  // the live blocks are freed as usual
  for (char* q : live) mi_free(q);
  EXPECT_TRUE(mi::page_is_valid(page));
  mi_register_output(nullptr, nullptr);
}

TEST(Misuse, ALoopedLocalFreeListIsDroppedAndThePageStaysValid) {
  if (mi::secure_enabled()) GTEST_SKIP() << "secure mode aborts (tests/api/misuse_test.cpp)";
  unit::ChildResult r = unit::run_child("MisuseChild.DISABLED_LoopIsDropped", {});
  EXPECT_EQ(r.status, 0) << r.describe();
}

// The last block in use of a page freed twice. The page, empty, is kept for
// reuse and its frees stay on the fast path (a program that allocates and
// frees one block in a loop pays nothing for a check: tests/bench
// 'instructions'; flagging such a page for checked frees doubled that
// loop's instructions). So the second free wraps the count of blocks in use
// below zero and makes the local free list loop on the block; that loop is
// caught before the list is reused, and nothing is handed out twice.
TEST(MisuseChild, DISABLED_FreeIntoAnEmptyPage) {
  mi_register_output(capture, nullptr);
  OwnHeap h;
  char* b = static_cast<char*>(mi_heap_malloc(h.heap, 64));
  Page* page = page_of(b);
  ASSERT_EQ(page->used, 1u);
  mi_free(b);  // the page is empty (kept: the only page of its bin)
  ASSERT_EQ(page->used, 0u);
  EXPECT_FALSE(mi::page_free_checked(page)) << "an empty page kept for reuse: its frees take the fast path";
  mi_free(unit::opaque(b));
  std::set<char*> seen;
  for (int i = 0; i < 2000; i++) {
    char* q = static_cast<char*>(mi_heap_malloc(h.heap, 64));
    EXPECT_TRUE(seen.insert(q).second) << "handed out twice: " << hex(q);
  }
  EXPECT_NE(g_out.find("malloc: double free: the block at " + hex(b) +
                       " (size class 64 bytes) is on its page's "
                       "free list twice; the page's free blocks are leaked, none is handed out twice"),
            std::string::npos)
      << g_out;
  EXPECT_TRUE(mi::page_is_valid(page));
  for (char* q : seen) mi_free(q);
  mi_register_output(nullptr, nullptr);
}

TEST(Misuse, ADoubleFreeIntoAnEmptyPageIsCaughtBeforeReuse) {
  if (mi::secure_enabled()) GTEST_SKIP() << "secure mode aborts (tests/api/misuse_test.cpp)";
  unit::ChildResult r = unit::run_child("MisuseChild.DISABLED_FreeIntoAnEmptyPage", {});
  EXPECT_EQ(r.status, 0) << r.describe();
}

// --- a thread-free list that loops ----------------------------------------------------

TEST(MisuseChild, DISABLED_ThreadFreeLoopIsLeaked) {
  mi_register_output(capture, nullptr);
  OwnHeap h;
  std::vector<char*> live;
  for (int i = 0; i < 10; i++) live.push_back(static_cast<char*>(mi_heap_malloc(h.heap, 64)));
  Page* page = page_of(live[0]);
  char* victim = live[2];
  std::thread([victim] {
    char* again = unit::opaque(victim);
    mi_free(victim);
    mi_free(again);
  }).join();
  const uint32_t used = page->used;
  mi::page_free_collect(page, true);
  EXPECT_NE(g_out.find("malloc: double free: the block at " + hex(victim) +
                       " (size class 64 bytes) is on its page's "
                       "free list twice"),
            std::string::npos)
      << g_out;
  EXPECT_EQ(page->used, used) << "the list is leaked: its blocks stay counted as used";
  EXPECT_EQ(page->xthread_free.load() & ~mi::DELAYED_MASK, 0u) << "taken off the page";
  EXPECT_TRUE(mi::page_is_valid(page));
  for (int i = 0; i < 500; i++) EXPECT_NE(mi_heap_malloc(h.heap, 64), victim);
  mi_register_output(nullptr, nullptr);
}

TEST(Misuse, ALoopedThreadFreeListIsLeaked) {
  if (mi::secure_enabled()) GTEST_SKIP() << "secure mode aborts (tests/api/misuse_test.cpp)";
  unit::ChildResult r = unit::run_child("MisuseChild.DISABLED_ThreadFreeLoopIsLeaked", {});
  EXPECT_EQ(r.status, 0) << r.describe();
}

// --- free_check -------------------------------------------------------------------------

TEST(FreeCheck, AcceptsBlockStartsAndAlignedPointers) {
  OwnHeap h;
  char* p = static_cast<char*>(mi_heap_malloc(h.heap, 64));
  EXPECT_TRUE(mi::free_check(page_of(p), p, true));
  char* a = static_cast<char*>(mi_heap_malloc_aligned_at(h.heap, 100, 64, 16));  // an interior pointer, legitimately
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(mi::free_check(page_of(a), a, true));
  mi_free(a);
  mi_free(p);
}

}  // namespace
